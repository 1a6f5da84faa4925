"""The asset chain of one domain: ``<domain>/raw`` → ``<domain>/conformed`` → ``<domain>/table``.

One Dagster partition ``(dataset, year)`` is one e-Stat request narrowed to that year's time codes,
one Parquet file, and one Iceberg slice replaced in one commit. The conformed step carries the
blocking checks: when one fails the Iceberg write never runs.
"""

import time
from datetime import UTC, datetime

import dagster as dg
import orjson
import pyarrow as pa

from estat_assets import CREDIT_NOTICE
from estat_assets.conform import ConformInput, conform_pages
from estat_assets.defs.partitions import domain_partitions
from estat_assets.defs.resources import EStatResource, IcebergCatalogResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.errors import EStatError
from estat_assets.estat.models import parse_meta_info
from estat_assets.estat.slicing import time_filter, year_slices
from estat_assets.lake.iceberg import ensure_table, replace_partition
from estat_assets.lake.io_managers import LakeStorage, partition_dims
from estat_assets.lake.rawstore import META_FILE, RawRunSink, read_pages, read_run_file
from estat_assets.quality.checks import CheckOutcome, run_all

CHECK_NAMES = ("required_columns", "non_null_keys", "unique_keys", "row_count_matches_total")
API_POOL = "estat_api"
RAW_RETRY = dg.RetryPolicy(
    max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _failure(exc: EStatError, dataset_id: str) -> dg.Failure:
    """A typed e-Stat error as a Dagster failure; permanent errors are not retried."""
    return dg.Failure(
        description=f"{dataset_id}: {exc}",
        metadata={"error": type(exc).__name__, "retryable": exc.retryable},
        allow_retries=exc.retryable,
    )


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


def build_domain_assets(domain: DomainSpec) -> list[dg.AssetsDefinition]:
    name = domain.name
    parts = domain_partitions(name)
    raw_key = dg.AssetKey([name, "raw"])
    conformed_key = dg.AssetKey([name, "conformed"])
    table_key = dg.AssetKey([name, "table"])

    @dg.asset(
        key=raw_key,
        partitions_def=parts,
        io_manager_key="raw_io_manager",
        group_name=name,
        kinds={"json"},
        pool=API_POOL,
        retry_policy=RAW_RETRY,
        description=(
            f"{domain.title or name}: the e-Stat getStatsData pages of one dataset and year, "
            f"byte-exact, plus the table's getMetaInfo and a manifest. {CREDIT_NOTICE}"
        ),
    )
    def raw(context: dg.AssetExecutionContext, estat: EStatResource, lake: LakeStorage):
        dataset_id, year = partition_dims(context.partition_key)
        storage = lake.storage()
        sink = RawRunSink(storage, name, dataset_id, year, context.run_id)
        started = time.monotonic()
        try:
            with estat.client() as client:
                meta, meta_resp = client.get_meta_info(dataset_id)
                slices = year_slices(meta)
                codes = slices.get(year)
                sink.write_meta(meta_resp.raw)
                if codes is None:
                    context.log.info(f"{dataset_id} has no time codes in {year}: empty slice")
                    filters: dict[str, str] = {}
                    result = None
                else:
                    filters = time_filter(meta, codes)

                    def progress(pages: int, rows: int, total: int) -> None:
                        context.log.info(f"{dataset_id}|{year}: {pages} pages, {rows}/{total} rows")

                    result = client.fetch_table(dataset_id, sink, filters, progress=progress)
        except EStatError as exc:
            sink.reset()
            raise _failure(exc, dataset_id) from None
        except BaseException:
            sink.reset()
            raise
        total = result.total_number if result else 0
        manifest = {
            "domain": name,
            "dataset_id": dataset_id,
            "year": year,
            "run_id": context.run_id,
            "params": result.params if result else {"statsDataId": dataset_id, **filters},
            "time_codes": codes or [],
            "total_number": total,
            "rows": result.rows if result else 0,
            "pages": result.pages if result else 0,
            "page_files": sink.page_files(),
            "meta_file": META_FILE,
            "updated_date": meta.table.updated_date,
            "overall_total_number": meta.table.overall_total_number,
            "title": meta.table.title,
            "statistics_name": meta.table.statistics_name,
            "synthetic": meta.table.synthetic,
            "fetched_at": (result.first_date if result else None) or meta_resp.date,
            "written_at": datetime.now(UTC).isoformat(),
            "requests": (result.requests if result else 0) + 1,
            "restarts": result.restarts if result else 0,
        }
        return dg.Output(
            manifest,
            metadata={
                "dagster/row_count": manifest["rows"],
                "expected_rows": total,
                "stored_rows": manifest["rows"],
                "pages": manifest["pages"],
                "updated_date": manifest["updated_date"] or "",
                "title": manifest["title"] or "",
                "synthetic": bool(manifest["synthetic"]),
                "request": dg.MetadataValue.json(manifest["params"]),
                "fetch_seconds": round(time.monotonic() - started, 3),
                "e-Stat": dg.MetadataValue.url(f"https://www.e-stat.go.jp/dbview?sid={dataset_id}"),
            },
        )

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

    @dg.asset(
        key=table_key,
        ins={"conformed": dg.AssetIn(key=conformed_key)},
        partitions_def=parts,
        group_name=name,
        kinds={"iceberg"},
        description=f"{domain.title or name}: the domain's Iceberg table, one slice per partition.",
    )
    def table(
        context: dg.AssetExecutionContext, conformed: pa.Table, iceberg: IcebergCatalogResource
    ) -> dg.MaterializeResult:
        dataset_id, year = partition_dims(context.partition_key)
        catalog = iceberg.catalog()
        identifier = iceberg.identifier(name)
        ensure_table(catalog, *identifier)
        updated = conformed.column("source_updated_date")[0].as_py() if conformed.num_rows else None
        tbl = replace_partition(
            catalog,
            identifier,
            conformed,
            dataset_id,
            int(year),
            snapshot_properties={
                "estat.dataset_id": dataset_id,
                "estat.year": year,
                "estat.updated_date": str(updated or ""),
                "dagster.run_id": context.run_id,
            },
        )
        snapshot = tbl.current_snapshot()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": conformed.num_rows,
                "table": ".".join(identifier),
                "snapshot_id": str(snapshot.snapshot_id) if snapshot else "",
                "metadata_location": tbl.metadata_location,
            }
        )

    return [raw, conformed, table]
