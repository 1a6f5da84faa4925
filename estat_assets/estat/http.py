"""One e-Stat request over HTTP: rate limit, retries, and classification of the answer.

Why it looks like this:
- ``RESULT.STATUS`` is checked on every response, because e-Stat reports errors with HTTP 200.
- Only what can succeed later is retried (HTTP 5xx/429, timeouts, refused or reset connections,
  STATUS 2xx, damaged bodies), with exponential backoff and full jitter, or ``Retry-After`` when
  e-Stat sends one. STATUS 1xx fails at once with e-Stat's own message. When the retries run out
  the last typed error is raised, saying how many attempts were made.
- A base URL that cannot work is an :class:`EStatConfigError` when the client is built, not a
  traceback (or a retried "connection failed") at the first request.
- The ``appId`` never appears in logs, errors or returned parameters.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from estat_assets.estat.errors import (
    EStatConfigError,
    EStatError,
    EStatHttpError,
    EStatNoDataAnswerError,
    EStatResponseError,
    error_for_status,
)
from estat_assets.estat.pages import scan_page
from estat_assets.estat.redact import redact, silence_http_loggers
from estat_assets.estat.shape import as_dict, root_of

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.e-stat.go.jp/rest/3.0/app/json"
STATUS_OK = 0
NO_DATA_STATUSES = frozenset({1, 2})  # "OK, but nothing matched" (2: in a bulk request)
LANGS = ("J", "E")
_DEFAULT_PORTS = {"http": 80, "https": 443}


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

    @property
    def no_data(self) -> bool:
        """e-Stat said "OK, but no data" (STATUS 1, or 2 in a bulk request)."""
        return self.status in NO_DATA_STATUSES


def check_base_url(base_url: str, *secrets: str | None) -> str:
    """The base URL without a trailing ``/``, or :class:`EStatConfigError` if it cannot work."""
    shown = redact(str(base_url), *secrets)

    def bad(reason: str) -> EStatConfigError:
        return EStatConfigError(
            f"ESTAT_API_URL {shown!r} is not a usable e-Stat base URL: {reason}"
        )

    if not isinstance(base_url, str) or not base_url.strip():
        raise bad("it is empty")
    if any(c.isspace() or not c.isprintable() for c in base_url):
        raise bad("it contains whitespace or control characters")
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise bad(redact(str(exc), *secrets)) from None
    if url.scheme not in _DEFAULT_PORTS:
        raise bad(f"the scheme must be http or https, not {url.scheme or 'missing'!r}")
    if not url.host:
        raise bad("it has no host")
    if url.port is not None and not 0 < url.port < 65536:
        raise bad(f"port {url.port} is out of range")
    return base_url.rstrip("/")


def host_port(url: httpx.URL) -> str:
    """``host:port`` of a URL (the scheme's default port when none is given)."""
    port = url.port or _DEFAULT_PORTS.get(url.scheme, 0)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{port}"


class EStatHttp:
    """Requests to one e-Stat base URL: thread-safe, counted, rate-limited, retried."""

    def __init__(
        self,
        app_id: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 60.0,
        lang: str = "J",
        max_connections: int = 6,
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
        self.base_url = check_base_url(base_url, app_id)
        self.host = host_port(httpx.URL(self.base_url))
        self.lang = check_lang(lang)
        self.retry = retry or RetryConfig()
        self._limiter = RateLimiter(rate_limit)
        self._sleep = sleep
        self._requests = 0
        self._count_lock = threading.Lock()
        self.client = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"Accept-Encoding": "gzip", "User-Agent": "estat-lake/0.1"},
            limits=httpx.Limits(max_connections=max_connections),
        )

    def __enter__(self) -> EStatHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    @property
    def requests_made(self) -> int:
        return self._requests

    def request(
        self, endpoint: str, params: dict[str, Any], *, no_data_ok: bool = True
    ) -> Response:
        """One logical request with retries for what can succeed later.

        ``no_data_ok=False`` makes a "no data" STATUS an :class:`EStatNoDataAnswerError` (retried),
        for requests whose answer must have data (getMetaInfo of a table that exists).
        """
        table = params.get("statsDataId")
        table = table if isinstance(table, str) else None
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(endpoint, params, no_data_ok=no_data_ok)
            except EStatError as exc:
                exc.with_context(stats_data_id=table, attempts=attempt)
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

    def _once(self, endpoint: str, params: dict[str, Any], *, no_data_ok: bool) -> Response:
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
            with self.client.stream("GET", url, params=query) as resp:
                raw = b"".join(resp.iter_bytes())
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            error = EStatConfigError(
                f"ESTAT_API_URL {redact(self.base_url, self._app_id)!r} cannot be requested: "
                f"{redact(str(exc), self._app_id) or type(exc).__name__}"
            )
        except httpx.TimeoutException as exc:
            error = EStatHttpError(
                f"{endpoint}: {self.host} timed out ({type(exc).__name__})", retryable=True
            )
        except (httpx.TransportError, httpx.DecodingError) as exc:
            msg = redact(str(exc), self._app_id) or type(exc).__name__
            error = EStatHttpError(
                f"{endpoint}: connection failed to {self.host}: {msg}", retryable=True
            )
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
        msg = redact(str(as_dict(body.get("RESULT")).get("ERROR_MSG", "")), self._app_id)
        if status in NO_DATA_STATUSES and not no_data_ok:
            raise EStatNoDataAnswerError(
                f"e-Stat {endpoint} answered STATUS {status} (no data): {msg}",
                status=status,
                endpoint=endpoint,
            )
        if status != STATUS_OK and status not in NO_DATA_STATUSES:
            raise error_for_status(status, msg, endpoint=endpoint)
        return Response(raw=raw, root=root, body=body, status=status, rows=rows)


def check_lang(lang: str | None) -> str:
    """``J`` (Japanese, e-Stat's default) or ``E`` (English labels)."""
    if lang not in LANGS:
        raise ValueError(f"lang must be 'J' or 'E', not {lang!r}")
    return lang


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
