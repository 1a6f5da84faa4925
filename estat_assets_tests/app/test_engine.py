"""The trusted DuckDB engine: the sandbox's locked connection, and no CTE stands in for a table."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import EqualTo

from estat_assets.query.engine import (
    DuckDBEngine,
    QueryError,
    load_arrow,
    plan_sql,
    referenced_tables,
)


@pytest.fixture
def catalog(tmp_path):
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}/warehouse"
    )
    catalog.create_namespace("estat")
    data = pa.table({"dataset_id": ["a", "a", "b"], "value": [1.0, 2.0, 30.0]})
    table = catalog.create_table(("estat", "population"), schema=data.schema)
    table.append(data)
    table = catalog.load_table(("estat", "population"))
    first = table.current_snapshot().snapshot_id
    table.append(pa.table({"dataset_id": ["c"], "value": [400.0]}))
    catalog.first_snapshot = first  # type: ignore[attr-defined]
    return catalog


def test_a_cte_named_like_a_table_never_replaces_the_qualified_table(catalog) -> None:
    engine = DuckDBEngine(catalog)
    sql = "WITH population AS (SELECT 1 AS n) SELECT count(*) AS n FROM estat.population"
    assert engine.query(sql).to_pylist() == [{"n": 4}]
    # unqualified, the CTE in scope answers, as SQL says
    sql = "WITH population AS (SELECT 7 AS n) SELECT n FROM population"
    assert engine.query(sql).to_pylist() == [{"n": 7}]
    # a CTE scoped to a subquery does not hide the table outside it
    sql = (
        "SELECT count(*) AS n FROM population, "
        "(WITH population AS (SELECT 1 AS x) SELECT x FROM population) s"
    )
    assert engine.query(sql).to_pylist() == [{"n": 4}]
    assert referenced_tables(sql) == [(None, "population")]


def test_qualified_columns_and_aliases_still_resolve(catalog) -> None:
    engine = DuckDBEngine(catalog)
    sql = (
        "SELECT population.dataset_id, estat.population.value FROM estat.population "
        "WHERE population.value > 10 ORDER BY 2"
    )
    assert engine.query(sql).to_pylist() == [
        {"dataset_id": "b", "value": 30.0},
        {"dataset_id": "c", "value": 400.0},
    ]
    assert engine.query("SELECT max(p.value) AS m FROM population p").to_pylist() == [{"m": 400.0}]
    duck, refs = plan_sql("SELECT 1 FROM estat.population", "estat")
    assert refs == {"__lake__estat__population": ("estat", "population")}
    assert '"__lake__estat__population" AS population' in duck


def test_the_connection_is_the_sandboxs_locked_one(catalog) -> None:
    engine = DuckDBEngine(catalog)
    with pytest.raises(QueryError, match="disabled by configuration"):
        engine.query("SELECT * FROM read_csv('/etc/passwd')")
    settings = engine.query(
        "SELECT current_setting('enable_external_access') AS external, "
        "current_setting('lock_configuration') AS locked"
    )
    assert settings.to_pylist() == [{"external": False, "locked": True}]


def test_unknown_tables_name_the_known_ones(catalog) -> None:
    with pytest.raises(QueryError, match=r"no table estat\.nothing; tables: population"):
        DuckDBEngine(catalog).query("SELECT * FROM estat.nothing")


def test_load_arrow_filters_pins_a_snapshot_and_reads_schemas(catalog) -> None:
    rows = load_arrow(catalog, "estat", "population", row_filter=EqualTo("dataset_id", "a"))
    assert sorted(rows.column("value").to_pylist()) == [1.0, 2.0]
    old = load_arrow(catalog, "estat", "population", snapshot_id=catalog.first_snapshot)
    assert old.num_rows == 3
    schema = load_arrow(catalog, "estat", "population", schema_only=True)
    assert schema.num_rows == 0 and schema.column_names == ["dataset_id", "value"]
    with pytest.raises(NoSuchTableError):
        load_arrow(catalog, "estat", "nothing")
