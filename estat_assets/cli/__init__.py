"""``estat-lake``: the command line of the lake.

Ask the lake (search → add → load → describe → a cited answer; docs/ask-the-lake.md)::

    estat-lake search WORDS [--survey CODE] [--years 2010-2013] [--field 02] [--lang J|E]
    estat-lake add STATS_DATA_ID [--domain D]        # domain inferred from MAIN_CATEGORY
    estat-lake describe STATS_DATA_ID [--all]
    estat-lake load STATS_DATA_ID... [--years Y] [--domain D] [--dagster-url URL]
    estat-lake query "SELECT ... FROM estat.population" [--format table|csv|json]
    estat-lake series STATS_DATA_ID [--filter AXIS=VALUE ...]
    estat-lake verify STATS_DATA_ID VALUE [--filter AXIS=VALUE ...]
    estat-lake health
    estat-lake mcp [--dagster-url URL]               # the MCP server (stdio)

Operations::

    estat-lake demo                          # emulator + every sample dataset through Dagster
    estat-lake emulator --data DIR --port P  # the bundled e-Stat emulator
    estat-lake register [--domain D]         # the declared datasets as partitions (no e-Stat call)
    estat-lake materialize [--domain D] [--dataset ID] [--years Y]
    estat-lake conform RAW.json [MORE.json ...] --out FILE.parquet
    estat-lake athena setup-workgroup ...

Errors are one line that says what to do, never a traceback (``--debug`` shows it). Exit
status: 0 done (``verify``: the claim agrees); 1 a load failed (``verify``: the claim does not
agree or cannot be checked); 2 bad input or configuration; 3 a service did not answer (e-Stat,
the Dagster webserver, a busy pool): retry later; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from estat_assets.cli.ask_commands import add_app_commands
from estat_assets.cli.common import UsageError
from estat_assets.cli.lake_commands import (
    cmd_athena,
    cmd_conform,
    cmd_demo,
    cmd_emulator,
    cmd_materialize,
    cmd_register,
)
from estat_assets.settings import DEFAULT_EMULATOR_PORT

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="estat-lake", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("emulator", help="serve recorded/generated e-Stat responses on loopback")
    p.add_argument(
        "--data",
        default=None,
        help="directory of recorded responses (default: the bundled samples)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_EMULATOR_PORT,
        help=f"port (default {DEFAULT_EMULATOR_PORT})",
    )
    p.add_argument("--faults", default=None, help="JSON file of fault rules to inject")
    p.add_argument("--app-id", default=None, help="require this appId (default: any non-empty)")
    p.set_defaults(func=cmd_emulator)

    p = sub.add_parser("conform", help="conform raw getStatsData page files to Parquet")
    p.add_argument("pages", nargs="+", help="getStatsData JSON responses, in page order")
    p.add_argument("--out", required=True, help="the Parquet file to write")
    p.add_argument("--meta", default=None, help="the table's getMetaInfo response (for names)")
    p.add_argument("--dataset-id", default=None, help="statsDataId (default: from TABLE_INF)")
    p.set_defaults(func=cmd_conform)

    p = sub.add_parser(
        "athena",
        help="production Athena tools: setup-workgroup --name N --output s3://... --region R",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of the Athena tool")
    p.set_defaults(func=cmd_athena)

    add_app_commands(sub)

    p = sub.add_parser(
        "register", help="add the declared datasets as Dagster partitions (no e-Stat request)"
    )
    p.add_argument("--domain", default=None, help="only this domain")
    p.set_defaults(func=cmd_register)

    for name, func, text in (
        (
            "materialize",
            cmd_materialize,
            "load datasets (whole tables, or some years) as Dagster runs in this process",
        ),
        ("demo", cmd_demo, "load every sample dataset offline and summarise"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--domain", default=None, help="only this domain")
        p.add_argument(
            "--port",
            type=int,
            default=None,
            help="port of the bundled emulator (default ESTAT_EMULATOR_PORT or "
            f"{DEFAULT_EMULATOR_PORT})",
        )
        if name == "materialize":
            p.add_argument("--dataset", default=None, help="only this statsDataId")
            p.add_argument(
                "--years",
                "--year",
                dest="years",
                default=None,
                help="only these years: 2020, 2011,2015 or 2010-2013",
            )
            p.add_argument(
                "--allow-shrink",
                action="store_true",
                help="replace years with fewer rows even without evidence that "
                "e-Stat withdrew them (operator override)",
            )
        p.set_defaults(func=func)
    return parser


def _interrupt(signum, frame):  # SIGTERM stops the CLI like Ctrl-C does
    raise KeyboardInterrupt


def _exit_code(error) -> int:
    """2: fix the input or configuration; 3: a service did not answer, retry later."""
    if error.type == "internal_error":
        return 1
    return 3 if error.retryable and error.type in RETRY_LATER else 2


RETRY_LATER = {
    "estat_unreachable",
    "estat_error",
    "dagster_unreachable",
    "pool_busy",
    "sql_lake_error",
    "sql_timeout",
}


def main(argv: Sequence[str] | None = None) -> int:
    from estat_assets.app.errors import AppError, app_error
    from estat_assets.domains import DomainsError
    from estat_assets.estat.errors import EStatError
    from estat_assets.runner import PoolBusyError
    from estat_assets.settings import SettingsError

    args = build_parser().parse_args(argv)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("estat-lake: interrupted", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # a load's worker threads must not keep the process alive
    except (UsageError, SettingsError, DomainsError) as exc:
        print(f"estat-lake: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except (AppError, EStatError, PoolBusyError) as exc:
        error = app_error(exc)
        print(f"estat-lake: error: {error.one_line()}", file=sys.stderr)
        return _exit_code(error)
    except Exception as exc:  # the query engine and others: their messages name the fix
        from estat_assets.query.engine import QueryError

        if isinstance(exc, QueryError):
            print(f"estat-lake: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        if getattr(args, "debug", False):
            raise
        error = app_error(exc)
        print(
            f"estat-lake: error: {error.one_line()} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
