"""``<domain>/raw``: the e-Stat pages of one (dataset, year), byte-exact, plus a manifest.

Pages are staged under the run's own folder as they arrive; the manifest written by the IO manager
publishes them. A failed fetch removes its pages, so nothing partial is ever visible.
"""

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg

from estat_assets import CREDIT_NOTICE
from estat_assets.defs.partitions import domain_partitions
from estat_assets.defs.resources import EStatResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.client import FetchProgress
from estat_assets.estat.errors import EStatApiError, EStatError, TableRepublishedError
from estat_assets.estat.models import TableMetadata
from estat_assets.estat.slicing import time_filter, year_slices
from estat_assets.lake.io_managers import LakeStorage, partition_dims
from estat_assets.lake.rawstore import META_FILE, RawRunSink

API_POOL = "estat_api"
RETRIES_ENV = "ESTAT_RAW_RETRIES"  # step retries after the client gave up (default 3)
RETRY_DELAY_ENV = "ESTAT_RAW_RETRY_DELAY"  # seconds before the first step retry (default 10)
META_ATTEMPTS = 3  # getMetaInfo + pages, when the table is republished between the two
PROGRESS_EVERY_SECONDS = 10.0
PROGRESS_EVERY_PAGE_UP_TO = 20  # small tables: a line per page; larger ones: every 5 %


def raw_retry_policy(environ: dict[str, str] | None = None) -> dg.RetryPolicy:
    """The step retry policy: what the client could not get through in its own retries.

    Only retryable e-Stat errors (and unexpected exceptions) are retried: permanent ones raise
    ``Failure(allow_retries=False)``. Read when the definitions are built, not at import.
    """
    env = os.environ if environ is None else environ
    return dg.RetryPolicy(
        max_retries=int(env.get(RETRIES_ENV) or 3),
        delay=float(env.get(RETRY_DELAY_ENV) or 10),
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


RAW_RETRY = raw_retry_policy({})  # the production default


def _failure(exc: EStatError, dataset_id: str) -> dg.Failure:
    """A typed e-Stat error as a Dagster failure; permanent errors are not retried."""
    metadata: dict[str, dg.RawMetadataValue] = {
        "error": type(exc).__name__,
        "retryable": exc.retryable,
        "cause": exc.message,
    }
    if isinstance(exc, EStatApiError):
        metadata["estat_status"] = exc.status
        metadata["estat_error_msg"] = exc.error_msg
    return dg.Failure(
        description=f"{dataset_id}: {type(exc).__name__}: {exc}",
        metadata=metadata,
        allow_retries=exc.retryable,
    )


def rows_hint(meta: TableMetadata, codes: list[str]) -> int | None:
    """Rows a year slice probably has: the table's total times the slice's share of time codes."""
    total = meta.table.overall_total_number
    time_axis = meta.axis("time")
    if not total or not codes or time_axis is None or not time_axis.items:
        return total
    return total * len(codes) // len(time_axis.items)


def progress_logger(
    log: Callable[[str], None], label: str, clock: Callable[[], float] = time.monotonic
) -> Callable[[FetchProgress], None]:
    """Progress lines: every page of a small table, else every 5 % or 10 s, and always the last."""
    started = clock()
    last = {"at": started, "rows": -1}

    def report(p: FetchProgress) -> None:
        now = clock()
        final = p.pages_done >= p.pages_planned
        step = max(1, p.total_rows // 20)
        if not (
            final
            or p.pages_planned <= PROGRESS_EVERY_PAGE_UP_TO
            or p.rows_done - last["rows"] >= step
            or now - last["at"] >= PROGRESS_EVERY_SECONDS
        ):
            return
        last.update(at=now, rows=p.rows_done)
        pct = 100.0 * p.rows_done / p.total_rows if p.total_rows else 100.0
        rate = p.rows_done / max(now - started, 1e-6)
        log(
            f"{label}: {p.pages_done}/{p.pages_planned} pages, "
            f"{p.rows_done:,}/{p.total_rows:,} rows stored ({pct:.0f}%), {rate:,.0f} rows/s"
            + (" — complete" if final else "")
        )

    return report


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
        retry_policy=raw_retry_policy(),
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
                for attempt in range(1, META_ATTEMPTS + 1):
                    meta, meta_resp = client.get_meta_info(dataset_id)
                    slices = year_slices(meta)
                    codes = slices.get(year)
                    sink.write_meta(meta_resp.raw)
                    if codes is None:
                        context.log.info(f"{dataset_id} has no time codes in {year}: empty slice")
                        filters: dict[str, str] = {}
                        result = None
                        break
                    filters = time_filter(meta, codes)
                    hint = rows_hint(meta, codes)
                    context.log.info(
                        f"{dataset_id}|{year}: fetching about {hint or 0:,} rows "
                        f"({len(codes)} time codes, {client.concurrency} pages at a time)"
                    )
                    result = client.fetch_table(
                        dataset_id,
                        sink,
                        filters,
                        progress=progress_logger(context.log.info, f"{dataset_id}|{year}"),
                        rows_hint=hint,
                    )
                    page_date, meta_date = result.updated_date, meta.table.updated_date
                    if not result.total_number or not page_date or page_date == meta_date:
                        break
                    # republished between getMetaInfo and the pages: the metadata (codes, names,
                    # UPDATED_DATE) must be of the release the pages are, so fetch both again
                    sink.reset()
                    msg = (
                        f"{dataset_id}: getMetaInfo says UPDATED_DATE {meta.table.updated_date}, "
                        f"the pages {result.updated_date}"
                    )
                    if attempt == META_ATTEMPTS:
                        raise TableRepublishedError(msg)
                    context.log.warning(f"{msg}: the table was republished; fetching again")
        except EStatError as exc:
            sink.discard()
            raise _failure(exc, dataset_id) from None
        except BaseException:
            sink.discard()
            raise
        total = result.total_number if result else 0
        stored = result.rows if result else 0
        if stored != total:  # the client guarantees this; a manifest must never say otherwise
            sink.discard()
            raise dg.Failure(
                description=f"{dataset_id}|{year}: stored {stored} rows, e-Stat has {total}",
                allow_retries=True,
            )
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
            "requests": client.requests_made,  # getMetaInfo and every page attempt
            "restarts": (result.restarts if result else 0) + attempt - 1,
        }
        return dg.Output(
            manifest,
            metadata={
                "dagster/row_count": manifest["rows"],
                "expected_rows": total,  # e-Stat's TOTAL_NUMBER for this request
                "stored_rows": manifest["rows"],  # VALUE rows in the stored pages
                "missing_rows": total - manifest["rows"],
                "complete": manifest["rows"] == total,
                "pages": manifest["pages"],
                "restarts": manifest["restarts"],
                "requests": manifest["requests"],
                "updated_date": manifest["updated_date"] or "",
                "title": manifest["title"] or "",
                "synthetic": bool(manifest["synthetic"]),
                "request": dg.MetadataValue.json(manifest["params"]),
                "fetch_seconds": round(time.monotonic() - started, 3),
                "e-Stat": dg.MetadataValue.url(f"https://www.e-stat.go.jp/dbview?sid={dataset_id}"),
            },
        )

    return raw
