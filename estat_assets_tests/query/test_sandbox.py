"""The sandbox: every way out is refused with a typed error, and nothing happens on refusal.

Two fences are tested separately: the parser check (``check_readonly`` and the DuckDB re-check)
and the locked DuckDB connection, on which forbidden statements are run *directly*, as if the
parser check had been bypassed.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from estat_assets.query.engine import QueryError
from estat_assets.query.sandbox import (
    REFUSAL_KINDS,
    STATEMENT_SELECT,
    CheckedSql,
    SandboxedQuery,
    SqlExecutionError,
    SqlRefusedError,
    SqlTimeoutError,
    check_readonly,
    run_readonly,
    sandbox_connection,
    verify_with_duckdb,
)

KNOWN = ["population", "population_quarantine", "dataset_inventory", "big"]
POPULATION = pa.table(
    {
        "dataset_id": ["0000020202"] * 4,
        "area_code": ["00000", "01000", "13000", "47000"],
        "area_name": ["全国", "北海道", "東京都", "沖縄県"],
        "year": pa.array([2020, 2020, 2020, 2019], pa.int32()),
        "value_raw": ["126146099", "19.0", "99716544", "***"],
        "value": [126146099.0, 19.0, 99716544.0, None],
        "unit": ["人", "％", "人", "人"],
    }
)
BIG_ROWS = 3000  # enough that a triple self cross join runs for minutes


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> SqlCatalog:
    root = tmp_path_factory.mktemp("lake")
    cat = SqlCatalog("t", uri=f"sqlite:///{root}/c.db", warehouse=f"file://{root}/wh")
    cat.create_namespace("estat")
    cat.create_table(("estat", "population"), schema=POPULATION.schema).append(POPULATION)
    big = pa.table({"n": pa.array(range(BIG_ROWS), pa.int64())})
    cat.create_table(("estat", "big"), schema=big.schema).append(big)
    cat.create_namespace("other")
    secret = pa.table({"password": ["hunter2"]})
    cat.create_table(("other", "secret"), schema=secret.schema).append(secret)
    return cat


def _population_state(catalog: SqlCatalog) -> tuple[int | None, int]:
    table = catalog.load_table(("estat", "population"))
    snapshot = table.current_snapshot()
    return (snapshot.snapshot_id if snapshot else None, table.scan().to_arrow().num_rows)


# ------------------------------------------------------------------------ the parser check

REFUSED = [
    # several statements
    ("SELECT 1; SELECT 2", "multiple_statements"),
    ("SELECT * FROM estat.population; DROP TABLE estat.population", "multiple_statements"),
    ("SHOW TABLES; DROP TABLE x", "multiple_statements"),
    # files, other databases
    ("COPY (SELECT 1) TO '/tmp/x.csv'", "file_access"),
    ("copy estat.population to '/tmp/x.parquet' (FORMAT parquet)", "file_access"),
    ("ATTACH '/tmp/x.db'", "file_access"),
    ("ATTACH '/tmp/x.db' AS x (READ_ONLY)", "file_access"),
    ("DETACH x", "file_access"),
    ("EXPORT DATABASE '/tmp/x'", "file_access"),
    ("IMPORT DATABASE '/tmp/x'", "file_access"),
    ("SELECT * FROM read_text('/etc/passwd')", "file_access"),
    ("select * from READ_TEXT('/etc/passwd')", "file_access"),
    ("SELECT * FROM \"read_text\"('/etc/passwd')", "file_access"),
    ("SELECT * FROM read_csv('/etc/passwd')", "file_access"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "file_access"),
    ("SELECT * FROM read_parquet('s3://bucket/x.parquet')", "file_access"),
    ("SELECT * FROM read_json('/tmp/x.json')", "file_access"),
    ("SELECT * FROM glob('/etc/*')", "file_access"),
    ("SELECT * FROM parquet_scan('/tmp/x.parquet')", "file_access"),
    ("SELECT * FROM iceberg_scan('/tmp/wh/estat/population')", "file_access"),
    ("SELECT * FROM query_table('population')", "file_access"),
    ("SELECT * FROM query('SELECT 1')", "file_access"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "file_access"),
    ("SELECT read_text('/etc/passwd')", "file_access"),
    ("SELECT * FROM estat.population, read_csv('/etc/passwd')", "file_access"),
    ("SELECT 1 UNION ALL SELECT * FROM read_text('/etc/passwd')", "file_access"),
    ("WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x", "file_access"),
    (
        "SELECT * FROM estat.population WHERE area_name IN "
        "(SELECT content FROM read_text('/etc/passwd'))",
        "file_access",
    ),
    ("SELECT * FROM LATERAL read_text('/etc/passwd')", "file_access"),
    ("SELECT * FROM TABLE(read_csv('/etc/passwd'))", "file_access"),
    ("SELECT /*+ hint */ * FROM /* c */ read_text('/etc/passwd') -- x", "file_access"),
    ("SELECT * FROM '/etc/passwd'", "file_access"),
    ('SELECT * FROM "/etc/passwd"', "file_access"),
    ("SELECT * FROM 's3://bucket/data.parquet'", "file_access"),
    ("SELECT * FROM 'data.csv'", "file_access"),
    ("SELECT json_execute_serialized_sql('x')", "file_access"),
    ("DESCRIBE SELECT * FROM read_csv('/etc/passwd')", "file_access"),
    # extensions
    ("INSTALL httpfs", "extension"),
    ("LOAD httpfs", "extension"),
    ("FORCE INSTALL httpfs", "extension"),
    # configuration
    ("SET enable_external_access = true", "configuration"),
    ("set threads = 64", "configuration"),
    ("RESET memory_limit", "configuration"),
    ("PRAGMA enable_profiling", "configuration"),
    ("USE other", "configuration"),
    # engine internals
    ("SELECT getenv('HOME')", "forbidden_function"),
    ("SELECT current_setting('enable_external_access')", "forbidden_function"),
    ("SELECT main.getenv('HOME')", "forbidden_function"),
    ("SELECT * FROM duckdb_settings()", "forbidden_function"),
    ("SELECT * FROM duckdb_secrets()", "forbidden_function"),
    ("SELECT getvariable('x')", "forbidden_function"),
    ("SELECT * FROM pragma_table_info('population')", "forbidden_function"),
    ("CALL pragma_version()", "unsupported_statement"),
    ("EXPLAIN SELECT 1", "unsupported_statement"),
    ("SUMMARIZE estat.population", "unsupported_statement"),
    ("FROM estat.population SELECT *", "unsupported_statement"),
    ("VALUES (1)", "unsupported_statement"),
    ("SHOW SCHEMAS", "unsupported_statement"),
    ("SHOW CREATE TABLE estat.population", "unsupported_statement"),
    ("DESCRIBE SELECT 1", "unsupported_statement"),
    # DDL and DML
    ("CREATE TABLE t (a int)", "write_statement"),
    ("CREATE TABLE estat.t AS SELECT * FROM estat.population", "write_statement"),
    ("CREATE VIEW v AS SELECT 1", "write_statement"),
    ("DROP TABLE estat.population", "write_statement"),
    ("ALTER TABLE estat.population ADD COLUMN x int", "write_statement"),
    ("INSERT INTO estat.population (area_code) VALUES ('x')", "write_statement"),
    ("UPDATE estat.population SET value = 0", "write_statement"),
    ("DELETE FROM estat.population", "write_statement"),
    (
        "MERGE INTO estat.population t USING estat.big s ON 1=1 WHEN MATCHED THEN DELETE",
        "write_statement",
    ),
    ("TRUNCATE TABLE estat.population", "write_statement"),
    ("SELECT * INTO copy_of FROM estat.population", "write_statement"),
    ("CHECKPOINT", "write_statement"),
    # other tables
    ("SELECT * FROM other.secret", "outside_namespace"),
    ("SELECT * FROM iceberg.other.secret", "outside_namespace"),
    ("SELECT * FROM estat.population p JOIN other.secret s ON true", "outside_namespace"),
    ("SELECT * FROM information_schema.tables", "outside_namespace"),
    ("SELECT * FROM pg_catalog.pg_tables", "outside_namespace"),
    ("SELECT * FROM system.main.duckdb_tables", "outside_namespace"),
    ("SELECT * FROM duckdb_tables", "outside_namespace"),
    ("SELECT * FROM sqlite_master", "outside_namespace"),
    ("SHOW TABLES FROM other", "outside_namespace"),
    ("SHOW COLUMNS FROM other.secret", "outside_namespace"),
    ("DESCRIBE other.secret", "outside_namespace"),
    ("SELECT * FROM estat.nope", "unknown_table"),
    ("SELECT * FROM nope", "unknown_table"),
    ("DESCRIBE estat.nope", "unknown_table"),
    ("WITH population AS (SELECT 1 AS x) SELECT * FROM estat.population", "ambiguous_name"),
    # rows made by functions
    ("SELECT * FROM range(10)", "table_function"),
    ("SELECT * FROM generate_series(1, 10)", "table_function"),
    # sizes DuckDB allocates outside its memory limit, and cannot interrupt
    ("SELECT sequence(1, 100000000)", "size_limit"),
    ("SELECT * FROM UNNEST(sequence(1, 1000000000)) AS t(x)", "size_limit"),
    ("SELECT repeat('x', 600000000)", "size_limit"),
    ("SELECT repeat(area_name, CAST(value AS INTEGER)) FROM estat.population", "size_limit"),
    ("SELECT lpad(area_name, 1000000000, ' ') FROM estat.population", "size_limit"),
    ("SELECT printf('%300000000d', 1)", "size_limit"),
    ("SELECT printf('%*d', 300000000, 1)", "size_limit"),
    ("SELECT format('{:>{}}', 'x', 300000000)", "size_limit"),
    # not SQL
    ("", "empty_query"),
    ("  ;  ", "empty_query"),
    ("-- only a comment", "empty_query"),
    ("SELECT 'unterminated", "parse_error"),
    ("SELECT FROM WHERE (", "parse_error"),
    ("SELECT " + "(" * 5000 + "1" + ")" * 5000, "parse_error"),
    ("SELECT 1 -- " + "x" * 100_001, "too_long"),
]


@pytest.mark.parametrize(("sql", "kind"), REFUSED)
def test_refused_with_a_typed_error(sql: str, kind: str) -> None:
    with pytest.raises(SqlRefusedError) as info:
        check_readonly(sql, "estat", KNOWN)
    error = info.value
    assert error.kind == kind, error.message
    assert error.retryable is REFUSAL_KINDS[kind]
    assert error.message and "\n" not in error.message
    assert error.hint
    assert isinstance(error, QueryError)  # the CLI's handler catches it


def test_refusal_messages_say_what_and_why() -> None:
    with pytest.raises(SqlRefusedError) as info:
        check_readonly("COPY (SELECT 1) TO '/tmp/x'", "estat", KNOWN)
    assert info.value.message == "COPY refused: COPY reads or writes files; the sandbox only reads."
    assert info.value.hint.startswith("Allowed: one SELECT")
    with pytest.raises(SqlRefusedError) as info:
        check_readonly("SELECT * FROM estat.nope", "estat", KNOWN)
    assert info.value.message == (
        "no table estat.nope; tables in estat: big, dataset_inventory, population, "
        "population_quarantine."
    )
    with pytest.raises(SqlRefusedError) as info:
        check_readonly("SELECT FROM WHERE (", "estat", KNOWN)
    assert info.value.message == (
        "cannot parse SQL (line 1, column 17): Expected table name but got 'WHERE'"
    )
    assert info.value.to_dict() == {
        "error": "SqlRefusedError",
        "kind": "parse_error",
        "message": info.value.message,
        "hint": info.value.hint,
        "retryable": True,
    }


ACCEPTED = [
    ("SELECT * FROM estat.population", ("population",), "SELECT * FROM population"),
    ('SELECT * FROM "estat"."population"', ("population",), 'SELECT * FROM "population"'),
    ("select * from /*+ hint */ ESTAT.Population -- hi", ("population",), None),
    ("SELECT area_name FROM population WHERE area_name = 'a;DROP'", ("population",), None),
    (
        "WITH t AS (SELECT * FROM estat.population) SELECT * FROM t UNION ALL "
        "SELECT * FROM estat.population_quarantine",
        ("population", "population_quarantine"),
        None,
    ),
    ("SELECT a.n FROM estat.big a, estat.big b", ("big",), None),
    ("SELECT * FROM estat.population, UNNEST(ARRAY[1, 2]) AS t(x)", ("population",), None),
    ("SELECT * FROM (VALUES (1), (2)) AS t(x)", (), None),
    ("SELECT 1;", (), "SELECT 1"),
    ("SELECT lpad(area_code, 5, '0') FROM estat.population", ("population",), None),
    ("SELECT * FROM UNNEST(sequence(2015, 2020)) AS t(y)", (), None),
    ("SELECT printf('%5d', 1)", (), None),
    # a line comment cannot end the statement early in what DuckDB runs: comments are dropped
    ("SELECT 1 -- */ ; COPY (SELECT 1) TO '/tmp/x' /*\n", (), "SELECT 1"),
]


@pytest.mark.parametrize(("sql", "tables", "duckdb_sql"), ACCEPTED)
def test_accepted(sql: str, tables: tuple[str, ...], duckdb_sql: str | None) -> None:
    checked = check_readonly(sql, "estat", KNOWN)
    assert checked.statement == STATEMENT_SELECT
    assert checked.tables == tables
    if duckdb_sql is not None:
        assert checked.duckdb_sql == duckdb_sql


def test_describe_and_show_are_accepted() -> None:
    assert check_readonly("DESCRIBE estat.population", "estat", KNOWN).tables == ("population",)
    assert check_readonly("desc population", "estat", KNOWN).duckdb_sql == 'DESCRIBE "population"'
    show = check_readonly("SHOW TABLES FROM estat LIKE 'pop%'", "estat", KNOWN)
    assert (show.statement, show.like, show.tables) == ("show_tables", "pop%", ())
    columns = check_readonly("show columns from estat.population", "estat", KNOWN)
    assert (columns.statement, columns.tables) == ("show_columns", ("population",))


def test_without_known_tables_only_the_namespace_is_checked() -> None:
    assert check_readonly("SELECT * FROM estat.anything", "estat").tables == ("anything",)
    with pytest.raises(SqlRefusedError, match="only tables of estat") as info:
        check_readonly("SELECT * FROM other.anything", "estat")
    assert info.value.kind == "outside_namespace"


def test_every_duckdb_catalog_view_is_refused() -> None:
    """DuckDB resolves the views of main and pg_catalog without a schema: none may pass."""
    con = duckdb.connect()
    try:
        views = con.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE internal"
        ).fetchall()
    finally:
        con.close()
    assert ("main", "sqlite_master") in views and ("pg_catalog", "pg_settings") in views
    for schema, name in views:
        sqls = [f"SELECT * FROM {schema}.{name}"]
        if schema in ("main", "pg_catalog"):
            sqls += [f"SELECT * FROM {name}", f"SELECT * FROM estat.{name}"]
        for sql in sqls:
            with pytest.raises(SqlRefusedError) as info:
                check_readonly(sql, "estat", [*KNOWN, name])
            assert info.value.kind == "outside_namespace", sql


def test_a_cte_out_of_scope_does_not_hide_a_system_view() -> None:
    with pytest.raises(SqlRefusedError) as info:
        check_readonly(
            "SELECT * FROM (WITH sqlite_master AS (SELECT 1 AS x) SELECT x FROM sqlite_master) t, "
            "sqlite_master",
            "estat",
            KNOWN,
        )
    assert info.value.kind == "outside_namespace"


# ------------------------------------------------------------- the second fence: DuckDB parser


@pytest.mark.parametrize(
    ("duckdb_sql", "kind"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "file_access"),
        ("SELECT * FROM population, range(3)", "table_function"),
        ("SELECT getenv('HOME')", "forbidden_function"),
        ("SELECT * FROM secret", "unknown_table"),
        ("SELECT * FROM '/etc/passwd'", "unknown_table"),
        ("SELECT * FROM other.population", "outside_namespace"),
        ("SELECT 1; COPY (SELECT 1) TO '/tmp/x'", "unsupported_statement"),
        ("COPY (SELECT 1) TO '/tmp/x'", "unsupported_statement"),
        ("SHOW TABLES", "unsupported_statement"),
        ("SELECT * FROM sqlite_master", "unknown_table"),
        # a CTE is visible in its own query only, not in the one around it
        (
            "SELECT * FROM (WITH secret AS (SELECT 1 AS x) SELECT x FROM secret) t, secret",
            "unknown_table",
        ),
    ],
)
def test_duckdb_recheck_refuses_what_a_parser_bypass_would_run(duckdb_sql: str, kind: str) -> None:
    """As if sqlglot had accepted (or produced) this text: DuckDB's own tree is checked."""
    con = sandbox_connection()
    try:
        con.register("population", POPULATION)
        with pytest.raises(SqlRefusedError) as info:
            verify_with_duckdb(con, CheckedSql(STATEMENT_SELECT, ("population",), duckdb_sql))
        assert info.value.kind == kind
    finally:
        con.close()


# ------------------------------------------------- the third fence: the locked DuckDB connection


def test_locked_connection_settings() -> None:
    con = sandbox_connection(memory_limit="256MB", threads=2)
    try:
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access',"
                " 'lock_configuration', 'threads', 'autoload_known_extensions',"
                " 'autoinstall_known_extensions', 'temp_directory')"
            ).fetchall()
        )
        memory = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        con.close()
    assert settings == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "threads": "2",
        "autoload_known_extensions": "false",
        "autoinstall_known_extensions": "false",
        "temp_directory": "",
    }
    assert memory == "244.1 MiB"  # 256 MB


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_text('{secret}')",
        "SELECT * FROM read_csv('{secret}')",
        "SELECT * FROM '{secret}'",
        "SELECT * FROM glob('{tmp}/*')",
        "COPY (SELECT 42 AS x) TO '{out}'",
        "COPY (SELECT 42 AS x) TO '{out}' (FORMAT parquet)",
        "ATTACH '{out}' AS x",
        "EXPORT DATABASE '{out}'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "SET lock_configuration = false",
        "SET threads = 64",
        "SET memory_limit = '100GB'",
        "SET temp_directory = '{tmp}'",
        "PRAGMA threads = 64",
    ],
)
def test_locked_connection_refuses_even_without_the_parser_check(tmp_path, statement) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n", encoding="utf-8")
    out = tmp_path / "out"
    sql = statement.format(secret=secret, out=out, tmp=tmp_path)
    con = sandbox_connection()
    try:
        with pytest.raises(duckdb.Error):
            con.execute(sql).fetchall()
        # and the connection is still as locked as before
        assert (
            con.execute("SELECT current_setting('enable_external_access')").fetchone()[0] is False
        )
        assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 2
    finally:
        con.close()
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.csv"]


# ------------------------------------------------------------------- running over a real lake


def test_query_returns_the_exact_rows(catalog) -> None:
    result = run_readonly(
        catalog,
        "SELECT area_name, value_raw, value, unit FROM estat.population "
        "WHERE year = 2020 ORDER BY area_code",
    )
    assert result.table.to_pylist() == [
        {"area_name": "全国", "value_raw": "126146099", "value": 126146099.0, "unit": "人"},
        {"area_name": "北海道", "value_raw": "19.0", "value": 19.0, "unit": "％"},
        {"area_name": "東京都", "value_raw": "99716544", "value": 99716544.0, "unit": "人"},
    ]
    assert result.truncated is False
    assert result.rows == 3
    assert result.tables == ("population",)
    assert result.sql == (
        "SELECT area_name, value_raw, value, unit FROM population WHERE year = 2020 "
        "ORDER BY area_code"
    )
    assert result.elapsed_seconds >= 0


def test_trino_sql_with_ctes_and_set_operations(catalog) -> None:
    result = run_readonly(
        catalog,
        """
        WITH missing AS (SELECT area_name FROM "estat"."population" WHERE value IS NULL)
        SELECT area_name, 'missing' AS what FROM missing
        UNION ALL
        SELECT area_name, 'max' FROM estat.population
        WHERE value = (SELECT max(value) FROM estat.population)
        ORDER BY what
        """,
    )
    assert result.table.to_pylist() == [
        {"area_name": "全国", "what": "max"},
        {"area_name": "沖縄県", "what": "missing"},
    ]


def test_describe_show_columns_and_show_tables(catalog) -> None:
    described = run_readonly(catalog, "DESCRIBE estat.population")
    assert described.table.column("column_name").to_pylist() == POPULATION.column_names
    assert described.table.column("column_type").to_pylist()[3] == "INTEGER"
    shown = run_readonly(catalog, "SHOW COLUMNS FROM population")
    assert shown.table.column("column_name").to_pylist() == POPULATION.column_names
    tables = run_readonly(catalog, "SHOW TABLES")
    assert tables.table.column("Table").to_pylist() == ["big", "population"]  # not other.secret
    assert tables.sql == "" and tables.tables == ()
    like = run_readonly(catalog, "SHOW TABLES IN estat LIKE 'pop%'")
    assert like.table.column("Table").to_pylist() == ["population"]


def test_small_generated_series_run(catalog) -> None:
    result = run_readonly(catalog, "SELECT y FROM UNNEST(sequence(2019, 2021)) AS t(y) ORDER BY y")
    assert result.table.column("y").to_pylist() == [2019, 2020, 2021]


def test_unknown_table_lists_the_lake_tables(catalog) -> None:
    with pytest.raises(SqlRefusedError) as info:
        run_readonly(catalog, "SELECT * FROM estat.populaton")
    assert info.value.kind == "unknown_table"
    assert info.value.message == "no table estat.populaton; tables in estat: big, population."


def test_a_table_of_another_namespace_is_refused_although_it_exists(catalog) -> None:
    with pytest.raises(SqlRefusedError) as info:
        run_readonly(catalog, "SELECT password FROM other.secret")
    assert info.value.kind == "outside_namespace"


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("DROP TABLE estat.population", "write_statement"),
        ("DELETE FROM estat.population", "write_statement"),
        ("INSERT INTO estat.population (area_code) VALUES ('x')", "write_statement"),
        ("CREATE TABLE estat.stolen AS SELECT * FROM estat.population", "write_statement"),
        ("TRUNCATE TABLE estat.population", "write_statement"),
        ("SELECT 1; DROP TABLE estat.population", "multiple_statements"),
    ],
)
def test_refused_writes_leave_the_lake_as_it_was(catalog, sql: str, kind: str) -> None:
    before = _population_state(catalog)
    with pytest.raises(SqlRefusedError) as info:
        run_readonly(catalog, sql)
    assert info.value.kind == kind
    assert _population_state(catalog) == before
    assert sorted(n for _, n in catalog.list_tables("estat")) == ["big", "population"]


@pytest.mark.parametrize(
    ("template", "kind"),
    [
        ("COPY (SELECT * FROM estat.population) TO '{out}'", "file_access"),
        ("COPY estat.population TO '{out}' (FORMAT parquet)", "file_access"),
        ("ATTACH '{out}' AS stolen", "file_access"),
        ("EXPORT DATABASE '{out}'", "file_access"),
        ("SELECT 1; COPY (SELECT 1) TO '{out}'", "multiple_statements"),
        ("SELECT 1 /* ; COPY (SELECT 1) TO '{out}' */", None),
        ("SELECT 1 -- */ ; COPY (SELECT 1) TO '{out}' /*\n", None),
    ],
)
def test_nothing_is_written(catalog, tmp_path, template: str, kind: str | None) -> None:
    out = tmp_path / "out.csv"
    sql = template.format(out=out)
    if kind is None:  # accepted: the COPY was only ever a comment
        assert run_readonly(catalog, sql).table.to_pylist() == [{"1": 1}]
    else:
        with pytest.raises(SqlRefusedError) as info:
            run_readonly(catalog, sql)
        assert info.value.kind == kind
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_row_cap_truncates(catalog) -> None:
    result = run_readonly(catalog, "SELECT n FROM estat.big ORDER BY n", row_cap=5)
    assert result.table.column("n").to_pylist() == [0, 1, 2, 3, 4]
    assert result.truncated is True
    assert result.row_cap == 5
    exact = run_readonly(catalog, "SELECT * FROM estat.population", row_cap=4)
    assert exact.rows == 4 and exact.truncated is False
    default = run_readonly(catalog, "SELECT n FROM estat.big")
    assert default.rows == 1000 and default.truncated is True


@pytest.mark.timeout(120)
def test_time_limit_interrupts_a_slow_query(catalog) -> None:
    sandbox = SandboxedQuery(catalog, "estat", time_limit=0.2)
    with pytest.raises(SqlTimeoutError) as info:
        sandbox.run(
            "SELECT count(*) FROM estat.big a, estat.big b, estat.big c WHERE a.n + b.n + c.n < 0"
        )
    assert info.value.kind == "timeout"
    assert info.value.retryable is True
    assert info.value.message == "query stopped after the 0.2 s time limit."
    assert "dataset_id and year" in info.value.hint
    # the sandbox still answers afterwards
    assert sandbox.run("SELECT count(*) AS n FROM estat.big").table.to_pylist() == [{"n": BIG_ROWS}]


def test_duckdb_errors_are_typed_with_duckdbs_message(catalog) -> None:
    with pytest.raises(SqlExecutionError) as info:
        run_readonly(catalog, "SELECT no_such_column FROM estat.population")
    assert info.value.kind == "execution_error"
    assert "no_such_column" in info.value.message
    assert info.value.retryable is True
    assert "DESCRIBE" in info.value.hint


def test_limits_are_validated(catalog) -> None:
    with pytest.raises(ValueError, match="row_cap"):
        SandboxedQuery(catalog, row_cap=-1)
    with pytest.raises(ValueError, match="time_limit"):
        SandboxedQuery(catalog, time_limit=0)
