"""The operations commands: demo, materialize, register, emulator, conform, athena."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from estat_assets import CREDIT_NOTICE, CREDIT_NOTICE_EN
from estat_assets.cli.common import UsageError, lake_settings, say
from estat_assets.settings import Settings

DEMO_QUERY = """
SELECT area_name, year, cat01_name, value, unit
FROM estat.population
WHERE dataset_id = '9900020202' AND cat01_code = 'B1101'
  AND year = (SELECT max(year) FROM estat.population WHERE dataset_id = '9900020202')
ORDER BY value DESC
LIMIT 5
"""


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
