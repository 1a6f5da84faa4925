"""DuckDB over pyiceberg scans: the local engine behind ``estat-lake query`` and analytics.

DuckDB's iceberg extension cannot be installed offline, so each table a query names is scanned
with pyiceberg into Arrow and registered in DuckDB. SQL is written in Trino (Athena) dialect and
transpiled by sqlglot, so the same text runs on Athena in production.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import sqlglot
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from sqlglot import exp


class QueryError(ValueError):
    """A query that cannot run: unknown table, bad SQL. The message says which."""


def referenced_tables(sql: str, dialect: str = "trino") -> list[tuple[str | None, str]]:
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError as exc:
        raise QueryError(f"cannot parse SQL: {exc}") from None
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    out = []
    for t in tree.find_all(exp.Table):
        if t.name and t.name not in ctes:
            out.append((t.db or None, t.name))
    return out


def to_duckdb(sql: str, dialect: str = "trino") -> str:
    """Trino SQL → DuckDB SQL, with ``db.table`` references reduced to the registered name."""
    tree = sqlglot.parse_one(sql, read=dialect)
    for t in tree.find_all(exp.Table):
        t.set("db", None)
        t.set("catalog", None)
    return tree.sql(dialect="duckdb")


class DuckDBEngine:
    """Runs Trino-dialect SQL against the Iceberg tables of one namespace."""

    def __init__(self, catalog: Catalog, namespace: str = "estat") -> None:
        self.catalog = catalog
        self.namespace = namespace

    def table_names(self) -> list[str]:
        try:
            return sorted(name for _, name in self.catalog.list_tables(self.namespace))
        except Exception:  # no namespace yet: nothing loaded
            return []

    def query(self, sql: str, dialect: str = "trino") -> pa.Table:
        con = duckdb.connect()
        try:
            for db, name in referenced_tables(sql, dialect):
                ns = db or self.namespace
                try:
                    data = self.catalog.load_table((ns, name)).scan().to_arrow()
                except NoSuchTableError:
                    known = ", ".join(self.table_names()) or "none yet (run the demo first)"
                    raise QueryError(f"no table {ns}.{name}; tables: {known}") from None
                con.register(name, data)
            try:
                return con.sql(to_duckdb(sql, dialect)).to_arrow_table()
            except duckdb.Error as exc:
                raise QueryError(f"query failed: {exc}") from None
        finally:
            con.close()
