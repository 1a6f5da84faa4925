"""Structured errors of the application layer: what happened, what to do, may a retry help.

Every failure the CLI prints (one line) and the MCP server returns (a result with ``is_error``)
is an :class:`AppError`: ``type`` (a stable snake_case word), ``message`` (what happened),
``what_to_do``, ``retryable`` and ``context`` (ids, names, the candidates a caller can pick).
:func:`app_error` turns the lake's own typed errors (e-Stat, the sandbox, settings, domains) into
one, keeping their words; anything else becomes ``internal_error`` without a stack trace.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A failure a caller can act on; ``to_dict`` is what the MCP tools return."""

    def __init__(
        self,
        type: str,
        message: str,
        what_to_do: str,
        *,
        retryable: bool = False,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type
        self.message = message
        self.what_to_do = what_to_do
        self.retryable = retryable
        self.context = dict(context or {})

    def __str__(self) -> str:
        return f"{self.message} — {self.what_to_do}" if self.what_to_do else self.message

    def one_line(self) -> str:
        return " ".join(str(self).split())

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "type": self.type,
                "message": self.message,
                "what_to_do": self.what_to_do,
                "retryable": self.retryable,
                "context": self.context,
            }
        }


def _first_line(text: str) -> str:
    return " ".join(str(text).split())


def app_error(exc: BaseException, **context: Any) -> AppError:
    """``exc`` as an :class:`AppError` (the same object if it already is one)."""
    if isinstance(exc, AppError):
        exc.context.update({k: v for k, v in context.items() if k not in exc.context})
        return exc
    from estat_assets.domains import DomainsError
    from estat_assets.estat.errors import (
        EStatApiError,
        EStatConfigError,
        EStatError,
        EStatHttpError,
        InvalidDatasetIdError,
        InvalidYearError,
    )
    from estat_assets.query.engine import QueryError
    from estat_assets.settings import SettingsError

    if isinstance(exc, InvalidDatasetIdError | InvalidYearError):
        kind = "invalid_dataset_id" if isinstance(exc, InvalidDatasetIdError) else "invalid_year"
        return AppError(kind, _first_line(exc.message), exc.hint, context=context)
    if isinstance(exc, EStatApiError):
        ctx = {"estat_status": exc.status, "endpoint": exc.endpoint, **context}
        if exc.stats_data_id:
            ctx.setdefault("stats_data_id", exc.stats_data_id)
        if exc.status == 100:
            return AppError(
                "estat_app_id",
                f"e-Stat refused the appId: {_first_line(exc.error_msg)}",
                "set ESTAT_APP_ID to your e-Stat application ID "
                "(register at https://www.e-stat.go.jp/api/)",
                context=ctx,
            )
        if 100 < exc.status < 200:
            return AppError(
                "estat_refused",
                _first_line(exc.error_msg),  # e-Stat's own words, e.g. 統計表IDが存在しません。
                "check the statsDataId (search for it with `estat-lake search WORDS`)",
                context=ctx,
            )
        return AppError(
            "estat_error", _first_line(exc.message), exc.hint, retryable=exc.retryable, context=ctx
        )
    if isinstance(exc, EStatConfigError):
        return AppError("configuration", _first_line(exc.message), exc.hint, context=context)
    if isinstance(exc, EStatHttpError):
        return AppError(
            "estat_unreachable" if exc.retryable else "estat_http",
            _first_line(exc.message),
            "check the network and ESTAT_API_URL (unset it to use the bundled emulator), "
            "then retry later",
            retryable=exc.retryable,
            context=context,
        )
    if isinstance(exc, EStatError):
        return AppError(
            "estat_error",
            _first_line(exc.message),
            exc.hint,
            retryable=exc.retryable,
            context=context,
        )
    kind = getattr(exc, "kind", None)
    if isinstance(exc, QueryError) and kind is not None:  # the sandbox's SandboxError
        return AppError(
            f"sql_{kind}",
            _first_line(exc.message),  # type: ignore[attr-defined]
            exc.hint,  # type: ignore[attr-defined]
            retryable=bool(getattr(exc, "retryable", False)),
            context=context,
        )
    if isinstance(exc, QueryError):
        return AppError(
            "sql_error",
            _first_line(str(exc)),
            "fix the SQL (SHOW TABLES lists the tables)",
            retryable=True,
            context=context,
        )
    if isinstance(exc, SettingsError):
        return AppError("configuration", _first_line(str(exc)), "fix the variable", context=context)
    if isinstance(exc, DomainsError):
        return AppError(
            "domains_file",
            _first_line(str(exc)),
            "fix domains.yaml (or ESTAT_DOMAINS_FILE)",
            context=context,
        )
    if type(exc).__name__ == "PoolBusyError":
        return AppError(
            "pool_busy",
            _first_line(str(exc)),
            "retry when the other loads are done",
            retryable=True,
            context=context,
        )
    return AppError(
        "internal_error",
        f"{type(exc).__name__}: {_first_line(str(exc))[:500]}",
        "this is a bug or an unexpected state of the lake; report it with the message",
        retryable=False,
        context=context,
    )
