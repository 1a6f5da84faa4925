"""Typed errors for everything that can go wrong between us and e-Stat.

Each error says what happened and what to do about it. ``retryable`` tells the client (and the
Dagster retry policy) whether trying again can help. None of them ever carries the ``appId``.
"""

from __future__ import annotations


class EStatError(Exception):
    """Base class: a request to e-Stat did not give usable data."""

    retryable: bool = False
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint if hint is not None else type(self).hint
        full = f"{message} — {self.hint}" if self.hint else message
        super().__init__(full)
        self.message = message


class InvalidDatasetIdError(EStatError, ValueError):
    """A statsDataId that cannot be an e-Stat table id (checked before any request)."""

    hint = "a statsDataId is 10 digits, e.g. 0003065345 (the sid= of an e-Stat dbview URL)"


class EStatApiError(EStatError):
    """e-Stat answered with an error ``RESULT.STATUS`` (HTTP 200, no payload)."""

    def __init__(self, status: int, error_msg: str, *, endpoint: str, hint: str | None = None):
        self.status = status
        self.error_msg = error_msg
        self.endpoint = endpoint
        super().__init__(f"e-Stat {endpoint} returned STATUS {status}: {error_msg}", hint=hint)


class EStatRequestError(EStatApiError):
    """STATUS 100–199: the request is wrong (bad appId, parameter, unknown table); never retried."""

    @staticmethod
    def hint_for(status: int) -> str:
        if status == 100:
            return "check ESTAT_APP_ID (register at https://www.e-stat.go.jp/api/ to get one)"
        return "check the statsDataId and parameters in domains.yaml against e-Stat"


class EStatServerError(EStatApiError):
    """STATUS 200–299: e-Stat had an internal error. Retried with backoff."""

    retryable = True
    hint = "e-Stat reported a server-side error; it is retried automatically"


class EStatUnexpectedStatusError(EStatApiError):
    """A STATUS this client does not know: fail loudly, keep nothing."""

    hint = "an undocumented e-Stat STATUS; report it with the request parameters"


class EStatHttpError(EStatError):
    """A transport failure: HTTP 5xx/429, timeout, connection reset."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message, hint="" if retryable else "check the e-Stat base URL")


class EStatResponseError(EStatError):
    """A response that is not what e-Stat sends: malformed or truncated JSON, wrong shape."""

    retryable = True
    hint = "the body was damaged in transit or is not an e-Stat response; it is retried"


class PageMismatchError(EStatError):
    """Pages disagree with each other or with ``TOTAL_NUMBER``: never store a mixed table."""

    retryable = True
    hint = "the fetch is restarted from the first page; nothing partial is stored"


class TableRepublishedError(PageMismatchError):
    """The table changed (``UPDATED_DATE``/``TOTAL_NUMBER``) while we paged through it."""

    hint = "e-Stat republished the table during the fetch; the fetch restarts from scratch"


def error_for_status(status: int, error_msg: str, *, endpoint: str) -> EStatApiError:
    """Map an e-Stat ``RESULT.STATUS`` ≥ 100 to its typed error."""
    if 100 <= status < 200:
        return EStatRequestError(
            status, error_msg, endpoint=endpoint, hint=EStatRequestError.hint_for(status)
        )
    if 200 <= status < 300:
        return EStatServerError(status, error_msg, endpoint=endpoint)
    return EStatUnexpectedStatusError(status, error_msg, endpoint=endpoint)
