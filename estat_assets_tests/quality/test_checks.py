"""Each check passes on clean data and fails, with the cause named, on the fault it guards."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.quality.checks import (
    ACCOUNTED,
    YearChecks,
    codes_in_class_inf,
    merge_outcomes,
    non_null_keys,
    required_columns,
    row_count_outcome,
    unique_keys,
)
from estat_assets.quality.quarantine import split_rows
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


def _year_splits(table: pa.Table) -> list[tuple[str, object, int]]:
    out = []
    for year in sorted(set(table.column("year").to_pylist())):
        part = table.filter(pa.compute.equal(table.column("year"), year))
        out.append((f"{year:04d}", split_rows(part, AXES), part.num_rows))
    return out


def test_years_are_checked_in_batches_and_failures_still_name_their_year() -> None:
    clean = _clean()
    slices = _year_splits(clean)
    assert len(slices) == 10  # fiscal years 1981-1990, a row each
    checks = YearChecks(AXES, None, batch_rows=4)
    for year, split, rows in slices:
        checks.add(year, split, rows)
    per_slice = checks.outcomes()
    assert list(per_slice) == ["1981–1984", "1985–1988", "1989–1990"]
    assert all(o.passed for outcomes in per_slice.values() for o in outcomes)
    merged = {o.name: o for o in merge_outcomes(per_slice)}
    assert merged[ACCOUNTED].metadata["conformed"] == 10
    # a repeated row in 1986 (2 rows there): its batch is checked again year by year
    repeated = pa.concat_tables([clean, clean.filter(pa.compute.equal(clean["year"], 1986))])
    checks = YearChecks(AXES, None, batch_rows=4)
    for year, split, rows in _year_splits(repeated):
        checks.add(year, split, rows)
    per_slice = checks.outcomes()
    assert list(per_slice) == ["1981–1984", "1985", "1986", "1987", "1988–1990"]
    merged = {o.name: o for o in merge_outcomes(per_slice)}
    unique = merged["unique_keys"]
    assert not unique.passed and unique.metadata["failures_by_year"] == {"1986": 1}
    assert merged[ACCOUNTED].passed and merged[ACCOUNTED].metadata["raw_rows"] == 11
    # the same outcome, year by year (a batch of one year) or all in one batch
    for batch_rows in (1, 100):
        checks = YearChecks(AXES, None, batch_rows=batch_rows)
        for year, split, rows in _year_splits(repeated):
            checks.add(year, split, rows)
        again = {o.name: o for o in merge_outcomes(checks.outcomes())}
        assert {n: (o.passed, o.failures) for n, o in again.items()} == {
            n: (o.passed, o.failures) for n, o in merged.items()
        }
