"""Check functions: a conformed table in, a CheckOutcome out; Dagster wraps them at the edge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow

from estat_assets.conform.table import key_columns
from estat_assets.quality.schemas import (
    non_null_keys_schema,
    required_columns_schema,
    unique_keys_schema,
)

SAMPLE_ROWS = 10


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    failures: int = 0
    sample: pd.DataFrame | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

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
