"""Conforming real samples and every known shape variant; expected values read from the inputs."""

from __future__ import annotations

import math

import orjson
import pyarrow as pa
import pytest

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.conform.pages import read_page
from estat_assets.estat.models import parse_meta_info
from estat_assets_tests.factories import class_obj, dumps, sample, stats_data

DATA_SAMPLES = [
    "getStatsData_0000020202_limit10.json",
    "getStatsData_0003065345_cdCat01_limit3_meta__v2.0_2016-02-05.json",
    "getStatsData_0003065345_cdCat01_limit3_nometa__v2.1_2016-08-01.json",
]


def _values(raw: bytes) -> list[dict]:
    data = orjson.loads(raw)["GET_STATS_DATA"]["STATISTICAL_DATA"]["DATA_INF"]["VALUE"]
    return data if isinstance(data, list) else [data]


@pytest.mark.parametrize("name", DATA_SAMPLES)
def test_every_recorded_value_is_conformed_exactly(name: str) -> None:
    raw = sample(name)
    table = conform_pages([raw], ConformInput(dataset_id="d", run_id="r1"))
    rows = table.to_pylist()
    values = _values(raw)
    assert len(rows) == len(values)
    for row, value in zip(rows, values, strict=True):
        for attr, content in value.items():
            if attr == "$":
                assert row["value_raw"] == content
                assert row["value"] == float(content)
            elif attr == "@unit":
                assert row["unit"] == content
            else:
                assert row[f"{attr[1:]}_code"] == content
        assert row["run_id"] == "r1"


def test_names_come_from_the_tables_own_class_inf() -> None:
    raw = sample("getStatsData_0000020202_limit10.json")
    doc = orjson.loads(raw)["GET_STATS_DATA"]["STATISTICAL_DATA"]
    names = {
        (o["@id"], c["@code"]): c["@name"]
        for o in doc["CLASS_INF"]["CLASS_OBJ"]
        for c in (o["CLASS"] if isinstance(o["CLASS"], list) else [o["CLASS"]])
    }
    rows = conform_pages([raw], ConformInput(dataset_id="0000020202")).to_pylist()
    for row in rows:
        for axis in ("tab", "cat01", "area", "time"):
            assert row[f"{axis}_name"] == names[(axis, row[f"{axis}_code"])]
    assert rows[0]["time_name"] == "1981年度"
    assert rows[0]["period_kind"] == "fiscal_year" and rows[0]["year"] == 1981
    assert rows[0]["area_name"] == "北海道 札幌市"  # Japanese labels byte-true


def test_metadata_from_get_meta_info_names_a_nometa_page() -> None:
    page = sample("getStatsData_0003065345_cdCat01_limit3_nometa__v2.1_2016-08-01.json")
    meta = parse_meta_info(orjson.loads(sample("getMetaInfo_0003065345__v2.1_2016-07-30.json")))
    rows = conform_pages([page], ConformInput(dataset_id="0003065345", metadata=meta)).to_pylist()
    assert [r["area_name"] for r in rows] == ["全国", "北海道", "青森県"]
    assert rows[0]["cat02_name"] == "総数"
    assert "tab_code" not in rows[0]  # this table has no tab axis


def test_count_only_page_conforms_to_an_empty_table() -> None:
    table = conform_pages(
        [sample("getStatsData_0003065345_cntGetFlgY__v2.1_2016-07-30.json")],
        ConformInput(dataset_id="0003065345"),
    )
    assert table.num_rows == 0


NOTES = [
    {"@char": "***", "$": "調査又は集計していないもの"},
    {"@char": "-", "$": "データが得られないもの"},
    {"@char": "X", "$": "数値が秘匿されているもの"},
    {"@char": "0:00", "$": "時刻"},
]


def _doc(values, classes=None, notes=NOTES, **kw):
    classes = (
        classes
        if classes is not None
        else [
            class_obj(
                "cat01",
                "分類",
                [
                    {"@code": "A", "@name": "甲", "@level": "", "@unit": "人"},
                    {"@code": "B", "@name": "乙", "@level": "1"},
                ],
            ),
            class_obj(
                "time",
                "時間軸",
                [
                    {"@code": c, "@name": c}
                    for c in (
                        "2020000000",
                        "2020100000",
                        "2021000101",
                        "2021001212",
                        "1994000103",
                        "1994001012",
                        "1994010000",
                        "20xx",
                    )
                ],
            ),
        ]
    )
    return stats_data("0000000001", classes, values, notes, **kw)


@pytest.mark.parametrize("pretty", [False, True])
def test_special_symbols_keep_raw_value_null_number_and_legend(pretty: bool) -> None:
    values = [
        {"@cat01": "A", "@time": "2020000000", "$": "12.5"},
        {"@cat01": "A", "@time": "2020100000", "$": "***"},
        {"@cat01": "B", "@time": "2020000000", "$": "X"},
        {"@cat01": "B", "@time": "2020100000", "$": "0:00"},
        {"@cat01": "B", "@time": "2021000101", "$": "-"},
        {"@cat01": "B", "@time": "2021001212", "$": "1,234"},
    ]
    rows = conform_pages([dumps(_doc(values), pretty)], ConformInput(dataset_id="x")).to_pylist()
    assert [r["value_raw"] for r in rows] == ["12.5", "***", "X", "0:00", "-", "1,234"]
    assert rows[0]["value"] == 12.5
    assert all(r["value"] is None for r in rows[1:])
    assert [r["annotation"] for r in rows] == [
        None,
        "調査又は集計していないもの",
        "数値が秘匿されているもの",
        "時刻",
        "データが得られないもの",
        None,
    ]
    assert rows[0]["unit"] == "人"  # the class item's unit when the VALUE has none
    assert rows[2]["unit"] is None


def test_time_codes_parsed_structurally() -> None:
    codes = [
        "2020000000",
        "2020100000",
        "2021000101",
        "2021001212",
        "1994000103",
        "1994001012",
        "1994010000",
        "20xx",
    ]
    values = [{"@cat01": "A", "@time": c, "$": "1"} for c in codes]
    rows = conform_pages([dumps(_doc(values))], ConformInput(dataset_id="x", default_year=0))
    got = [(r["year"], r["period_kind"], r["month"], r["quarter"]) for r in rows.to_pylist()]
    assert got == [
        (2020, "year", None, None),
        (2020, "fiscal_year", None, None),
        (2021, "month", 1, None),
        (2021, "month", 12, None),
        (1994, "quarter", None, 1),
        (1994, "quarter", None, 4),
        (1994, "other", None, None),  # parent of quarters: meaning unconfirmed, kept opaque
        (0, "other", None, None),  # unreadable: the partition's year, never a guess
    ]


def test_single_object_nodes_everywhere() -> None:
    """One CLASS_OBJ, one CLASS, one NOTE, one VALUE: all objects, not lists."""
    doc = stats_data(
        "0000000002",
        [class_obj("time", "年", [{"@code": "2019000000", "@name": "2019年"}])],
        [{"@time": "2019000000", "$": "-"}],
        [{"@char": "-", "$": "皆無"}],
    )
    sd = doc["GET_STATS_DATA"]["STATISTICAL_DATA"]
    assert isinstance(sd["CLASS_INF"]["CLASS_OBJ"], dict)
    assert isinstance(sd["DATA_INF"]["VALUE"], dict)
    assert isinstance(sd["DATA_INF"]["NOTE"], dict)
    rows = conform_pages([dumps(doc)], ConformInput(dataset_id="x")).to_pylist()
    assert rows == [rows[0]] and rows[0]["annotation"] == "皆無"
    assert rows[0]["time_name"] == "2019年" and rows[0]["value"] is None
    assert set(rows[0]) >= {"time_code", "time_name"} and "area_code" not in rows[0]


def test_table_without_tab_or_area_has_only_its_own_axes() -> None:
    values = [{"@cat01": "A", "@time": "2020000000", "$": "5"}]
    table = conform_pages([dumps(_doc(values))], ConformInput(dataset_id="x"))
    axis_columns = [c for c in table.column_names if c.endswith("_code")]
    assert axis_columns == ["cat01_code", "time_code"]


def test_codes_missing_from_class_inf_keep_code_and_null_name() -> None:
    values = [{"@cat01": "ZZ", "@time": "2020000000", "$": "5"}]
    row = conform_pages([dumps(_doc(values))], ConformInput(dataset_id="x")).to_pylist()[0]
    assert row["cat01_code"] == "ZZ" and row["cat01_name"] is None


def test_fast_and_exact_page_readers_agree() -> None:
    values = [{"@cat01": "A", "@time": "2020000000", "$": str(i)} for i in range(50)]
    compact, pretty = dumps(_doc(values)), dumps(_doc(values), pretty=True)
    assert read_page(compact).equals(read_page(pretty))


def test_multiple_pages_concatenate_in_order() -> None:
    pages = [
        dumps(_doc([{"@cat01": "A", "@time": "2020000000", "$": "1"}], total=2)),
        dumps(_doc([{"@cat01": "B", "@time": "2020000000", "$": "2"}], total=2, start=2)),
    ]
    table = conform_pages(pages, ConformInput(dataset_id="x"))
    assert table.column("cat01_code").to_pylist() == ["A", "B"]


def test_numbers_are_exact() -> None:
    raws = ["0.1", "123456789012345", "-0.000001", "1e3", "19.0", "007"]
    values = [{"@cat01": "A", "@time": "2020000000", "$": r} for r in raws]
    table = conform_pages([dumps(_doc(values))], ConformInput(dataset_id="x"))
    assert table.column("value").to_pylist() == [float(r) for r in raws]
    assert not any(math.isnan(v) for v in table.column("value").to_pylist())


def test_empty_input_gives_typed_empty_table() -> None:
    table = conform_pages([], ConformInput(dataset_id="x"))
    assert table.num_rows == 0
    assert table.schema.field("value").type == pa.float64()
