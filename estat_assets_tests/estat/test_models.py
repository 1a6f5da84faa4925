"""Metadata parsing on every recorded metadata/list/catalogue sample, and the shape drifts."""

from __future__ import annotations

import orjson
import pytest

from estat_assets.estat.models import TableInfo, parse_classes, parse_meta_info, parse_notes
from estat_assets.estat.shape import as_dict, as_list, root_of, text
from estat_assets_tests.factories import sample


@pytest.mark.parametrize(
    "name",
    [
        "getMetaInfo_0003065345__v2.0_2016-02-05.json",
        "getMetaInfo_0003065345__v2.1_2016-07-30.json",
    ],
)
def test_meta_info_without_tab_axis(name: str) -> None:
    meta = parse_meta_info(orjson.loads(sample(name)))
    assert meta.table.id == "0003065345"
    assert meta.axes == ["cat01", "cat02", "cat03", "area", "time"]  # no tab
    assert len(meta.axis("cat01").items) == 72
    assert meta.axis("area").items[0].name == "全国"
    assert meta.table.survey_date == "201110"
    assert meta.table.overall_total_number == 960336
    cat02 = meta.axis("cat02").items
    assert cat02[1].parent_code == "001" and cat02[0].parent_code is None


def test_stats_data_class_inf_with_single_object_class_and_missing_parent() -> None:
    doc = orjson.loads(sample("getStatsData_0000020202_limit10.json"))
    data = doc["GET_STATS_DATA"]["STATISTICAL_DATA"]
    assert isinstance(data["CLASS_INF"]["CLASS_OBJ"][0]["CLASS"], dict)  # tab: one object
    classes = {c.id: c for c in parse_classes(data["CLASS_INF"])}
    assert [len(classes[a].items) for a in ("tab", "cat01", "area", "time")] == [1, 9, 1913, 44]
    area_codes = set(classes["area"].codes())
    sapporo = classes["area"].items[0]
    assert sapporo.parent_code == "01000" and "01000" not in area_codes  # parent not listed
    assert classes["cat01"].items[0].unit == "ｈａ"
    assert parse_notes(data["DATA_INF"]) == {
        "***": "調査又は集計していないもの",
        "-": "データが得られないもの",
        "X": "数値が秘匿されているもの",
    }


def test_clock_time_legend_kept() -> None:
    doc = orjson.loads(sample("getStatsData_0003065345_cdCat01_limit3_meta__v2.0_2016-02-05.json"))
    notes = parse_notes(doc["GET_STATS_DATA"]["STATISTICAL_DATA"]["DATA_INF"])
    assert len(notes) == 1564 and notes["0:00"] == "時刻" and notes["9:59"] == "時刻"


@pytest.mark.parametrize(
    "name",
    [
        "getStatsList_searchWordCD_limit3__v2.0_2016-02-05.json",
        "getStatsList_searchWordCD_limit3__v2.1_2016-07-30.json",
        "getStatsList_00200521_surveyYears2015_limit10.json",
    ],
)
def test_stats_list_table_inf(name: str) -> None:
    root, body = root_of(orjson.loads(sample(name)))
    assert root == "GET_STATS_LIST"
    data = body["DATALIST_INF"]
    tables = [TableInfo.parse(t) for t in as_list(data["TABLE_INF"])]
    assert len(tables) == data["RESULT_INF"]["TO_NUMBER"]
    assert all(len(t.id) == 10 and t.stat_code and len(t.stat_code) == 8 for t in tables)
    assert "NUMBER" in data and "TOTAL_NUMBER" not in data  # getStatsList counts with NUMBER


def test_survey_list_fields() -> None:
    body = orjson.loads(sample("getStatsList_00200521_surveyYears2015_limit10.json"))
    first = TableInfo.parse(body["GET_STATS_LIST"]["DATALIST_INF"]["TABLE_INF"][0])
    assert first.id == "0003148500" and first.stat_name == "国勢調査"
    assert first.survey_date == "201510" and first.open_date == "2016-12-16"
    assert first.updated_date == "2020-05-22"


def test_data_catalog_resource_object_and_list() -> None:
    root, body = root_of(
        orjson.loads(sample("getDataCatalog_chocolate_PDF_XLS__v2.1_2016-07-30.json"))
    )
    assert root == "GET_DATA_CATALOG"
    entries = as_list(body["DATA_CATALOG_LIST_INF"]["DATA_CATALOG_INF"])
    assert len(entries) == 100 and body["DATA_CATALOG_LIST_INF"]["RESULT_INF"]["NEXT_KEY"] == 101
    shapes = {type(e["RESOURCES"]["RESOURCE"]).__name__ for e in entries}
    assert shapes == {"dict", "list"}
    resources = [r for e in entries for r in as_list(e["RESOURCES"]["RESOURCE"])]
    assert len(resources) > len(entries) and all(len(str(r["@id"])) > 0 for r in resources)


def test_shape_helpers() -> None:
    assert as_list("") == [] and as_list(None) == [] and as_list({"a": 1}) == [{"a": 1}]
    assert as_dict("") == {}
    assert text({"@no": "1", "$": "表"}) == "表" and text("表") == "表" and text("") is None
    with pytest.raises(ValueError):
        root_of({"OTHER": {}})


def test_title_as_string_and_survey_date_range() -> None:
    t = TableInfo.parse(
        {"@id": "0000000001", "TITLE": "表題", "SURVEY_DATE": "201601-201612", "DESCRIPTION": ""}
    )
    assert t.title == "表題" and t.survey_date == "201601-201612"
