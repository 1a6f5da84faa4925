"""The client against the real emulator over HTTP: endpoints, paging, statuses, retries, secrets.

Backoff sleeps are faked: nothing here waits or times anything.
"""

from __future__ import annotations

import logging

import orjson
import pytest

from estat_assets.estat import ids
from estat_assets.estat.client import (
    DEFAULT_BASE_URL,
    CountAnswer,
    EStatClient,
    FetchProgress,
    FetchResult,
    MemorySink,
    PageSink,
    RetryConfig,
    check_dataset_id,
)
from estat_assets.estat.errors import (
    EStatConfigError,
    EStatHttpError,
    EStatNoDataAnswerError,
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


def no_sleep(_: float) -> None:
    pass


def client(emulator, **kw) -> EStatClient:
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("sleep", no_sleep)
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


def test_no_matching_rows_is_an_empty_result_that_says_no_data(emulator) -> None:
    sink = MemorySink()
    with client(emulator) as c:
        result = c.fetch_table("0000020202", sink, {"cdTime": "2023100000"})
        assert c.count("0000020202", {"cdTime": "2023100000"}) == 0
        answer = c.count_answer("0000020202", {"cdTime": "2023100000"})
        counted = c.count_answer("0000020202", {"cdTime": "1981100000"})
    assert result.total_number == 0 and result.pages == 0 and not sink.pages
    assert result.no_data and result.status == 1
    assert answer == CountAnswer(rows=0, status=1) and answer.no_data
    assert counted == CountAnswer(rows=1, status=0) and not counted.no_data


def test_a_fetch_with_data_says_status_0(emulator) -> None:
    with client(emulator) as c:
        result = c.fetch_table("0000020202", MemorySink())
    assert isinstance(result, FetchResult) and result.status == 0 and not result.no_data


def test_meta_info_no_data_is_an_error_not_empty_metadata(emulator) -> None:
    """A table that exists has metadata: "no data" from getMetaInfo must never empty its slices."""
    emulator.faults.add(
        {"kind": "api_error", "status": 1, "endpoint": "getMetaInfo", "times": None}
    )
    with client(emulator) as c, pytest.raises(EStatNoDataAnswerError) as info:
        c.get_meta_info("0000020202")
    error = info.value
    assert error.retryable and error.status == 1 and error.stats_data_id == "0000020202"
    assert error.message.startswith("0000020202: e-Stat getMetaInfo answered STATUS 1")
    assert error.message.endswith(f"after {FAST_RETRY.attempts} attempts")
    assert "nothing was changed" in str(error) and str(error).count("0000020202") == 1
    assert len(emulator.requests.entries()) == FAST_RETRY.attempts


def test_meta_info_no_data_once_is_retried_away(emulator) -> None:
    emulator.faults.add({"kind": "api_error", "status": 1, "endpoint": "getMetaInfo", "times": 1})
    with client(emulator) as c:
        meta, _ = c.get_meta_info("0000020202")
        assert c.requests_made == 2
    assert meta.axis("time") is not None and meta.axis("time").items


def test_language_per_call(emulator) -> None:
    with client(emulator) as c:
        _, english = c.get_meta_info("0000020202", lang="E")
        _, default = c.get_meta_info("0000020202")
        listed = list(c.iter_stats_list(lang="E", statsCode="00200502"))
        list(c.iter_stats_list(statsCode="00200502"))
        with pytest.raises(ValueError, match="lang"):
            c.get_meta_info("0000020202", lang="en")
        assert c.lang == "J"
    assert english.body["PARAMETER"]["LANG"] == "E"
    assert default.body["PARAMETER"]["LANG"] == "J"
    langs = [r["params"].get("lang") for r in emulator.requests.entries()]
    assert langs == ["E", "J", "E", "J"] and listed


def test_stats_list_without_hits_is_empty(emulator) -> None:
    with client(emulator) as c:
        assert list(c.iter_stats_list(statsCode="99999999")) == []
        assert emulator.requests.entries()[-1]["status"] == 1


def test_public_names_of_the_client_module() -> None:
    """What the rest of the code imports from estat.client keeps working."""
    assert DEFAULT_BASE_URL.startswith("https://api.e-stat.go.jp/")
    assert check_dataset_id is ids.check_dataset_id  # re-exported, the same function
    assert {"write_page", "reset"} <= set(dir(PageSink)) and hasattr(MemorySink(), "pages")
    assert FetchProgress("0000020202", 1, 1, 1, 1).pages_done == 1
    for name in ("get_meta_info", "iter_stats_list", "count", "count_answer", "get_page"):
        assert callable(getattr(EStatClient, name))
    for name in ("fetch_table", "request", "close", "__enter__", "__exit__"):
        assert callable(getattr(EStatClient, name))
    with EStatClient(APP_ID, "http://127.0.0.1:1/x/", concurrency=3) as c:
        assert c.base_url == "http://127.0.0.1:1/x" and c.concurrency == 3
        assert c.requests_made == 0 and c.retry == RetryConfig()


@pytest.mark.parametrize("bad", ["12345", "１２３４５６７８９０", "0000020202\n", 8322])
def test_malformed_id_is_refused_before_any_request(emulator, bad) -> None:
    with client(emulator) as c:
        for call in (
            lambda: c.get_meta_info(bad),
            lambda: c.count(bad),
            lambda: c.fetch_table(bad, MemorySink()),
        ):
            with pytest.raises(InvalidDatasetIdError, match="10 digits"):
                call()
        assert c.requests_made == 0


def test_unknown_table_fails_at_once_with_estats_message(emulator) -> None:
    with client(emulator) as c:
        with pytest.raises(EStatRequestError) as info:
            c.get_meta_info("0000099999")
        assert c.requests_made == 1  # never retried
    assert info.value.status >= 100 and str(info.value).count("0000099999") == 1
    assert info.value.stats_data_id == "0000099999"


def test_bad_app_id_is_status_100_with_a_hint() -> None:
    server = EmulatorServer(TableStore.default(), required_app_id="the-right-key")
    with (
        server,
        EStatClient("wrong-key", server.api_base, retry=FAST_RETRY, sleep=no_sleep) as c,
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
    with client(emulator, page_size=4) as c, pytest.raises(error) as info:
        c.fetch_table("0000020202", sink)
    assert sink.pages == {}  # nothing partial handed on
    assert info.value.stats_data_id == "0000020202"
    assert info.value.message.endswith(f"after {FAST_RETRY.attempts} attempts")


def test_http_503_to_the_end_keeps_the_status_and_the_attempts(emulator) -> None:
    emulator.faults.add(
        {"kind": "http_error", "status": 503, "endpoint": "getStatsData", "times": None}
    )
    with client(emulator) as c, pytest.raises(EStatHttpError) as info:
        c.fetch_table("0000020202", MemorySink())
    error = info.value
    assert error.message == "0000020202: getStatsData: HTTP 503 after 4 attempts"
    assert error.retryable and error.hint in str(error)


def test_a_malformed_base_url_fails_at_construction_naming_the_variable() -> None:
    with pytest.raises(EStatConfigError, match="ESTAT_API_URL 'localhost:18800'"):
        EStatClient(APP_ID, "localhost:18800")


def test_retry_can_be_replaced_after_construction(emulator) -> None:
    emulator.faults.add(
        {"kind": "http_error", "status": 503, "endpoint": "getMetaInfo", "times": None}
    )
    with client(emulator) as c:
        c.retry = RetryConfig(attempts=2)
        with pytest.raises(EStatHttpError, match="after 2 attempts"):
            c.get_meta_info("0000020202")
        assert c.requests_made == 2 and c.retry.attempts == 2


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
