"""``<domain>/raw``: the e-Stat pages of one (dataset, year), byte-exact, plus a manifest.

Pages are staged under the run's own folder as they arrive; the manifest written by the IO manager
publishes them. A failed fetch removes its pages, so nothing partial is ever visible.
"""

import time
from datetime import UTC, datetime

import dagster as dg

from estat_assets import CREDIT_NOTICE
from estat_assets.defs.partitions import domain_partitions
from estat_assets.defs.resources import EStatResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.errors import EStatError
from estat_assets.estat.slicing import time_filter, year_slices
from estat_assets.lake.io_managers import LakeStorage, partition_dims
from estat_assets.lake.rawstore import META_FILE, RawRunSink

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


def build_raw_asset(domain: DomainSpec) -> dg.AssetsDefinition:
    name = domain.name
    parts = domain_partitions(name)
    raw_key = dg.AssetKey([name, "raw"])

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

    return raw
