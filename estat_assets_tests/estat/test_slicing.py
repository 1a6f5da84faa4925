from estat_assets.estat.models import ClassItem, ClassObj, TableInfo, TableMetadata
from estat_assets.estat.slicing import time_filter, year_slices


def _meta(codes, survey="201110"):
    classes = (ClassObj("time", "時間軸", tuple(ClassItem(c, c) for c in codes)),) if codes else ()
    return TableMetadata(TableInfo(id="0000000001", survey_date=survey), classes)


def test_codes_grouped_by_year_including_months_and_quarters() -> None:
    meta = _meta(["2020000000", "2020000101", "2020000103", "2021100000", "bad"])
    assert year_slices(meta) == {
        "2020": ["2020000000", "2020000101", "2020000103"],
        "2021": ["2021100000"],
        "0000": ["bad"],
    }


def test_table_without_time_axis_is_one_slice_of_its_survey_year() -> None:
    assert year_slices(_meta([])) == {"2011": []}
    assert time_filter(_meta([]), []) == {}


def test_long_code_lists_become_a_range() -> None:
    codes = [f"2020{i:06d}" for i in range(150)]
    assert time_filter(_meta(codes), codes) == {"cdTimeFrom": codes[0], "cdTimeTo": codes[-1]}
    assert time_filter(_meta(codes), codes[:2]) == {"cdTime": ",".join(codes[:2])}
