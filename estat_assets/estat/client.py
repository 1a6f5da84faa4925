"""The e-Stat API v3 client (JSON endpoints) on httpx.

Why it looks like this:
- ``RESULT.STATUS`` is checked on every response, because e-Stat reports errors with HTTP 200.
- Pages are planned from ``TOTAL_NUMBER`` and fetched concurrently (bounded, rate-limited), each one
  verified against the request and the first page, and handed to a sink as raw bytes as it arrives,
  so memory is bounded by the pages in flight and raw storage stays byte-exact.
- Only what can succeed later is retried (HTTP 5xx/429, timeouts, resets, STATUS 2xx, damaged
  bodies); STATUS 1xx fails at once with e-Stat's own message.
- The ``appId`` never appears in logs, errors or returned parameters.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from estat_assets.estat.errors import (
    EStatError,
    EStatHttpError,
    EStatResponseError,
    InvalidDatasetIdError,
    PageMismatchError,
    TableRepublishedError,
    error_for_status,
)
from estat_assets.estat.models import TableInfo, TableMetadata, parse_meta_info
from estat_assets.estat.redact import public_params, redact, silence_http_loggers
from estat_assets.estat.shape import as_dict, as_list, root_of

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.e-stat.go.jp/rest/3.0/app/json"
MAX_PAGE_ROWS = 100_000
STATUS_OK = 0
STATUS_NO_DATA = 1
STATUS_NO_DATA_BULK = 2
_DATASET_ID = re.compile(r"^\d{10}$")


def check_dataset_id(stats_data_id: str) -> str:
    """Refuse ids that cannot be e-Stat table ids before spending a request on them."""
    if not isinstance(stats_data_id, str) or not _DATASET_ID.match(stats_data_id):
        raise InvalidDatasetIdError(f"{stats_data_id!r} is not a valid statsDataId")
    return stats_data_id


@dataclass(frozen=True)
class RetryConfig:
    """Exponential backoff with full jitter, capped; ``Retry-After`` wins when e-Stat sends it."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    restarts: int = 2  # whole-table restarts when pages disagree (republished table)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class RateLimiter:
    """A global minimum spacing between request starts, shared by all worker threads."""

    def __init__(
        self,
        per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 0.0 if not per_second else 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def wait(self) -> float:
        """Block until this request may start; returns the start time it was given."""
        if not self._interval:
            return self._clock()
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)
        return start


@dataclass(frozen=True)
class Response:
    """One e-Stat response: the bytes exactly as received and the parsed body under its root."""

    raw: bytes
    root: str
    body: dict[str, Any]  # for getStatsData pages: everything but DATA_INF (see scan_page)
    status: int
    rows: int | None = None  # VALUE rows, when counted without parsing DATA_INF

    @property
    def date(self) -> str | None:
        return as_dict(self.body.get("RESULT")).get("DATE")


@dataclass(frozen=True)
class PageInfo:
    """What a getStatsData page says about itself."""

    total: int
    from_number: int | None
    to_number: int | None
    next_key: int | None
    rows: int
    updated_date: str | None
    overall_total: int | None


_DATA_INF = b'"DATA_INF":'
_VALUE = b'"VALUE":'
_NOTE = b'"NOTE":'
_CELL = b'"$":'


def scan_page(raw: bytes) -> tuple[dict[str, Any], int] | None:
    """Parse a getStatsData page cheaply: everything before ``DATA_INF``, and count its VALUEs.

    A page is ``{"GET_STATS_DATA":{"RESULT":…,"PARAMETER":…,"STATISTICAL_DATA":{"RESULT_INF":…,
    "TABLE_INF":…,"DATA_INF":{"NOTE":[…],"VALUE":[…]}}}}``. Only the head is parsed (a few kB);
    the VALUEs are counted by their ``"$":`` keys (a key cannot occur inside a JSON string, where
    ``"`` is escaped), and the body must end where a complete page ends, so a truncated body is
    caught. ``None`` when the page does not have this exact shape: the caller parses it fully.
    Pages are stored as received and fully parsed by the conform step.
    """
    at = raw.find(_DATA_INF)
    if at < 0:
        return None
    head_bytes = raw[:at].rstrip()
    if not head_bytes.endswith(b","):
        return None
    try:
        document = orjson.loads(head_bytes[:-1] + b"}}}")
    except orjson.JSONDecodeError:
        return None
    values = raw.find(_VALUE, at)
    tail = raw[-8:].rstrip()
    if values < 0 or raw.find(_NOTE, values) >= 0:
        return None
    if not (tail.endswith(b"]}}}}") or tail.endswith(b"}}}}}")):
        return None  # cut short (or a shape we do not know): let the full parse decide
    return document, raw.count(_CELL, values)


def page_info(response: Response) -> PageInfo:
    """Read RESULT_INF, TABLE_INF and the VALUE count of a getStatsData page."""
    data = as_dict(response.body.get("STATISTICAL_DATA"))
    result = as_dict(data.get("RESULT_INF"))
    table = TableInfo.parse(data.get("TABLE_INF"))

    def num(key: str) -> int | None:
        v = result.get(key)
        return None if v in (None, "") else int(v)

    if response.rows is not None:
        rows = response.rows
    else:
        rows = len(as_list(as_dict(data.get("DATA_INF")).get("VALUE")))
    return PageInfo(
        total=num("TOTAL_NUMBER") or 0,
        from_number=num("FROM_NUMBER"),
        to_number=num("TO_NUMBER"),
        next_key=num("NEXT_KEY"),
        rows=rows,
        updated_date=table.updated_date,
        overall_total=table.overall_total_number,
    )


class PageSink(Protocol):
    """Where fetched pages go (raw storage). ``reset`` discards everything of a failed attempt."""

    def write_page(self, page_no: int, raw: bytes) -> None: ...

    def reset(self) -> None: ...


@dataclass
class MemorySink:
    """A sink that keeps pages in memory (tests, the CLI)."""

    pages: dict[int, bytes] = field(default_factory=dict)

    def write_page(self, page_no: int, raw: bytes) -> None:
        self.pages[page_no] = raw

    def reset(self) -> None:
        self.pages.clear()


@dataclass(frozen=True)
class FetchResult:
    """A complete, verified table fetch."""

    stats_data_id: str
    params: dict[str, str]  # public: without the appId
    total_number: int
    pages: int
    rows: int
    updated_date: str | None
    overall_total_number: int | None
    first_date: str | None
    restarts: int
    requests: int


@dataclass(frozen=True)
class FetchProgress:
    """How far a fetch is: pages and rows stored so far out of those planned."""

    stats_data_id: str
    pages_planned: int
    pages_done: int
    rows_done: int
    total_rows: int


ProgressFn = Callable[[FetchProgress], None]


class EStatClient:
    """Synchronous, thread-safe client. Use as a context manager or call ``close()``."""

    def __init__(
        self,
        app_id: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 60.0,
        lang: str = "J",
        page_size: int = MAX_PAGE_ROWS,
        concurrency: int = 4,
        rate_limit: float | None = None,
        retry: RetryConfig | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not app_id:
            raise EStatError(
                "no e-Stat appId configured", hint="set ESTAT_APP_ID (or use the local emulator)"
            )
        silence_http_loggers()
        self._app_id = app_id
        self.base_url = base_url.rstrip("/")
        self.lang = lang
        self.page_size = max(1, min(page_size, MAX_PAGE_ROWS))
        self.concurrency = max(1, concurrency)
        self.retry = retry or RetryConfig()
        self._limiter = RateLimiter(rate_limit)
        self._sleep = sleep
        self._requests = 0
        self._count_lock = threading.Lock()
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"Accept-Encoding": "gzip", "User-Agent": "estat-lake/0.1"},
            limits=httpx.Limits(max_connections=self.concurrency + 2),
        )

    def __enter__(self) -> EStatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def requests_made(self) -> int:
        return self._requests

    # ---- one request -------------------------------------------------------------------

    def _once(self, endpoint: str, params: dict[str, Any]) -> Response:
        """One HTTP request, classified into a Response or a typed error (never chained)."""
        query = {"appId": self._app_id, "lang": self.lang, **params}
        url = f"{self.base_url}/{endpoint}"
        self._limiter.wait()
        with self._count_lock:
            self._requests += 1
        error: EStatError | None = None
        try:
            # Streamed and joined here, so no httpx object owns the body: an httpx.Response can
            # sit in a reference cycle until the GC runs, and with it a 10 MB page.
            with self._http.stream("GET", url, params=query) as resp:
                raw = b"".join(resp.iter_bytes())
        except httpx.TimeoutException as exc:
            error = EStatHttpError(f"{endpoint}: timed out ({type(exc).__name__})", retryable=True)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            msg = redact(str(exc), self._app_id) or type(exc).__name__
            error = EStatHttpError(f"{endpoint}: connection failed: {msg}", retryable=True)
        if error is not None:
            raise error
        if resp.status_code == 429 or resp.status_code >= 500:
            retry_after = _retry_after(resp.headers.get("Retry-After"))
            raise EStatHttpError(
                f"{endpoint}: HTTP {resp.status_code}", retryable=True, retry_after=retry_after
            )
        if resp.status_code >= 400:
            raise EStatHttpError(f"{endpoint}: HTTP {resp.status_code}", retryable=False)
        rows: int | None = None
        try:
            scanned = scan_page(raw) if endpoint == "getStatsData" else None
            if scanned is not None:
                document, rows = scanned
            else:
                document = orjson.loads(raw)
            root, body = root_of(document)
            status = int(as_dict(body.get("RESULT")).get("STATUS"))
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            error = EStatResponseError(
                f"{endpoint}: response of {len(raw)} bytes is not valid e-Stat JSON "
                f"({type(exc).__name__}: {redact(str(exc), self._app_id)[:120]})"
            )
        if error is not None:
            raise error
        if status >= 100:
            msg = str(as_dict(body.get("RESULT")).get("ERROR_MSG", ""))
            raise error_for_status(status, redact(msg, self._app_id), endpoint=endpoint)
        return Response(raw=raw, root=root, body=body, status=status, rows=rows)

    def request(self, endpoint: str, params: dict[str, Any]) -> Response:
        """One logical request with retries for what can succeed later."""
        attempt = 0
        while True:
            try:
                return self._once(endpoint, params)
            except EStatError as exc:
                attempt += 1
                if not exc.retryable or attempt >= self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt - 1, getattr(exc, "retry_after", None))
                log.warning(
                    "e-Stat %s failed (%s); retry %d/%d in %.1fs",
                    endpoint,
                    exc.message,
                    attempt,
                    self.retry.attempts - 1,
                    delay,
                )
                self._sleep(delay)

    # ---- endpoints ---------------------------------------------------------------------

    def get_meta_info(self, stats_data_id: str) -> tuple[TableMetadata, Response]:
        """getMetaInfo: the table's description and every axis with its codes."""
        check_dataset_id(stats_data_id)
        resp = self.request("getMetaInfo", {"statsDataId": stats_data_id})
        return parse_meta_info({resp.root: resp.body}), resp

    def iter_stats_list(self, **filters: Any) -> Iterator[TableInfo]:
        """getStatsList, all pages: ``statsCode``, ``searchWord``, ``updatedDate``, ..."""
        start = 1
        while True:
            resp = self.request(
                "getStatsList", {**filters, "startPosition": start, "limit": self.page_size}
            )
            if resp.status != STATUS_OK:
                return
            data = as_dict(resp.body.get("DATALIST_INF"))
            for node in as_list(data.get("TABLE_INF")):
                yield TableInfo.parse(node)
            next_key = as_dict(data.get("RESULT_INF")).get("NEXT_KEY")
            if next_key in (None, ""):
                return
            start = int(next_key)

    def count(self, stats_data_id: str, filters: dict[str, Any] | None = None) -> int:
        """Rows a getStatsData request would return (``cntGetFlg=Y``), without data."""
        check_dataset_id(stats_data_id)
        params = {"statsDataId": stats_data_id, **(filters or {})}
        resp = self.request("getStatsData", {**params, "cntGetFlg": "Y", "metaGetFlg": "N"})
        if resp.status != STATUS_OK:
            return 0
        return page_info(resp).total

    def get_page(self, stats_data_id: str, start: int, filters: dict[str, Any]) -> Response:
        return self.request(
            "getStatsData",
            {
                "statsDataId": stats_data_id,
                **filters,
                "startPosition": start,
                "limit": self.page_size,
                "metaGetFlg": "N",
                "cntGetFlg": "N",
            },
        )

    def fetch_table(
        self,
        stats_data_id: str,
        sink: PageSink,
        filters: dict[str, Any] | None = None,
        progress: ProgressFn | None = None,
        *,
        rows_hint: int | None = None,
    ) -> FetchResult:
        """Every page of a (narrowed) table into ``sink``, verified; restarts if it changes.

        ``rows_hint`` (an estimate of the rows, e.g. from getMetaInfo) lets the first pages be
        requested together with page 1 instead of after it; a guessed page beyond the real
        ``TOTAL_NUMBER`` is ignored whatever e-Stat answered for it.
        """
        check_dataset_id(stats_data_id)
        filters = dict(filters or {})
        restarts = 0
        requests_before = self._requests
        while True:
            try:
                result = self._fetch_once(stats_data_id, sink, filters, progress, rows_hint)
            except PageMismatchError as exc:
                sink.reset()
                if restarts >= self.retry.restarts:
                    raise
                restarts += 1
                log.warning("e-Stat %s: %s; restarting fetch (%d)", stats_data_id, exc, restarts)
                continue
            except BaseException:
                sink.reset()
                raise
            return dataclasses.replace(
                result, restarts=restarts, requests=self._requests - requests_before
            )

    def _fetch_once(
        self,
        stats_data_id: str,
        sink: PageSink,
        filters: dict[str, Any],
        progress: ProgressFn | None,
        rows_hint: int | None,
    ) -> FetchResult:
        params = public_params({"statsDataId": stats_data_id, **filters, "lang": self.lang})
        size = self.page_size
        guessed = max(0, min(self.concurrency - 1, -(-(rows_hint or 0) // size) - 1))
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            early = {
                s: pool.submit(self.get_page, stats_data_id, s, filters)
                for s in range(1 + size, 1 + size * (guessed + 1), size)
            }
            try:
                first = self.get_page(stats_data_id, 1, filters)
            except BaseException:
                for fut in early.values():
                    fut.cancel()
                raise
            if first.status != STATUS_OK:  # 1: no data matches; an empty table is a valid answer
                for fut in early.values():
                    fut.cancel()
                if progress:
                    progress(FetchProgress(stats_data_id, 0, 0, 0, 0))
                return FetchResult(stats_data_id, params, 0, 0, 0, None, None, first.date, 0, 0)
            head = page_info(first)
            starts = list(range(1, head.total + 1, size))
            first_date = first.date
            end = min(size, head.total)
            info = _recount(first, end)
            _verify_page(stats_data_id, 1, end, info, head)
            sink.write_page(1, first.raw)
            del first  # only bytes in flight are kept: the sink has them now
            state = FetchProgress(stats_data_id, len(starts), 1, info.rows, head.total)
            if progress:
                progress(state)

            def check(start: int, resp: Response) -> int:
                if resp.status != STATUS_OK:
                    raise TableRepublishedError(
                        f"{stats_data_id}: page at {start} came back empty (STATUS {resp.status})"
                        f" though TOTAL_NUMBER was {head.total}"
                    )
                end = min(start + size - 1, head.total)
                info = _recount(resp, end - start + 1)
                _verify_page(stats_data_id, start, end, info, head)
                sink.write_page((start - 1) // size + 1, resp.raw)
                return info.rows

            def fetch(start: int) -> int:
                return check(start, self.get_page(stats_data_id, start, filters))

            wanted = set(starts)
            for start, fut in early.items():
                if start not in wanted:  # guessed too far: whatever e-Stat said does not count
                    fut.cancel()
            # early pages are checked here as they land; the others in the workers
            pending: dict[Any, tuple[int, bool]] = {
                fut: (s, True) for s, fut in early.items() if s in wanted
            }
            pending.update(
                {pool.submit(fetch, s): (s, False) for s in starts[1:] if s not in early}
            )
            try:
                while pending:
                    finished, _ = wait(set(pending), return_when=FIRST_EXCEPTION)
                    for fut in finished:
                        start, is_early = pending.pop(fut)
                        exc = fut.exception()
                        if exc is not None:
                            raise exc
                        rows = check(start, fut.result()) if is_early else fut.result()
                        state = dataclasses.replace(
                            state,
                            pages_done=state.pages_done + 1,
                            rows_done=state.rows_done + rows,
                        )
                        if progress:
                            progress(state)
            except BaseException:
                for other in [*pending, *early.values()]:
                    other.cancel()
                raise
        if state.rows_done != head.total:
            raise PageMismatchError(
                f"{stats_data_id}: stored {state.rows_done} rows but TOTAL_NUMBER is {head.total}"
            )
        return FetchResult(
            stats_data_id=stats_data_id,
            params=params,
            total_number=head.total,
            pages=len(starts),
            rows=state.rows_done,
            updated_date=head.updated_date,
            overall_total_number=head.overall_total,
            first_date=first_date,
            restarts=0,
            requests=0,
        )


def _recount(resp: Response, expected: int) -> PageInfo:
    """Page info; a fast VALUE count that disagrees with what we expect is confirmed by a parse."""
    info = page_info(resp)
    if resp.rows is not None and info.rows != expected:
        full = orjson.loads(resp.raw)
        _, body = root_of(full)
        data = as_dict(body.get("STATISTICAL_DATA"))
        rows = len(as_list(as_dict(data.get("DATA_INF")).get("VALUE")))
        info = dataclasses.replace(info, rows=rows)
    return info


def _verify_page(dataset: str, start: int, end: int, info: PageInfo, head: PageInfo) -> None:
    """A page must be the rows we asked for, of the same table version as the first page."""
    if info.total != head.total or info.updated_date != head.updated_date:
        raise TableRepublishedError(
            f"{dataset}: page at {start} has TOTAL_NUMBER {info.total} / UPDATED_DATE "
            f"{info.updated_date}, first page had {head.total} / {head.updated_date}"
        )
    if info.overall_total != head.overall_total:
        raise TableRepublishedError(
            f"{dataset}: OVERALL_TOTAL_NUMBER changed from {head.overall_total} to "
            f"{info.overall_total} during the fetch"
        )
    if info.from_number != start or info.to_number != end:
        raise PageMismatchError(
            f"{dataset}: asked for rows {start}-{end}, got {info.from_number}-{info.to_number}"
        )
    if info.rows != end - start + 1:
        raise PageMismatchError(
            f"{dataset}: page {start}-{end} claims {end - start + 1} rows but has {info.rows}"
        )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
