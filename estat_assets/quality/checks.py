"""Check functions: a conformed table in, a CheckOutcome out; Dagster wraps them at the edge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pa_compute

from estat_assets.conform.table import key_columns
from estat_assets.estat.models import TableMetadata
from estat_assets.quality.hierarchy import check_hierarchy
from estat_assets.quality.quarantine import (
    CODE_NOT_IN_CLASS_INF,
    DUPLICATE_KEY,
    NULL_KEY,
    Split,
)
from estat_assets.quality.schemas import (
    codes_in_class_inf_schema,
    non_null_keys_schema,
    required_columns_schema,
    unique_keys_schema,
)

SAMPLE_ROWS = 10
ERROR, WARN = "ERROR", "WARN"


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    failures: int = 0
    sample: pd.DataFrame | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    severity: str = ERROR  # WARN: reported, never blocks the Iceberg write

    def sample_markdown(self) -> str | None:
        if self.sample is None or self.sample.empty:
            return None
        return self.sample.head(SAMPLE_ROWS).to_markdown(index=False)


def _run_schema(name: str, schema: pa.DataFrameSchema, df: pd.DataFrame, ok: str) -> CheckOutcome:
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        cols = [c for c in ("column", "check", "failure_case", "index") if c in cases.columns]
        return CheckOutcome(
            name=name,
            passed=False,
            description=f"{len(cases)} failure(s): {schema_summary(cases)}",
            failures=len(cases),
            sample=cases[cols].astype(str),
        )
    return CheckOutcome(name=name, passed=True, description=ok)


def schema_summary(cases: pd.DataFrame) -> str:
    """ "area_code not_nullable: 3; missing column: area_name" — what failed, where, how often."""
    labels = []
    for _, case in cases.iterrows():
        if case.get("check") == "column_in_dataframe":
            labels.append(f"missing column {case.get('failure_case')}")
        else:
            labels.append(f"{case.get('column')} {case.get('check')}")
    counts = pd.Series(labels).value_counts(sort=False)
    return "; ".join(f"{label}: {n}" if n > 1 else label for label, n in counts.items())


def required_columns(df: pd.DataFrame, axes: Sequence[str]) -> CheckOutcome:
    return _run_schema(
        "required_columns", required_columns_schema(axes), df, "all required columns present"
    )


def non_null_keys(df: pd.DataFrame, axes: Sequence[str]) -> CheckOutcome:
    return _run_schema("non_null_keys", non_null_keys_schema(axes), df, "no null keys")


def unique_keys(df: pd.DataFrame, axes: Sequence[str]) -> CheckOutcome:
    if df.empty:
        return CheckOutcome("unique_keys", True, "no rows")
    outcome = _run_schema("unique_keys", unique_keys_schema(axes), df, "no duplicate keys")
    if outcome.passed:
        return outcome
    keys = [k for k in key_columns(axes) if k in df.columns]
    dups = df[df.duplicated(keys, keep=False)][keys]
    return CheckOutcome(
        name="unique_keys",
        passed=False,
        description=f"{len(dups)} rows share their key with another row",
        failures=len(dups),
        sample=dups.astype(str),
    )


def row_count(df: pd.DataFrame, expected: int) -> CheckOutcome:
    """Conformed rows must equal e-Stat's TOTAL_NUMBER for the partition's request."""
    n = len(df)
    return CheckOutcome(
        name="row_count_matches_total",
        passed=n == expected,
        description=f"{n} rows conformed, TOTAL_NUMBER {expected}",
        failures=abs(n - expected),
        metadata={"rows": n, "total_number": expected},
    )


def run_all(table: pa_arrow.Table, axes: Sequence[str], expected_rows: int) -> list[CheckOutcome]:
    """Every blocking check of the conformed layer, on one pandas view of the table."""
    df = table.to_pandas()
    return [
        required_columns(df, axes),
        non_null_keys(df, axes),
        unique_keys(df, axes),
        row_count(df, expected_rows),
    ]


def codes_in_class_inf(df: pd.DataFrame, metadata: TableMetadata | None) -> CheckOutcome:
    """Every axis code is in the table's own CLASS_INF (axes without a CLASS list are skipped)."""
    codes = {c.id: c.codes() for c in (metadata.classes if metadata else ()) if c.items}
    codes = {a: cs for a, cs in codes.items() if f"{a}_code" in df.columns}
    if not codes:
        return CheckOutcome("codes_in_class_inf", True, "no CLASS_INF to compare with")
    return _run_schema(
        "codes_in_class_inf",
        codes_in_class_inf_schema(codes),
        df,
        f"every code of {', '.join(codes)} is in CLASS_INF",
    )


# check name → the quarantine reason that feeds it
ROW_LEVEL = {
    "non_null_keys": NULL_KEY,
    "unique_keys": DUPLICATE_KEY,
    "codes_in_class_inf": CODE_NOT_IN_CLASS_INF,
}
HIERARCHY = "hierarchy_sums"
ACCOUNTED = "rows_accounted_for"


def _with_quarantine(outcome: CheckOutcome, split: Split, reason: str) -> CheckOutcome:
    """A row-level check: the clean table must pass (else ERROR: a bug); quarantined rows → WARN."""
    if not outcome.passed:
        return outcome
    n = split.counts.get(reason, 0)
    if not n:
        return outcome
    q = split.quarantined
    picked = q.filter(pa_compute.match_substring(q.column("quarantine_reason"), reason))
    cols = [c for c in q.column_names if c.endswith("_code") or c == "dataset_id"]
    cols += ["year", "value_raw", "quarantine_reason", "source_row"]
    sample = picked.slice(0, SAMPLE_ROWS).select(cols).to_pandas().astype(str)
    return CheckOutcome(
        name=outcome.name,
        passed=False,
        description=f"{n} row(s) quarantined ({reason}); the table holds none",
        failures=n,
        sample=sample,
        metadata={"quarantined": n},
        severity=WARN,
    )


def rows_accounted(split: Split, raw_rows: int) -> CheckOutcome:
    """conformed + quarantined = raw VALUE rows, exactly: nothing lost, nothing doubled."""
    clean, quarantined = split.clean.num_rows, split.quarantined.num_rows
    ok = clean + quarantined == raw_rows
    return CheckOutcome(
        name=ACCOUNTED,
        passed=ok,
        description=f"{clean} conformed + {quarantined} quarantined = {clean + quarantined}, "
        f"raw rows {raw_rows}",
        failures=abs(clean + quarantined - raw_rows),
        metadata={"conformed": clean, "quarantined": quarantined, "raw_rows": raw_rows},
    )


def hierarchy(
    df: pd.DataFrame,
    axes: Sequence[str],
    metadata: TableMetadata | None,
    synthetic: bool = False,
) -> CheckOutcome:
    if synthetic:
        return CheckOutcome(HIERARCHY, True, "skipped: the values are synthetic", severity=WARN)
    result = check_hierarchy(df, axes, metadata)
    if not result.failures:
        return CheckOutcome(
            HIERARCHY,
            True,
            f"{result.compared} parent(s) compared with their children: all within tolerance",
            metadata={"compared": result.compared},
            severity=WARN,
        )
    return CheckOutcome(
        HIERARCHY,
        False,
        f"{result.failures} of {result.compared} parent(s) differ from the sum of their children",
        failures=result.failures,
        sample=result.mismatches.astype(str),
        metadata={"compared": result.compared},
        severity=WARN,
    )


def evaluate(
    split: Split,
    axes: Sequence[str],
    expected_rows: int,
    metadata: TableMetadata | None = None,
    raw_rows: int | None = None,
    synthetic: bool = False,
) -> list[CheckOutcome]:
    """Every check of the conformed layer, after the row-level failures went to quarantine.

    Table-level checks (columns, row count, rows accounted for) are ERROR and block the write.
    Row-level checks run on the clean table (which must pass) and report the quarantined rows as
    a WARN failure; the hierarchy check is WARN only.
    """
    raw_rows = split.raw_rows if raw_rows is None else raw_rows
    clean = split.clean
    # The row checks need only the keys and the value: convert just those to pandas.
    needed = [c for c in [*key_columns(axes), "year", "value"] if c in clean.column_names]
    df = clean.select(needed).to_pandas()
    shape = pd.DataFrame({c: pd.Series([], dtype=object) for c in clean.column_names})
    outcomes = [
        required_columns(shape, axes),
        _with_quarantine(non_null_keys(df, axes), split, NULL_KEY),
        _with_quarantine(unique_keys(df, axes), split, DUPLICATE_KEY),
        _with_quarantine(codes_in_class_inf(df, metadata), split, CODE_NOT_IN_CLASS_INF),
    ]
    count = CheckOutcome(
        name="row_count_matches_total",
        passed=raw_rows == expected_rows,
        description=f"{raw_rows} raw rows ({split.clean.num_rows} conformed), "
        f"TOTAL_NUMBER {expected_rows}",
        failures=abs(raw_rows - expected_rows),
        metadata={"rows": raw_rows, "total_number": expected_rows},
    )
    outcomes += [count, rows_accounted(split, raw_rows), hierarchy(df, axes, metadata, synthetic)]
    return outcomes


CHECK_NAMES = (
    "required_columns",
    "non_null_keys",
    "unique_keys",
    "codes_in_class_inf",
    "row_count_matches_total",
    ACCOUNTED,
    HIERARCHY,
)
