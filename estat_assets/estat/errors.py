"""Typed errors for everything that can go wrong between us and e-Stat.

Each error says what happened and what to do about it (``hint``). ``retryable`` tells the client
(and the Dagster retry policy) whether trying again can help. None of them ever carries the
``appId``.

An error raised for one table carries its id in ``stats_data_id`` and names it once, at the start
of its message, so callers need not add it. When the client gave up after retrying, ``attempts``
says how many requests it made and the message ends with "after N attempts": the error is always
the last real cause (HTTP 503, STATUS 200, a truncated body), never a generic "retries exhausted".
"""

from __future__ import annotations

from typing import Any


def _rebuild(cls: type[EStatError], state: dict[str, Any]) -> EStatError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    error.args = (str(error),)
    return error


class EStatError(Exception):
    """Base class: a request to e-Stat did not give usable data."""

    retryable: bool = False
    hint: str = "see the message; nothing was stored"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        stats_data_id: str | None = None,
        attempts: int | None = None,
    ) -> None:
        self.detail = message
        self.hint = hint if hint is not None else type(self).hint
        self.stats_data_id = stats_data_id
        self.attempts = attempts
        super().__init__(str(self))

    @property
    def message(self) -> str:
        """What happened: the table id (once), the cause, and the attempts made."""
        text = self.detail
        if self.stats_data_id and self.stats_data_id not in text:
            text = f"{self.stats_data_id}: {text}"
        if self.attempts is not None and self.attempts > 1:
            text = f"{text} after {self.attempts} attempts"
        return text

    def with_context(
        self, *, stats_data_id: str | None = None, attempts: int | None = None
    ) -> EStatError:
        """Add the table and the attempts (once known); returns ``self`` to ``raise`` it."""
        if stats_data_id and not self.stats_data_id:
            self.stats_data_id = stats_data_id
        if attempts is not None:
            self.attempts = attempts
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), dict(self.__dict__))


class EStatConfigError(EStatError, ValueError):
    """The client is configured wrongly (e.g. a malformed base URL): no request can succeed."""

    hint = (
        "set ESTAT_API_URL to an http(s) URL such as https://api.e-stat.go.jp/rest/3.0/app/json, "
        "or unset it to use the local emulator"
    )


class InvalidDatasetIdError(EStatError, ValueError):
    """A statsDataId that cannot be an e-Stat table id (checked before any request)."""

    hint = (
        "a statsDataId is a string of 10 digits (ASCII 0-9), e.g. '0003065345' (the sid= of an "
        "e-Stat dbview URL); quote it in YAML"
    )


class InvalidYearError(EStatError, ValueError):
    """A year (partition key, CLI option, tag) that is not four ASCII digits."""

    hint = (
        "a year is four ASCII digits such as 2020 (0000 holds time codes without a readable "
        "year); a list is 2011,2015 and a range 2010-2013"
    )


class EStatApiError(EStatError):
    """e-Stat answered with an error ``RESULT.STATUS`` (HTTP 200, no payload)."""

    hint = "e-Stat refused the request; check the statsDataId and parameters"

    def __init__(
        self,
        status: int,
        error_msg: str,
        *,
        endpoint: str,
        hint: str | None = None,
        stats_data_id: str | None = None,
    ) -> None:
        self.status = status
        self.error_msg = error_msg
        self.endpoint = endpoint
        super().__init__(
            f"e-Stat {endpoint} returned STATUS {status}: {error_msg}",
            hint=hint,
            stats_data_id=stats_data_id,
        )


class EStatRequestError(EStatApiError):
    """STATUS 100–199: the request is wrong (bad appId, parameter, unknown table); never retried."""

    hint = "check the statsDataId and parameters in domains.yaml against e-Stat"

    @staticmethod
    def hint_for(status: int) -> str:
        if status == 100:
            return "check ESTAT_APP_ID (register at https://www.e-stat.go.jp/api/ to get one)"
        return EStatRequestError.hint


class EStatServerError(EStatApiError):
    """STATUS 200–299: e-Stat had an internal error. Retried with backoff."""

    retryable = True
    hint = "e-Stat reported a server-side error; it was retried with backoff: rerun later"


class EStatUnexpectedStatusError(EStatApiError):
    """A STATUS this client does not know: fail loudly, keep nothing."""

    hint = "an undocumented e-Stat STATUS; nothing was stored: report it with the request"


class EStatNoDataAnswerError(EStatError):
    """e-Stat answered "no data" (STATUS 1/2) where the table has data, e.g. to getMetaInfo.

    Trusting such an answer would make the lake believe the table has no years and empty its
    slices, so it is an error, retried like a server hiccup. ``status`` and ``endpoint`` are set
    when the answer itself is the evidence (the client); a caller that finds the contradiction by
    comparing answers raises it with a message only.
    """

    retryable = True
    hint = (
        'e-Stat answered "no data" for a table that exists; nothing was changed: it was retried, '
        "rerun later"
    )

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        endpoint: str | None = None,
        hint: str | None = None,
        stats_data_id: str | None = None,
    ) -> None:
        self.status = status
        self.endpoint = endpoint
        super().__init__(message, hint=hint, stats_data_id=stats_data_id)


class EStatHttpError(EStatError):
    """A transport failure: HTTP 5xx/429/4xx, timeout, connection refused or reset."""

    hint = (
        "e-Stat or the network failed and the request was retried with backoff: rerun later, "
        "and check ESTAT_API_URL if it persists"
    )

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        hint: str | None = None,
        stats_data_id: str | None = None,
    ) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        if hint is None and not retryable:
            hint = "e-Stat refused the request: check ESTAT_API_URL (the e-Stat base URL)"
        super().__init__(message, hint=hint, stats_data_id=stats_data_id)


class EStatResponseError(EStatError):
    """A response that is not what e-Stat sends: malformed or truncated JSON, wrong shape."""

    retryable = True
    hint = "the body was damaged in transit or is not an e-Stat response; it was retried"


class PageMismatchError(EStatError):
    """Pages disagree with each other or with ``TOTAL_NUMBER``: never store a mixed table."""

    retryable = True
    hint = "the fetch restarts from the first page; nothing partial is stored: rerun later"


class TableRepublishedError(PageMismatchError):
    """The table changed (``UPDATED_DATE``/``TOTAL_NUMBER``) while we paged through it."""

    hint = (
        "e-Stat republished the table during the fetch; nothing partial is stored: "
        "rerun to fetch the new release"
    )


def error_for_status(
    status: int, error_msg: str, *, endpoint: str, stats_data_id: str | None = None
) -> EStatApiError:
    """Map an e-Stat ``RESULT.STATUS`` that is an error (≥ 100, or unknown) to its typed error."""
    if 100 <= status < 200:
        return EStatRequestError(
            status,
            error_msg,
            endpoint=endpoint,
            hint=EStatRequestError.hint_for(status),
            stats_data_id=stats_data_id,
        )
    if 200 <= status < 300:
        return EStatServerError(status, error_msg, endpoint=endpoint, stats_data_id=stats_data_id)
    return EStatUnexpectedStatusError(
        status, error_msg, endpoint=endpoint, stats_data_id=stats_data_id
    )
