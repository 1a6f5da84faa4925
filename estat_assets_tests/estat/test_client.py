"""The client against the real emulator over HTTP: paging, statuses, retries, secrets."""

from __future__ import annotations

import logging

import orjson
import pytest

from estat_assets.estat.client import EStatClient, MemorySink, RetryConfig
from estat_assets.estat.errors import (
    EStatHttpError,
    EStatRequestError,
    EStatResponseError,
    EStatServerError,
    InvalidDatasetIdError,
    PageMismatchError,
    TableRepublishedError,
)
from estat_emulator import EmulatorServer, TableStore

APP_ID = "test-app-id-0123456789abcdef"
FAST_RETRY = RetryConfig(attempts=4, base_delay=0.01, max_delay=0.05)


def client(emulator, **kw) -> EStatClient:
    kw.setdefault("retry", FAST_RETRY)
    return EStatClient(APP_ID, emulator.api_base, **kw)


def values_of(pages: dict[int, bytes]) -> list[dict]:
    out = []
    for n in sorted(pages):
        v = orjson.loads(pages[n])["GET_STATS_DATA"]["STATISTICAL_DATA"]["DATA_INF"]["VALUE"]
        out += v if isinstance(v, list) else [v]
    return out


def test_meta_info(emulator) -> None:
    with client(emulator) as c:
        meta, resp = c.get_meta_info("0003065345")
    assert meta.axes == ["cat01", "cat02", "cat03", "area", "time"]
    assert resp.raw.startswith(b"{") and resp.status == 0


@pytest.mark.parametrize(("page_size", "concurrency"), [(3, 1), (3, 4), (1, 2), (100_000, 4)])
def test_pages_cover_the_table_exactly_once_in_order(emulator, page_size, concurrency) -> None:
    sink = MemorySink()
    with client(emulator, page_size=page_size, concurrency=concurrency) as c:
        result = c.fetch_table("0000020202", sink)
    assert result.total_number == 10 and result.rows == 10
    assert result.pages == len(sink.pages) == -(-10 // page_size)
    times = [v["@time"] for v in values_of(sink.pages)]
    assert times == [f"{y}100000" for y in range(1981, 1991)]


def test_narrowed_fetch_and_count(emulator) -> None:
    with client(emulator) as c:
        assert c.count("0000020202", {"cdTime": "1981100000,1982100000"}) == 2
        sink = MemorySink()
        result = c.fetch_table("0000020202", sink, {"cdTime": "1985100000"})
    assert result.rows == 1 and result.params["cdTime"] == "1985100000"
    assert "appId" not in result.params


def test_no_matching_rows_is_an_empty_result_not_an_error(emulator) -> None:
    sink = MemorySink()
    with client(emulator) as c:
        result = c.fetch_table("0000020202", sink, {"cdTime": "2023100000"})
        assert c.count("0000020202", {"cdTime": "2023100000"}) == 0
    assert result.total_number == 0 and result.pages == 0 and not sink.pages


def test_malformed_id_is_refused_before_any_request(emulator) -> None:
    with client(emulator) as c:
        with pytest.raises(InvalidDatasetIdError, match="10 digits"):
            c.get_meta_info("12345")
        assert c.requests_made == 0


def test_unknown_table_fails_at_once_with_estats_message(emulator) -> None:
    with client(emulator) as c:
        with pytest.raises(EStatRequestError) as info:
            c.get_meta_info("0000099999")
        assert c.requests_made == 1  # never retried
    assert info.value.status >= 100 and "0000099999" in str(info.value)


def test_bad_app_id_is_status_100_with_a_hint() -> None:
    server = EmulatorServer(TableStore.default(), required_app_id="the-right-key")
    with (
        server,
        EStatClient("wrong-key", server.api_base, retry=FAST_RETRY) as c,
        pytest.raises(EStatRequestError) as info,
    ):
        c.get_meta_info("0000020202")
    assert info.value.status == 100 and "ESTAT_APP_ID" in str(info.value)
    assert "wrong-key" not in str(info.value)


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "http_error", "status": 500},
        {"kind": "http_error", "status": 503},
        {"kind": "rate_limit", "retry_after": 0.01},
        {"kind": "reset"},
        {"kind": "truncate"},
        {"kind": "api_error", "status": 200, "error_msg": "サーバ内部でエラーが発生しました。"},
    ],
)
def test_transient_faults_are_retried_and_the_fetch_recovers(emulator, rule) -> None:
    emulator.faults.add({**rule, "endpoint": "getStatsData", "times": 2})
    sink = MemorySink()
    with client(emulator, page_size=4) as c:
        result = c.fetch_table("0000020202", sink)
    assert result.rows == 10 and len(values_of(sink.pages)) == 10
    assert result.requests == 3 + 2  # three pages, two failed attempts


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"kind": "http_error", "status": 500}, EStatHttpError),
        ({"kind": "truncate"}, EStatResponseError),
        ({"kind": "api_error", "status": 201}, EStatServerError),
    ],
)
def test_persistent_faults_give_a_typed_error_and_no_pages(emulator, rule, error) -> None:
    emulator.faults.add({**rule, "endpoint": "getStatsData", "skip": 1, "times": None})
    sink = MemorySink()
    with client(emulator, page_size=4) as c, pytest.raises(error):
        c.fetch_table("0000020202", sink)
    assert sink.pages == {}  # nothing partial handed on


def test_status_1xx_is_never_retried(emulator) -> None:
    emulator.faults.add(
        {
            "kind": "api_error",
            "status": 101,
            "error_msg": "statsDataIdを指定して下さい。",
            "endpoint": "getStatsData",
            "times": None,
        }
    )
    with client(emulator) as c, pytest.raises(EStatRequestError, match="指定して下さい"):
        c.fetch_table("0000020202", MemorySink())
    assert sum(1 for r in emulator.requests.entries() if "getStatsData" in r["path"]) == 1


def test_short_page_is_detected(emulator) -> None:
    emulator.faults.add({"kind": "short_page", "endpoint": "getStatsData", "times": None})
    with client(emulator, page_size=4) as c, pytest.raises(PageMismatchError, match="rows"):
        c.fetch_table("0000020202", MemorySink())


def test_republished_mid_fetch_restarts_and_never_mixes_versions(emulator) -> None:
    emulator.faults.add(
        {
            "kind": "republish",
            "endpoint": "getStatsData",
            "stats_data_id": "9900020202",
            "skip": 1,
            "updated_date": "2026-01-01",
        }
    )
    sink = MemorySink()
    with client(emulator, page_size=5000) as c:
        result = c.fetch_table("9900020202", sink, {"cdTime": "2023100000"})
    assert result.restarts == 1 and result.updated_date == "2026-01-01"
    dates = {
        orjson.loads(p)["GET_STATS_DATA"]["STATISTICAL_DATA"]["TABLE_INF"]["UPDATED_DATE"]
        for p in sink.pages.values()
    }
    assert dates == {"2026-01-01"}
    assert result.rows == result.total_number == 9 * 1913


def test_republished_on_every_attempt_gives_up_with_a_typed_error(emulator) -> None:
    for n in range(5):
        emulator.faults.add(
            {
                "kind": "republish",
                "endpoint": "getStatsData",
                "stats_data_id": "9900020202",
                "nth": [2 + 4 * n],
                "updated_date": f"2026-02-0{n + 1}",
            }
        )
    with client(emulator, page_size=5000) as c, pytest.raises(TableRepublishedError):
        c.fetch_table("9900020202", MemorySink(), {"cdTime": "2022100000"})


def test_app_id_never_in_logs_or_errors(emulator, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.faults.add(
        {"kind": "http_error", "status": 502, "endpoint": "getStatsData", "times": 1}
    )
    with client(emulator) as c:
        c.fetch_table("0000020202", MemorySink())
        with pytest.raises(EStatRequestError) as info:
            c.get_meta_info("0000099999")
    assert APP_ID not in caplog.text and APP_ID not in str(info.value)
    assert all(APP_ID not in str(r) for r in emulator.requests.entries())
