"""DuckDB over pyiceberg scans: the local engine behind analytics and trusted in-process SQL.

DuckDB's iceberg extension cannot be installed offline, so each table a query names is scanned
with pyiceberg into Arrow (:func:`load_arrow`) and registered in DuckDB. SQL is written in Trino
(Athena) dialect and transpiled by sqlglot, so the same text runs on Athena in production.

The connection is the sandbox's locked one (``query.sandbox.sandbox_connection``: no files, no
network, no extensions, configuration locked), with a larger memory limit than untrusted queries
get. Lake tables are registered under private names (``__lake__<namespace>__<table>``) and every
reference to them is rewritten, so a CTE that happens to share a table's name can never stand in
for the lake table (``WITH population AS (…) SELECT … FROM estat.population`` reads the lake),
and an unqualified name reads the CTE only where SQL scoping says so.
"""

from __future__ import annotations

import os

import duckdb
import pyarrow as pa
import sqlglot
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from sqlglot import exp

LAKE_PREFIX = "__lake__"
ENGINE_MEMORY_LIMIT = "4GB"  # trusted SQL (analytics over whole domain tables)


class QueryError(ValueError):
    """A query that cannot run: unknown table, bad SQL. The message says which."""


def load_arrow(
    catalog: Catalog,
    namespace: str,
    name: str,
    *,
    schema_only: bool = False,
    row_filter: BooleanExpression | str | None = None,
    snapshot_id: int | None = None,
) -> pa.Table:
    """``namespace.name`` as Arrow: the rows matching ``row_filter`` (pyiceberg prunes files and
    row groups with it) as of ``snapshot_id`` (default: the current snapshot), or only the
    schema (no data file read). Raises ``NoSuchTableError`` for a table that does not exist."""
    table = catalog.load_table((namespace, name))
    if schema_only:
        return table.schema().as_arrow().empty_table()
    scan = table.scan(
        row_filter=row_filter if row_filter is not None else AlwaysTrue(),
        snapshot_id=snapshot_id,
    )
    return scan.to_arrow()


def referenced_tables(sql: str, dialect: str = "trino") -> list[tuple[str | None, str]]:
    """The lake tables ``sql`` reads, as ``(schema or None, name)``: references a CTE in scope
    answers are left out, qualified references never are."""
    tree = _parse(sql, dialect)
    return sorted(
        {(t.db or None, t.name) for t in _lake_tables(tree)}, key=lambda k: (k[0] or "", k[1])
    )


def to_duckdb(sql: str, dialect: str = "trino") -> str:
    """Trino SQL → DuckDB SQL, with ``db.table`` references reduced to the registered name."""
    tree = sqlglot.parse_one(sql, read=dialect)
    for t in tree.find_all(exp.Table):
        t.set("db", None)
        t.set("catalog", None)
    return tree.sql(dialect="duckdb")


def _parse(sql: str, dialect: str) -> exp.Expression:
    try:
        return sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError as exc:
        raise QueryError(f"cannot parse SQL: {exc}") from None


def _lake_tables(tree: exp.Expression) -> list[exp.Table]:
    """Every ``exp.Table`` of ``tree`` that names a lake table rather than a CTE in scope."""
    from sqlglot.optimizer.scope import traverse_scope

    tables = [t for t in tree.find_all(exp.Table) if isinstance(t.this, exp.Identifier) and t.name]
    try:
        ctes_of: dict[int, bool] = {}
        for scope in traverse_scope(tree):
            for t in scope.tables:
                ctes_of[id(t)] = not t.db and t.name in scope.cte_sources
    except Exception:  # sqlglot cannot scope this tree: treat every CTE name as in scope
        names = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        ctes_of = {id(t): (not t.db and t.name in names) for t in tables}
    names = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return [t for t in tables if not ctes_of.get(id(t), not t.db and t.name in names)]


def lake_name(namespace: str, name: str) -> str:
    """The private name a lake table is registered under in DuckDB."""
    return f"{LAKE_PREFIX}{namespace}__{name}".lower()


def plan_sql(sql: str, namespace: str, dialect: str = "trino") -> tuple[str, dict[str, tuple]]:
    """``sql`` as DuckDB text over private table names, and ``{private name: (ns, table)}``.

    A lake reference keeps its alias, or gets its own name as alias, so ``population.value`` and
    ``estat.population.value`` still resolve; column references lose their schema/catalog parts.
    """
    tree = _parse(sql, dialect)
    refs: dict[str, tuple[str, str]] = {}
    for table in _lake_tables(tree):
        ns = table.db or namespace
        private = lake_name(ns, table.name)
        refs[private] = (ns, table.name)
        alias = table.args.get("alias")
        replacement = exp.Table(this=exp.to_identifier(private, quoted=True))
        replacement.set(
            "alias", alias.copy() if alias else exp.TableAlias(this=exp.to_identifier(table.name))
        )
        table.replace(replacement)
    for column in tree.find_all(exp.Column):
        column.set("db", None)
        column.set("catalog", None)
    return tree.sql(dialect="duckdb"), refs


class DuckDBEngine:
    """Runs Trino-dialect SQL against the Iceberg tables of one namespace (trusted SQL)."""

    def __init__(
        self,
        catalog: Catalog,
        namespace: str = "estat",
        *,
        memory_limit: str = ENGINE_MEMORY_LIMIT,
        threads: int | None = None,
    ) -> None:
        self.catalog = catalog
        self.namespace = namespace
        self.memory_limit = memory_limit
        self.threads = threads or max(1, min(8, os.cpu_count() or 1))

    def table_names(self) -> list[str]:
        try:
            return sorted(name for _, name in self.catalog.list_tables(self.namespace))
        except Exception:  # no namespace yet: nothing loaded
            return []

    def query(self, sql: str, dialect: str = "trino") -> pa.Table:
        from estat_assets.query.sandbox import sandbox_connection

        duck_sql, refs = plan_sql(sql, self.namespace, dialect)
        con = sandbox_connection(self.memory_limit, self.threads)
        try:
            for private, (ns, name) in sorted(refs.items()):
                try:
                    data = load_arrow(self.catalog, ns, name)
                except NoSuchTableError:
                    known = ", ".join(self.table_names()) or "none yet (run the demo first)"
                    raise QueryError(f"no table {ns}.{name}; tables: {known}") from None
                con.register(private, data)
            try:
                return con.sql(duck_sql).to_arrow_table()
            except duckdb.Error as exc:
                raise QueryError(f"query failed: {exc}") from None
        finally:
            con.close()
