"""Check functions: a conformed table in, a CheckOutcome out; Dagster wraps them at the edge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow as arrow
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
CHECK_BATCH_ROWS = 250_000  # rows of consecutive years checked in one call
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
ROW_COUNT = "row_count_matches_total"
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
    which = ", ".join(f"{axis} ({n} breakdowns)" for axis, n in result.families.items()) or "none"
    metadata = {"compared": result.compared, "single_child_parents": result.single_child_parents}
    skipped = (
        f"; {result.single_child_parents} single-child parent(s) not compared"
        if result.single_child_parents
        else ""
    )
    if not result.failures:
        return CheckOutcome(
            HIERARCHY,
            True,
            f"{result.compared} parent row(s) compared with the sum of their complete "
            f"breakdowns (axes: {which}): all within tolerance{skipped}",
            metadata=metadata,
            severity=WARN,
        )
    return CheckOutcome(
        HIERARCHY,
        False,
        f"{result.failures} of {result.compared} parent row(s) differ from the sum of their "
        f"children (axes: {which}){skipped}",
        failures=result.failures,
        sample=result.mismatches.astype(str),
        metadata=metadata,
        severity=WARN,
    )


def evaluate_slice(
    split: Split,
    axes: Sequence[str],
    metadata: TableMetadata | None = None,
    raw_rows: int | None = None,
    synthetic: bool = False,
) -> list[CheckOutcome]:
    """Every check that one year's slice answers by itself, after the row-level split.

    Keys (and so duplicates, and every parent/child family) never cross years, so checking a
    table a year at a time is exact. The row count against TOTAL_NUMBER belongs to the whole
    request: see :func:`row_count_outcome`.
    """
    raw_rows = split.raw_rows if raw_rows is None else raw_rows
    clean = split.clean
    # The row checks need only the keys and the value: convert just those to pandas.
    needed = [c for c in [*key_columns(axes), "year", "value"] if c in clean.column_names]
    df = clean.select(needed).to_pandas(strings_to_categorical=True)
    shape = pd.DataFrame({c: pd.Series([], dtype=object) for c in clean.column_names})
    return [
        required_columns(shape, axes),
        _with_quarantine(non_null_keys(df, axes), split, NULL_KEY),
        _with_quarantine(unique_keys(df, axes), split, DUPLICATE_KEY),
        _with_quarantine(codes_in_class_inf(df, metadata), split, CODE_NOT_IN_CLASS_INF),
        rows_accounted(split, raw_rows),
        hierarchy(df, axes, metadata, synthetic),
    ]


def row_count_outcome(raw_rows: int, expected_rows: int, conformed_rows: int) -> CheckOutcome:
    """Rows received = e-Stat's TOTAL_NUMBER for the request(s), exactly (ERROR: blocks)."""
    return CheckOutcome(
        name=ROW_COUNT,
        passed=raw_rows == expected_rows,
        description=f"{raw_rows} raw rows ({conformed_rows} conformed), "
        f"TOTAL_NUMBER {expected_rows}",
        failures=abs(raw_rows - expected_rows),
        metadata={"rows": raw_rows, "total_number": expected_rows},
    )


def evaluate(
    split: Split,
    axes: Sequence[str],
    expected_rows: int,
    metadata: TableMetadata | None = None,
    raw_rows: int | None = None,
    synthetic: bool = False,
) -> list[CheckOutcome]:
    """Every check of the conformed layer on one table (a slice that is a whole request)."""
    raw_rows = split.raw_rows if raw_rows is None else raw_rows
    outcomes = evaluate_slice(split, axes, metadata, raw_rows, synthetic)
    count = row_count_outcome(raw_rows, expected_rows, split.clean.num_rows)
    return _in_order([*outcomes, count])


def _in_order(outcomes: Sequence[CheckOutcome]) -> list[CheckOutcome]:
    rank = {name: i for i, name in enumerate(CHECK_NAMES)}
    return sorted(outcomes, key=lambda o: rank.get(o.name, len(rank)))


class YearChecks:
    """A dataset's year slices checked a batch of years at a time, then reported per slice.

    Why: each call pays a fixed cost (the pandas view, four Pandera schemas), which dominated
    long tables of few rows per year. Exact, because keys (and so duplicates and parent/child
    families) never cross years. A batch with any failure is checked again a year at a time, so
    failures still name their years; a passing batch is reported under its year range.
    """

    def __init__(
        self,
        axes: Sequence[str],
        metadata: TableMetadata | None,
        synthetic: bool = False,
        batch_rows: int = CHECK_BATCH_ROWS,
    ) -> None:
        self.axes, self.metadata, self.synthetic = axes, metadata, synthetic
        self.batch_rows = batch_rows
        self.per_slice: dict[str, list[CheckOutcome]] = {}
        self._pending: list[tuple[str, Split, int]] = []
        self._rows = 0

    def add(self, year: str, split: Split, raw_rows: int) -> None:
        if self._pending and self._rows + raw_rows > self.batch_rows:
            self._flush()
        self._pending.append((year, split, raw_rows))
        self._rows += raw_rows
        if self._rows >= self.batch_rows:  # full: check now, hold nothing while the next is split
            self._flush()

    def outcomes(self) -> dict[str, list[CheckOutcome]]:
        """The outcomes per slice label (a year, or ``first–last`` for a passing batch)."""
        self._flush()
        return self.per_slice

    def _one(self, split: Split, raw_rows: int) -> list[CheckOutcome]:
        return evaluate_slice(split, self.axes, self.metadata, raw_rows, self.synthetic)

    def _flush(self) -> None:
        pending, self._pending, self._rows = self._pending, [], 0
        if len(pending) > 1:
            try:
                batch = Split(
                    arrow.concat_tables([s.clean for _, s, _ in pending]),
                    arrow.concat_tables([s.quarantined for _, s, _ in pending]),
                    {
                        reason: sum(s.counts.get(reason, 0) for _, s, _ in pending)
                        for reason in {r for _, s, _ in pending for r in s.counts}
                    },
                )
            except arrow.ArrowInvalid:  # slices of different shapes: check them one by one
                batch = None
            if batch is not None:
                outcomes = self._one(batch, sum(r for _, _, r in pending))
                if all(o.passed for o in outcomes):
                    self.per_slice[f"{pending[0][0]}–{pending[-1][0]}"] = outcomes
                    return
        for year, split, raw_rows in pending:
            self.per_slice[year] = self._one(split, raw_rows)


def merge_outcomes(per_slice: Mapping[str, Sequence[CheckOutcome]]) -> list[CheckOutcome]:
    """One outcome per check for a dataset from the outcomes of its year slices.

    Passed when every slice passed; failures summed; the description and the sample say which
    years failed; ``failures_by_year`` in the metadata. Numeric metadata (``compared``,
    ``quarantined``) is summed.
    """
    by_name: dict[str, list[tuple[str, CheckOutcome]]] = {}
    for year, outcomes in per_slice.items():
        for o in outcomes:
            by_name.setdefault(o.name, []).append((year, o))
    merged = []
    for name, pairs in by_name.items():
        failed = [(y, o) for y, o in pairs if not o.passed]
        first = pairs[0][1]
        metadata: dict[str, Any] = {}
        for _, o in pairs:
            for key, value in o.metadata.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    metadata[key] = metadata.get(key, 0) + value
        if not failed:
            merged.append(
                CheckOutcome(
                    name, True, _passed_summary(pairs), metadata=metadata, severity=first.severity
                )
            )
            continue
        severity = ERROR if any(o.severity == ERROR for _, o in failed) else WARN
        shown = "; ".join(f"{y}: {o.description}" for y, o in failed[:5])
        more = f"; … and {len(failed) - 5} more years" if len(failed) > 5 else ""
        samples = [o.sample.assign(year_slice=y) for y, o in failed if o.sample is not None]
        sample = pd.concat(samples, ignore_index=True).head(SAMPLE_ROWS) if samples else None
        metadata["failures_by_year"] = {y: o.failures for y, o in failed}
        merged.append(
            CheckOutcome(
                name=name,
                passed=False,
                description=f"{len(failed)} of {len(pairs)} year(s) failed: {shown}{more}",
                failures=sum(o.failures for _, o in failed),
                sample=sample,
                metadata=metadata,
                severity=severity,
            )
        )
    return _in_order(merged)


def _passed_summary(pairs: Sequence[tuple[str, CheckOutcome]]) -> str:
    if len(pairs) == 1:
        return pairs[0][1].description
    return f"{pairs[0][1].description} (each of {len(pairs)} year slices)"


CHECK_NAMES = (
    "required_columns",
    "non_null_keys",
    "unique_keys",
    "codes_in_class_inf",
    ROW_COUNT,
    ACCOUNTED,
    HIERARCHY,
)
