"""Every page of a (narrowed) table into a sink, concurrently, verified, restarted if it changes.

Pages are planned from page 1's ``TOTAL_NUMBER`` and fetched a bounded number at a time, each one
verified against the request and the first page and handed to the sink as raw bytes as it arrives,
so memory is bounded by the pages in flight and raw storage stays byte-exact. A fetch either
returns a complete :class:`FetchResult` or raises, and then the sink has been reset.

"No data" on page 1 is a valid answer (a narrowed request can match nothing), but the result says
so (``no_data``, ``status``) so that the caller can weigh it against what else it knows.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from estat_assets.estat.errors import PageMismatchError, TableRepublishedError
from estat_assets.estat.http import STATUS_OK, Response
from estat_assets.estat.pages import page_info, recount, verify_page

log = logging.getLogger(__name__)


class PageSink(Protocol):
    """Where fetched pages go (raw storage). ``reset`` discards everything of a failed attempt."""

    def write_page(self, page_no: int, raw: bytes) -> None: ...

    def reset(self) -> None: ...


@dataclass
class MemorySink:
    """A sink that keeps pages in memory (tests)."""

    pages: dict[int, bytes] = field(default_factory=dict)

    def write_page(self, page_no: int, raw: bytes) -> None:
        self.pages[page_no] = raw

    def reset(self) -> None:
        self.pages.clear()


@dataclass(frozen=True)
class FetchResult:
    """A complete, verified table fetch.

    ``status`` is the ``RESULT.STATUS`` e-Stat gave for page 1; ``no_data`` is True when that was
    "OK, but no data" (STATUS 1 or 2): then nothing was stored and ``total_number`` is 0 because
    e-Stat said so, not because a count was made. ``updated_date`` and ``overall_total_number``
    come from the answer's ``TABLE_INF`` when it has one, also on a "no data" answer.
    """

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
    status: int = 0
    no_data: bool = False


@dataclass(frozen=True)
class FetchProgress:
    """How far a fetch is: pages and rows stored so far out of those planned."""

    stats_data_id: str
    pages_planned: int
    pages_done: int
    rows_done: int
    total_rows: int


ProgressFn = Callable[[FetchProgress], None]
GetPage = Callable[[int], Response]  # startPosition → that page (retried by the HTTP layer)


def fetch_table(
    stats_data_id: str,
    get_page: GetPage,
    sink: PageSink,
    *,
    params: dict[str, str],
    page_size: int,
    concurrency: int,
    restarts: int,
    progress: ProgressFn | None = None,
    rows_hint: int | None = None,
) -> FetchResult:
    """Every page into ``sink``; the fetch restarts (at most ``restarts`` times) on a mismatch.

    ``rows_hint`` (an estimate of the rows) lets the first pages be requested together with page 1
    instead of after it; a guessed page beyond the real ``TOTAL_NUMBER`` is ignored whatever e-Stat
    answered for it. ``requests`` in the result is left 0 for the caller, who counts them.
    """
    fetch = _Fetch(stats_data_id, get_page, sink, params, page_size, concurrency, progress)
    done = 0
    while True:
        try:
            result = fetch.once(rows_hint)
        except PageMismatchError as exc:
            sink.reset()
            if done >= restarts:
                raise exc.with_context(attempts=done + 1) from None
            done += 1
            log.warning("e-Stat %s; restarting fetch (%d)", exc.message, done)
            continue
        except BaseException:
            sink.reset()
            raise
        return dataclasses.replace(result, restarts=done)


@dataclass
class _Fetch:
    """One attempt at a table: page 1 (plus guessed pages), then the rest from its total."""

    stats_data_id: str
    get_page: GetPage
    sink: PageSink
    params: dict[str, str]
    size: int
    concurrency: int
    progress: ProgressFn | None

    def _report(self, state: FetchProgress) -> None:
        if self.progress:
            self.progress(state)

    def _empty(self, first: Response) -> FetchResult:
        """Page 1 said there is nothing: a valid answer, reported as such."""
        head = page_info(first)
        self._report(FetchProgress(self.stats_data_id, 0, 0, 0, 0))
        return FetchResult(
            stats_data_id=self.stats_data_id,
            params=self.params,
            total_number=0,
            pages=0,
            rows=0,
            updated_date=head.updated_date,
            overall_total_number=head.overall_total,
            first_date=first.date,
            restarts=0,
            requests=0,
            status=first.status,
            no_data=first.no_data,
        )

    def once(self, rows_hint: int | None) -> FetchResult:
        size = self.size
        guessed = max(0, min(self.concurrency - 1, -(-(rows_hint or 0) // size) - 1))
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            early = {
                s: pool.submit(self.get_page, s)
                for s in range(1 + size, 1 + size * (guessed + 1), size)
            }
            try:
                first = self.get_page(1)
                head = page_info(first)
            except BaseException:
                _cancel(early.values())
                raise
            if first.no_data or head.total == 0:
                _cancel(early.values())
                return self._empty(first)
            starts = list(range(1, head.total + 1, size))
            end = min(size, head.total)
            info = recount(first, end)
            verify_page(self.stats_data_id, 1, end, info, head)
            self.sink.write_page(1, first.raw)
            first_date, status = first.date, first.status
            del first  # only bytes in flight are kept: the sink has them now
            state = FetchProgress(self.stats_data_id, len(starts), 1, info.rows, head.total)
            self._report(state)

            def check(start: int, resp: Response) -> int:
                if resp.status != STATUS_OK:
                    raise TableRepublishedError(
                        f"page at {start} came back empty (STATUS {resp.status})"
                        f" though TOTAL_NUMBER was {head.total}",
                        stats_data_id=self.stats_data_id,
                    )
                end = min(start + size - 1, head.total)
                info = recount(resp, end - start + 1)
                verify_page(self.stats_data_id, start, end, info, head)
                self.sink.write_page((start - 1) // size + 1, resp.raw)
                return info.rows

            def fetch(start: int) -> int:
                return check(start, self.get_page(start))

            wanted = set(starts)
            _cancel(fut for s, fut in early.items() if s not in wanted)  # guessed too far
            # early pages are checked here as they land; the others in the workers
            pending: dict[Future[Response] | Future[int], tuple[int, bool]] = {
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
                        got = fut.result()
                        rows = check(start, got) if is_early else got
                        state = dataclasses.replace(
                            state,
                            pages_done=state.pages_done + 1,
                            rows_done=state.rows_done + rows,
                        )
                        self._report(state)
            except BaseException:
                _cancel([*pending, *early.values()])
                raise
        if state.rows_done != head.total:
            raise PageMismatchError(
                f"stored {state.rows_done} rows but TOTAL_NUMBER is {head.total}",
                stats_data_id=self.stats_data_id,
            )
        return FetchResult(
            stats_data_id=self.stats_data_id,
            params=self.params,
            total_number=head.total,
            pages=len(starts),
            rows=state.rows_done,
            updated_date=head.updated_date,
            overall_total_number=head.overall_total,
            first_date=first_date,
            restarts=0,
            requests=0,
            status=status,
        )


def _cancel(futures: Iterable[Future]) -> None:
    for fut in futures:
        fut.cancel()
