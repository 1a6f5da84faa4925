"""Download one e-Stat table (or some of its years): the metadata, then its pages, verified.

This is the raw step's logic without Dagster or storage: pages go to a :class:`RequestSink`.

- The whole table is one request with no narrowing (fewest requests: 100,000 rows a page).
  A subset of years is requested with ``cdTime`` (at most 100 codes a request, e-Stat's limit).
- "No data" is never taken on trust where the table has data: an empty answer to a request the
  metadata says has rows (``OVERALL_TOTAL_NUMBER`` for the whole table, a second count request
  for a narrowed one) raises a retryable error instead of becoming an empty load.
- If e-Stat republishes the table between getMetaInfo and the pages, both are fetched again, so
  the metadata (codes, names, UPDATED_DATE) is always of the release the pages are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from estat_assets.estat.client import EStatClient, FetchProgress, FetchResult
from estat_assets.estat.errors import (
    EStatError,
    EStatNoDataAnswerError,
    TableRepublishedError,
)
from estat_assets.estat.models import TableMetadata
from estat_assets.estat.slicing import MAX_CODES_PER_REQUEST, time_filter, year_slices

META_ATTEMPTS = 3  # getMetaInfo + pages, when the table is republished between the two


class YearNotInTableError(EStatError, ValueError):
    """A requested year the table's own time axis does not have."""

    hint = "pick years from the table's time axis (estat-lake describe ID lists them)"


class RequestSink(Protocol):
    """Where pages go: one numbered request at a time (a ``PageSink`` per request)."""

    def write_page(self, page_no: int, raw: bytes) -> None: ...

    def reset(self) -> None: ...

    def begin_request(self, request_no: int) -> None: ...

    def reset_all(self) -> None: ...


@dataclass(frozen=True)
class RequestPlan:
    """One getStatsData request of a download: its number, the years it covers, its narrowing."""

    no: int
    years: tuple[str, ...]  # empty: the whole table
    filters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestResult:
    plan: RequestPlan
    fetch: FetchResult


@dataclass(frozen=True)
class Download:
    """A verified download: the metadata and every request of one release of the table."""

    meta: TableMetadata
    meta_raw: bytes
    meta_date: str | None  # e-Stat's RESULT.DATE of the getMetaInfo answer
    years: tuple[str, ...]  # the years covered (all of the table's when ``whole``)
    whole: bool  # the whole table was requested (so years it no longer has are withdrawn)
    requests: tuple[RequestResult, ...]
    restarts: int

    @property
    def total_number(self) -> int:
        return sum(r.fetch.total_number for r in self.requests)

    @property
    def rows(self) -> int:
        return sum(r.fetch.rows for r in self.requests)


def default_year(meta: TableMetadata) -> str:
    """The year of a table without a time axis: its survey/open date's, else ``0000``."""
    slices = year_slices(meta)
    return next(iter(slices)) if meta.axis("time") is None and slices else "0000"


def plan_requests(meta: TableMetadata, years: Sequence[str] | None) -> list[RequestPlan]:
    """The requests for ``years`` (``None``: the whole table, one unnarrowed request)."""
    if years is None or meta.axis("time") is None:
        if years is not None:
            only = default_year(meta)
            if set(years) != {only}:
                raise YearNotInTableError(
                    f"the table has no time axis: its only year is {only}, not {', '.join(years)}",
                    stats_data_id=meta.table.id,
                )
        return [RequestPlan(1, ())]
    slices = year_slices(meta)
    missing = [y for y in years if y not in slices]
    if missing:
        have = sorted(slices)
        shown = ", ".join(have[:8]) + (f" … {have[-1]}" if len(have) > 8 else "")
        raise YearNotInTableError(
            f"no time codes for {', '.join(missing)} in the table's CLASS_INF (years: {shown})",
            stats_data_id=meta.table.id,
        )
    plans: list[RequestPlan] = []
    batch: list[str] = []
    codes: list[str] = []

    def flush() -> None:
        if batch:
            plans.append(RequestPlan(len(plans) + 1, tuple(batch), time_filter(meta, codes)))
            batch.clear()
            codes.clear()

    for year in sorted(set(years)):
        year_codes = slices[year]
        if len(year_codes) > MAX_CODES_PER_REQUEST:  # a From/To range of its own
            flush()
            plans.append(RequestPlan(len(plans) + 1, (year,), time_filter(meta, year_codes)))
            continue
        if len(codes) + len(year_codes) > MAX_CODES_PER_REQUEST:
            flush()
        batch.append(year)
        codes.extend(year_codes)
    flush()
    return plans


def rows_hint(meta: TableMetadata, plan: RequestPlan) -> int | None:
    """Rows a request probably returns: the table's total times its share of time codes."""
    total = meta.table.overall_total_number
    time_axis = meta.axis("time")
    if not plan.years or not total or time_axis is None or not time_axis.items:
        return total
    slices = year_slices(meta)
    share = sum(len(slices[y]) for y in plan.years)
    return total * share // len(time_axis.items)


def _check_empty(client: EStatClient, meta: TableMetadata, plan: RequestPlan, got: FetchResult):
    """An empty answer stands only if independent evidence agrees that there is no data."""
    if got.total_number:
        return
    dataset_id = meta.table.id
    if not plan.filters:
        expected = meta.table.overall_total_number
        if expected:
            raise EStatNoDataAnswerError(
                f"getStatsData answered no data (STATUS {got.status}) for the whole table, but "
                f"its getMetaInfo says OVERALL_TOTAL_NUMBER {expected:,}",
                stats_data_id=dataset_id,
            )
        return
    count = client.count_answer(dataset_id, plan.filters)
    if count.rows:
        raise EStatNoDataAnswerError(
            f"getStatsData answered no data (STATUS {got.status}) for {', '.join(plan.years)}, "
            f"but a count request for the same years says {count.rows:,} rows",
            stats_data_id=dataset_id,
        )


def download(
    client: EStatClient,
    dataset_id: str,
    sink: RequestSink,
    years: Sequence[str] | None = None,
    *,
    log: Callable[[str], None] = lambda _: None,
    progress: Callable[[RequestPlan], Callable[[FetchProgress], None] | None] = lambda _: None,
) -> Download:
    """Fetch ``dataset_id`` (all years, or ``years``) into ``sink``; see the module doc."""
    restarts = 0
    for attempt in range(1, META_ATTEMPTS + 1):
        meta, meta_resp = client.get_meta_info(dataset_id)
        plans = plan_requests(meta, years)
        results: list[RequestResult] = []
        for plan in plans:
            sink.begin_request(plan.no)
            what = ", ".join(plan.years) if plan.years else "all years"
            hint = rows_hint(meta, plan)
            log(f"{dataset_id} ({what}): fetching about {hint or 0:,} rows")
            got = client.fetch_table(dataset_id, sink, plan.filters, progress(plan), rows_hint=hint)
            _check_empty(client, meta, plan, got)
            results.append(RequestResult(plan, got))
            restarts += got.restarts
        changed = [
            r.fetch.updated_date
            for r in results
            if r.fetch.total_number
            and r.fetch.updated_date
            and r.fetch.updated_date != meta.table.updated_date
        ]
        if not changed:
            covered = tuple(years) if years is not None else tuple(sorted(year_slices(meta)))
            if meta.axis("time") is None:
                covered = (default_year(meta),)
            return Download(
                meta=meta,
                meta_raw=meta_resp.raw,
                meta_date=meta_resp.date,
                years=covered,
                whole=years is None,
                requests=tuple(results),
                restarts=restarts + attempt - 1,
            )
        # Republished between getMetaInfo and the pages: metadata and pages must be of one release.
        sink.reset_all()
        msg = (
            f"getMetaInfo says UPDATED_DATE {meta.table.updated_date}, the pages {changed[0]}: "
            "the table was republished during the download"
        )
        if attempt == META_ATTEMPTS:
            raise TableRepublishedError(msg, stats_data_id=dataset_id)
        log(f"{dataset_id}: {msg}; fetching again")
    raise AssertionError("unreachable")
