"""``<domain>/raw``: the e-Stat pages of one table (or some of its years), byte-exact.

Pages are staged under the run's own folder as they arrive; the manifest written by the IO manager
publishes them. A failed fetch removes its pages, so nothing partial is ever visible. The fetch
logic (requests, verification, "no data" cross-checks, republish restarts) is
``estat/download.py``; this module is the Dagster edge around it.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError

from estat_assets import CREDIT_NOTICE
from estat_assets.defs.errors import failure_for
from estat_assets.defs.partitions import YEARS_TAG, domain_partitions
from estat_assets.defs.resources import EStatResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.client import FetchProgress
from estat_assets.estat.download import Download, RequestPlan, download
from estat_assets.estat.errors import EStatError
from estat_assets.estat.ids import check_dataset_id, parse_years
from estat_assets.lake.io_managers import LakeStorage
from estat_assets.lake.layout import META_FILE
from estat_assets.lake.rawstore import RawRunSink
from estat_assets.settings import Settings

API_POOL = "estat_api"
PROGRESS_EVERY_SECONDS = 10.0
PROGRESS_EVERY_PAGE_UP_TO = 20  # small tables: a line per page; larger ones: every 5 %


def raw_retry_policy(settings: Settings) -> dg.RetryPolicy:
    """Step retries for what the client could not get through in its own retries.

    Only retryable e-Stat errors (and unexpected exceptions) are retried: permanent ones raise
    ``Failure(allow_retries=False)``.
    """
    return dg.RetryPolicy(
        max_retries=settings.raw_retries,
        delay=settings.raw_retry_delay,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


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


def requested_years(tags: dict[str, str]) -> list[str] | None:
    """The ``estat/years`` tag as canonical years (``None``: the whole table)."""
    spec = tags.get(YEARS_TAG)
    return parse_years(spec) if spec else None  # strictly: " 1985" is refused, not trimmed


def raw_manifest(
    domain: str, run_id: str, got: Download, sink: RawRunSink, requests_made: int
) -> dict:
    """What the raw layer of a dataset holds: the release, every request and its page files."""
    table = got.meta.table
    return {
        "domain": domain,
        "dataset_id": table.id,
        "run_id": run_id,
        "whole": got.whole,
        "years": list(got.years),
        "requests": [
            {
                "no": r.plan.no,
                "years": list(r.plan.years),
                "params": r.fetch.params,
                "total_number": r.fetch.total_number,
                "rows": r.fetch.rows,
                "status": r.fetch.status,
                "pages": r.fetch.pages,
                "page_files": sink.page_files(r.plan.no),
            }
            for r in got.requests
        ],
        "total_number": got.total_number,
        "rows": got.rows,
        "meta_file": META_FILE,
        "updated_date": table.updated_date,
        "overall_total_number": table.overall_total_number,
        "title": table.title,
        "statistics_name": table.statistics_name,
        "synthetic": table.synthetic,
        "fetched_at": next((r.fetch.first_date for r in got.requests if r.fetch.first_date), None)
        or got.meta_date,
        "written_at": datetime.now(UTC).isoformat(),
        "requests_made": requests_made,  # getMetaInfo, counts and every page attempt
        "restarts": got.restarts,
    }


def build_raw_asset(domain: DomainSpec, settings: Settings) -> dg.AssetsDefinition:
    name = domain.name

    @dg.asset(
        key=dg.AssetKey([name, "raw"]),
        partitions_def=domain_partitions(name),
        io_manager_key="manifest_io_manager",
        group_name=name,
        kinds={"json"},
        pool=API_POOL,
        retry_policy=raw_retry_policy(settings),
        owners=domain.owners,
        tags={"layer": "raw", "domain": name},
        code_version="2",
        description=(
            f"{domain.title or name}: one e-Stat table (a partition per statsDataId) as e-Stat "
            "returned it: getMetaInfo and every getStatsData page, byte-exact, with a manifest. "
            f"The run tag `{YEARS_TAG}` (e.g. 2011 or 2010-2013) loads only some years. "
            f"{CREDIT_NOTICE}"
        ),
    )
    def raw(context: dg.AssetExecutionContext, estat: EStatResource, lake: LakeStorage):
        try:
            dataset_id = check_dataset_id(context.partition_key)
            years = requested_years(context.run.tags)
        except (EStatError, ValueError) as exc:
            raise failure_for(exc) from None
        storage = lake.storage()
        sink = RawRunSink(storage, name, dataset_id, context.run_id)
        started = time.monotonic()
        try:
            with estat.client() as client:
                got = download(
                    client,
                    dataset_id,
                    sink,
                    years,
                    log=context.log.info,
                    progress=lambda plan: progress_logger(
                        context.log.info, _label(dataset_id, plan)
                    ),
                )
                sink.write_meta(got.meta_raw)
                requests_made = client.requests_made
        except EStatError as exc:
            sink.discard()
            raise failure_for(exc) from None
        except (KeyboardInterrupt, DagsterExecutionInterruptedError):
            # Terminate (the UI's button, Ctrl-C) interrupts the fetch. Dagster retries an
            # interrupted step that has a retry policy, so the run would go on; a failure that
            # refuses retries lets it end CANCELED instead, with nothing published.
            sink.discard()
            raise dg.Failure(
                description=f"{dataset_id}: terminated during the e-Stat fetch; nothing was "
                "stored. Materialize it again to load it.",
                allow_retries=False,
            ) from None
        except BaseException:
            sink.discard()
            raise
        manifest = raw_manifest(name, context.run_id, got, sink, requests_made)
        if manifest["rows"] != manifest["total_number"]:  # the client guarantees it; never publish
            sink.discard()
            raise dg.Failure(
                description=f"{dataset_id}: stored {manifest['rows']} rows, e-Stat has "
                f"{manifest['total_number']}",
                allow_retries=True,
            )
        return dg.Output(
            manifest,
            metadata={
                "dagster/row_count": manifest["rows"],
                "title": manifest["title"] or "",
                "years": _years_text(manifest["years"]),
                "whole_table": manifest["whole"],
                "expected_rows": manifest["total_number"],  # e-Stat's TOTAL_NUMBER(s)
                "stored_rows": manifest["rows"],
                "complete": manifest["rows"] == manifest["total_number"],
                "requests": len(manifest["requests"]),
                "pages": sum(r["pages"] for r in manifest["requests"]),
                "restarts": manifest["restarts"],
                "requests_made": manifest["requests_made"],
                "updated_date": manifest["updated_date"] or "",
                "synthetic": bool(manifest["synthetic"]),
                "request": dg.MetadataValue.json([r["params"] for r in manifest["requests"]]),
                "fetch_seconds": round(time.monotonic() - started, 3),
                "e-Stat": dg.MetadataValue.url(estat_url(dataset_id)),
            },
        )

    return raw


def estat_url(dataset_id: str) -> str:
    return f"https://www.e-stat.go.jp/dbview?sid={dataset_id}"


def _label(dataset_id: str, plan: RequestPlan) -> str:
    return f"{dataset_id} ({_years_text(list(plan.years)) if plan.years else 'all years'})"


def _years_text(years: list[str]) -> str:
    if len(years) <= 3:
        return ", ".join(years)
    return f"{years[0]}–{years[-1]} ({len(years)} years)"
