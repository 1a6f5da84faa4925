"""What every command of the CLI shares: one-line errors, the bundled emulator, the app
context, options."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

from estat_assets.settings import DEFAULT_EMULATOR_PORT, Settings


class UsageError(Exception):
    """Bad input on the command line: the message says what to pass instead."""


def say(text: str) -> None:
    print(text, flush=True)


def _answers_as_estat(base_url: str) -> bool:
    """Does an e-Stat API (e.g. another process's emulator) answer at ``base_url``?"""
    import httpx

    try:
        resp = httpx.get(
            f"{base_url}/getStatsList",
            params={"appId": "estat-lake-probe", "limit": "1"},
            timeout=3.0,
        )
        return "GET_STATS_LIST" in resp.json()
    except Exception:
        return False


@contextlib.contextmanager
def emulator_on(port: int) -> Iterator[str]:
    """The bundled emulator on 127.0.0.1:``port`` for the duration; yields its base URL.

    A port already served by an e-Stat emulator (``make dev``, another ``estat-lake``) is
    reused; any other occupant is an error that says what to do.
    """
    from estat_assets.settings import emulator_base_url
    from estat_emulator import EmulatorServer, TableStore

    try:
        server = EmulatorServer(TableStore.default(), host="127.0.0.1", port=port)
        server.start()
    except OSError as exc:
        if _answers_as_estat(emulator_base_url(port)):
            print(
                f"estat-lake: using the e-Stat emulator already serving 127.0.0.1:{port}",
                file=sys.stderr,
            )
            yield emulator_base_url(port)
            return
        from estat_assets.app.errors import AppError

        raise AppError(
            "emulator_port_busy",
            f"cannot start the e-Stat emulator on 127.0.0.1:{port} ({exc.strerror})",
            "stop what uses the port, or pass --port / set ESTAT_EMULATOR_PORT, or set "
            "ESTAT_API_URL",
            context={"port": port},
        ) from None
    try:
        yield server.api_base
    finally:
        server.stop()


@contextlib.contextmanager
def lake_settings(port: int | None = None) -> Iterator[Settings]:
    """The settings, pointed at the bundled emulator (started here) unless ESTAT_API_URL is set."""
    settings = Settings.from_env()
    if not settings.uses_emulator:
        yield settings
        return
    with emulator_on(settings.emulator_port if port is None else port) as url:
        yield settings.with_api_url(url)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def app_context(args: argparse.Namespace) -> Iterator:
    """A ``LakeContext`` for one command: the bundled emulator starts only if e-Stat is asked."""
    from estat_assets.app.context import LakeContext

    settings = Settings.from_env()
    stack = contextlib.ExitStack()
    starter = None
    if settings.uses_emulator:
        port = getattr(args, "port", None) or settings.emulator_port

        def starter() -> str:
            return stack.enter_context(emulator_on(port))

    ctx = LakeContext(
        settings,
        dagster_url=getattr(args, "dagster_url", None),
        say=_err,
        estat_starter=starter,
    )
    # A person is waiting: the client's retry notices would bury the one-line error.
    http_log = logging.getLogger("estat_assets.estat.http")
    level = http_log.level
    if getattr(args.func, "__name__", "") != "cmd_load":
        http_log.setLevel(logging.ERROR)
    try:
        with stack:
            yield ctx
    finally:
        http_log.setLevel(level)


def _emit_json(answer) -> None:
    import json

    print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1, default=str))


def emit(args: argparse.Namespace, answer, text: Callable[[Any], str]) -> None:
    """An answer as JSON (``--json``) or as the text ``text(answer)`` renders."""
    if args.json:
        _emit_json(answer)
    else:
        say(text(answer))


def _port_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="port of the bundled e-Stat emulator, started when e-Stat is needed and "
        f"ESTAT_API_URL is not set (default ESTAT_EMULATOR_PORT or {DEFAULT_EMULATOR_PORT}); "
        "an emulator already serving there is reused",
    )


def _as_of_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--as-of",
        default=None,
        metavar="YYYY-MM-DD",
        help="answer from what e-Stat had published on that day (the lake keeps every release)",
    )


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", action="store_true", help="print the answer as JSON (what MCP returns)"
    )


def _filter_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--filter",
        "-f",
        action="append",
        default=[],
        metavar="AXIS=VALUE",
        help="keep cells whose AXIS (id like cat01, or its Japanese/English name) is VALUE (a "
        "code or a Japanese/English name; time=2020 for a year); repeat the option for more "
        "axes, or the same axis for either value",
    )
