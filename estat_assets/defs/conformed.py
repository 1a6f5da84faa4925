"""``<domain>/conformed``: a dataset as typed long tables, a Parquet file per year, and its checks.

The raw pages are conformed a batch at a time and bucketed by year (``conform/years.py``); each
year is then split into clean rows and quarantined rows, and checked with its neighbours in batches
of up to 250,000 rows (a key, and so every duplicate and every parent/child family, lies within one
year, so this is exact; a batch that fails is checked again a year at a time). The checks are
reported once per dataset partition, with the failing years in their metadata.

Row-level failures (a null key, a code missing from CLASS_INF, a repeated key) are held back with
their reason (``quarantine.parquet``, then ``estat.<domain>_quarantine``) and never reach the
domain table; those checks WARN. Table-level failures (a missing column, rows ≠ TOTAL_NUMBER,
conformed + quarantined ≠ raw rows) are ERROR and blocking: ``<domain>/table`` does not run, so
nothing unchecked reaches Iceberg. The hierarchy check only warns. A Markdown report is shown in
the UI and kept at ``<domain>/conformed/dataset_id=X/checks.md``.
"""

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import orjson

from estat_assets.conform import ConformInput
from estat_assets.conform.rules import match_axes, parse_rules
from estat_assets.conform.stream import iter_conformed
from estat_assets.conform.table import empty_conformed
from estat_assets.conform.years import YearBuckets
from estat_assets.defs.metadata import column_schema
from estat_assets.defs.partitions import domain_partitions
from estat_assets.domains import DomainSpec
from estat_assets.estat.download import default_year
from estat_assets.estat.ids import check_dataset_id
from estat_assets.estat.models import TableMetadata, parse_meta_info
from estat_assets.lake.conformedstore import write_report, write_year
from estat_assets.lake.io_managers import LakeStorage
from estat_assets.lake.rawstore import page_files, read_run_file
from estat_assets.lake.storage import Storage
from estat_assets.quality.checks import (
    ACCOUNTED,
    CHECK_NAMES,
    ROW_COUNT,
    WARN,
    CheckOutcome,
    YearChecks,
    evaluate_slice,
    merge_outcomes,
    row_count_outcome,
)
from estat_assets.quality.quarantine import split_rows
from estat_assets.quality.report import report_markdown

__all__ = ["CHECK_NAMES", "build_conformed_asset", "check_result", "conform_dataset"]

# Only table-level checks block: a failure means the data must not reach Iceberg. Row-level checks
# quarantine rows and WARN; the hierarchy check WARNs. The UI's blocking flag says the same.
BLOCKING = frozenset({"required_columns", ROW_COUNT, ACCOUNTED})
CHECK_DESCRIPTIONS = {
    "required_columns": "Every base column and a code and name column for each axis of the "
    "table's own CLASS_INF. ERROR: blocks the Iceberg write.",
    "non_null_keys": "dataset_id, every axis code and year are never null; rows that fail are "
    "quarantined (WARN).",
    "unique_keys": "One row per observation (dataset + every axis code); repeats after the "
    "first are quarantined (WARN).",
    "codes_in_class_inf": "Every axis code exists in the table's own CLASS_INF metadata; other "
    "rows are quarantined (WARN).",
    ROW_COUNT: "Rows received equal e-Stat's TOTAL_NUMBER for the run's request(s). ERROR: "
    "blocks the Iceberg write.",
    ACCOUNTED: "Conformed rows + quarantined rows = raw rows, exactly, in every year. ERROR: "
    "blocks the Iceberg write.",
    "hierarchy_sums": "Children sum to their parent within a tolerance, for complete breakdowns "
    "(two or more children) of axes with levels (WARN only, never blocks).",
}


def check_specs(key: dg.AssetKey, parts: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """The conformed checks, partitioned like the asset so each dataset keeps its own result.

    Partitioned checks are a preview feature of Dagster 1.13; we rely only on what is verified
    (single-partition runs record one evaluation per partition) and silence its warning here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            dg.AssetCheckSpec(
                name,
                asset=key,
                blocking=name in BLOCKING,
                description=CHECK_DESCRIPTIONS.get(name),
                partitions_def=parts,
            )
            for name in CHECK_NAMES
        ]


def check_result(outcome: CheckOutcome, dataset_id: str) -> dg.AssetCheckResult:
    metadata: dict[str, dg.RawMetadataValue] = {
        "dataset_id": dataset_id,
        "failures": outcome.failures,
        **{
            k: v if not isinstance(v, dict) else dg.MetadataValue.json(v)
            for k, v in outcome.metadata.items()
        },
    }
    sample = outcome.sample_markdown()
    if sample:
        metadata["failing_sample"] = dg.MetadataValue.md(sample)
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=outcome.passed,
        description=outcome.description,
        metadata=metadata,
        severity=(
            dg.AssetCheckSeverity.WARN if outcome.severity == WARN else dg.AssetCheckSeverity.ERROR
        ),
    )


def _pages(storage: Storage, manifest: dict) -> Iterator[bytes]:
    for name in page_files(manifest):
        yield read_run_file(storage, manifest, name)


def conform_dataset(
    storage: Storage,
    domain: str,
    raw: dict,
    meta: TableMetadata,
    run_id: str,
    rules,
    spill_dir: Path,
) -> tuple[dict, list[CheckOutcome], dict[str, int]]:
    """Conform, split and check a dataset a year at a time; write each year's files.

    Returns the per-year manifest entries, the dataset's check outcomes and the quarantine
    counts by reason.
    """
    dataset_id = raw["dataset_id"]
    inp = ConformInput(
        dataset_id=dataset_id,
        metadata=meta,
        run_id=run_id,
        source_updated_date=raw.get("updated_date"),
        default_year=int(default_year(meta)),
        rules=rules,
    )
    buckets = YearBuckets(spill_dir)
    for batch in iter_conformed(_pages(storage, raw), inp):
        buckets.add(batch)
    entries: dict[str, dict] = {}
    reasons: dict[str, int] = {}
    synthetic = bool(raw.get("synthetic"))
    checks = YearChecks(meta.axes, meta, synthetic)
    for year_int, table in buckets.iter_years():
        year = f"{year_int:04d}"
        split = split_rows(table, meta.axes, meta)
        raw_rows = table.num_rows
        del table
        checks.add(year, split, raw_rows)
        entry = write_year(storage, domain, dataset_id, year, split.clean, split.quarantined)
        entries[year] = {**entry, "raw_rows": raw_rows}
        for reason, n in split.counts.items():
            reasons[reason] = reasons.get(reason, 0) + n
    per_year = checks.outcomes()
    if not per_year:  # nothing came back (and that was confirmed): the checks still report
        empty = split_rows(empty_conformed(meta, rules), meta.axes, meta)
        per_year["-"] = evaluate_slice(empty, meta.axes, meta, 0, synthetic)
    raw_rows = sum(e["raw_rows"] for e in entries.values())
    clean_rows = sum(e["rows"] for e in entries.values())
    outcomes = merge_outcomes(per_year)
    outcomes.append(row_count_outcome(raw_rows, int(raw["total_number"]), clean_rows))
    order = {n: i for i, n in enumerate(CHECK_NAMES)}
    outcomes.sort(key=lambda o: order[o.name])
    return entries, outcomes, reasons


def build_conformed_asset(domain: DomainSpec, lake_home: Path | None = None):
    name = domain.name
    parts = domain_partitions(name)
    conformed_key = dg.AssetKey([name, "conformed"])
    rules = parse_rules(domain.rules, where=f"domains.yaml: domain {name}: rules")

    @dg.asset(
        key=conformed_key,
        ins={"raw": dg.AssetIn(key=dg.AssetKey([name, "raw"]))},
        partitions_def=parts,
        io_manager_key="manifest_io_manager",
        group_name=name,
        kinds={"parquet"},
        owners=domain.owners,
        tags={"layer": "conformed", "domain": name},
        code_version="2",
        check_specs=check_specs(conformed_key, parts),
        metadata={"dagster/column_schema": column_schema()},
        description=(
            f"{domain.title or name}: one typed long table per dataset, a Parquet file per year "
            "(Hive layout), checked; rows a row-level check fails are held back with their "
            "reason."
        ),
    )
    def conformed(context: dg.AssetExecutionContext, raw: dict, lake: LakeStorage):
        storage = lake.storage()
        dataset_id = check_dataset_id(context.partition_key)
        meta = parse_meta_info(orjson.loads(read_run_file(storage, raw, raw["meta_file"])))
        with tempfile.TemporaryDirectory(prefix="estat-conform-", dir=lake_home) as spill:
            entries, outcomes, reasons = conform_dataset(
                storage, name, raw, meta, context.run_id, rules, Path(spill)
            )
        clean_rows = sum(e["rows"] for e in entries.values())
        quarantined = sum(e["quarantined"] for e in entries.values())
        semantic = sorted(match_axes(rules, meta.classes))
        report = report_markdown(
            f"{name} {dataset_id}",
            outcomes,
            facts={
                "run": context.run_id,
                "title": raw.get("title") or "",
                "release (UPDATED_DATE)": raw.get("updated_date") or "",
                "years": f"{len(entries)} ({', '.join(sorted(entries)[:3])}"
                + (" …)" if len(entries) > 3 else ")"),
                "raw rows": sum(e["raw_rows"] for e in entries.values()),
                "conformed rows": clean_rows,
                "quarantined rows": quarantined,
                "TOTAL_NUMBER": raw["total_number"],
                "semantic columns": ", ".join(semantic) or "none",
            },
            quarantine_counts={k: v for k, v in reasons.items() if v},
        )
        report_uri = write_report(storage, name, dataset_id, report)
        manifest = {
            "domain": name,
            "dataset_id": dataset_id,
            "run_id": context.run_id,
            "whole": bool(raw.get("whole")),
            "updated_date": raw.get("updated_date"),
            "total_number": raw["total_number"],
            "years": entries,
            "rows": clean_rows,
            "quarantined": quarantined,
            "axes": meta.axes,
            "checks": {o.name: o.passed for o in outcomes},
        }
        yield dg.Output(
            manifest,
            metadata={
                "dagster/partition_row_count": clean_rows,
                "title": raw.get("title") or "",
                "years": len(entries),
                "axes": ", ".join(meta.axes),
                "semantic_columns": ", ".join(semantic),
                "quarantined_rows": quarantined,
                "checks_report": dg.MetadataValue.md(report),
                "checks_report_path": dg.MetadataValue.path(report_uri),
            },
        )
        for outcome in outcomes:
            yield check_result(outcome, dataset_id)
        broken = [
            o.name
            for o in outcomes
            if not o.passed and o.severity != WARN and o.name not in BLOCKING
        ]
        if broken:  # the clean rows fail a row-level check: a bug, never load them
            raise dg.Failure(
                description=f"{dataset_id}: clean rows still fail {', '.join(broken)}; "
                "not loading them (please report this)",
                allow_retries=False,
            )

    return conformed
