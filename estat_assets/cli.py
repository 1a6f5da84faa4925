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
import contextlib
import io
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from estat_assets import CREDIT_NOTICE, CREDIT_NOTICE_EN
from estat_assets.settings import DEFAULT_EMULATOR_PORT, Settings

DEMO_QUERY = """
SELECT area_name, year, cat01_name, value, unit
FROM estat.population
WHERE dataset_id = '9900020202' AND cat01_code = 'B1101'
  AND year = (SELECT max(year) FROM estat.population WHERE dataset_id = '9900020202')
ORDER BY value DESC
LIMIT 5
"""


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


def _definitions(settings: Settings):
    from estat_assets.definitions import build_definitions

    return build_definitions(settings)


def _active(settings: Settings, defs) -> tuple:
    from estat_assets.definitions import active_domains

    return active_domains(settings, defs.resources)


def select_loads(
    domains, domain: str | None, dataset: str | None, years: str | None, allow_shrink: bool = False
) -> list:
    """The loads a filter names; a filter that names nothing is an error, not a silent no-op."""
    from estat_assets.estat.ids import check_dataset_id, parse_years
    from estat_assets.runner import Load

    year_list = tuple(parse_years(years)) if years is not None else None
    if dataset is not None:
        check_dataset_id(dataset)
    if domain is not None:
        chosen = [d for d in domains if d.name == domain]
        if not chosen:
            names = ", ".join(d.name for d in domains) or "none"
            raise UsageError(f"no domain {domain!r} with datasets (domains with datasets: {names})")
    else:
        chosen = list(domains)
    loads = [
        Load(d.name, ds, year_list, allow_shrink)
        for d in chosen
        for ds in d.datasets
        if dataset is None or ds == dataset
    ]
    if not loads:
        where = f" in domain {domain}" if domain else ""
        what = f"dataset {dataset}" if dataset else "datasets"
        raise UsageError(
            f"no {what}{where} to load: declare it in domains.yaml or add it with "
            "`estat-lake add ID`"
        )
    return loads


def _print_outcome(i: int, n: int, o) -> None:
    status = "ok" if o.success else f"FAILED: {o.error}"
    rows = "-" if o.rows_loaded is None else f"{o.rows_loaded:,}"
    years = f" [{o.load.years[0]}…]" if o.load.years else ""
    say(
        f"[{i}/{n}] {o.load.domain} {o.load.dataset_id}{years}: {rows} rows "
        f"({o.years or 'no years'}), checks {o.checks_passed} passed / {o.checks_warned} warned / "
        f"{o.checks_failed} failed, {o.seconds:.1f} s — {status}"
    )


def run_loads(settings: Settings, loads: list, defs=None) -> list:
    from estat_assets.runner import open_instance, run_load

    defs = defs or _definitions(settings)
    instance = open_instance(settings)
    outcomes = []
    for i, load in enumerate(loads, start=1):
        outcome = run_load(defs, instance, load, settings, say=say)
        outcomes.append(outcome)
        _print_outcome(i, len(loads), outcome)
    return outcomes


def cmd_emulator(args: argparse.Namespace) -> int:
    from estat_emulator import serve

    try:
        serve(args.data, args.host, args.port, faults_file=args.faults, required_app_id=args.app_id)
    except OSError as exc:
        raise UsageError(
            f"cannot serve on {args.host}:{args.port} ({exc.strerror}): pick another --port"
        ) from None
    return 0


def cmd_conform(args: argparse.Namespace) -> int:
    import orjson
    import pyarrow.parquet as pq

    from estat_assets.conform import ConformInput, conform_pages
    from estat_assets.estat.models import parse_meta_info

    pages = []
    for name in args.pages:
        try:
            body = Path(name).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror}") from None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"{name} is not JSON ({exc}); pass getStatsData responses") from None
        if not isinstance(document, dict) or "GET_STATS_DATA" not in document:
            raise UsageError(f"{name} is not a getStatsData response (no GET_STATS_DATA object)")
        pages.append(body)
    meta = None
    if args.meta:
        try:
            meta = parse_meta_info(orjson.loads(Path(args.meta).read_bytes()))
        except (OSError, orjson.JSONDecodeError) as exc:
            raise UsageError(f"cannot read getMetaInfo from {args.meta}: {exc}") from None
    dataset = args.dataset_id
    if dataset is None:
        table_inf = orjson.loads(pages[0])["GET_STATS_DATA"].get("STATISTICAL_DATA", {})
        dataset = str((table_inf or {}).get("TABLE_INF", {}).get("@id", "unknown"))
    table = conform_pages(pages, ConformInput(dataset_id=dataset, metadata=meta, run_id="cli"))
    pq.write_table(table, args.out, compression="snappy")
    say(f"{table.num_rows} rows, {table.num_columns} columns → {args.out}")
    return 0


# ------------------------------------------------------------------------ ask the lake


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
    if args.func is not cmd_load:
        http_log.setLevel(logging.ERROR)
    try:
        with stack:
            yield ctx
    finally:
        http_log.setLevel(level)


def _emit_json(answer) -> None:
    import json

    print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1, default=str))


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
    if args.json:
        _emit_json(answer)
    else:
        say(search_text(answer))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from estat_assets.app.add import add
    from estat_assets.app.text import add_text

    with app_context(args) as ctx:
        answer = add(ctx, args.stats_data_id, args.domain)
    if args.json:
        _emit_json(answer)
    else:
        say(add_text(answer))
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from estat_assets.app.describe import describe
    from estat_assets.app.text import describe_text

    with app_context(args) as ctx:
        answer = describe(ctx, args.stats_data_id, max_items=None if args.all else 50)
    if args.json:
        _emit_json(answer)
    else:
        say(describe_text(answer, None if args.all else 20))
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
    if args.json:
        _emit_json(answer)
    else:
        say(verify_text(answer))
    return 0 if answer.verdict == "agrees" else 1


def cmd_revisions(args: argparse.Namespace) -> int:
    from estat_assets.app.releases import compare, list_releases
    from estat_assets.app.text import compare_text, releases_text

    with app_context(args) as ctx:
        if args.compare:
            answer = compare(ctx, args.stats_data_id, args.compare[0], args.compare[1], args.limit)
        else:
            answer = list_releases(ctx, args.stats_data_id, args.since)
    if args.json:
        _emit_json(answer)
    else:
        say(compare_text(answer) if args.compare else releases_text(answer))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from estat_assets.app.health import health
    from estat_assets.app.text import health_text

    with app_context(args) as ctx:
        answer = health(ctx)
    if args.json:
        _emit_json(answer)
    else:
        say(health_text(answer))
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from estat_assets.mcp_server import serve

    return serve(dagster_url=args.dagster_url, port=args.port)


def cmd_register(args: argparse.Namespace) -> int:
    from estat_assets.defs.partitions import register
    from estat_assets.runner import open_instance

    settings = Settings.from_env()
    defs = _definitions(settings)
    instance = open_instance(settings)
    domains = [d for d in _active(settings, defs) if not args.domain or d.name == args.domain]
    if args.domain and not domains:
        raise UsageError(f"no domain {args.domain!r} with datasets")
    for domain in domains:
        new = register(instance, domain.name, domain.datasets)
        say(f"{domain.name}: {len(domain.datasets)} datasets ({len(new)} new partitions)")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    with lake_settings(args.port) as settings:
        defs = _definitions(settings)
        loads = select_loads(
            _active(settings, defs), args.domain, args.dataset, args.years, args.allow_shrink
        )
        outcomes = run_loads(settings, loads, defs)
    failed = [o for o in outcomes if not o.success]
    if failed:
        say(f"{len(failed)} of {len(outcomes)} load(s) failed:")
        for o in failed:
            say(f"  {o.load.domain} {o.load.dataset_id}: {o.error}")
    return 1 if failed else 0


def lake_summary(settings: Settings, outcomes: list) -> tuple[list[list], list[str]]:
    """Per domain table: datasets, rows in Iceberg (+ quarantined) vs rows e-Stat serves."""
    from estat_assets.defs.resources import build_resources
    from estat_assets.lake.iceberg import slice_rows, table_exists
    from estat_assets.lake.quarantine import quarantine_name
    from estat_assets.lake.rawstore import load_manifest

    res = build_resources(settings)
    iceberg, storage = res["iceberg"], res["lake"].storage()
    catalog = iceberg.catalog()
    problems, rows = [], []
    for domain in sorted({o.load.domain for o in outcomes}):
        table_id, q_id = iceberg.identifier(domain), iceberg.identifier(quarantine_name(domain))
        table = catalog.load_table(table_id) if table_exists(catalog, table_id) else None
        held = catalog.load_table(q_id) if table_exists(catalog, q_id) else None
        stored = quarantined = served = 0
        datasets = years = 0
        for o in (o for o in outcomes if o.load.domain == domain):
            in_lake = slice_rows(table, o.load.dataset_id) if table else {}
            in_q = slice_rows(held, o.load.dataset_id) if held else {}
            raw = load_manifest(storage, domain, o.load.dataset_id)
            expected = raw["total_number"] if raw else 0
            got = sum(in_lake.values()) + sum(in_q.values())
            if got != expected:
                problems.append(
                    f"{domain} {o.load.dataset_id}: lake has {got:,} rows "
                    f"(with quarantine), e-Stat serves {expected:,}"
                )
            stored += sum(in_lake.values())
            quarantined += sum(in_q.values())
            served += expected
            datasets += 1
            years += len(in_lake)
        rows.append([".".join(table_id), datasets, years, stored, quarantined, served])
    return rows, problems


def cmd_demo(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from estat_assets.defs.resources import build_resources

    started = time.monotonic()
    with lake_settings(args.port) as settings:
        say(f"estat-lake demo — ESTAT_LAKE_HOME={settings.home}")
        say(CREDIT_NOTICE)
        say(f"e-Stat API: {settings.estat_url}")
        defs = _definitions(settings)
        loads = select_loads(_active(settings, defs), args.domain, None, None)
        say(f"{len(loads)} datasets; loading each as one Dagster run")
        outcomes = run_loads(settings, loads, defs)
    rows, problems = lake_summary(settings, outcomes)
    passed = sum(o.checks_passed for o in outcomes)
    failed_checks = sum(o.checks_failed for o in outcomes)
    warned = sum(o.checks_warned for o in outcomes)
    say("\nSummary")
    say(
        tabulate(
            rows,
            headers=[
                "table",
                "datasets",
                "years",
                "rows in lake",
                "quarantined",
                "rows e-Stat serves",
            ],
            tablefmt="github",
            intfmt=",",
        )
    )
    say(
        f"runs: {len(outcomes)} ({sum(not o.success for o in outcomes)} failed); "
        f"asset checks: {passed} passed, {warned} warned, {failed_checks} failed"
    )
    if any(o.load.domain == "population" and o.success for o in outcomes):
        from estat_assets.query.output import format_table

        engine = build_resources(settings)["query_engine"]
        say(
            "\nAnalytics (Trino SQL on DuckDB): largest 総面積 in the latest year, synthetic values"
        )
        say(format_table(engine.run(DEMO_QUERY)[0], "table").rstrip())
    say(
        f"\ndone in {time.monotonic() - started:.1f} s. Open the UI with `make dev` "
        "(http://127.0.0.1:3000) to see the runs, partitions and asset checks."
    )
    say(CREDIT_NOTICE_EN)
    for p in problems:
        print(f"MISMATCH: {p}", file=sys.stderr)
    bad = [o for o in outcomes if not o.success]
    return 1 if problems or bad or failed_checks else 0


def cmd_athena(args: argparse.Namespace) -> int:
    from estat_assets.query.athena_admin import main as athena_main

    return athena_main(args.rest)


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
    p.add_argument(
        "stats_data_id",
        metavar="STATS_DATA_ID",
        help="the table's statsDataId (10 digits, the sid= of its e-Stat page)",
    )
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
    p.add_argument("stats_data_id", metavar="STATS_DATA_ID", help="the table's statsDataId")
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
    p.add_argument("stats_data_id", metavar="STATS_DATA_ID", help="the dataset's statsDataId")
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
    p.add_argument("stats_data_id", metavar="STATS_DATA_ID", help="the dataset the figure is from")
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
    p.add_argument("stats_data_id", metavar="STATS_DATA_ID", help="the dataset's statsDataId")
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
