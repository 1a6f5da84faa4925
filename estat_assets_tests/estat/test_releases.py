"""The release logic (``estat/releases.py``) without Dagster: window, cursor, decisions.

``evaluate_releases`` is driven by a small fake of the one client call it makes
(``iter_stats_list``), and once by the real client against the shared emulator over HTTP.
"""

from __future__ import annotations

import copy
from datetime import date

import pytest

from estat_assets.estat.client import EStatClient, RetryConfig
from estat_assets.estat.errors import EStatHttpError
from estat_assets.estat.models import TableInfo
from estat_assets.estat.releases import (
    CURSOR_VERSION,
    MAX_WINDOW_DAYS,
    dump_cursor,
    evaluate_releases,
    load_cursor,
    release_run_key,
    update_window,
)

TODAY = date(2026, 12, 6)
SURVEY = "00200502"


class FakeClient:
    """``iter_stats_list`` over a fixed listing per survey; remembers every call."""

    def __init__(self, listings: dict[str, list[TableInfo]] | None = None, fail: bool = False):
        self.listings = listings or {}
        self.fail = fail
        self.calls: list[dict[str, str]] = []

    def iter_stats_list(self, **filters: str):
        self.calls.append(filters)
        if self.fail:
            raise EStatHttpError("HTTP 503 from getStatsList", retryable=True)
        yield from self.listings.get(filters["statsCode"], [])


def info(dataset: str, updated: str = "2026-12-01", total: int = 10, survey: str = SURVEY):
    return TableInfo(id=dataset, stat_code=survey, updated_date=updated, overall_total_number=total)


def evaluate(client, cursor=None, *, datasets=(), known=(), loaded=None, surveys=(SURVEY,)):
    return evaluate_releases(
        surveys,
        datasets,
        client,
        cursor if cursor is not None else load_cursor(None),
        known,
        loaded_release=(loaded or {}).get,
        today=TODAY,
        window_days=7,
    )


# ----------------------------------------------------------------------------- window, cursor


def test_window_is_the_last_days_and_reaches_back_to_the_last_poll() -> None:
    assert update_window(TODAY, 7, None) == "20261129-20261206"
    # a poll three weeks ago: the window starts the day before it, nothing in between is missed
    assert update_window(TODAY, 7, "2026-11-15") == "20261114-20261206"
    # a recent poll never narrows the window
    assert update_window(TODAY, 7, "2026-12-05") == "20261129-20261206"
    # never more than a year, and an unreadable last poll is ignored
    assert update_window(TODAY, 7, "2019-01-01") == f"{date(2025, 12, 5):%Y%m%d}-20261206"
    assert (TODAY - date(2025, 12, 5)).days == MAX_WINDOW_DAYS
    assert update_window(TODAY, 7, "not a date") == "20261129-20261206"


def test_cursor_round_trips_and_a_foreign_cursor_starts_fresh() -> None:
    fresh = load_cursor(None)
    assert fresh == {"version": CURSOR_VERSION, "tables": {}, "last_poll": None}
    cursor = {**fresh, "tables": {"0000020202": {"updated_date": "2026-01-01"}}}
    assert load_cursor(dump_cursor(cursor)) == cursor
    for foreign in ("{not json", "[1, 2]", '{"version": 1, "tables": {"x": {}}}'):
        assert load_cursor(foreign) == fresh


def test_run_key_is_dataset_updated_date_and_total() -> None:
    assert release_run_key("0000020202", "2026-12-01", 10) == "0000020202|2026-12-01|10"
    assert release_run_key("0000020202", None, None) == "0000020202||"
    assert release_run_key("0000020202", "2026-12-01", 0) == "0000020202|2026-12-01|0"


# ----------------------------------------------------------------------------- decisions


def test_a_new_table_of_a_watched_survey_is_one_run_then_baseline() -> None:
    client = FakeClient({SURVEY: [info("9900000009", total=60)]})
    before = load_cursor(None)
    first = evaluate(client, before)
    assert first.new_datasets == ["9900000009"]
    assert [(r.dataset_id, r.run_key) for r in first.runs] == [
        ("9900000009", "9900000009|2026-12-01|60")
    ]
    assert first.runs[0].tags == {
        "estat/dataset_id": "9900000009",
        "estat/updated_date": "2026-12-01",
        "estat/overall_total_number": "60",
        "estat/release": "new",
    }
    assert first.cursor["tables"]["9900000009"] == {
        "updated_date": "2026-12-01",
        "overall_total_number": 60,
        "survey": SURVEY,
    }
    assert first.cursor["last_poll"] == TODAY.isoformat()
    assert before == load_cursor(None)  # the caller's cursor is never changed in place
    assert client.calls == [{"statsCode": SURVEY, "updatedDate": "20261129-20261206"}]

    again = evaluate(client, first.cursor, known=["9900000009"])
    assert again.runs == [] and again.new_datasets == []
    assert again.cursor["tables"] == first.cursor["tables"]


def test_a_revised_release_of_a_known_table_is_one_run_tagged_revised() -> None:
    cursor = load_cursor(None)
    cursor["tables"]["0000020202"] = {
        "updated_date": "2025-06-20",
        "overall_total_number": 10,
        "survey": SURVEY,
    }
    # same date, different count: also a new release
    for updated, total in (("2026-12-02", 10), ("2025-06-20", 11)):
        client = FakeClient({SURVEY: [info("0000020202", updated, total)]})
        decision = evaluate(client, cursor, known=["0000020202"], datasets=["0000020202"])
        assert decision.new_datasets == []
        assert [r.run_key for r in decision.runs] == [f"0000020202|{updated}|{total}"]
        assert decision.runs[0].tags["estat/release"] == "revised"
        state = decision.cursor["tables"]["0000020202"]
        assert (state["updated_date"], state["overall_total_number"]) == (updated, total)


def test_declared_datasets_never_loaded_are_loaded_even_outside_the_window() -> None:
    client = FakeClient({})  # nothing updated lately
    decision = evaluate(client, datasets=["0000020202", "0003065345"], known=["0003065345"])
    # 0000020202 has no partition yet: new; 0003065345 has one but the lake holds nothing
    assert [(r.dataset_id, r.tags["estat/release"]) for r in decision.runs] == [
        ("0000020202", "new"),
        ("0003065345", "revised"),
    ]
    assert decision.new_datasets == ["0000020202"]
    assert [r.run_key for r in decision.runs] == ["0000020202||", "0003065345||"]
    # the next tick has them in its cursor: no second run
    again = evaluate(
        client,
        decision.cursor,
        datasets=["0000020202", "0003065345"],
        known=["0000020202", "0003065345"],
    )
    assert again.runs == []


def test_a_declared_dataset_the_lake_already_holds_is_not_reloaded() -> None:
    client = FakeClient({})
    loaded = {"0000020202": ("2025-06-20", 10)}
    decision = evaluate(client, datasets=["0000020202"], known=["0000020202"], loaded=loaded)
    assert decision.runs == [] and decision.new_datasets == []
    assert "0000020202" not in decision.cursor["tables"]


def test_a_listed_release_the_lake_already_holds_becomes_the_baseline() -> None:
    listed = info("0000020202", "2026-12-01", 10)
    client = FakeClient({SURVEY: [listed]})
    same = evaluate(client, known=["0000020202"], loaded={"0000020202": ("2026-12-01", 10)})
    assert same.runs == []
    assert same.cursor["tables"]["0000020202"]["updated_date"] == "2026-12-01"
    assert any("already loaded" in n for n in same.notes)
    # the lake holds an older release: that is a revision to load
    older = evaluate(client, known=["0000020202"], loaded={"0000020202": ("2025-06-20", 10)})
    assert [r.tags["estat/release"] for r in older.runs] == ["revised"]


def test_a_table_listed_with_no_rows_is_noted_not_loaded() -> None:
    client = FakeClient({SURVEY: [info("9900000009", total=0)]})
    decision = evaluate(client)
    assert decision.runs == [] and decision.new_datasets == []
    assert decision.cursor["tables"]["9900000009"]["overall_total_number"] == 0
    assert any("no rows" in n for n in decision.notes)


def test_the_survey_of_a_declared_dataset_is_watched_too() -> None:
    cursor = load_cursor(None)
    cursor["tables"]["0003065345"] = {
        "updated_date": "2012-07-13",
        "overall_total_number": 3,
        "survey": "00200533",
    }
    client = FakeClient({"00200533": [info("0003065345", "2026-12-03", 3, "00200533")]})
    decision = evaluate(client, cursor, datasets=["0003065345"], known=["0003065345"])
    assert [c["statsCode"] for c in client.calls] == [SURVEY, "00200533"]
    assert [r.run_key for r in decision.runs] == ["0003065345|2026-12-03|3"]


def test_estat_down_raises_and_leaves_the_cursor_as_it_was() -> None:
    cursor = load_cursor(None)
    cursor["tables"]["0000020202"] = {"updated_date": "2025-06-20", "overall_total_number": 10}
    kept = copy.deepcopy(cursor)
    with pytest.raises(EStatHttpError):
        evaluate(FakeClient(fail=True), cursor)
    assert cursor == kept


def test_against_the_emulator_lists_the_surveys_tables_updated_in_the_window(emulator) -> None:
    """The real client over HTTP: the listing and the window are what e-Stat filters on."""
    client = EStatClient("test-app-id", emulator.api_base, retry=RetryConfig(attempts=1))
    with client:
        decision = evaluate_releases(
            [SURVEY],
            [],
            client,
            load_cursor(None),
            [],
            today=date(2025, 6, 28),
            window_days=8,
        )
    # survey 00200502 in the emulator: 0000020202 and 9900020202 (2025-06-20), 9900000002
    # (2025-06-27); nothing else of the survey falls inside 2025-06-20..2025-06-28
    assert decision.new_datasets == ["0000020202", "9900000002", "9900020202"]
    keys = {r.dataset_id: r.run_key for r in decision.runs}
    assert keys["0000020202"] == "0000020202|2025-06-20|10"
    assert keys["9900020202"] == "9900020202|2025-06-20|757548"
    lists = [r for r in emulator.requests.entries() if r["endpoint"] == "getStatsList"]
    assert [r["params"]["updatedDate"] for r in lists] == ["20250620-20250628"]
    assert all(r["params"]["statsCode"] == SURVEY for r in lists)
    # a window that ends before those releases lists none of them
    with EStatClient("test-app-id", emulator.api_base, retry=RetryConfig(attempts=1)) as client:
        earlier = evaluate_releases(
            [SURVEY], [], client, load_cursor(None), [], today=date(2025, 6, 19), window_days=7
        )
    assert earlier.runs == [] and earlier.new_datasets == []
