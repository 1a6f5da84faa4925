"""Axis filters in either language, claims as people write them, CLI filter arguments."""

from __future__ import annotations

import pytest

from estat_assets.app.errors import AppError
from estat_assets.app.metadata import (
    Axis,
    AxisItem,
    find_axis,
    parse_filter_args,
    resolve_filters,
    years_of,
)
from estat_assets.app.verify import parse_claim

AXES = [
    Axis(
        "tab",
        "表章項目",
        "Tabulation item",
        [AxisItem("01", "所定内給与額", "Scheduled cash earnings")],
    ),
    Axis(
        "cat02",
        "性別",
        "Sex",
        [
            AxisItem("1", "男女計", "Both sexes", "1"),
            AxisItem("2", "男", "Male", "2", "1"),
            AxisItem("3", "女", "Female", "2", "1"),
        ],
    ),
    Axis(
        "area",
        "地域",
        None,
        [AxisItem("00000", "全国"), AxisItem("01000", "北海道"), AxisItem("13000", "東京都")],
    ),
    Axis(
        "time",
        "時間軸（年次）",
        "Time (annual)",
        [
            AxisItem("2019000000", "2019年", "2019"),
            AxisItem("2020000000", "2020年", "2020"),
            AxisItem("2020100000", "2020年度", "FY2020"),
        ],
    ),
]


@pytest.mark.parametrize("key", ["cat02", "性別", "Sex", "sex", "ＳＥＸ", " 性別 "])
def test_an_axis_by_id_or_name_in_either_language(key) -> None:
    assert find_axis(AXES, key).id == "cat02"


@pytest.mark.parametrize(
    ("value", "codes", "how"),
    [
        ("2", ["2"], "code"),
        ("男", ["2"], "name"),
        ("Male", ["2"], "english name"),
        ("female", ["3"], "english name"),
    ],
)
def test_items_by_code_or_name_in_either_language(value, codes, how) -> None:
    [resolved] = resolve_filters(AXES, {"Sex": value})
    assert (resolved.axis, resolved.codes, resolved.how) == ("cat02", codes, [how])


def test_several_values_of_an_axis_are_alternatives_and_years_find_their_code() -> None:
    resolved = {
        r.axis: r for r in resolve_filters(AXES, {"地域": ["北海道", "13000"], "time": "2019"})
    }
    assert resolved["area"].codes == ["01000", "13000"]
    assert resolved["time"].codes == ["2019000000"]  # its English name is "2019"
    assert resolve_filters(AXES, {"time": "FY2020"})[0].codes == ["2020100000"]
    # Without English names a year still finds its codes: the calendar and the fiscal year
    japanese = [Axis(a.id, a.name, None, [AxisItem(i.code, i.name) for i in a.items]) for a in AXES]
    [year] = resolve_filters(japanese, {"time": "2020"})
    assert year.codes == ["2020000000", "2020100000"] and year.how == ["year"]


def test_a_unique_part_of_a_name_is_accepted_and_said_so() -> None:
    [resolved] = resolve_filters(AXES, {"area": "東京"})
    assert resolved.codes == ["13000"] and resolved.how == ["partial name"]


def test_unknown_axes_and_items_list_the_candidates() -> None:
    with pytest.raises(AppError) as err:
        resolve_filters(AXES, {"Gender": "男"})
    assert err.value.type == "unknown_axis" and "cat02=性別 (Sex)" in err.value.what_to_do
    with pytest.raises(AppError) as err:
        resolve_filters(AXES, {"cat02": "Men"})
    e = err.value
    assert e.type == "unknown_item" and e.retryable
    assert {c["code"] for c in e.context["candidates"]} == {"1", "2", "3"}


def test_years_of_the_time_axis() -> None:
    assert years_of(AXES) == ["2019", "2020"]


def test_cli_filters_are_axis_value_pairs() -> None:
    assert parse_filter_args(["性別=男", "time=2020", "time=2021", "地域=北海道 札幌市"]) == {
        "性別": ["男"],
        "time": ["2020", "2021"],
        "地域": ["北海道 札幌市"],
    }
    with pytest.raises(AppError) as err:
        parse_filter_args(["性別"])
    assert err.value.type == "bad_filter"


@pytest.mark.parametrize(
    ("claim", "value", "decimals"),
    [
        ("364.9", 364.9, 1),
        ("1,234", 1234.0, 0),
        ("３６５", 365.0, 0),
        ("12.50%", 12.5, 2),
        (1965.4, 1965.4, 1),
        (365, 365.0, 0),
        ("-0.25", -0.25, 2),
    ],
)
def test_claims_as_people_write_them(claim, value, decimals) -> None:
    assert parse_claim(claim) == (value, decimals)


@pytest.mark.parametrize("claim", ["about 300", "三百", "", "1.2.3", True])
def test_a_claim_that_is_not_a_number(claim) -> None:
    with pytest.raises(AppError) as err:
        parse_claim(claim)
    assert err.value.type == "bad_claim"
