"""``<domain>/conformed``: the typed long table of one partition, its checks and its quarantine.

The checks run on the table in memory, inside the step that builds it. Row-level failures (a null
key, a code missing from CLASS_INF, a repeated key) go with their reason to the Iceberg table
``estat.<domain>_quarantine`` and never reach the domain table; their checks report a WARN.
Table-level failures (a missing column, rows ≠ TOTAL_NUMBER, conformed + quarantined ≠ raw rows)
are ERROR and blocking: the ``<domain>/table`` step does not run, so nothing unchecked reaches
Iceberg. The hierarchy check (children sum to their parent) only warns. Every run leaves a
Markdown report in the UI and in ``<root>/<domain>/conformed/dataset_id=X/year=Y/checks.md``.
"""

import dagster as dg
import orjson
import pyarrow as pa

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.conform.rules import parse_rules
from estat_assets.defs.partitions import domain_partitions
from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.models import parse_meta_info
from estat_assets.lake.iceberg import replace_partition
from estat_assets.lake.io_managers import LakeStorage, partition_dims
from estat_assets.lake.layout import partition_dir
from estat_assets.lake.quarantine import ensure_quarantine_table, quarantine_name, table_exists
from estat_assets.lake.rawstore import read_pages, read_run_file
from estat_assets.quality.checks import CHECK_NAMES, HIERARCHY, WARN, CheckOutcome, evaluate
from estat_assets.quality.quarantine import Split, quarantine_schema, split_rows
from estat_assets.quality.report import report_markdown

__all__ = ["CHECK_NAMES", "build_conformed_asset", "check_result"]

REPORT_FILE = "checks.md"
NON_BLOCKING = frozenset({HIERARCHY})
CHECK_DESCRIPTIONS = {
    "required_columns": "Every base column and a code and name column for each axis of the "
    "table's own CLASS_INF. Failure blocks the Iceberg write.",
    "non_null_keys": "dataset_id, every axis code and year are never null; rows that fail are "
    "quarantined (WARN).",
    "unique_keys": "One row per observation (dataset + every axis code); duplicates beyond the "
    "first are quarantined (WARN).",
    "codes_in_class_inf": "Every axis code exists in the table's own CLASS_INF metadata; other "
    "rows are quarantined (WARN).",
    "row_count_matches_total": "Rows received equal e-Stat's TOTAL_NUMBER for the partition's "
    "request. Failure blocks the Iceberg write.",
    "rows_accounted_for": "Conformed rows + quarantined rows = raw rows, exactly. Failure blocks "
    "the Iceberg write.",
    "hierarchy_sums": "Children sum to their parent within a tolerance where the table has "
    "levels (WARN only, never blocks).",
}


def check_result(outcome: CheckOutcome, partition: str) -> dg.AssetCheckResult:
    metadata: dict[str, dg.RawMetadataValue] = {
        "partition": partition,
        "failures": outcome.failures,
        **outcome.metadata,
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


def write_quarantine(
    iceberg: IcebergCatalogResource, domain: str, dataset_id: str, year: str, split: Split
) -> int:
    """Replace the partition's quarantine slice (also with nothing, if it had rows before)."""
    catalog = iceberg.catalog()
    identifier = iceberg.identifier(quarantine_name(domain))
    rows = split.quarantined
    if not rows.num_rows and not table_exists(catalog, identifier):
        return 0  # nothing to replace and nothing to write: no table needed yet
    ensure_quarantine_table(catalog, identifier, quarantine_schema())
    # The slice is the partition's: a row whose time code is foreign (or unreadable) still
    # belongs to it, so ``year`` is the partition's year here; ``time_code`` keeps the code.
    rows = rows.set_column(
        rows.schema.get_field_index("year"),
        "year",
        pa.repeat(pa.scalar(int(year), pa.int32()), rows.num_rows),
    )
    replace_partition(
        catalog, identifier, rows, dataset_id, int(year), {"estat.dataset_id": dataset_id}
    )
    return rows.num_rows


def build_conformed_asset(domain: DomainSpec) -> dg.AssetsDefinition:
    name = domain.name
    parts = domain_partitions(name)
    raw_key = dg.AssetKey([name, "raw"])
    conformed_key = dg.AssetKey([name, "conformed"])
    rules = parse_rules(domain.rules, where=f"domains.yaml: domain {name}: rules")

    @dg.asset(
        key=conformed_key,
        ins={"raw": dg.AssetIn(key=raw_key)},
        partitions_def=parts,
        io_manager_key="conformed_io_manager",
        group_name=name,
        kinds={"parquet"},
        check_specs=[
            dg.AssetCheckSpec(
                c,
                asset=conformed_key,
                blocking=c not in NON_BLOCKING,
                description=CHECK_DESCRIPTIONS.get(c),
            )
            for c in CHECK_NAMES
        ],
        description=f"{domain.title or name}: one typed long table per partition (Parquet).",
    )
    def conformed(
        context: dg.AssetExecutionContext,
        raw: dict,
        lake: LakeStorage,
        iceberg: IcebergCatalogResource,
    ):
        storage = lake.storage()
        dataset_id, year = partition_dims(context.partition_key)
        meta = parse_meta_info(orjson.loads(read_run_file(storage, raw, raw["meta_file"])))
        pages = read_pages(storage, raw) if raw["page_files"] else []
        table = conform_pages(
            pages,
            ConformInput(
                dataset_id=raw["dataset_id"],
                metadata=meta,
                run_id=context.run_id,
                source_updated_date=raw.get("updated_date"),
                default_year=int(raw["year"]),
                rules=rules,
            ),
        )
        del pages
        split = split_rows(table, meta.axes, meta)
        outcomes = evaluate(
            split,
            meta.axes,
            raw["total_number"],
            metadata=meta,
            raw_rows=table.num_rows,
            synthetic=bool(raw.get("synthetic")),
        )
        del table
        quarantined = write_quarantine(iceberg, name, dataset_id, year, split)
        partition = str(context.partition_key)
        semantic = [c for c in split.clean.column_names if c in {r.column for r in rules}]
        report = report_markdown(
            f"{name} {dataset_id} | {year}",
            outcomes,
            facts={
                "run": context.run_id,
                "title": raw.get("title") or "",
                "raw rows": split.raw_rows,
                "conformed rows": split.clean.num_rows,
                "quarantined rows": quarantined,
                "TOTAL_NUMBER": raw["total_number"],
                "semantic columns": ", ".join(semantic) or "none",
            },
            quarantine_counts={k: v for k, v in split.counts.items() if v},
        )
        report_path = storage.path(*partition_dir(name, "conformed", dataset_id, year), REPORT_FILE)
        storage.write_bytes(report_path, report.encode("utf-8"))
        clean = split.clean
        yield dg.Output(
            clean,
            metadata={
                "dagster/row_count": clean.num_rows,
                "axes": ", ".join(meta.axes),
                "semantic_columns": ", ".join(semantic),
                "numeric_values": clean.num_rows - clean.column("value").null_count,
                "quarantined_rows": quarantined,
                "quarantine_table": ".".join(iceberg.identifier(quarantine_name(name))),
                "checks_report": dg.MetadataValue.md(report),
                "checks_report_path": dg.MetadataValue.path(
                    storage.uri(*partition_dir(name, "conformed", dataset_id, year), REPORT_FILE)
                ),
                "preview": dg.MetadataValue.md(clean.slice(0, 5).to_pandas().to_markdown()),
            },
        )
        for outcome in outcomes:
            yield check_result(outcome, partition)

    return conformed
