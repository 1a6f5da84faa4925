"""Typed errors as Dagster failures: the first real cause, what to do, and whether to retry.

The failure's description is the error's one-line message (cause + hint), and its metadata keeps
the structured parts, so the CLI summary, the run's failure event and ``estat.ingestion_runs``
all show the same cause instead of Dagster's "Exceeded max_retries".
"""

import dagster as dg

from estat_assets.estat.errors import EStatApiError, EStatError


def failure_for(exc: Exception) -> dg.Failure:
    """A typed error (or a ValueError naming bad input) as a ``Failure``; permanent ones are not
    retried."""
    retryable = bool(getattr(exc, "retryable", False))
    metadata: dict[str, dg.RawMetadataValue] = {
        "error": type(exc).__name__,
        "retryable": retryable,
        "cause": getattr(exc, "message", None) or str(exc),
    }
    hint = getattr(exc, "hint", None)
    if hint:
        metadata["what_to_do"] = hint
    if isinstance(exc, EStatApiError):
        metadata["estat_status"] = exc.status
        metadata["estat_error_msg"] = exc.error_msg
    attempts = getattr(exc, "attempts", None)
    if attempts:
        metadata["attempts"] = attempts
    text = str(exc) if isinstance(exc, EStatError) else f"{type(exc).__name__}: {exc}"
    return dg.Failure(
        description=f"{type(exc).__name__}: {text}"[:2000] if isinstance(exc, EStatError) else text,
        metadata=metadata,
        allow_retries=retryable,
    )
