"""Read-only SQL on the lake, with the citations of what it read.

Locally the SQL runs in the sandbox of ``query/sandbox.py`` (parsed twice, a locked in-memory
DuckDB, a row cap, a time and a memory limit); every table is read at one Iceberg snapshot,
which the answer names. On AWS (``ESTAT_QUERY_ENGINE=athena``) the same parser check runs first
and Athena answers (the workgroup's scan cutoff bounds the cost); the snapshots cited are the
tables' current ones when the query ran.

Citations: the e-Stat tables behind the rows. When the result has a ``dataset_id`` column, its
datasets; otherwise every dataset of the domain tables read (capped), with a note.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from estat_assets import CREDIT_NOTICE, CREDIT_NOTICE_EN
from estat_assets.app.citation import Citation, cite
from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError, app_error

MAX_CITED = 20
DEFAULT_ROW_CAP = 1000
DEFAULT_TIME_LIMIT = 30.0


@dataclass
class QueryAnswer:
    sql: str
    engine: str
    table: pa.Table
    truncated: bool
    row_cap: int
    elapsed_seconds: float
    tables: list[dict[str, Any]]
    citations: list[Citation]
    notes: list[str] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return self.table.num_rows

    def rows(self) -> list[dict[str, Any]]:
        """The rows as JSON values, exactly as stored (``query.output``'s JSON rules)."""
        from estat_assets.query.output import format_table

        return json.loads(format_table(self.table, "json"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            "engine": self.engine,
            "columns": [{"name": f.name, "type": str(f.type)} for f in self.table.schema],
            "rows": self.rows(),
            "row_count": self.row_count,
            "truncated": self.truncated,
            "row_cap": self.row_cap,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "tables": self.tables,
            "citations": [c.to_dict() for c in self.citations],
            "credit": CREDIT_NOTICE,
            "credit_en": CREDIT_NOTICE_EN,
            "notes": self.notes,
        }


def _cited_sandbox(ctx: LakeContext, row_cap: int, time_limit: float, as_of: str | None = None):
    """The sandbox, reading each table at one snapshot and remembering which. With ``as_of``, a
    table that keeps releases is read as e-Stat had published it on that day (each dataset from
    its release of that day) and ``releases`` remembers which snapshot each dataset came from."""
    from estat_assets.lake.releases import read_as_published, releases, releases_as_of
    from estat_assets.query.engine import load_arrow
    from estat_assets.query.sandbox import SandboxedQuery

    class CitedSandbox(SandboxedQuery):
        snapshots: dict[str, int | None]
        releases: dict[str, dict[str, int]]

        def _load(self, name: str, schema_only: bool) -> pa.Table:
            try:
                table = self.catalog.load_table((self.namespace, name))
                snapshot = table.current_snapshot()
            except Exception:
                return super()._load(name, schema_only)  # the sandbox's own error
            self.snapshots[name] = snapshot.snapshot_id if snapshot else None
            if as_of is not None and not schema_only and releases(table):
                kept = releases_as_of(table, as_of)
                self.releases[name] = {r.dataset_id: r.snapshot_id for r in kept}
                data = read_as_published(self.catalog, (self.namespace, name), as_of)
                return data
            if schema_only or snapshot is None:
                return super()._load(name, schema_only)
            try:
                return load_arrow(
                    self.catalog, self.namespace, name, snapshot_id=snapshot.snapshot_id
                )
            except Exception:
                return super()._load(name, schema_only)

    sandbox = CitedSandbox(ctx.catalog(), ctx.namespace, row_cap=row_cap, time_limit=time_limit)
    sandbox.snapshots = {}
    sandbox.releases = {}
    return sandbox


def run_sql(
    ctx: LakeContext,
    sql: str,
    *,
    row_cap: int = DEFAULT_ROW_CAP,
    time_limit: float = DEFAULT_TIME_LIMIT,
    as_of: str | None = None,
) -> QueryAnswer:
    """One read-only query on the environment's engine, with citations. With ``as_of``
    (``YYYY-MM-DD``) the domain tables are read as e-Stat had published them on that day."""
    started = time.perf_counter()
    release_snapshots: dict[str, dict[str, int]] = {}
    if as_of is not None:
        from estat_assets.app.releases import check_day

        as_of = check_day(as_of)
    try:
        if ctx.settings.query_engine == "athena":
            if as_of is not None:
                raise AppError(
                    "unsupported",
                    "--as-of runs on the local engine; on Athena use FOR VERSION AS OF",
                    "read the release's snapshot id from estat.<domain>_releases and query "
                    "… FOR VERSION AS OF <snapshot_id> (docs/operations.md §8)",
                )
            table, truncated, tables_read, snapshots, engine = _athena(ctx, sql, row_cap)
            duck_sql = sql
        else:
            sandbox = _cited_sandbox(ctx, row_cap, time_limit, as_of)
            result = sandbox.run(sql)
            table, truncated, tables_read = result.table, result.truncated, result.tables
            snapshots, engine, duck_sql = sandbox.snapshots, "duckdb (sandbox)", sql
            release_snapshots = sandbox.releases
    except AppError:
        raise
    except Exception as exc:
        raise app_error(exc) from None
    elapsed = time.perf_counter() - started
    citations, notes = _citations(ctx, table, tables_read, snapshots, release_snapshots)
    if as_of is not None:
        notes.append(
            f"as published on {as_of}: each dataset of "
            f"{', '.join(sorted(release_snapshots)) or 'no table'} read from the release e-Stat "
            "had out that day (datasets first published later are absent)"
        )
    tables = [
        {"table": f"{ctx.namespace}.{name}", "snapshot_id": _str(snapshots.get(name))}
        for name in tables_read
    ]
    return QueryAnswer(
        sql=duck_sql,
        engine=engine,
        table=table,
        truncated=truncated,
        row_cap=row_cap,
        elapsed_seconds=elapsed,
        tables=tables,
        citations=citations,
        notes=notes,
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _athena(ctx: LakeContext, sql: str, row_cap: int):
    from estat_assets.query.engine import DuckDBEngine
    from estat_assets.query.sandbox import check_readonly

    known = DuckDBEngine(ctx.catalog(), ctx.namespace).table_names()
    checked = check_readonly(sql, ctx.namespace, known)
    snapshots: dict[str, int | None] = {}
    for name in checked.tables:
        table = ctx.table(name)
        snapshot = table.current_snapshot() if table is not None else None
        snapshots[name] = snapshot.snapshot_id if snapshot else None
    data, _meta = ctx.query_engine().run(sql)
    truncated = data.num_rows > row_cap
    return data.slice(0, row_cap), truncated, checked.tables, snapshots, "athena"


def _domain_of_table(name: str, domains: list[str]) -> str | None:
    if name in domains:
        return name
    owners = [d for d in domains if name.startswith(f"{d}_")]
    return max(owners, key=len) if owners else None


def _citations(
    ctx: LakeContext,
    table: pa.Table,
    tables_read: tuple[str, ...] | list[str],
    snapshots: dict,
    release_snapshots: dict[str, dict[str, int]] | None = None,
) -> tuple[list[Citation], list[str]]:
    release_snapshots = release_snapshots or {}
    inventory = ctx.inventory()
    domains = sorted({s.name for s in ctx.domains()} | {r["domain"] for r in inventory.values()})
    notes: list[str] = []
    in_result: list[str] | None = None
    if "dataset_id" in table.column_names:
        in_result = sorted(
            {v for v in table.column("dataset_id").to_pylist() if isinstance(v, str)}
        )
    wanted: list[tuple[str, str, Any]] = []  # (dataset, domain, snapshot)
    for name in tables_read:
        domain = _domain_of_table(name, domains)
        if domain is None:
            continue
        if name == domain:
            snapshot = snapshots.get(name)
            table_obj = ctx.table(domain)
        else:  # a quarantine, class-codes or analytics table: cite the domain table's lineage
            table_obj = ctx.table(domain)
            snapshot = (
                table_obj.current_snapshot().snapshot_id
                if table_obj and table_obj.current_snapshot()
                else None
            )
            notes.append(
                f"{name} is derived from {ctx.namespace}.{domain}: cited at its current snapshot"
            )
        datasets = (
            in_result
            if in_result is not None
            else sorted(d for d, r in inventory.items() if r.get("domain") == domain)
        )
        for dataset in datasets:
            if inventory.get(dataset, {}).get("domain", domain) == domain:
                kept = release_snapshots.get(name, {})
                if name in release_snapshots and dataset not in kept:
                    continue  # not yet published on the as-of day
                wanted.append((dataset, domain, (kept.get(dataset, snapshot), table_obj)))
    if in_result is None and any(n in ("dataset_inventory", "ingestion_runs") for n in tables_read):
        notes.append("bookkeeping tables describe loads, not e-Stat values")
    seen = set()
    citations: list[Citation] = []
    for dataset, domain, (snapshot, table_obj) in wanted:
        if dataset in seen:
            continue
        seen.add(dataset)
        if len(citations) >= MAX_CITED:
            notes.append(f"more datasets than the {MAX_CITED} cited: filter on dataset_id")
            break
        citations.append(
            cite(
                ctx,
                dataset,
                domain=domain,
                table=table_obj,
                snapshot_id=snapshot,
                inventory=inventory,
            )
        )
    if in_result is not None and not citations and "dataset_id" in table.column_names:
        for dataset in in_result[:MAX_CITED]:
            citations.append(cite(ctx, dataset, inventory=inventory))
    return citations, notes
