"""The concurrent fetch against the real emulator: guessed pages, "no data", restarts."""

from __future__ import annotations

import pytest

from estat_assets.estat.client import EStatClient, FetchProgress, MemorySink, RetryConfig
from estat_assets.estat.errors import PageMismatchError, TableRepublishedError

FAST = RetryConfig(attempts=3, base_delay=0.001, max_delay=0.001)


def client(emulator, **kw) -> EStatClient:
    kw.setdefault("retry", FAST)
    return EStatClient("k", emulator.api_base, sleep=lambda _: None, **kw)


def data_starts(emulator) -> list[int]:
    return sorted(
        int(r["params"]["startPosition"])
        for r in emulator.requests.entries()
        if r["endpoint"] == "getStatsData"
    )


def test_guessed_pages_beyond_the_table_are_ignored(emulator) -> None:
    """A wrong rows_hint costs a few requests, never a wrong result."""
    sink = MemorySink()
    with client(emulator, page_size=3, concurrency=4) as c:
        result = c.fetch_table("0000020202", sink, rows_hint=1_000_000)
    assert result.rows == 10 and result.pages == 4 and sorted(sink.pages) == [1, 2, 3, 4]
    assert data_starts(emulator) == [1, 4, 7, 10]  # three guessed with page 1, all in the table
    assert result.status == 0 and not result.no_data


def test_guessed_page_errors_beyond_the_total_do_not_fail_the_fetch(emulator) -> None:
    emulator.faults.add(
        {"kind": "http_error", "status": 500, "endpoint": "getStatsData", "nth": [3]}
    )
    sink = MemorySink()
    with client(emulator, page_size=3, concurrency=4) as c:
        result = c.fetch_table(
            "0000020202", sink, {"cdTime": "1981100000,1982100000"}, rows_hint=12
        )
    assert result.rows == 2 and result.pages == 1 and list(sink.pages) == [1]


def test_a_narrowed_request_that_matches_nothing_reports_no_data(emulator) -> None:
    sink = MemorySink()
    seen: list[FetchProgress] = []
    with client(emulator, page_size=3, concurrency=4) as c:
        result = c.fetch_table(
            "0000020202", sink, {"cdTime": "2023100000"}, seen.append, rows_hint=6
        )
    assert result.no_data and result.status == 1
    assert (result.total_number, result.rows, result.pages) == (0, 0, 0) and not sink.pages
    # the independent evidence the caller can weigh: the table itself has rows
    assert result.overall_total_number == 10 and result.updated_date
    assert seen == [FetchProgress("0000020202", 0, 0, 0, 0)]
    assert result.requests == len(data_starts(emulator))  # guessed pages were cancelled or counted


def test_an_empty_later_page_means_the_table_changed(emulator) -> None:
    emulator.faults.add({"kind": "api_error", "status": 1, "endpoint": "getStatsData", "nth": [2]})
    sink = MemorySink()
    with client(emulator, page_size=4, concurrency=1) as c:
        result = c.fetch_table("0000020202", sink)
    assert result.restarts == 1 and result.rows == 10 and len(sink.pages) == 3


def test_restarts_exhausted_keep_the_cause_and_count_the_attempts(emulator) -> None:
    emulator.faults.add({"kind": "short_page", "endpoint": "getStatsData", "times": None})
    sink = MemorySink()
    with client(emulator, page_size=4) as c, pytest.raises(PageMismatchError) as caught:
        c.fetch_table("0000020202", sink)
    error = caught.value
    assert not isinstance(error, TableRepublishedError)
    assert error.stats_data_id == "0000020202" and str(error).count("0000020202") == 1
    assert "rows" in error.message and error.message.endswith("after 3 attempts")  # 2 restarts
    assert sink.pages == {}


def test_progress_is_reported_per_page_and_ends_complete(emulator) -> None:
    seen: list[FetchProgress] = []
    with client(emulator, page_size=3, concurrency=2) as c:
        c.fetch_table("0000020202", MemorySink(), progress=seen.append)
    assert [p.pages_done for p in seen] == [1, 2, 3, 4]
    assert seen[-1].rows_done == seen[-1].total_rows == 10 and seen[-1].pages_planned == 4
