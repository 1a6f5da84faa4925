"""The cheap page check (head parse + VALUE count) agrees with a full parse, or defers to it; a page
that is not the rows asked for, or not of the first page's release, is refused."""

from __future__ import annotations

import httpx
import orjson
import pytest

from estat_assets.estat.errors import PageMismatchError, TableRepublishedError
from estat_assets.estat.http import Response
from estat_assets.estat.pages import PageInfo, page_info, recount, scan_page, verify_page
from estat_assets.estat.shape import as_list
from estat_assets_tests.factories import SAMPLES

DATASET = "0000020202"


def _full(raw: bytes) -> tuple[dict, int]:
    doc = orjson.loads(raw)
    data = doc["GET_STATS_DATA"]["STATISTICAL_DATA"]
    return data, len(as_list(data.get("DATA_INF", {}).get("VALUE")))


def _page(emulator, **params) -> bytes:
    query = {"appId": "x", "metaGetFlg": "N", "cntGetFlg": "N", **params}
    return httpx.get(f"{emulator.api_base}/getStatsData", params=query).content


def _response(raw: bytes) -> Response:
    scanned = scan_page(raw)
    assert scanned is not None
    head, rows = scanned
    body = head["GET_STATS_DATA"]
    return Response(raw=raw, root="GET_STATS_DATA", body=body, status=0, rows=rows)


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


def test_page_info_reads_the_page_about_itself(emulator) -> None:
    info = page_info(_response(_page(emulator, statsDataId=DATASET, limit=3, startPosition=4)))
    assert (info.total, info.from_number, info.to_number, info.next_key) == (10, 4, 6, 7)
    assert info.rows == 3 and info.updated_date and info.overall_total == 10


def test_recount_confirms_a_disagreeing_fast_count_by_a_full_parse(emulator) -> None:
    resp = _response(_page(emulator, statsDataId=DATASET, limit=3))
    lying = Response(resp.raw, resp.root, resp.body, resp.status, rows=99)
    assert recount(lying, 3).rows == 3  # the parse wins
    assert recount(lying, 99).rows == 99  # agreeing with the plan: no parse needed


HEAD = PageInfo(10, 1, 3, 4, 3, "2024-01-01", 10)


@pytest.mark.parametrize(
    ("info", "error", "words"),
    [
        (PageInfo(11, 4, 6, 7, 3, "2024-01-01", 10), TableRepublishedError, "TOTAL_NUMBER 11"),
        (PageInfo(10, 4, 6, 7, 3, "2025-01-01", 10), TableRepublishedError, "2025-01-01"),
        (PageInfo(10, 4, 6, 7, 3, "2024-01-01", 12), TableRepublishedError, "OVERALL"),
        (PageInfo(10, 5, 7, 8, 3, "2024-01-01", 10), PageMismatchError, "rows 4-6, got 5-7"),
        (PageInfo(10, 4, 6, 7, 2, "2024-01-01", 10), PageMismatchError, "has 2"),
    ],
)
def test_verify_page_refuses_pages_that_are_not_what_was_asked(info, error, words) -> None:
    verify_page(DATASET, 4, 6, PageInfo(10, 4, 6, 7, 3, "2024-01-01", 10), HEAD)  # fine
    with pytest.raises(error, match=words) as caught:
        verify_page(DATASET, 4, 6, info, HEAD)
    assert caught.value.stats_data_id == DATASET and caught.value.retryable
    assert str(caught.value).count(DATASET) == 1
