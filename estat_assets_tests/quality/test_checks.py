"""Each check passes on clean data and fails, with the cause named, on the fault it guards."""

from __future__ import annotations

import pyarrow as pa

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.quality.checks import (
    codes_in_class_inf,
    non_null_keys,
    required_columns,
    row_count_outcome,
    unique_keys,
)
from estat_assets_tests.factories import sample

AXES = ["tab", "cat01", "area", "time"]


def _clean() -> pa.Table:
    return conform_pages(
        [sample("getStatsData_0000020202_limit10.json")],
        ConformInput(dataset_id="0000020202", run_id="r"),
    )


def test_all_pass_on_clean_sample() -> None:
    df = _clean().to_pandas()
    outcomes = [
        required_columns(df, AXES),
        non_null_keys(df, AXES),
        unique_keys(df, AXES),
        codes_in_class_inf(df, None),
        row_count_outcome(len(df), 10, len(df)),
    ]
    assert all(o.passed for o in outcomes), [o.description for o in outcomes]


def test_missing_axis_column_fails_required_columns() -> None:
    df = _clean().drop_columns(["area_name"]).to_pandas()
    outcome = required_columns(df, AXES)
    assert not outcome.passed and "area_name" in outcome.description


def test_null_key_fails() -> None:
    t = _clean()
    codes = t.column("area_code").to_pylist()
    codes[3] = None
    df = t.set_column(
        t.schema.get_field_index("area_code"), "area_code", pa.array(codes)
    ).to_pandas()
    outcome = non_null_keys(df, AXES)
    assert not outcome.passed and outcome.failures == 1
    assert "area_code" in outcome.sample_markdown()


def test_duplicate_keys_fail_with_the_rows() -> None:
    t = _clean()
    df = pa.concat_tables([t, t.slice(0, 2)]).to_pandas()
    outcome = unique_keys(df, AXES)
    assert not outcome.passed and outcome.failures == 4  # two keys, each twice
    assert "1981100000" in outcome.sample_markdown()


def test_row_count_against_total_number() -> None:
    assert row_count_outcome(10, 10, 10).passed
    bad = row_count_outcome(10, 11, 10)
    assert not bad.passed and bad.metadata == {"rows": 10, "total_number": 11}
