"""Every release kept and explained, from the application layer the CLI and the MCP server call.

One lake loads the recorded table 0000020202 (one row in each fiscal year 1981-1990, release
2025-06-20), e-Stat (our own emulator) then publishes 2026-01-15 with 1985's value revised, and
the lake loads it too. Then: list the releases, compare them, and read a series, a figure and
SQL as published on a day between the two releases.
"""

from __future__ import annotations

import httpx
import pytest

from estat_assets.app.add import add
from estat_assets.app.errors import AppError
from estat_assets.app.load import load
from estat_assets.app.query import run_sql
from estat_assets.app.releases import compare, list_releases
from estat_assets.app.series import series
from estat_assets.app.verify import verify
from estat_assets_tests.app.conftest import make_context, write_domains
from estat_emulator import EmulatorServer, TableStore

DATASET = "0000020202"
OLD, NEW, BETWEEN = "2025-06-20", "2026-01-15", "2025-12-31"
CELL = {"time": "1985100000", "area": "01100"}
SQL = (
    "SELECT year, value_raw, source_updated_date FROM estat.population "
    f"WHERE dataset_id = '{DATASET}' AND year IN (1984, 1985) ORDER BY year"
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as server:
        ctx = make_context(root / "home", server.api_base, write_domains(root))
        add(ctx, DATASET, domain="population")
        assert not load(ctx, [DATASET]).failures
        reply = httpx.post(
            f"{server.url}/_emulator/republish",
            json={"statsDataId": DATASET, "updated_date": NEW, "revise": {"time": ["1985100000"]}},
        )
        assert reply.status_code == 200, reply.text
        assert not load(ctx, [DATASET]).failures
        yield ctx


def test_every_release_is_listed_with_what_it_changed(lake) -> None:
    answer = list_releases(lake, DATASET)
    dates = [r["updated_date"] for r in answer.releases]
    assert dates == [OLD, NEW]
    latest = answer.releases[-1]
    assert (latest["revised"], latest["added"], latest["removed"]) == (1, 0, 0)
    assert latest["previous_updated_date"] == OLD
    top = latest["largest_relative_revisions"][0]
    assert top["year"] == 1985 and top["old_value_raw"] != top["new_value_raw"]
    assert answer.citation.updated_date == NEW and answer.citation.snapshot_id is not None
    assert [
        r["updated_date"] for r in list_releases(lake, DATASET, since="2026-01-01").releases
    ] == [NEW]


def test_two_releases_compared_cell_by_cell_cite_both(lake) -> None:
    answer = compare(lake, DATASET, OLD, NEW)
    assert answer.total_cells == 1
    cell = answer.cells[0]
    assert cell["kind"] == "revised" and cell["time_code"] == "1985100000"
    assert cell["old_value_raw"] == "111801" and cell["new_value_raw"] != "111801"
    assert (answer.citation_old.updated_date, answer.citation.updated_date) == (OLD, NEW)
    assert answer.citation_old.snapshot_id != answer.citation.snapshot_id
    with pytest.raises(AppError) as missing:
        compare(lake, DATASET, "2020-01-01", NEW)
    assert missing.value.type == "release_not_kept"


def test_a_series_and_a_figure_as_published_on_a_day(lake) -> None:
    now = series(lake, DATASET, CELL)
    then = series(lake, DATASET, CELL, as_of=BETWEEN)
    assert [r["value_raw"] for r in then.rows] == ["111801"]
    assert [r["value_raw"] for r in now.rows] != ["111801"]
    assert then.citation.updated_date == OLD and now.citation.updated_date == NEW
    assert any("as published on" in n for n in then.notes)
    assert verify(lake, DATASET, "111801", CELL, as_of=BETWEEN).verdict == "agrees"
    assert verify(lake, DATASET, "111801", CELL).verdict == "disagrees"


def test_sql_as_published_on_a_day_reads_each_dataset_from_its_release(lake) -> None:
    then = run_sql(lake, SQL, as_of=BETWEEN)
    rows = then.table.to_pylist()
    assert [r["value_raw"] for r in rows] == ["111801", "111801"]
    assert {str(r["source_updated_date"]) for r in rows} == {OLD}
    assert [c.updated_date for c in then.citations] == [OLD]
    now = run_sql(lake, SQL)
    first, second = (r["value_raw"] for r in now.table.to_pylist())
    assert first == "111801" and second != "111801"
    assert [c.updated_date for c in now.citations] == [NEW]


@pytest.mark.parametrize(
    ("day", "kind"), [("2025-01-01", "no_release_then"), ("31/12", "invalid_date")]
)
def test_a_day_without_a_release_or_not_a_day_is_a_structured_error(lake, day, kind) -> None:
    with pytest.raises(AppError) as caught:
        series(lake, DATASET, CELL, as_of=day)
    assert caught.value.type == kind and caught.value.what_to_do
