"""The emulator's table store and generated tables, without HTTP."""

from __future__ import annotations

import shutil
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest

from estat_assets.estat.shape import as_list
from estat_emulator import (
    GeneratedSpec,
    TableStore,
    benchmark_spec,
    synthetic_spec,
)
from estat_emulator.generate import (
    SYNTHETIC_LABEL,
    SYNTHETIC_NOTE,
    build_generated,
)
from estat_emulator.store import SAMPLES_DIR
from estat_emulator.wire import Raw, ascii_escape, dumps

V3 = SAMPLES_DIR / "v3"
V2 = SAMPLES_DIR / "v2"


def _rows(value: list | Raw) -> list[dict]:
    if isinstance(value, Raw):
        decoded = orjson.loads(value.data)
        return decoded if isinstance(decoded, list) else [decoded]
    return value


@pytest.fixture(scope="module")
def store() -> TableStore:
    return TableStore.default()


def test_default_store_has_recorded_generated_and_listed_tables(store: TableStore) -> None:
    kinds = {t.id: t.kind for t in store}
    assert kinds["0000020202"] == "recorded"
    assert kinds["0003065345"] == "recorded"
    assert kinds["9900020202"] == "generated"
    assert kinds["9903065345"] == "generated"
    assert kinds["0003148500"] == "listed"  # only in a getStatsList recording
    assert kinds["0003065346"] == "listed"
    assert not store.get("0003148500").has_metadata
    assert len(store.catalog_entries()) == 100


def test_indexed_by_content_not_file_name(tmp_path: Path) -> None:
    """Files renamed and nested arbitrarily (and foreign JSON mixed in) index the same."""
    odd = [
        (V3 / "getStatsData_0000020202_limit10.json", "zz/first.json"),
        (V2 / "getMetaInfo_0003065345__v2.1_2016-07-30.json", "a.json"),
        (V2 / "getStatsData_0003065345_cdCat01_limit3_meta__v2.0_2016-02-05.json", "b/c/d.json"),
        (V3 / "getStatsList_00200521_surveyYears2015_limit10.json", "list of tables.json"),
        (SAMPLES_DIR / "generated" / "9900020202.json", "specs/whatever.json"),
    ]
    for source, name in odd:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    (tmp_path / "other.json").write_text('{"hello": "world"}')
    (tmp_path / "broken.json").write_text('{"GET_STATS_DATA": ')
    store = TableStore.from_directory(tmp_path)
    assert store.get("0000020202").kind == "recorded"
    assert store.get("0003065345").kind == "recorded"
    assert store.get("9900020202").kind == "generated"
    assert store.get("0003148500").kind == "listed"
    # getMetaInfo's full CLASS_INF wins over the narrowed getStatsData one
    cat01 = next(a for a in store.get("0003065345").axes if a.id == "cat01")
    assert cat01.size == 72


def test_recorded_0000020202_is_exactly_its_rows(store: TableStore) -> None:
    recorded = orjson.loads((V3 / "getStatsData_0000020202_limit10.json").read_bytes())
    expected = recorded["GET_STATS_DATA"]["STATISTICAL_DATA"]["DATA_INF"]["VALUE"]
    table = store.get("0000020202")
    assert table.count({}) == 10
    assert table.values({}, 0, 100) == expected
    assert table.table_inf["OVERALL_TOTAL_NUMBER"] == 10
    assert [a.size for a in table.axes] == [1, 9, 1913, 44]
    assert [n["@char"] for n in table.notes] == ["***", "-", "X"]


def test_recorded_totals_can_be_kept() -> None:
    store = TableStore.from_directory(SAMPLES_DIR, keep_recorded_totals=True)
    assert store.get("0000020202").table_inf["OVERALL_TOTAL_NUMBER"] == 403227


def test_recorded_0003065345_merges_recordings(store: TableStore) -> None:
    table = store.get("0003065345")
    assert table.count({}) == 3  # the same 3 rows in two recordings, de-duplicated
    assert [a.id for a in table.axes] == ["cat01", "cat02", "cat03", "area", "time"]
    assert [a.size for a in table.axes] == [72, 3, 57, 78, 1]
    assert "STATISTICS_NAME_SPEC" in table.table_inf  # the richer (v2.1) TABLE_INF
    assert len(table.notes) == 1564
    rows = table.values({}, 0, 10)
    assert [r["@area"] for r in rows] == ["00000", "01000", "02000"]


def test_generated_cell_counts_match_the_spec(store: TableStore) -> None:
    g1 = store.get("9900020202")
    g2 = store.get("9903065345")
    assert g1.count({}) == 1 * 9 * 1913 * 44 == 757_548
    assert g2.count({}) == 72 * 3 * 57 * 78 * 1 == 960_336
    assert g1.table_inf["OVERALL_TOTAL_NUMBER"] == 757_548
    assert g2.table_inf["OVERALL_TOTAL_NUMBER"] == 960_336


def test_generated_is_labelled_synthetic(store: TableStore) -> None:
    inf = store.get("9900020202").table_inf
    assert inf["@id"] == "9900020202"
    assert inf["TITLE"]["$"].startswith(SYNTHETIC_LABEL)
    assert inf["STATISTICS_NAME"].startswith(SYNTHETIC_LABEL)
    assert inf["SYNTHETIC"] == SYNTHETIC_NOTE
    assert inf["UPDATED_DATE"] == "2025-06-20"
    base = store.get("0000020202").table_inf
    assert inf["STAT_NAME"] == base["STAT_NAME"]
    assert "SYNTHETIC" not in base
    assert not base["TITLE"]["$"].startswith(SYNTHETIC_LABEL)


def test_generated_order_is_last_axis_fastest(store: TableStore) -> None:
    table = store.get("9900020202")
    _tab, cat01, area, time = table.axes
    rows = _rows(table.values({}, 0, 100))
    assert [r["@time"] for r in rows[:44]] == time.codes
    assert {r["@area"] for r in rows[:44]} == {area.codes[0]}
    assert rows[44]["@area"] == area.codes[1] and rows[44]["@time"] == time.codes[0]
    # the first row of the second cat01 block
    block = 1913 * 44
    row = _rows(table.values({}, block, 1))[0]
    assert (row["@cat01"], row["@area"], row["@time"]) == (
        cat01.codes[1],
        area.codes[0],
        time.codes[0],
    )
    last = _rows(table.values({}, table.count({}) - 1, 5))
    assert len(last) == 1
    assert (last[0]["@cat01"], last[0]["@area"], last[0]["@time"]) == (
        cat01.codes[-1],
        area.codes[-1],
        time.codes[-1],
    )
    assert list(rows[0]) == ["@tab", "@cat01", "@area", "@time", "@unit", "$"]


def test_generated_values_are_deterministic_and_filter_consistent(store: TableStore) -> None:
    table = store.get("9900020202")
    again = TableStore.default().get("9900020202")
    page = _rows(table.values({}, 123_456, 500))
    assert page == _rows(again.values({}, 123_456, 500))
    # a narrowed request sees the same value for the same cell
    time_pos = np.array([3], dtype=np.int64)
    narrowed = _rows(table.values({"time": time_pos}, 0, 2000))
    full = {
        (r["@cat01"], r["@area"], r["@time"]): r["$"] for r in _rows(table.values({}, 0, 50_000))
    }
    for row in narrowed[:1000]:
        assert full[(row["@cat01"], row["@area"], row["@time"])] == row["$"]
    other_seed = build_generated(
        GeneratedSpec.from_document({"id": "9900000001", "metadata_from": "0000020202", "seed": 8}),
        store.get("0000020202"),
    )
    assert [r["$"] for r in _rows(other_seed.values({}, 123_456, 500))] != [r["$"] for r in page]


def test_special_symbols_rate_and_set(store: TableStore) -> None:
    table = store.get("9900020202")
    values = [r["$"] for r in _rows(table.values({}, 0, 100_000))]
    specials = [v for v in values if v in {"***", "-", "X"}]
    assert 0.006 < len(specials) / len(values) < 0.014
    assert set(specials) == {"***", "-", "X"}
    numeric = [v for v in values if v not in {"***", "-", "X"}]
    assert all(v.replace(".", "", 1).isdigit() for v in numeric)
    assert any("." in v for v in numeric) and any("." not in v for v in numeric)
    # 0003065345's NOTE also lists clock times (they are values): never used as symbols
    other = [r["$"] for r in _rows(store.get("9903065345").values({}, 0, 100_000))]
    symbols = {v for v in other if not v.replace(".", "", 1).isdigit()}
    assert symbols == {"***", "-", "..."}


def test_units_follow_the_class_items(store: TableStore) -> None:
    table = store.get("9900020202")
    cat01 = next(a for a in table.axes if a.id == "cat01")
    units = {item["@code"]: item.get("@unit") for item in cat01.items}
    for row in _rows(table.values({}, 0, 100_000)):
        assert row["@unit"] == units[row["@cat01"]]
    other = store.get("9903065345")
    cat01 = next(a for a in other.axes if a.id == "cat01")
    units = {item["@code"]: item.get("@unit") for item in cat01.items}
    rows = _rows(other.values({}, 0, 100_000))
    by_code = Counter((r["@cat01"], r.get("@unit")) for r in rows)
    assert by_code  # both kinds present: 標本数 (001) has no unit
    for (code, unit), _ in by_code.items():
        assert unit == units[code]
    assert any(unit is None for (_, unit) in by_code)


def test_axis_overrides() -> None:
    store = TableStore.default()
    spec = {
        "GENERATED_TABLE": {
            "id": "9900000002",
            "metadata_from": "0000020202",
            "axes": {"time": {"limit": 5}, "area": {"codes": ["01101", "01100", "99999"]}},
        }
    }
    table = store.add_generated(spec)
    assert table.count({}) == 1 * 9 * 2 * 5
    area = next(a for a in table.axes if a.id == "area")
    assert area.codes == ["01100", "01101"]  # CLASS order, unknown codes dropped
    time = next(a for a in table.axes if a.id == "time")
    assert time.codes == ["1980100000", "1981100000", "1982100000", "1983100000", "1984100000"]
    with pytest.raises(ValueError, match="no axes"):
        store.add_generated(
            {"id": "9900000003", "metadata_from": "0000020202", "axes": {"cat05": {"limit": 1}}}
        )
    with pytest.raises(ValueError, match="not loaded"):
        store.add_generated({"id": "9900000004", "metadata_from": "0000000000"})
    with pytest.raises(ValueError, match="10 digits"):
        store.add_generated({"id": "12", "metadata_from": "0000020202"})


def test_synthetic_benchmark_tables_are_never_materialised() -> None:
    tracemalloc.start()
    try:
        table = build_generated(
            GeneratedSpec.from_document(benchmark_spec("9990000005", 5_000_000)), None
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert table.count({}) == 5_000_000
    assert peak < 5_000_000  # building a 5M-cell table allocates far less than one byte per cell
    assert [a.id for a in table.axes] == ["tab", "cat01", "area", "time"]
    last = _rows(table.values({}, 4_999_990, 100_000))
    assert len(last) == 10
    assert last[-1]["@time"] == table.axes[-1].codes[-1]
    assert {r["@unit"] for r in _rows(table.values({}, 0, 30_000))} == {"人", "千円", "％"}
    million = build_generated(
        GeneratedSpec.from_document(
            synthetic_spec("9990000001", {"time": 100, "cat01": 100, "area": 100, "tab": 1})
        ),
        None,
    )
    assert million.count({}) == 1_000_000
    assert [a.id for a in million.axes] == ["tab", "cat01", "area", "time"]  # e-Stat order
    assert million.table_inf["TITLE"]["$"].startswith(SYNTHETIC_LABEL)
    assert "SYNTHETIC" in million.table_inf


def test_republish_changes_generated_values_only(store: TableStore) -> None:
    local = TableStore.default()
    gen = local.get("9900020202")
    before = _rows(gen.values({}, 0, 200))
    local.republish("9900020202", "2025-07-01")
    assert gen.table_inf["UPDATED_DATE"] == "2025-07-01"
    after = _rows(gen.values({}, 0, 200))
    assert [r["@time"] for r in after] == [r["@time"] for r in before]
    assert sum(a["$"] != b["$"] for a, b in zip(after, before, strict=True)) > 150
    rec = local.get("0000020202")
    rows = rec.values({}, 0, 10)
    local.republish("0000020202")  # no date: the day after the current one
    assert rec.table_inf["UPDATED_DATE"] == "2025-06-21"
    assert rec.values({}, 0, 10) == rows
    local.republish("0000020202", perturb=True)
    assert [r["$"] for r in rec.values({}, 0, 10)] != [r["$"] for r in rows]
    assert (
        store.get("9900020202").table_inf["UPDATED_DATE"] == "2025-06-20"
    )  # other stores untouched


def test_wire_escaping_matches_e_stat() -> None:
    assert ascii_escape('{"a":"正常<&>=\'"}'.encode()) == (
        b'{"a":"\\u6B63\\u5E38\\u003C\\u0026\\u003E\\u003D\\u0027"}'
    )
    assert ascii_escape('{"a":"😀"}'.encode()) == b'{"a":"\\uD83D\\uDE00"}'
    doc = {"X": {"VALUE": Raw(b'[{"$":"1"}]'), "NAME": "ｈａ"}}
    out = dumps(doc)
    assert out == b'{"X":{"VALUE":[{"$":"1"}],"NAME":"\\uFF48\\uFF41"}}'
    assert orjson.loads(out) == {"X": {"VALUE": [{"$": "1"}], "NAME": "ｈａ"}}
    assert dumps(doc, ascii_only=False) == '{"X":{"VALUE":[{"$":"1"}],"NAME":"ｈａ"}}'.encode()


def test_generated_pages_escape_like_the_wire(store: TableStore) -> None:
    raw = store.get("9903065345").values({}, 3 * 57 * 78, 1000)  # cat01 106: 千人
    assert isinstance(raw, Raw)
    assert raw.data.isascii()
    units = {r.get("@unit") for r in as_list(orjson.loads(raw.data))}
    assert "千人" in units
