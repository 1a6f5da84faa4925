"""``<domain>/conformed``: the typed long table of one partition, with its blocking checks.

The checks run on the table in memory, inside the step that builds it, and are blocking: when one
fails the ``<domain>/table`` step does not run, so nothing unchecked reaches Iceberg.
"""

import dagster as dg
import orjson

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.defs.partitions import domain_partitions
from estat_assets.domains import DomainSpec
from estat_assets.estat.models import parse_meta_info
from estat_assets.lake.io_managers import LakeStorage
from estat_assets.lake.rawstore import read_pages, read_run_file
from estat_assets.quality.checks import CheckOutcome, run_all

CHECK_NAMES = ("required_columns", "non_null_keys", "unique_keys", "row_count_matches_total")


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
    )


def build_conformed_asset(domain: DomainSpec) -> dg.AssetsDefinition:
    name = domain.name
    parts = domain_partitions(name)
    raw_key = dg.AssetKey([name, "raw"])
    conformed_key = dg.AssetKey([name, "conformed"])

    @dg.asset(
        key=conformed_key,
        ins={"raw": dg.AssetIn(key=raw_key)},
        partitions_def=parts,
        io_manager_key="conformed_io_manager",
        group_name=name,
        kinds={"parquet"},
        check_specs=[dg.AssetCheckSpec(c, asset=conformed_key, blocking=True) for c in CHECK_NAMES],
        description=f"{domain.title or name}: one typed long table per partition (Parquet).",
    )
    def conformed(context: dg.AssetExecutionContext, raw: dict, lake: LakeStorage):
        storage = lake.storage()
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
            ),
        )
        yield dg.Output(
            table,
            metadata={
                "dagster/row_count": table.num_rows,
                "axes": ", ".join(meta.axes),
                "numeric_values": table.num_rows - table.column("value").null_count,
                "preview": dg.MetadataValue.md(table.slice(0, 5).to_pandas().to_markdown()),
            },
        )
        for outcome in run_all(table, meta.axes, raw["total_number"]):
            yield check_result(outcome, str(context.partition_key))

    return conformed
