"""Keep the e-Stat ``appId`` out of everything we print, log or store."""

from __future__ import annotations

import logging
import re

_APP_ID_PARAM = re.compile(r"(?i)(appId=)[^&\s\"']*")

SECRET_PARAMS = frozenset({"appId", "appid"})


def redact(text: str, *secrets: str | None) -> str:
    """Replace ``appId=...`` query values and any literal secret with ``***``."""
    out = _APP_ID_PARAM.sub(r"\1***", text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return out


def public_params(params: dict[str, object]) -> dict[str, str]:
    """Request parameters without the secrets, for manifests and metadata."""
    return {k: str(v) for k, v in sorted(params.items()) if k not in SECRET_PARAMS}


def silence_http_loggers() -> None:
    """httpx/httpcore log full request URLs (with the appId) at INFO/DEBUG: keep them at WARNING."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
