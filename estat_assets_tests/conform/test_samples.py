"""Every recorded sample conformed and checked against values read directly from the file."""

from __future__ import annotations

import re

import orjson
import pytest

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.conform.rules import parse_rules
from estat_assets.conform.table import NUMBER_PATTERN, conformed_schema
from estat_assets.domains import load_domains
from estat_assets.estat.models import parse_meta_info
from estat_assets.estat.shape import as_list
from estat_assets.lake.class_codes import class_codes_rows
from estat_assets.quality.quarantine import split_rows
from estat_assets_tests.factories import SAMPLES, sample

STATS_DATA = sorted(p.name for p in SAMPLES.glob("*/getStatsData_*.json"))
META_INFO = sorted(p.name for p in SAMPLES.glob("*/getMetaInfo_*.json"))
META_0003065345 = "getMetaInfo_0003065345__v2.1_2016-07-30.json"
PAGE_0003065345 = "getStatsData_0003065345_cdCat01_limit3_meta__v2.0_2016-02-05.json"


def _data(raw: bytes) -> dict:
    return orjson.loads(raw)["GET_STATS_DATA"]["STATISTICAL_DATA"]


def _meta_for(name: str):
    table_id = re.search(r"_(\d{10})", name).group(1)
    metas = sorted(SAMPLES.glob(f"*/getMetaInfo_{table_id}_*.json"))
    return parse_meta_info(orjson.loads(metas[-1].read_bytes())) if metas else None


def test_the_samples_are_all_here() -> None:
    assert len(STATS_DATA) >= 4 and META_INFO


@pytest.mark.parametrize("name", STATS_DATA)
def test_sample_conformed_against_the_file(name: str) -> None:
    raw = sample(name)
    data = _data(raw)
    meta = _meta_for(name)
    table = conform_pages([raw], ConformInput(dataset_id="d", metadata=meta))
    values = [v for v in as_list(data.get("DATA_INF") and data["DATA_INF"].get("VALUE"))]
    notes = {
        n["@char"]: n["$"] for n in as_list(data.get("DATA_INF") and data["DATA_INF"].get("NOTE"))
    }
    classes = {}
    for obj in as_list((data.get("CLASS_INF") or {}).get("CLASS_OBJ")):
        classes[obj["@id"]] = {c["@code"]: c for c in as_list(obj["CLASS"])}
    for cls in meta.classes if meta else ():
        classes.setdefault(cls.id, {i.code: {"@name": i.name} for i in cls.items})
    rows = table.to_pylist()
    assert len(rows) == len(values)
    for row, value in zip(rows, values, strict=True):
        raw_value = value["$"]
        assert row["value_raw"] == raw_value
        expected = float(raw_value) if re.match(NUMBER_PATTERN, raw_value) else None
        assert row["value"] == expected
        assert row["annotation"] == notes.get(raw_value)
        assert row["unit"] == value.get("@unit")
        for attr, code in value.items():
            if attr.startswith("@") and attr not in ("@unit", "@annotation"):
                axis = attr[1:]
                assert row[f"{axis}_code"] == code
                assert row[f"{axis}_name"] == classes[axis][code]["@name"]
    # the recorded samples are clean: nothing to quarantine
    axes = meta.axes if meta else [c[:-5] for c in table.column_names if c.endswith("_code")]
    assert split_rows(table, axes, meta).quarantined.num_rows == 0


def test_clock_times_listed_in_note_are_kept_as_values() -> None:
    """0003065345 lists every clock time 0:00…9:59 in NOTE: they are values, never dropped."""
    doc = orjson.loads(sample(PAGE_0003065345))
    data = doc["GET_STATS_DATA"]["STATISTICAL_DATA"]
    chars = {n["@char"] for n in data["DATA_INF"]["NOTE"]}
    assert {"0:00", "7:30", "9:59"} <= chars and len(chars) > 1500
    for value, clock in zip(data["DATA_INF"]["VALUE"], ["0:00", "7:30", "23:59"], strict=True):
        value["$"] = clock
    table = conform_pages([orjson.dumps(doc)], ConformInput(dataset_id="0003065345"))
    rows = table.to_pylist()
    assert [r["value_raw"] for r in rows] == ["0:00", "7:30", "23:59"]
    assert all(r["value"] is None for r in rows)
    meanings = {n["@char"]: n["$"] for n in data["DATA_INF"]["NOTE"]}
    assert [r["annotation"] for r in rows] == [meanings.get(c) for c in ("0:00", "7:30", "23:59")]
    meta = _meta_for(PAGE_0003065345)
    assert split_rows(table, meta.axes, meta).clean.num_rows == 3  # not quarantined either


def test_semantic_columns_from_the_education_rules() -> None:
    education = next(d for d in load_domains() if d.name == "education")
    meta = parse_meta_info(orjson.loads(sample(META_0003065345)))
    table = conform_pages(
        [sample(PAGE_0003065345)],
        ConformInput(dataset_id="0003065345", metadata=meta, rules=education.semantic_rules),
    )
    rows = table.to_pylist()
    assert meta.axis("cat02").name == "性別" and "年齢" in meta.axis("cat03").name
    assert [r["gender"] for r in rows] == [r["cat02_code"] for r in rows] == ["001"] * 3
    assert rows[0]["gender_label"] == "総数" and rows[0]["age_group"] == rows[0]["cat03_code"]
    assert "school_type" not in table.column_names  # no axis matched: no column
    assert set(conformed_schema().names) >= {"gender", "gender_label", "school_type"}


def test_unmatched_rules_leave_axes_generic() -> None:
    rules = parse_rules({"semantic_columns": {"disease_code": "疾病"}})
    table = conform_pages(
        [sample("getStatsData_0000020202_limit10.json")],
        ConformInput(dataset_id="0000020202", rules=rules),
    )
    assert "disease_code" not in table.column_names and "area_code" in table.column_names


@pytest.mark.parametrize("name", META_INFO)
def test_class_codes_rows_read_from_get_meta_info(name: str) -> None:
    document = orjson.loads(sample(name))
    meta = parse_meta_info(document)
    rows = class_codes_rows("0003065345", meta, run_id="r").to_pylist()
    objs = as_list(document["GET_META_INFO"]["METADATA_INF"]["CLASS_INF"]["CLASS_OBJ"])
    expected = [
        (o["@id"], o["@name"], position, c)
        for o in objs
        for position, c in enumerate(as_list(o["CLASS"]))
    ]
    assert len(rows) == len(expected)
    assert meta.table.updated_date  # the release the codes belong to
    for row, (axis, axis_name, position, item) in zip(rows, expected, strict=True):
        assert (row["dataset_id"], row["run_id"]) == ("0003065345", "r")
        assert (row["axis"], row["axis_name"], row["code"]) == (axis, axis_name, item["@code"])
        assert row["position"] == position  # CLASS_INF order, kept
        assert row["source_updated_date"] == meta.table.updated_date
        assert row["name"] == item["@name"]
        assert row["level"] == (item.get("@level") or None)
        assert row["parent_code"] == (item.get("@parentCode") or None)
        assert row["unit"] == (item.get("@unit") or None)
