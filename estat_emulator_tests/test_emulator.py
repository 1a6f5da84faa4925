"""The e-Stat emulator over real HTTP on 127.0.0.1: endpoints, shapes, paging and filters."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from estat_assets.estat.shape import as_list
from estat_emulator import EmulatorServer, TableStore
from estat_emulator.store import SAMPLES_DIR

APP_ID = "test-app-id-0123456789"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(TableStore.default()) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_base, timeout=60) as c:
        yield c


def call(client: httpx.Client, endpoint: str, **params: Any) -> dict[str, Any]:
    """GET an endpoint with the appId; the body (root element removed)."""
    response = client.get(f"/{endpoint}", params={"appId": APP_ID, **params})
    assert response.status_code == 200
    document = response.json()
    (body,) = document.values()
    return body


def data(client: httpx.Client, **params: Any) -> dict[str, Any]:
    return call(client, "getStatsData", **params)


def values(body: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(body["STATISTICAL_DATA"]["DATA_INF"]["VALUE"])


def class_objs(body: dict[str, Any]) -> dict[str, Any]:
    node = body.get("STATISTICAL_DATA") or body.get("METADATA_INF")
    return {o["@id"]: o for o in as_list(node["CLASS_INF"]["CLASS_OBJ"])}


def recorded(name: str) -> dict[str, Any]:
    path = next(SAMPLES_DIR.rglob(name))
    (body,) = orjson.loads(path.read_bytes()).values()
    return body


# -- wire ------------------------------------------------------------------------------------


def test_wire_format(server: EmulatorServer, client: httpx.Client) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert server.api_base == f"{server.url}/rest/3.0/app/json"
    response = client.get("/getStatsData", params={"appId": APP_ID, "statsDataId": "0000020202"})
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    raw = response.content
    assert raw.isascii()  # non-ASCII is \uXXXX-escaped, like e-Stat
    assert b"\n" not in raw and b'", "' not in raw  # compact
    assert b"\\u6B63\\u5E38" in raw  # 正常, upper-case hex
    body = response.json()["GET_STATS_DATA"]
    assert body["RESULT"]["STATUS"] == 0
    assert body["RESULT"]["ERROR_MSG"] == "正常に終了しました。"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+09:00", body["RESULT"]["DATE"])
    assert list(body) == ["RESULT", "PARAMETER", "STATISTICAL_DATA"]
    assert list(body["STATISTICAL_DATA"]) == ["RESULT_INF", "TABLE_INF", "CLASS_INF", "DATA_INF"]


def test_unknown_path_is_404(server: EmulatorServer) -> None:
    assert httpx.get(f"{server.url}/rest/3.0/app/json/getNothing").status_code == 404
    assert httpx.get(f"{server.url}/elsewhere").status_code == 404


# -- recorded tables -------------------------------------------------------------------------


def test_0000020202_is_its_ten_recorded_rows(client: httpx.Client) -> None:
    body = data(client, statsDataId="0000020202")
    sd = body["STATISTICAL_DATA"]
    assert sd["RESULT_INF"] == {"TOTAL_NUMBER": 10, "FROM_NUMBER": 1, "TO_NUMBER": 10}
    rec = recorded("getStatsData_0000020202_limit10.json")["STATISTICAL_DATA"]
    assert values(body) == rec["DATA_INF"]["VALUE"]
    assert sd["DATA_INF"]["NOTE"] == rec["DATA_INF"]["NOTE"]
    objs = class_objs(body)
    assert {k: len(as_list(o["CLASS"])) for k, o in objs.items()} == {
        "tab": 1,
        "cat01": 9,
        "area": 1913,
        "time": 44,
    }
    assert isinstance(objs["tab"]["CLASS"], dict)  # a single CLASS is an object
    assert sd["CLASS_INF"] == rec["CLASS_INF"]
    assert body["PARAMETER"] == {"LANG": "J", "STATS_DATA_ID": "0000020202", "DATA_FORMAT": "J"}


def test_0003065345_three_rows_with_full_metadata(client: httpx.Client) -> None:
    body = data(client, statsDataId="0003065345")
    assert body["STATISTICAL_DATA"]["RESULT_INF"]["TOTAL_NUMBER"] == 3
    assert len(values(body)) == 3
    assert "@tab" not in values(body)[0]  # this table has no tab axis
    assert len(as_list(class_objs(body)["cat01"]["CLASS"])) == 72
    meta = call(client, "getMetaInfo", statsDataId="0003065345")
    assert meta["RESULT"]["STATUS"] == 0
    assert meta["PARAMETER"] == {"LANG": "J", "STATS_DATA_ID": "0003065345", "DATA_FORMAT": "J"}
    assert len(as_list(class_objs(meta)["cat01"]["CLASS"])) == 72
    assert list(meta["METADATA_INF"]) == ["TABLE_INF", "CLASS_INF"]


def test_code_filter_narrows_class_inf(client: httpx.Client) -> None:
    body = data(client, statsDataId="0003065345", cdCat01="008,009,010")
    cat01 = class_objs(body)["cat01"]["CLASS"]
    assert [c["@code"] for c in cat01] == ["008", "009", "010"]
    assert len(as_list(class_objs(body)["area"]["CLASS"])) == 78  # others stay full
    assert body["PARAMETER"]["NARROWING_COND"] == {"CODE_CAT01_SELECT": "008,009,010"}
    one = data(client, statsDataId="0003065345", cdCat01="008", cdArea="01000")
    assert isinstance(class_objs(one)["cat01"]["CLASS"], dict)
    assert isinstance(one["STATISTICAL_DATA"]["DATA_INF"]["VALUE"], dict)
    assert one["STATISTICAL_DATA"]["DATA_INF"]["VALUE"]["$"] == "440"


# -- paging ----------------------------------------------------------------------------------


def test_paging_and_next_key(client: httpx.Client) -> None:
    first = data(client, statsDataId="0000020202", limit=3)
    assert first["STATISTICAL_DATA"]["RESULT_INF"] == {
        "TOTAL_NUMBER": 10,
        "FROM_NUMBER": 1,
        "TO_NUMBER": 3,
        "NEXT_KEY": 4,
    }
    assert first["PARAMETER"]["LIMIT"] == 3
    rows: list[dict[str, Any]] = []
    start: int | None = 1
    while start is not None:
        page = data(client, statsDataId="0000020202", limit=4, startPosition=start)
        rows += values(page)
        start = page["STATISTICAL_DATA"]["RESULT_INF"].get("NEXT_KEY")
    assert rows == values(data(client, statsDataId="0000020202"))
    last = data(client, statsDataId="0000020202", startPosition=10, limit=3)
    info = last["STATISTICAL_DATA"]["RESULT_INF"]
    assert info == {"TOTAL_NUMBER": 10, "FROM_NUMBER": 10, "TO_NUMBER": 10}
    assert isinstance(last["STATISTICAL_DATA"]["DATA_INF"]["VALUE"], dict)  # one row: an object
    assert last["PARAMETER"]["START_POSITION"] == 10


def test_limit_is_capped_at_100000(client: httpx.Client) -> None:
    body = data(client, statsDataId="9900020202", limit=250_000, metaGetFlg="N")
    info = body["STATISTICAL_DATA"]["RESULT_INF"]
    assert info == {
        "TOTAL_NUMBER": 757_548,
        "FROM_NUMBER": 1,
        "TO_NUMBER": 100_000,
        "NEXT_KEY": 100_001,
    }
    assert len(values(body)) == 100_000


def test_past_the_end_is_status_1(client: httpx.Client) -> None:
    body = data(client, statsDataId="0000020202", startPosition=11)
    assert body["RESULT"]["STATUS"] == 1
    assert "DATA_INF" not in body["STATISTICAL_DATA"]


# -- filters and flags -----------------------------------------------------------------------


def test_cd_time_filters(client: httpx.Client) -> None:
    body = data(client, statsDataId="0000020202", cdTime="1983100000,1985100000")
    assert [r["@time"] for r in values(body)] == ["1983100000", "1985100000"]
    assert body["PARAMETER"]["NARROWING_COND"] == {"CODE_TIME_SELECT": "1983100000,1985100000"}
    ranged = data(client, statsDataId="0000020202", cdTimeFrom="1984100000", cdTimeTo="1987100000")
    assert [r["@time"] for r in values(ranged)] == [f"{y}100000" for y in range(1984, 1988)]
    assert ranged["PARAMETER"]["NARROWING_COND"] == {
        "CODE_TIME_FROM": "1984100000",
        "CODE_TIME_TO": "1987100000",
    }
    assert [c["@code"] for c in class_objs(ranged)["time"]["CLASS"]] == [
        f"{y}100000" for y in range(1984, 1988)
    ]
    from_only = data(client, statsDataId="0000020202", cdTimeFrom="1989100000")
    assert [r["@time"] for r in values(from_only)] == ["1989100000", "1990100000"]


def test_filters_on_generated_tables(client: httpx.Client) -> None:
    body = data(
        client,
        statsDataId="9900020202",
        cdCat01="B1102",
        cdTimeFrom="2000100000",
        cdTimeTo="2002100000",
        cdArea="01100,01101",
    )
    rows = values(body)
    assert body["STATISTICAL_DATA"]["RESULT_INF"]["TOTAL_NUMBER"] == 1 * 1 * 2 * 3 == len(rows)
    assert [(r["@area"], r["@time"]) for r in rows] == [
        (a, f"{y}100000") for a in ("01100", "01101") for y in (2000, 2001, 2002)
    ]
    full = values(data(client, statsDataId="9900020202", metaGetFlg="N", limit=100_000))
    by_cell = {(r["@cat01"], r["@area"], r["@time"]): r["$"] for r in full}
    for row in rows:  # a narrowed request sees the same values
        assert by_cell.get((row["@cat01"], row["@area"], row["@time"]), row["$"]) == row["$"]
    levels = data(client, statsDataId="9900020202", lvArea="2", cntGetFlg="Y")
    area_level2 = [
        c
        for c in as_list(class_objs(data(client, statsDataId="0000020202"))["area"]["CLASS"])
        if c["@level"] == "2"
    ]
    total = levels["STATISTICAL_DATA"]["RESULT_INF"]["TOTAL_NUMBER"]
    assert total == 9 * len(area_level2) * 44


def test_cnt_get_flg_matches_the_recorded_shape(client: httpx.Client) -> None:
    body = data(
        client, statsDataId="0003065345", cdCat01="008,009,010", cntGetFlg="Y", metaGetFlg="N"
    )
    rec = recorded("getStatsData_0003065345_cntGetFlgY__v2.1_2016-07-30.json")
    sd = body["STATISTICAL_DATA"]
    assert list(sd) == list(rec["STATISTICAL_DATA"]) == ["RESULT_INF", "TABLE_INF", "DATA_INF"]
    assert sd["RESULT_INF"] == {"TOTAL_NUMBER": 3}
    assert sd["DATA_INF"] == ""
    assert body["PARAMETER"]["CNT_GET_FLG"] == "Y"
    generated = data(client, statsDataId="9903065345", cntGetFlg="Y", cdCat01="008,009,010")
    assert generated["STATISTICAL_DATA"]["RESULT_INF"] == {"TOTAL_NUMBER": 3 * 3 * 57 * 78}


def test_meta_get_flg_n_drops_class_inf(client: httpx.Client) -> None:
    body = data(client, statsDataId="0003065345", metaGetFlg="N")
    sd = body["STATISTICAL_DATA"]
    assert "CLASS_INF" not in sd
    assert sd["TABLE_INF"]["@id"] == "0003065345"
    assert len(sd["DATA_INF"]["NOTE"]) == 1564
    assert body["PARAMETER"]["METAGET_FLG"] == "N"


def test_no_match_is_status_1(client: httpx.Client) -> None:
    body = data(client, statsDataId="0000020202", cdTime="2099100000")
    assert body["RESULT"]["STATUS"] == 1
    assert body["RESULT"]["ERROR_MSG"] == "正常に終了しましたが、該当データはありませんでした。"
    assert "DATA_INF" not in body["STATISTICAL_DATA"]


def test_echo_of_other_parameters(client: httpx.Client) -> None:
    body = data(client, statsDataId="0000020202", lang="E", replaceSpChars="2", limit=1)
    assert body["PARAMETER"]["LANG"] == "E"
    assert body["PARAMETER"]["REPLACE_SP_CHARS"] == "2"
    assert "APP_ID" not in body["PARAMETER"] and "appId" not in body["PARAMETER"]


# -- errors ----------------------------------------------------------------------------------


def test_missing_app_id_is_status_100(client: httpx.Client, server: EmulatorServer) -> None:
    for params in ({"statsDataId": "0000020202"}, {"statsDataId": "0000020202", "appId": ""}):
        response = client.get("/getStatsData", params=params)
        assert response.status_code == 200
        body = response.json()["GET_STATS_DATA"]
        assert body["RESULT"]["STATUS"] == 100
        assert body["RESULT"]["ERROR_MSG"] == "認証に失敗しました。"
        assert list(body) == ["RESULT", "PARAMETER"]
    listing = client.get("/getStatsList").json()["GET_STATS_LIST"]
    assert listing["RESULT"]["STATUS"] == 100


def test_required_app_id() -> None:
    with EmulatorServer(TableStore.default(), required_app_id="right") as srv:
        wrong = httpx.get(
            f"{srv.api_base}/getMetaInfo", params={"appId": "wrong", "statsDataId": "0003065345"}
        )
        assert wrong.json()["GET_META_INFO"]["RESULT"]["STATUS"] == 100
        right = httpx.get(
            f"{srv.api_base}/getMetaInfo", params={"appId": "right", "statsDataId": "0003065345"}
        )
        assert right.json()["GET_META_INFO"]["RESULT"]["STATUS"] == 0


def test_unknown_or_unfetchable_table_is_status_102(client: httpx.Client) -> None:
    for table_id in ("0123456789", "bogus", "0003148500"):  # unknown, malformed, listed only
        for endpoint in ("getStatsData", "getMetaInfo"):
            body = call(client, endpoint, statsDataId=table_id)
            assert body["RESULT"]["STATUS"] == 102
            assert (
                body["RESULT"]["ERROR_MSG"] == f"統計表IDが存在しません。(statsDataId={table_id})"
            )
            assert list(body) == ["RESULT", "PARAMETER"]
    missing = data(client)
    assert missing["RESULT"]["STATUS"] == 101
    assert missing["RESULT"]["ERROR_MSG"] == "statsDataIdを指定して下さい。"
    bad_limit = data(client, statsDataId="0000020202", limit="many")
    assert bad_limit["RESULT"]["STATUS"] == 102


# -- getStatsList ----------------------------------------------------------------------------


def listed_ids(body: dict[str, Any]) -> list[str]:
    return [t["@id"] for t in as_list(body["DATALIST_INF"].get("TABLE_INF"))]


def test_stats_list_stats_code(client: httpx.Client) -> None:
    census = call(client, "getStatsList", statsCode="00200521")
    assert census["DATALIST_INF"]["NUMBER"] == 10
    assert census["DATALIST_INF"]["RESULT_INF"] == {"FROM_NUMBER": 1, "TO_NUMBER": 10}
    assert listed_ids(census)[0] == "0003148500"
    assert census["PARAMETER"]["STATS_CODE"] == "00200521"
    org = listed_ids(call(client, "getStatsList", statsCode="00200"))  # 5 digits: organisation
    assert {"0000020202", "0003065345", "0003148500", "9900020202"} <= set(org)
    assert call(client, "getStatsList", statsCode="123")["RESULT"]["STATUS"] == 102


def test_stats_list_search_word(client: httpx.Client) -> None:
    hits = listed_ids(call(client, "getStatsList", searchWord="人口等基本集計"))
    assert len(hits) == 10
    both = listed_ids(call(client, "getStatsList", searchWord="国勢調査 AND 出生の月"))
    assert both == ["0003149860", "0003149861", "0003149862"]
    spaced = listed_ids(call(client, "getStatsList", searchWord="出生の月 5歳階級"))
    assert spaced == ["0003149862"]  # whitespace means AND; width-insensitive (５ = 5)
    negated = listed_ids(call(client, "getStatsList", searchWord="出生の月 NOT 5歳階級"))
    assert negated == ["0003149860", "0003149861"]
    either = listed_ids(call(client, "getStatsList", searchWord="自然環境 OR 趣味・娯楽"))
    assert {"0000020202", "0003065345", "0003065346", "9900020202"} <= set(either)
    assert not set(either) & set(hits)
    # e-Stat also matches class names, width-insensitively (ＣＤ in a cat01 name)
    assert "0003065345" in listed_ids(call(client, "getStatsList", searchWord="CD"))
    nothing = call(client, "getStatsList", searchWord="存在しない語")
    assert nothing["RESULT"]["STATUS"] == 1
    assert nothing["DATALIST_INF"] == {"NUMBER": 0}


def test_stats_list_updated_date(client: httpx.Client) -> None:
    def ids(value: str) -> set[str]:
        return set(listed_ids(call(client, "getStatsList", updatedDate=value)))

    may_2020 = ids("202005")
    assert "0003148500" in may_2020 and "0003149040" in may_2020
    assert ids("20200521") == {"0003149040"}
    assert ids("20200521-20200522") == may_2020
    assert ids("2012") == {"0003065345", "0003065346", "0003065347"}
    assert {"0000020202", "9900020202"} <= ids("2025")
    bad = call(client, "getStatsList", updatedDate="2020-05")
    assert bad["RESULT"]["STATUS"] == 102


def test_stats_list_survey_years_and_paging(client: httpx.Client) -> None:
    assert len(listed_ids(call(client, "getStatsList", surveyYears="2015"))) == 10
    assert set(listed_ids(call(client, "getStatsList", surveyYears="201101-201112"))) >= {
        "0003065345",
        "9903065345",
    }
    page = call(client, "getStatsList", statsCode="00200521", limit=4, startPosition=5)
    assert page["DATALIST_INF"]["RESULT_INF"] == {
        "FROM_NUMBER": 5,
        "TO_NUMBER": 8,
        "NEXT_KEY": 9,
    }
    assert page["PARAMETER"]["START_POSITION"] == 5 and page["PARAMETER"]["LIMIT"] == 4
    single = call(client, "getStatsList", statsCode="00200521", limit=1, startPosition=10)
    assert isinstance(single["DATALIST_INF"]["TABLE_INF"], dict)
    assert "NEXT_KEY" not in single["DATALIST_INF"]["RESULT_INF"]


def test_stats_list_shows_synthetic_label(client: httpx.Client) -> None:
    body = call(client, "getStatsList", searchWord="合成データ")
    generated = {t.id for t in TableStore.default() if t.kind == "generated"}
    assert {"9900020202", "9903065345", "9900000001", "9900000007"} <= generated
    assert set(listed_ids(body)) == generated
    for inf in as_list(body["DATALIST_INF"]["TABLE_INF"]):
        assert inf["SYNTHETIC"].startswith("values are synthetic")


# -- getDataCatalog --------------------------------------------------------------------------


def test_data_catalog(client: httpx.Client) -> None:
    body = call(client, "getDataCatalog")
    listing = body["DATA_CATALOG_LIST_INF"]
    assert listing["NUMBER"] == 100
    assert len(listing["DATA_CATALOG_INF"]) == 100
    assert "NEXT_KEY" not in listing["RESULT_INF"]
    page = call(client, "getDataCatalog", limit=10)["DATA_CATALOG_LIST_INF"]
    assert page["RESULT_INF"] == {"FROM_NUMBER": 1, "TO_NUMBER": 10, "NEXT_KEY": 11}
    xls = call(client, "getDataCatalog", dataType="PDF")["DATA_CATALOG_LIST_INF"]
    assert xls["NUMBER"] < 100


# -- generated tables over HTTP --------------------------------------------------------------


def test_generated_table_over_http(client: httpx.Client) -> None:
    meta = call(client, "getMetaInfo", statsDataId="9903065345")
    base = call(client, "getMetaInfo", statsDataId="0003065345")
    assert meta["METADATA_INF"]["CLASS_INF"] == base["METADATA_INF"]["CLASS_INF"]
    inf = meta["METADATA_INF"]["TABLE_INF"]
    assert inf["OVERALL_TOTAL_NUMBER"] == 960_336
    assert inf["TITLE"]["$"].startswith("【合成データ】")
    page = data(client, statsDataId="9903065345", startPosition=900_001, metaGetFlg="N")
    info = page["STATISTICAL_DATA"]["RESULT_INF"]
    assert info == {"TOTAL_NUMBER": 960_336, "FROM_NUMBER": 900_001, "TO_NUMBER": 960_336}
    assert len(values(page)) == 60_336
    again = data(client, statsDataId="9903065345", startPosition=900_001, metaGetFlg="N")
    assert values(again) == values(page)


# -- the CLI entry point ---------------------------------------------------------------------


def test_serve_prints_one_line_and_stops_on_sigterm() -> None:
    code = "from estat_emulator import serve; serve(None, '127.0.0.1', 0)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        match = re.fullmatch(
            r"e-Stat emulator serving (\d+) tables on (http://127\.0\.0\.1:\d+)", line
        )
        assert match, line
        assert int(match.group(1)) == len(TableStore.default())
        health = httpx.get(f"{match.group(2)}/_emulator/health", timeout=10).json()
        assert health["status"] == "ok"
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_module_entry_point_serves_a_data_directory(tmp_path: Path) -> None:
    """``python -m estat_emulator --data DIR --port 0``: what ``estat-lake emulator`` runs."""
    for name in ("v3/getStatsData_0000020202_limit10.json", "generated/9900000002.json"):
        shutil.copy(SAMPLES_DIR / name, tmp_path / Path(name).name)
    shutil.copy(SAMPLES_DIR / "generated" / "9900020202.json", tmp_path / "spec.json")
    command = [sys.executable, "-m", "estat_emulator", "--data", str(tmp_path), "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        match = re.fullmatch(
            r"e-Stat emulator serving (\d+) tables on (http://127\.0\.0\.1:\d+)", line
        )
        assert match, line
        # 9900000002 borrows its areas from 0003065345, which this directory lacks: skipped
        assert int(match.group(1)) == 2
        params = {"appId": APP_ID, "statsDataId": "9900020202", "cntGetFlg": "Y"}
        body = httpx.get(f"{match.group(2)}/rest/3.0/app/json/getStatsData", params=params)
        assert body.json()["GET_STATS_DATA"]["STATISTICAL_DATA"]["RESULT_INF"] == {
            "TOTAL_NUMBER": 757_548
        }
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- concurrency and transport options -------------------------------------------------------


def test_concurrent_pages_reassemble_the_table(server: EmulatorServer) -> None:
    """Pages fetched in parallel (as the client plans them from TOTAL_NUMBER) fit together."""
    from concurrent.futures import ThreadPoolExecutor

    limit = 20_000
    starts = list(range(1, 100_001, limit))

    def fetch(start: int) -> list[dict[str, Any]]:
        with httpx.Client(base_url=server.api_base, timeout=60) as c:
            page = data(
                c, statsDataId="9903065345", startPosition=start, limit=limit, metaGetFlg="N"
            )
            assert page["STATISTICAL_DATA"]["RESULT_INF"]["FROM_NUMBER"] == start
            return values(page)

    with ThreadPoolExecutor(max_workers=4) as pool:
        pages = list(pool.map(fetch, starts))
    with httpx.Client(base_url=server.api_base, timeout=60) as c:
        whole = values(data(c, statsDataId="9903065345", limit=100_000, metaGetFlg="N"))
    assert [row for page in pages for row in page] == whole


def test_gzip_when_enabled() -> None:
    with EmulatorServer(TableStore.default(), gzip_responses=True) as srv:
        params = {"appId": APP_ID, "statsDataId": "0000020202"}
        response = httpx.get(f"{srv.api_base}/getStatsData", params=params)
        assert response.headers["content-encoding"] == "gzip"
        assert (
            response.json()["GET_STATS_DATA"]["STATISTICAL_DATA"]["RESULT_INF"]["TOTAL_NUMBER"]
            == 10
        )
        plain = httpx.get(
            f"{srv.api_base}/getStatsData", params=params, headers={"Accept-Encoding": "identity"}
        )
        assert "content-encoding" not in plain.headers
