"""Ask the lake: search, add, describe, load, query, series, verify, revisions, health, mcp."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time

from estat_assets.cli.common import (
    _as_of_option,
    _emit_json,
    _err,
    _filter_option,
    _json_option,
    _port_option,
    app_context,
    emit,
    say,
)


def _id_argument(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("stats_data_id", metavar="STATS_DATA_ID", help=help)


def cmd_search(args: argparse.Namespace) -> int:
    from estat_assets.app.search import search
    from estat_assets.app.text import search_text

    with app_context(args) as ctx:
        answer = search(
            ctx,
            " ".join(args.words),
            survey=args.survey,
            years=args.years,
            field_code=args.field,
            lang=args.lang,
            limit=args.limit,
        )
    emit(args, answer, search_text)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from estat_assets.app.add import add
    from estat_assets.app.text import add_text

    with app_context(args) as ctx:
        answer = add(ctx, args.stats_data_id, args.domain)
    emit(args, answer, add_text)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from estat_assets.app.describe import describe
    from estat_assets.app.text import describe_text

    with app_context(args) as ctx:
        answer = describe(ctx, args.stats_data_id, max_items=None if args.all else 50)
    emit(args, answer, lambda answer: describe_text(answer, None if args.all else 20))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from estat_assets.app.load import load, wait_for
    from estat_assets.app.text import citations_text, load_item_line, load_summary

    started = time.monotonic()
    real_stderr = sys.stderr
    # The runs' console logs (Dagster prints a failed step's stack trace) would bury the answer:
    # they go to the Dagster UI and the event log; the causes come back one line each.
    quiet = contextlib.nullcontext() if args.debug else contextlib.redirect_stderr(io.StringIO())
    with app_context(args) as ctx, quiet:
        ctx.say = lambda line: print(line, file=real_stderr, flush=True)

        def on_start(i: int, n: int, p) -> None:
            years = f" [{','.join(p.years)}]" if p.years else ""
            say(f"[{i}/{n}] loading {p.domain} {p.dataset_id}{years} …")

        def on_item(i: int, n: int, item) -> None:
            say(load_item_line(i, n, item))

        answer = load(
            ctx,
            args.stats_data_ids,
            domain=args.domain,
            years=args.years,
            allow_shrink=args.allow_shrink,
            on_start=on_start,
            on_item=on_item,
        )
        if answer.mode == "daemon":
            for item in answer.items:
                say(f"queued {item.domain} {item.stats_data_id}: run {item.run_id}")
            if not args.no_wait:
                index = {item.run_id: i for i, item in enumerate(answer.items, start=1)}

                def changed(item) -> None:
                    say(load_item_line(index.get(item.run_id, 0), len(answer.items), item))

                wait_for(ctx, answer, changed)
        answer.elapsed_seconds = time.monotonic() - started
    if args.json:
        _emit_json(answer)
    else:
        say(load_summary(answer))
        cited = [i.citation for i in answer.items if i.citation]
        if cited:
            say(citations_text(cited))
    return 1 if answer.failures else 0


def cmd_query(args: argparse.Namespace) -> int:
    from estat_assets.app.query import run_sql
    from estat_assets.app.text import citations_text
    from estat_assets.query.output import footer, format_table

    with app_context(args) as ctx:
        answer = run_sql(
            ctx, args.sql, row_cap=args.row_cap, time_limit=args.time_limit, as_of=args.as_of
        )
    print(format_table(answer.table, args.format, args.max_rows), end="")
    if answer.table.num_columns:
        print()
    _err(
        footer(
            answer.row_count,
            answer.elapsed_seconds,
            truncated=answer.truncated,
            shown=min(answer.row_count, args.max_rows),
        )
    )
    for note in answer.notes:
        _err(f"note: {note}")
    if answer.citations:
        _err(citations_text(answer.citations))
    return 0


def cmd_series(args: argparse.Namespace) -> int:
    from estat_assets.app.metadata import parse_filter_args
    from estat_assets.app.series import series
    from estat_assets.app.text import citations_text, rows_footer, series_text

    started = time.monotonic()
    with app_context(args) as ctx:
        answer = series(
            ctx,
            args.stats_data_id,
            parse_filter_args(args.filter),
            limit=args.limit,
            as_of=args.as_of,
        )
    if args.format == "json":
        _emit_json(answer)
    elif args.format == "csv":
        import pyarrow as pa

        from estat_assets.query.output import format_table

        columns = {c: [r.get(c) for r in answer.rows] for c in answer.columns}
        print(format_table(pa.table(columns), "csv"))
        _err(citations_text([answer.citation]))
    else:
        say(series_text(answer))
    _err(
        rows_footer(
            len(answer.rows), answer.total_rows, time.monotonic() - started, answer.truncated
        )
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from estat_assets.app.metadata import parse_filter_args
    from estat_assets.app.text import verify_text
    from estat_assets.app.verify import verify

    with app_context(args) as ctx:
        answer = verify(
            ctx,
            args.stats_data_id,
            args.value,
            parse_filter_args(args.filter),
            tolerance=args.tolerance,
            relative_tolerance=args.relative_tolerance,
            as_of=args.as_of,
        )
    emit(args, answer, verify_text)
    return 0 if answer.verdict == "agrees" else 1


def cmd_revisions(args: argparse.Namespace) -> int:
    from estat_assets.app.releases import compare, list_releases
    from estat_assets.app.text import compare_text, releases_text

    with app_context(args) as ctx:
        if args.compare:
            answer = compare(ctx, args.stats_data_id, args.compare[0], args.compare[1], args.limit)
        else:
            answer = list_releases(ctx, args.stats_data_id, args.since)
    emit(args, answer, compare_text if args.compare else releases_text)
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from estat_assets.app.health import health
    from estat_assets.app.text import health_text

    with app_context(args) as ctx:
        answer = health(ctx)
    emit(args, answer, health_text)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from estat_assets.mcp_server import serve

    return serve(dagster_url=args.dagster_url, port=args.port)


def add_app_commands(sub) -> None:
    """search, add, describe, load, query, series, verify, health, mcp."""
    p = sub.add_parser(
        "search", help="search e-Stat's tables (getStatsList) and show which are in the lake"
    )
    p.add_argument("words", nargs="*", help="search words (Japanese or English), e.g. 人口 or wage")
    p.add_argument(
        "--survey",
        default=None,
        help="survey code (8 digits, e.g. 00200521 国勢調査) or organisation code (5 digits)",
    )
    p.add_argument("--years", default=None, help="survey years: 2020, 2010-2013 or 202001-202012")
    p.add_argument(
        "--field",
        default=None,
        help="e-Stat statistical field: 02 人口・世帯, 03 労働・賃金, 12 教育… "
        "(4 digits with the sub-field)",
    )
    p.add_argument(
        "--lang",
        choices=("J", "E"),
        default=None,
        help="search the Japanese (J) or English (E) texts (default: E for ASCII words, else J)",
    )
    p.add_argument("--limit", type=int, default=20, help="hits to show (default 20, at most 100)")
    _port_option(p)
    _json_option(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "add", help="add an e-Stat table to the lake (domain inferred from its statistical field)"
    )
    _id_argument(p, "the table's statsDataId (10 digits, the sid= of its e-Stat page)")
    p.add_argument(
        "--domain",
        default=None,
        help="the domain (Iceberg table) to load it into, instead of the inferred one",
    )
    _port_option(p)
    _json_option(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser(
        "describe",
        help="a table: e-Stat's facts, axes (J/E), rows in the lake vs e-Stat, checks, snapshot",
    )
    _id_argument(p, "the table's statsDataId")
    p.add_argument(
        "--all", action="store_true", help="list every item of every axis (default: the first 20)"
    )
    _port_option(p)
    _json_option(p)
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser(
        "load",
        help="load datasets as Dagster runs (through the daemon when --dagster-url answers, "
        "else in this process)",
    )
    p.add_argument(
        "stats_data_ids",
        nargs="*",
        metavar="STATS_DATA_ID",
        help="datasets to load (added or declared ones)",
    )
    p.add_argument(
        "--domain",
        default=None,
        help="every dataset of this domain (or check that the named ones are in it)",
    )
    p.add_argument(
        "--years",
        "--year",
        dest="years",
        default=None,
        help="only these years: 2020, 2011,2015 or 2010-2013 (default: the whole table)",
    )
    p.add_argument(
        "--allow-shrink",
        action="store_true",
        help="replace years with fewer rows even without evidence that e-Stat withdrew "
        "them (operator override)",
    )
    p.add_argument(
        "--dagster-url",
        default=None,
        help="a Dagster webserver (e.g. http://127.0.0.1:3000 from `make dev`); when it and "
        "its daemon answer, runs are queued there",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="with the daemon: print the queued run ids and return without waiting",
    )
    _port_option(p)
    _json_option(p)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser(
        "query",
        help="read-only Trino-dialect SQL on the lake (DuckDB sandbox locally, Athena on aws)",
    )
    p.add_argument(
        "sql",
        help='e.g. "SELECT count(*) FROM estat.population" (SELECT, WITH, DESCRIBE, SHOW only)',
    )
    p.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="output format (default table); the footer and citations go to stderr",
    )
    p.add_argument("--max-rows", type=int, default=50, help="rows to print (default 50)")
    p.add_argument(
        "--row-cap",
        type=int,
        default=100_000,
        help="rows the query may return at most (default 100000)",
    )
    p.add_argument(
        "--time-limit", type=float, default=60.0, help="seconds the query may run (default 60)"
    )
    _as_of_option(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser(
        "series", help="a tidy series of a loaded dataset, by axis filters (codes or names, J or E)"
    )
    _id_argument(p, "the dataset's statsDataId")
    _filter_option(p)
    p.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="output format (default table)",
    )
    p.add_argument("--limit", type=int, default=10_000, help="rows at most (default 10000)")
    _as_of_option(p)
    _port_option(p)
    p.set_defaults(func=cmd_series)

    p = sub.add_parser(
        "verify", help="does a claimed figure agree with the official value in the lake?"
    )
    _id_argument(p, "the dataset the figure is from")
    p.add_argument(
        "value",
        help="the claimed figure, as written (364.9, 1,234, ３６５); its decimals set the "
        "rounding tolerance",
    )
    _filter_option(p)
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="accept an absolute difference up to this (default: rounding only)",
    )
    p.add_argument(
        "--relative-tolerance",
        type=float,
        default=None,
        help="accept a relative difference up to this fraction, e.g. 0.01",
    )
    _as_of_option(p)
    _port_option(p)
    _json_option(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "revisions",
        help="the releases of a table the lake keeps, and what each revised, added and removed",
    )
    _id_argument(p, "the dataset's statsDataId")
    p.add_argument("--since", default=None, help="only releases on or after YYYY-MM-DD")
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("OLD", "NEW"),
        default=None,
        help="two kept releases (their UPDATED_DATEs, YYYY-MM-DD): the cells that changed",
    )
    p.add_argument("--limit", type=int, default=50, help="cells to list with --compare")
    _json_option(p)
    p.set_defaults(func=cmd_revisions)

    p = sub.add_parser("health", help="lake health: inventory status, failed runs, check warnings")
    _json_option(p)
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("mcp", help="the MCP server on stdio (Claude Desktop, Kiro, any MCP client)")
    p.add_argument(
        "--dagster-url",
        default=None,
        help="a Dagster webserver to queue loads through (default: load in the server's process)",
    )
    _port_option(p)
    p.set_defaults(func=cmd_mcp)
