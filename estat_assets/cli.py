"""``estat-lake``: the command line for running the lake locally.

estat-lake demo                      # emulator + every sample partition through Dagster
estat-lake emulator --data DIR --port P
estat-lake register [--domain D]     # add datasets/years from e-Stat metadata as partitions
estat-lake materialize --domain D [--dataset ID] [--year Y]
estat-lake query "SELECT ... FROM estat.population"
estat-lake conform RAW.json [MORE.json ...] --out FILE.parquet
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from estat_assets import CREDIT_NOTICE, CREDIT_NOTICE_EN
from estat_assets.settings import DEFAULT_EMULATOR_PORT, local_paths

DEMO_QUERY = """
SELECT area_name, year, cat01_name, value, unit
FROM estat.population
WHERE dataset_id = '9900020202' AND cat01_code = 'B1101'
  AND year = (SELECT max(year) FROM estat.population WHERE dataset_id = '9900020202')
ORDER BY value DESC
LIMIT 5
"""


def _print_table(table, max_rows: int = 50) -> None:
    from tabulate import tabulate

    rows = table.slice(0, max_rows).to_pylist()
    print(
        tabulate(
            [list(r.values()) for r in rows],
            headers=table.column_names,
            tablefmt="github",
            floatfmt=".12g",
        )
    )
    if table.num_rows > max_rows:
        print(f"... {table.num_rows - max_rows} more rows")


@contextlib.contextmanager
def _emulator(port: int) -> Iterator[str | None]:
    """Start the bundled emulator unless ESTAT_API_URL points elsewhere; yield the API base."""
    if os.environ.get("ESTAT_API_URL"):
        yield None
        return
    from estat_emulator import EmulatorServer, TableStore

    server = EmulatorServer(TableStore.default(), host="127.0.0.1", port=port)
    server.start()
    os.environ["ESTAT_API_URL"] = server.api_base
    try:
        yield server.api_base
    finally:
        server.stop()
        os.environ.pop("ESTAT_API_URL", None)


def _client():
    from estat_assets.defs.resources import build_resources

    return build_resources("local")["estat"].client()


def _instance():
    import dagster as dg

    from estat_assets.runner import prepare_home

    prepare_home(local_paths())
    return dg.DagsterInstance.get()


def _selected_domains(name: str | None):
    from estat_assets.domains import load_domains

    domains = load_domains()
    if name:
        domains = tuple(d for d in domains if d.name == name)
        if not domains:
            raise SystemExit(f"no domain {name!r} in domains.yaml")
    return domains


def cmd_emulator(args: argparse.Namespace) -> int:
    from estat_emulator import serve

    serve(args.data, args.host, args.port, faults_file=args.faults, required_app_id=args.app_id)
    return 0


def cmd_conform(args: argparse.Namespace) -> int:
    import orjson
    import pyarrow.parquet as pq

    from estat_assets.conform import ConformInput, conform_pages
    from estat_assets.estat.models import parse_meta_info

    pages = [Path(p).read_bytes() for p in args.pages]
    meta = parse_meta_info(orjson.loads(Path(args.meta).read_bytes())) if args.meta else None
    dataset = args.dataset_id
    if dataset is None:
        head = orjson.loads(pages[0]) if pages else {}
        table_inf = head.get("GET_STATS_DATA", {}).get("STATISTICAL_DATA", {}).get("TABLE_INF", {})
        dataset = str(table_inf.get("@id", "unknown"))
    table = conform_pages(pages, ConformInput(dataset_id=dataset, metadata=meta, run_id="cli"))
    pq.write_table(table, args.out, compression="snappy")
    print(f"{table.num_rows} rows, {table.num_columns} columns → {args.out}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from estat_assets.defs.resources import build_resources
    from estat_assets.query.engine import DuckDBEngine, QueryError

    iceberg = build_resources("local")["iceberg"]
    try:
        result = DuckDBEngine(iceberg.catalog(), iceberg.namespace).query(args.sql)
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_table(result, args.max_rows)
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    from estat_assets.runner import discover, register_slices

    instance = _instance()
    with _emulator(args.port), _client() as client:
        for domain in _selected_domains(args.domain):
            slices = discover(client, domain, only_with_data=not args.all_years)
            register_slices(instance, domain.name, slices)
            print(f"{domain.name}: {len(slices)} partitions registered")
    return 0


def _run_slices(instance, slices, label: str = "") -> list:
    from estat_assets.definitions import build_definitions
    from estat_assets.runner import materialize_slice

    defs = build_definitions("local")
    outcomes = []
    for i, s in enumerate(slices, start=1):
        outcome = materialize_slice(defs, instance, s)
        outcomes.append(outcome)
        status = "ok" if outcome.success else f"FAILED: {outcome.error}"
        print(
            f"{label}[{i}/{len(slices)}] {s.domain} {s.dataset_id}|{s.year}: "
            f"{outcome.rows_written if outcome.rows_written is not None else '-'} rows, "
            f"checks {outcome.checks_passed} passed / {outcome.checks_warned} warned / "
            f"{outcome.checks_failed} failed — {status}",
            flush=True,
        )
    return outcomes


def cmd_materialize(args: argparse.Namespace) -> int:
    from estat_assets.runner import discover, register_slices

    instance = _instance()
    with _emulator(args.port), _client() as client:
        slices = []
        for domain in _selected_domains(args.domain):
            found = discover(client, domain)
            register_slices(instance, domain.name, found)
            slices += [
                s
                for s in found
                if (not args.dataset or s.dataset_id == args.dataset)
                and (not args.year or s.year == args.year)
            ]
        outcomes = _run_slices(instance, slices)
    return 0 if all(o.success for o in outcomes) else 1


def _slice_counts(catalog, identifier) -> dict[tuple[str, int], int]:
    """Rows per (dataset_id, year) of an Iceberg table; {} when the table does not exist."""
    from estat_assets.lake.quarantine import table_exists

    if not table_exists(catalog, identifier):
        return {}
    data = catalog.load_table(identifier).scan(selected_fields=("dataset_id", "year")).to_arrow()
    counts = data.group_by(["dataset_id", "year"]).aggregate([([], "count_all")])
    return {(r["dataset_id"], r["year"]): r["count_all"] for r in counts.to_pylist()}


def lake_summary(slices) -> tuple[list[list], list[str]]:
    """Per domain table: partitions, rows in Iceberg (+ quarantined) vs rows e-Stat serves."""
    from estat_assets.defs.resources import build_resources
    from estat_assets.lake.quarantine import quarantine_name

    iceberg = build_resources("local")["iceberg"]
    catalog = iceberg.catalog()
    problems = []
    rows = []
    for domain in sorted({s.domain for s in slices}):
        expected = {
            (s.dataset_id, int(s.year)): s.expected_rows for s in slices if s.domain == domain
        }
        actual = _slice_counts(catalog, iceberg.identifier(domain))
        held = _slice_counts(catalog, iceberg.identifier(quarantine_name(domain)))
        for key, n in expected.items():
            stored = actual.get(key, 0) + held.get(key, 0)
            if stored != n:
                problems.append(
                    f"{domain} {key}: lake has {actual.get(key, 0)} + {held.get(key, 0)} "
                    f"quarantined, e-Stat serves {n}"
                )
        rows.append(
            [
                f"{iceberg.namespace}.{domain}",
                len({k[0] for k in actual}),
                len(actual),
                sum(actual.values()),
                sum(held.values()),
                sum(expected.values()),
            ]
        )
    return rows, problems


def cmd_demo(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from estat_assets.defs.resources import build_resources
    from estat_assets.query.engine import DuckDBEngine
    from estat_assets.runner import discover, register_slices

    started = time.monotonic()
    paths = local_paths()
    print(f"estat-lake demo — ESTAT_LAKE_HOME={paths.home}")
    print(CREDIT_NOTICE)
    instance = _instance()
    with _emulator(args.port) as api, _client() as client:
        print(f"e-Stat API: {api or os.environ['ESTAT_API_URL']} (bundled emulator: {bool(api)})")
        slices = []
        for domain in _selected_domains(args.domain):
            found = discover(client, domain)
            register_slices(instance, domain.name, found)
            slices += found
        print(f"{len(slices)} partitions with data; materializing each as a Dagster run")
        outcomes = _run_slices(instance, slices)
    rows, problems = lake_summary(slices)
    checks_passed = sum(o.checks_passed for o in outcomes)
    checks_failed = sum(o.checks_failed for o in outcomes)
    checks_warned = sum(o.checks_warned for o in outcomes)
    print("\nSummary")
    print(
        tabulate(
            rows,
            headers=[
                "table",
                "datasets",
                "partitions",
                "rows in lake",
                "quarantined",
                "rows e-Stat serves",
            ],
            tablefmt="github",
        )
    )
    print(
        f"runs: {len(outcomes)} ({sum(not o.success for o in outcomes)} failed); "
        f"asset checks: {checks_passed} passed, {checks_warned} warned, {checks_failed} failed"
    )
    iceberg = build_resources("local")["iceberg"]
    print("\nAnalytics (Trino SQL on DuckDB): largest 総面積 in the latest year, synthetic values")
    _print_table(DuckDBEngine(iceberg.catalog(), iceberg.namespace).query(DEMO_QUERY))
    print(
        f"\ndone in {time.monotonic() - started:.1f} s. Open the UI with `make dev` "
        "(http://127.0.0.1:3000) to see the runs, partitions and asset checks."
    )
    print(CREDIT_NOTICE_EN)
    for p in problems:
        print(f"MISMATCH: {p}", file=sys.stderr)
    failed = [o for o in outcomes if not o.success]
    return 1 if problems or failed or checks_failed else 0


def cmd_athena(args: argparse.Namespace) -> int:
    from estat_assets.query.athena import main as athena_main

    return athena_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="estat-lake", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("emulator", help="serve recorded/generated e-Stat responses on loopback")
    p.add_argument(
        "--data", default=None, help="directory of recorded responses (default: bundled)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_EMULATOR_PORT)
    p.add_argument("--faults", default=None, help="JSON file of fault rules")
    p.add_argument("--app-id", default=None, help="require this appId (default: any non-empty)")
    p.set_defaults(func=cmd_emulator)

    p = sub.add_parser("conform", help="conform raw getStatsData page files to Parquet")
    p.add_argument("pages", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--meta", default=None, help="getMetaInfo response for names (optional)")
    p.add_argument("--dataset-id", default=None)
    p.set_defaults(func=cmd_conform)

    p = sub.add_parser(
        "athena",
        help="production Athena tools: setup-workgroup --name N --output s3://... --region R",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_athena)

    p = sub.add_parser("query", help="run Trino-dialect SQL on the local lake (DuckDB)")
    p.add_argument("sql")
    p.add_argument("--max-rows", type=int, default=50)
    p.set_defaults(func=cmd_query)

    for name, func, text in (
        ("register", cmd_register, "register partitions from e-Stat metadata"),
        ("materialize", cmd_materialize, "materialize partitions as Dagster runs"),
        ("demo", cmd_demo, "run every sample partition offline and summarise"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--domain", default=None)
        p.add_argument("--port", type=int, default=DEFAULT_EMULATOR_PORT)
        if name == "register":
            p.add_argument("--all-years", action="store_true")
        if name == "materialize":
            p.add_argument("--dataset", default=None)
            p.add_argument("--year", default=None)
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
