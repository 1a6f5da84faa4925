"""Quarantine split, the new checks (codes, rows accounted for, hierarchy) and the report."""

from __future__ import annotations

import pyarrow as pa

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.estat.models import ClassItem, ClassObj, TableInfo, TableMetadata
from estat_assets.quality.checks import CHECK_NAMES, WARN, codes_in_class_inf, evaluate, hierarchy
from estat_assets.quality.hierarchy import check_hierarchy, children_of
from estat_assets.quality.quarantine import quarantine_schema, split_rows
from estat_assets.quality.report import report_markdown
from estat_assets_tests.factories import class_obj, dumps, sample, stats_data

AXES = ["cat01", "area", "time"]


def _meta() -> TableMetadata:
    return TableMetadata(
        TableInfo("t"),
        (
            ClassObj(
                "cat01",
                "男女別",
                (
                    ClassItem("0", "総数", "1"),
                    ClassItem("1", "男", "2", parent_code="0"),
                    ClassItem("2", "女", "2", parent_code="0"),
                ),
            ),
            ClassObj(
                "area",
                "地域",
                (
                    ClassItem("00000", "全国", "1"),
                    ClassItem("01100", "札幌市", "2", parent_code="01000"),  # parent not listed
                ),
            ),
            ClassObj("time", "時間軸", (ClassItem("2020000000", "2020年", "1"),)),
        ),
    )


def _table(rows: list[tuple[str | None, str | None, str]]) -> pa.Table:
    values = []
    for cat, area, raw in rows:
        v = {"@time": "2020000000", "$": raw}
        if cat is not None:
            v["@cat01"] = cat
        if area is not None:
            v["@area"] = area
        values.append(v)
    objs = [
        class_obj(c.id, c.name, [{"@code": i.code, "@name": i.name} for i in c.items])
        for c in _meta().classes
    ]
    page = dumps(stats_data("0000000001", objs, values))
    return conform_pages([page], ConformInput(dataset_id="t", metadata=_meta(), default_year=2020))


def test_split_names_each_reason_and_keeps_the_first_duplicate() -> None:
    table = _table(
        [
            ("0", "00000", "10"),
            ("1", "00000", "4"),
            ("1", "00000", "5"),  # duplicate of the row before: quarantined
            ("9", "00000", "1"),  # cat01 9 is not in CLASS_INF
            (None, "00000", "1"),  # null key
            ("9", "99999", "1"),  # two unknown codes
        ]
    )
    split = split_rows(table, AXES, _meta())
    assert split.clean.column("value_raw").to_pylist() == ["10", "4"]
    got = dict(
        zip(
            split.quarantined.column("source_row").to_pylist(),
            split.quarantined.column("quarantine_reason").to_pylist(),
            strict=True,
        )
    )
    assert got == {
        3: "duplicate_key",
        4: "code_not_in_class_inf:cat01_code",
        5: "null_key",
        6: "code_not_in_class_inf:cat01_code,area_code",
    }
    assert split.counts == {"null_key": 1, "code_not_in_class_inf": 2, "duplicate_key": 1}
    assert split.raw_rows == table.num_rows
    assert set(quarantine_schema().names) >= set(split.quarantined.column_names)


def test_evaluate_row_level_failures_warn_table_level_fail() -> None:
    table = _table([("0", "00000", "10"), ("9", "00000", "1")])
    split = split_rows(table, AXES, _meta())
    outcomes = {o.name: o for o in evaluate(split, AXES, 2, metadata=_meta(), raw_rows=2)}
    assert tuple(outcomes) == CHECK_NAMES
    codes = outcomes["codes_in_class_inf"]
    assert not codes.passed and codes.severity == WARN and codes.failures == 1
    assert "cat01_code" in codes.sample_markdown()
    assert outcomes["rows_accounted_for"].passed
    assert outcomes["row_count_matches_total"].passed
    short = {o.name: o for o in evaluate(split, AXES, 3, metadata=_meta(), raw_rows=2)}
    assert not short["row_count_matches_total"].passed
    assert short["row_count_matches_total"].severity == "ERROR"
    lost = {o.name: o for o in evaluate(split, AXES, 3, metadata=_meta(), raw_rows=3)}
    assert not lost["rows_accounted_for"].passed and lost["rows_accounted_for"].failures == 1


def test_codes_in_class_inf_is_a_pandera_check_on_the_table() -> None:
    df = _table([("0", "00000", "1"), ("7", "00000", "1")]).to_pandas()
    outcome = codes_in_class_inf(df, _meta())
    assert not outcome.passed and "cat01_code isin" in outcome.description
    assert codes_in_class_inf(df.iloc[:1], _meta()).passed


def test_hierarchy_children_sum_to_parent_within_tolerance() -> None:
    assert children_of(_meta(), "cat01") == {"0": ["1", "2"]}
    assert children_of(_meta(), "area") == {}  # 01000 is not listed: tolerated, not compared
    ok = _table([("0", "00000", "10"), ("1", "00000", "4"), ("2", "00000", "6")]).to_pandas()
    result = check_hierarchy(ok, AXES, _meta())
    assert result.compared == 1 and result.failures == 0
    off = _table([("0", "00000", "100"), ("1", "00000", "4"), ("2", "00000", "6")]).to_pandas()
    outcome = hierarchy(off, AXES, _meta())
    assert not outcome.passed and outcome.severity == WARN
    assert "100" in outcome.sample_markdown()
    # a suppressed child makes the sum meaningless: not compared
    hidden = _table([("0", "00000", "100"), ("1", "00000", "X"), ("2", "00000", "6")])
    assert check_hierarchy(hidden.to_pandas(), AXES, _meta()).compared == 0
    assert hierarchy(off, AXES, _meta(), synthetic=True).passed


def test_report_lists_every_check_with_outcome_and_samples() -> None:
    table = _table([("0", "00000", "10"), ("9", "00000", "1")])
    split = split_rows(table, AXES, _meta())
    outcomes = evaluate(split, AXES, 5, metadata=_meta(), raw_rows=2)
    text = report_markdown("population t | 2020", outcomes, {"raw rows": 2}, split.counts)
    for name in CHECK_NAMES:
        assert f"`{name}`" in text
    assert "❌ failed" in text and "⚠️ warning" in text and "blocked" in text
    assert "## `codes_in_class_inf`: failing sample" in text


def test_recorded_sample_passes_every_check() -> None:
    raw = sample("getStatsData_0000020202_limit10.json")
    table = conform_pages([raw], ConformInput(dataset_id="0000020202", default_year=1981))
    axes = ["tab", "cat01", "area", "time"]
    from estat_assets.conform.table import _first_page_meta

    meta, _ = _first_page_meta(raw)
    outcomes = evaluate(split_rows(table, axes, meta), axes, 10, metadata=meta)
    assert all(o.passed for o in outcomes), [o.description for o in outcomes if not o.passed]


def test_duplicate_detection_packed_and_group_by_agree() -> None:
    import numpy as np

    from estat_assets.quality.quarantine import _repeats, _repeats_group_by

    a = pa.array(["x", "y", "x", "x", None, "y", "x"])
    b = pa.array(["1", "1", "1", "2", "1", "1", "1"])
    ok = pa.array([True, True, True, True, False, True, False])
    expected = [False, False, True, False, False, True, False]
    assert _repeats([a, b], ok, {}).tolist() == expected
    assert _repeats_group_by([a, b], ok).tolist() == expected
    assert isinstance(_repeats([a], ok, {}), np.ndarray)


def test_parents_from_levels_when_the_axis_has_no_parent_codes() -> None:
    meta = TableMetadata(
        TableInfo("t"),
        (
            ClassObj(
                "cat01",
                "年齢",
                (
                    ClassItem("00", "総数", "1"),
                    ClassItem("10", "0～14歳", "2"),
                    ClassItem("11", "0～4歳", "3"),
                    ClassItem("12", "5～14歳", "3"),
                    ClassItem("20", "15歳以上", "2"),
                ),
            ),
            ClassObj("tab", "表章項目", (ClassItem("1", "人口", ""),)),
        ),
    )
    assert children_of(meta, "cat01") == {"00": ["10", "20"], "10": ["11", "12"]}
    assert children_of(meta, "tab") == {}  # empty level: no hierarchy claimed


def test_a_parent_with_one_listed_child_is_never_compared() -> None:
    """An "of which" item is a part of its parent, not a breakdown (the GDP false alarm)."""
    import pandas as pd

    from estat_assets.estat.models import ClassItem, ClassObj, TableInfo, TableMetadata
    from estat_assets.quality.hierarchy import check_hierarchy

    items = (
        ClassItem(code="100", name="total", level="1"),
        ClassItem(code="110", name="of which", level="2", parent_code="100"),
        ClassItem(code="200", name="sum", level="1"),
        ClassItem(code="210", name="a", level="2", parent_code="200"),
        ClassItem(code="220", name="b", level="2", parent_code="200"),
    )
    meta = TableMetadata(TableInfo(id="0000000001"), (ClassObj(id="cat01", name="x", items=items),))
    df = pd.DataFrame(
        {"cat01_code": ["100", "110", "200", "210", "220"], "value": [10.0, 3.0, 20.0, 4.0, 4.0]}
    )
    result = check_hierarchy(df, ["cat01"], meta)
    assert result.single_child_parents == 1 and result.families == {"cat01": 1}
    assert result.compared == 1 and result.failures == 1  # 200 ≠ 4 + 4; 100 vs 110 is skipped
    assert list(result.mismatches["parent_code"]) == ["200"]
