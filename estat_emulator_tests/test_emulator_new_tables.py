"""The generated tables 9900000001…7 that tests and benchmarks use: their shapes, fields, paging."""

from __future__ import annotations

import re
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from estat_assets.estat.shape import as_list
from estat_emulator import EmulatorServer, GeneratedSpec, TableStore
from estat_emulator.generate import build_generated
from estat_emulator.store import SAMPLES_DIR
from estat_emulator.table import Table
from estat_emulator.wire import Raw

APP_ID = "new-tables-test"


@pytest.fixture(scope="module")
def store() -> TableStore:
    return TableStore.default()


@pytest.fixture(scope="module")
def server(store: TableStore) -> Iterator[EmulatorServer]:
    with EmulatorServer(store) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_base, timeout=60) as c:
        yield c


def call(client: httpx.Client, endpoint: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/{endpoint}", params={"appId": APP_ID, **params})
    assert response.status_code == 200
    (body,) = response.json().values()
    return body


def rows(value: list | Raw) -> list[dict[str, Any]]:
    if isinstance(value, Raw):
        return as_list(orjson.loads(value.data))
    return value


def all_rows(table: Table, selection: dict | None = None) -> list[dict[str, Any]]:
    selection = selection or {}
    out: list[dict[str, Any]] = []
    for start in range(0, table.count(selection), 100_000):
        out += rows(table.values(selection, start, 100_000))
    return out


def axis(table: Table, axis_id: str) -> Any:
    return next(a for a in table.axes if a.id == axis_id)


def test_all_new_tables_are_served_by_default(store: TableStore) -> None:
    expected = {
        "9900000001": 1_000_000,
        "9900000002": 60_000,
        "9900000003": 2_508,
        "9900000004": 540,
        "9900000005": 576,
        "9900000006": 600,
        "9900000007": 48,
    }
    for table_id, cells in expected.items():
        table = store.get(table_id)
        assert table is not None and table.kind == "generated", table_id
        assert table.count({}) == table.table_inf["OVERALL_TOTAL_NUMBER"] == cells
        assert table.table_inf["TITLE"]  # labelled, complete TABLE_INF: test_emulator_table_inf
    specs = sorted(p.stem for p in (SAMPLES_DIR / "generated").glob("99000000*.json"))
    assert specs == sorted(expected)


def test_million_cells_over_fifty_calendar_years(store: TableStore) -> None:
    table = store.get("9900000001")
    time = axis(table, "time")
    assert [a.id for a in table.axes] == ["tab", "cat01", "area", "time"]
    assert time.codes == [f"{y}000000" for y in range(1975, 2025)]
    assert {item["@name"] for item in time.items} == {f"{y}年" for y in range(1975, 2025)}
    for position in (0, 25, 49):
        one_year = {"time": np.array([position], dtype=np.int64)}
        assert table.count(one_year) == 20_000
    area = axis(table, "area")
    base_area = axis(store.get("0000020202"), "area")
    assert area.items == base_area.items[:1000]  # real municipal codes, names and parents
    assert axis(table, "cat01").size == 20
    inf = table.table_inf
    assert (inf["MAIN_CATEGORY"]["@code"], inf["COLLECT_AREA"], inf["CYCLE"]) == (
        "02",
        "市区町村",
        "年次",
    )


def test_the_million_cell_table_pages_without_materialising() -> None:
    store = TableStore.default()
    spec = GeneratedSpec.from_document(
        orjson.loads((SAMPLES_DIR / "generated" / "9900000001.json").read_bytes())
    )
    tracemalloc.start()
    try:
        table = build_generated(spec, None, store.get)
        last = rows(table.values({}, 999_000, 100_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(last) == 1_000
    assert peak < 5_000_000  # far below one byte per cell of the table
    assert last[-1]["@time"] == "2024000000" and last[-1]["@area"] == axis(table, "area").codes[-1]
    assert list(last[0]) == ["@tab", "@cat01", "@area", "@time", "@unit", "$"]
    assert {r["@unit"] for r in last} == {"人"}


def test_million_cell_table_over_http_in_pages(client: httpx.Client) -> None:
    page = call(client, "getStatsData", statsDataId="9900000001", metaGetFlg="N")
    info = page["STATISTICAL_DATA"]["RESULT_INF"]
    assert info == {
        "TOTAL_NUMBER": 1_000_000,
        "FROM_NUMBER": 1,
        "TO_NUMBER": 100_000,
        "NEXT_KEY": 100_001,
    }
    assert len(page["STATISTICAL_DATA"]["DATA_INF"]["VALUE"]) == 100_000
    year = call(
        client, "getStatsData", statsDataId="9900000001", cdTime="2000000000", cntGetFlg="Y"
    )
    assert year["STATISTICAL_DATA"]["RESULT_INF"] == {"TOTAL_NUMBER": 20_000}


def test_sixty_thousand_cells_over_42_years_with_late_series(store: TableStore) -> None:
    table = store.get("9900000002")
    time = axis(table, "time")
    assert time.codes == [f"{y}000000" for y in range(1982, 2024)]
    everything = all_rows(table)
    assert len(everything) == 60_000
    per_year = Counter(r["@time"][:4] for r in everything)
    assert len(per_year) == 42
    assert {per_year[str(y)] for y in range(1982, 1987)} == {1_344}  # two series start in 1987
    assert {per_year[str(y)] for y in range(1987, 2024)} == {1_440}
    keys = [(r["@cat01"], r["@area"], r["@time"]) for r in everything]
    assert len(set(keys)) == 60_000
    assert ("A1700", "13000", "1986000000") not in set(keys)
    assert ("A1700", "13000", "1987000000") in set(keys)
    # e-Stat order: cat01, then area, then time; absent cells are skipped, not padded
    order = {a.id: {c: i for i, c in enumerate(a.codes)} for a in table.axes}
    positions = [(order["cat01"][c], order["area"][a], order["time"][t]) for c, a, t in keys]
    assert positions == sorted(positions)
    # a narrowed request sees the same cells and values as the whole table
    by_cell = {(r["@cat01"], r["@area"], r["@time"]): r["$"] for r in everything}
    a1700 = {"cat01": np.array([axis(table, "cat01").index["A1700"]], dtype=np.int64)}
    narrowed = all_rows(table, a1700)
    assert len(narrowed) == table.count(a1700) == 48 * 37
    assert all(by_cell[(r["@cat01"], r["@area"], r["@time"])] == r["$"] for r in narrowed)


def test_paging_across_absent_cells(store: TableStore) -> None:
    table = store.get("9900000002")
    whole = all_rows(table)
    for limit in (1, 7, 1_343, 10_000):
        pieces: list[dict[str, Any]] = []
        for start in range(0, 3 * limit + 5, limit):
            pieces += rows(table.values({}, start, limit))
        assert pieces == whole[: len(pieces)]


def test_quarterly_gdp_shape(store: TableStore) -> None:
    table = store.get("9900000003")
    assert [a.id for a in table.axes] == ["tab", "cat01", "time"]
    time = axis(table, "time")
    assert time.size == 114 and len({c[:4] for c in time.codes}) == 29
    assert time.items[0] == {
        "@code": "1994000103",
        "@name": "1994年1～3月期",
        "@level": "3",
        "@parentCode": "1994010000",
    }
    assert time.items[2]["@parentCode"] == "1994020000"
    assert all(re.fullmatch(r"\d{4}00(0103|0406|0709|1012)", c) for c in time.codes)
    assert time.codes[-1] == "2022000406"
    cat01 = {item["@code"]: item for item in axis(table, "cat01").items}
    assert (cat01["13"]["@parentCode"], cat01["14"]["@parentCode"]) == ("12", "13")
    assert (cat01["13"]["@level"], cat01["14"]["@level"]) == ("2", "3")
    inf = table.table_inf
    assert inf["MAIN_CATEGORY"] == {"@code": "07", "$": "企業・家計・経済"}
    assert inf["CYCLE"] == "四半期" and inf["SURVEY_DATE"] == "202204-202206"
    assert isinstance(inf["TITLE"], str)  # TITLE as a plain string, as some tables send it
    assert not table.notes  # no NOTE legend, and no special symbols in the values
    values = [r["$"] for r in rows(table.values({}, 0, 2_508))]
    assert all(re.fullmatch(r"\d+(\.\d)?", v) for v in values)
    assert {r["@unit"] for r in rows(table.values({}, 0, 10))} == {"10億円"}


@pytest.mark.parametrize(
    ("field", "table_id", "word"),
    [
        ("03", "9900000004", "賃金"),
        ("15", "9900000005", "病院"),
        ("12", "9900000006", "学校"),
        ("07", "9900000003", "ＧＤＰ"),
    ],
)
def test_fields_and_search_words(
    client: httpx.Client, field: str, table_id: str, word: str
) -> None:
    def listed(**params: Any) -> set[str]:
        body = call(client, "getStatsList", **params)
        return {t["@id"] for t in as_list(body.get("DATALIST_INF", {}).get("TABLE_INF"))}

    assert table_id in listed(statsField=field)  # the domain follows from MAIN_CATEGORY
    assert listed(searchWord=word) == {table_id}
    meta = call(client, "getMetaInfo", statsDataId=table_id)["METADATA_INF"]
    assert meta["TABLE_INF"]["MAIN_CATEGORY"]["@code"] == field


def test_small_tables_have_real_looking_hierarchies(store: TableStore) -> None:
    wages = store.get("9900000004")
    assert [a.id for a in wages.axes] == ["tab", "cat01", "cat02", "cat03", "time"]
    assert axis(wages, "cat01").attrs["@name"] == "雇用形態"
    assert axis(wages, "cat03").items[1]["@parentCode"] == "TL"
    hospitals = store.get("9900000005")
    kinds = {i["@name"]: i for i in axis(hospitals, "cat01").items}
    assert kinds["一般病院"]["@parentCode"] == "02" and kinds["病院"]["@parentCode"] == "01"
    assert axis(hospitals, "area").codes[:2] == ["00000", "01000"]
    assert axis(hospitals, "area").size == 48
    schools = store.get("9900000006")
    assert "小学校" in {i["@name"] for i in axis(schools, "cat01").items}
    assert {r.get("@unit") for r in rows(schools.values({}, 0, 600))} == {"校", "人"}


def test_table_without_a_time_axis(client: httpx.Client, store: TableStore) -> None:
    table = store.get("9900000007")
    assert "time" not in {a.id for a in table.axes}
    body = call(client, "getStatsData", statsDataId="9900000007")
    sd = body["STATISTICAL_DATA"]
    inf = sd["TABLE_INF"]
    assert inf["SURVEY_DATE"] == 0
    assert inf["OPEN_DATE"] == ""  # published without an open date: the empty element
    assert sd["RESULT_INF"]["TOTAL_NUMBER"] == 48
    values = as_list(sd["DATA_INF"]["VALUE"])
    assert all("@time" not in v for v in values)
    assert {o["@id"] for o in as_list(sd["CLASS_INF"]["CLASS_OBJ"])} == {"tab", "area"}
    # filtering by a time it does not have changes nothing, as on e-Stat
    narrowed = call(client, "getStatsData", statsDataId="9900000007", cdTime="2020000000")
    assert narrowed["STATISTICAL_DATA"]["RESULT_INF"]["TOTAL_NUMBER"] == 48
    by_open = call(client, "getStatsList", openYears="2024")
    assert "9900000007" not in {t["@id"] for t in as_list(by_open["DATALIST_INF"].get("TABLE_INF"))}
