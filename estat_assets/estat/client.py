"""The e-Stat API v3 client (JSON endpoints): the endpoints, on top of the modules that do the work.

- :mod:`estat_assets.estat.http`: one request (rate limit, retries, typed errors, ``Response``);
- :mod:`estat_assets.estat.pages`: reading and verifying getStatsData pages;
- :mod:`estat_assets.estat.fetch`: every page of a table, concurrently, into a sink;
- :mod:`estat_assets.estat.ids`: statsDataId and year checks.

"No data" (STATUS 1) is trusted only where it can be true: getStatsList (no hits) and a narrowed
getStatsData request (reported as such in :class:`FetchResult` and :class:`CountAnswer`). From
getMetaInfo, for a table that exists, it is an :class:`EStatNoDataAnswerError`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from estat_assets.estat.fetch import (
    FetchProgress,
    FetchResult,
    MemorySink,
    PageSink,
    ProgressFn,
    fetch_table,
)
from estat_assets.estat.http import (
    DEFAULT_BASE_URL,
    NO_DATA_STATUSES,
    STATUS_OK,
    EStatHttp,
    Response,
    RetryConfig,
    check_lang,
)
from estat_assets.estat.ids import check_dataset_id
from estat_assets.estat.models import TableInfo, TableMetadata, parse_meta_info
from estat_assets.estat.pages import page_info
from estat_assets.estat.redact import public_params
from estat_assets.estat.shape import as_dict, as_list

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_PAGE_ROWS",
    "CountAnswer",
    "EStatClient",
    "FetchProgress",
    "FetchResult",
    "MemorySink",
    "PageSink",
    "ProgressFn",
    "Response",
    "RetryConfig",
    "check_dataset_id",
]

MAX_PAGE_ROWS = 100_000


@dataclass(frozen=True)
class CountAnswer:
    """What a ``cntGetFlg=Y`` request said: the rows, and the STATUS they came with.

    ``no_data`` tells "e-Stat said no data" (STATUS 1) apart from "e-Stat counted 0 rows".
    """

    rows: int
    status: int

    @property
    def no_data(self) -> bool:
        return self.status in NO_DATA_STATUSES


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
        self.page_size = max(1, min(page_size, MAX_PAGE_ROWS))
        self.concurrency = max(1, concurrency)
        self._api = EStatHttp(
            app_id,
            base_url,
            timeout=timeout,
            lang=lang,
            max_connections=self.concurrency + 2,
            rate_limit=rate_limit,
            retry=retry,
            transport=transport,
            sleep=sleep,
        )

    def __enter__(self) -> EStatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()

    @property
    def base_url(self) -> str:
        return self._api.base_url

    @property
    def lang(self) -> str:
        return self._api.lang

    @property
    def retry(self) -> RetryConfig:
        return self._api.retry

    @retry.setter
    def retry(self, value: RetryConfig) -> None:
        self._api.retry = value

    @property
    def requests_made(self) -> int:
        return self._api.requests_made

    @property
    def _http(self) -> httpx.Client:
        """The underlying httpx client (tests wrap its ``stream`` to watch concurrency)."""
        return self._api.client

    def request(self, endpoint: str, params: dict[str, Any]) -> Response:
        """One logical request with retries for what can succeed later."""
        return self._api.request(endpoint, params)

    # ---- endpoints ---------------------------------------------------------------------

    def get_meta_info(
        self, stats_data_id: str, lang: str | None = None
    ) -> tuple[TableMetadata, Response]:
        """getMetaInfo: the table's description and every axis with its codes.

        A table that exists always has metadata: a "no data" answer raises
        :class:`~estat_assets.estat.errors.EStatNoDataAnswerError` (after retries) instead of
        returning empty metadata.
        """
        check_dataset_id(stats_data_id)
        params = {"statsDataId": stats_data_id}
        if lang is not None:
            params["lang"] = check_lang(lang)
        resp = self._api.request("getMetaInfo", params, no_data_ok=False)
        return parse_meta_info({resp.root: resp.body}), resp

    def iter_stats_list(self, *, lang: str | None = None, **filters: Any) -> Iterator[TableInfo]:
        """getStatsList, all pages: ``statsCode``, ``searchWord``, ``updatedDate``, ...

        "No data" (STATUS 1) means no table matched: the iterator is empty.
        """
        if lang is not None:
            filters["lang"] = check_lang(lang)
        start = 1
        while True:
            resp = self._api.request(
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

    def count_answer(
        self, stats_data_id: str, filters: dict[str, Any] | None = None
    ) -> CountAnswer:
        """Rows a getStatsData request would return (``cntGetFlg=Y``), and the STATUS with them."""
        check_dataset_id(stats_data_id)
        params = {"statsDataId": stats_data_id, **(filters or {})}
        resp = self._api.request("getStatsData", {**params, "cntGetFlg": "Y", "metaGetFlg": "N"})
        if resp.status != STATUS_OK:
            return CountAnswer(rows=0, status=resp.status)
        return CountAnswer(rows=page_info(resp).total, status=resp.status)

    def count(self, stats_data_id: str, filters: dict[str, Any] | None = None) -> int:
        """Rows a getStatsData request would return; see :meth:`count_answer` for the STATUS."""
        return self.count_answer(stats_data_id, filters).rows

    def get_page(self, stats_data_id: str, start: int, filters: dict[str, Any]) -> Response:
        """One getStatsData page (``page_size`` rows from ``start``), without metadata."""
        return self._api.request(
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
        requested together with page 1. A "no data" answer is an empty result with
        ``no_data=True`` and e-Stat's ``status``: compare it with what else you know.
        """
        check_dataset_id(stats_data_id)
        filters = dict(filters or {})
        requests_before = self.requests_made
        result = fetch_table(
            stats_data_id,
            lambda start: self.get_page(stats_data_id, start, filters),
            sink,
            params=public_params({"statsDataId": stats_data_id, **filters, "lang": self.lang}),
            page_size=self.page_size,
            concurrency=self.concurrency,
            restarts=self.retry.restarts,
            progress=progress,
            rows_hint=rows_hint,
        )
        return dataclasses.replace(result, requests=self.requests_made - requests_before)
