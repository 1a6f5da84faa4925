"""The cheap page check (head parse + VALUE count) agrees with a full parse, or defers to it."""

from __future__ import annotations

import httpx
import orjson
import pytest

from estat_assets.estat.client import EStatClient, MemorySink, RetryConfig, scan_page
from estat_assets.estat.shape import as_list
from estat_assets_tests.factories import SAMPLES

FAST = RetryConfig(attempts=3, base_delay=0.001, max_delay=0.001)


def _full(raw: bytes) -> tuple[dict, int]:
    doc = orjson.loads(raw)
    data = doc["GET_STATS_DATA"]["STATISTICAL_DATA"]
    return data, len(as_list(data.get("DATA_INF", {}).get("VALUE")))


def _page(emulator, **params) -> bytes:
    query = {"appId": "x", "metaGetFlg": "N", "cntGetFlg": "N", **params}
    return httpx.get(f"{emulator.api_base}/getStatsData", params=query).content


@pytest.mark.parametrize(
    "params",
    [
        {"statsDataId": "0000020202"},
        {"statsDataId": "0000020202", "cdTime": "1981100000"},  # one VALUE: an object, not a list
        {"statsDataId": "0003065345"},
        {"statsDataId": "9900020202", "cdTime": "2023100000", "limit": 5000},
    ],
)
def test_scan_agrees_with_a_full_parse(emulator, params) -> None:
    raw = _page(emulator, **params)
    scanned = scan_page(raw)
    assert scanned is not None
    head, rows = scanned
    data, full_rows = _full(raw)
    assert rows == full_rows
    got = head["GET_STATS_DATA"]["STATISTICAL_DATA"]
    assert got["RESULT_INF"] == data["RESULT_INF"] and got["TABLE_INF"] == data["TABLE_INF"]
    assert "DATA_INF" not in got


def test_recorded_samples_scan_like_they_parse() -> None:
    for path in sorted(SAMPLES.rglob("getStatsData*.json")):
        raw = path.read_bytes()
        scanned = scan_page(raw)
        if scanned is None:
            continue  # another shape (pretty-printed, metadata included): the full parse decides
        assert scanned[1] == _full(raw)[1], path


def test_every_truncation_is_refused_by_the_scan(emulator) -> None:
    raw = _page(emulator, statsDataId="0000020202", limit=3)
    for cut in range(1, len(raw) - 1):
        assert scan_page(raw[:cut]) is None, cut


def test_odd_shapes_fall_back_to_the_full_parse() -> None:
    head = b'{"GET_STATS_DATA":{"RESULT":{"STATUS":0},"STATISTICAL_DATA":{"RESULT_INF":{},'
    value_then_note = head + b'"DATA_INF":{"VALUE":[{"$":"1"}],"NOTE":{"@char":"-","$":"x"}}}}}'
    assert scan_page(value_then_note) is None
    assert scan_page(b'{"GET_STATS_DATA":{"RESULT":{"STATUS":1}}}') is None
    pretty = orjson.dumps(orjson.loads(value_then_note), option=orjson.OPT_INDENT_2)
    assert scan_page(pretty) is None


def test_guessed_pages_beyond_the_table_are_ignored(emulator) -> None:
    """A wrong rows_hint costs a few requests, never a wrong result."""
    sink = MemorySink()
    with EStatClient("k", emulator.api_base, page_size=3, concurrency=4, retry=FAST) as c:
        result = c.fetch_table("0000020202", sink, rows_hint=1_000_000)
    assert result.rows == 10 and result.pages == 4 and sorted(sink.pages) == [1, 2, 3, 4]
    starts = sorted(
        int(r["params"]["startPosition"])
        for r in emulator.requests.entries()
        if r["endpoint"] == "getStatsData"
    )
    assert starts == [1, 4, 7, 10]  # three guessed with page 1, all within the table


def test_guessed_page_errors_beyond_the_total_do_not_fail_the_fetch(emulator) -> None:
    emulator.faults.add(
        {"kind": "http_error", "status": 500, "endpoint": "getStatsData", "nth": [3]}
    )
    sink = MemorySink()
    with EStatClient("k", emulator.api_base, page_size=3, concurrency=4, retry=FAST) as c:
        result = c.fetch_table(
            "0000020202", sink, {"cdTime": "1981100000,1982100000"}, rows_hint=12
        )
    assert result.rows == 2 and result.pages == 1 and list(sink.pages) == [1]


def test_rate_limiter_spaces_request_starts_on_one_clock() -> None:
    """Starts are reserved 1/rate apart for all threads; checked on a fake clock, not timed."""
    from estat_assets.estat.client import RateLimiter

    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    starts = [limiter.wait() for _ in range(5)]
    assert starts == [100.0, 100.25, 100.5, 100.75, 101.0]
    assert slept == [0.25, 0.5, 0.75, 1.0]
    now[0] = 200.0  # after a quiet spell no one waits
    assert limiter.wait() == 200.0 and len(slept) == 4
    assert RateLimiter(None).wait() > 0  # no limit: never sleeps
