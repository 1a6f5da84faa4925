"""Read-only, sandboxed SQL for untrusted callers: an assistant over MCP, a user at the CLI.

Independent fences, so that a hole in one is not a hole in the sandbox:

1. **sqlglot** (``check_readonly``): the Trino text must be one ``SELECT`` (``WITH … SELECT``,
   set operations of selects), ``DESCRIBE <table>``, ``SHOW TABLES`` or ``SHOW COLUMNS FROM
   <table>`` over the lake's namespace: no table functions, no file paths, no system tables, no
   functions that read files, the environment or the configuration.
2. **DuckDB's parser** (``verify_with_duckdb``): the tree is transpiled to DuckDB *without
   comments* and DuckDB parses that text again; the same rules are applied to DuckDB's own
   tree, so a sqlglot/DuckDB disagreement cannot smuggle anything through. Functions whose
   result size is an argument (``repeat``, ``lpad``, ``range`` …) need small literal sizes:
   DuckDB allocates their results outside its memory limit and cannot interrupt them.
3. **The locked connection** (``sandbox_connection``): a fresh in-memory DuckDB with external
   access off (no files, no network, no extensions, no Python variables), autoload/autoinstall
   off, no spill directory, a memory limit and a thread count, then ``lock_configuration`` so
   SQL cannot undo any of it. Only the lake tables the query names are registered, as Arrow.

Results are capped (``row_cap`` rows, then ``truncated=True``) and time-limited (a timer calls
``connection.interrupt()``). Every failure is a ``SandboxError`` with ``kind``, ``message``,
``hint`` and ``retryable``, ready to be returned as a structured MCP tool error.

Not bounded here: memory that DuckDB does not track (strings built by concatenation across CTEs
can still grow past ``memory_limit``); run an exposed service under an OS memory limit.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from estat_assets.query.engine import DuckDBEngine, QueryError, to_duckdb

DEFAULT_NAMESPACE = "estat"
DEFAULT_ROW_CAP = 1000
DEFAULT_TIME_LIMIT = 30.0
DEFAULT_MEMORY_LIMIT = "512MB"
DEFAULT_THREADS = 2
MAX_SQL_CHARS = 100_000

STATEMENT_SELECT = "select"
STATEMENT_DESCRIBE = "describe"
STATEMENT_SHOW_TABLES = "show_tables"
STATEMENT_SHOW_COLUMNS = "show_columns"

# kind → retryable: can a *different* query reach the caller's goal? (The hint says how.) A
# refused COPY or INSTALL cannot be rephrased into something the sandbox runs; an unknown
# table, a parse error or a timeout can.
REFUSAL_KINDS: dict[str, bool] = {
    "empty_query": True,
    "too_long": True,
    "parse_error": True,
    "multiple_statements": True,
    "write_statement": False,
    "file_access": False,
    "extension": False,
    "configuration": False,
    "unsupported_statement": False,
    "forbidden_function": False,
    "table_function": True,
    "outside_namespace": True,
    "ambiguous_name": True,
    "unknown_table": True,
    "size_limit": True,
}


class SandboxError(QueryError):
    """A query the sandbox did not answer; ``kind``/``message``/``hint`` are for the caller.

    A ``QueryError`` so that code catching the engine's errors (the CLI) catches these too.
    """

    def __init__(self, kind: str, message: str, hint: str, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint
        self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.message}\nhint: {self.hint}"

    def to_dict(self) -> dict[str, Any]:
        """The structured error an MCP tool returns."""
        return {
            "error": type(self).__name__,
            "kind": self.kind,
            "message": self.message,
            "hint": self.hint,
            "retryable": self.retryable,
        }


class SqlRefusedError(SandboxError):
    """The SQL was not run: it is not a single read of the lake's tables."""

    def __init__(self, kind: str, message: str, hint: str, retryable: bool | None = None) -> None:
        super().__init__(
            kind, message, hint, REFUSAL_KINDS.get(kind, False) if retryable is None else retryable
        )


class SqlTimeoutError(SandboxError):
    """The query ran past its time limit and was interrupted."""


class SqlExecutionError(SandboxError):
    """DuckDB (or the lake) failed while running an accepted query; the message is DuckDB's."""


@dataclass(frozen=True)
class CheckedSql:
    """An accepted statement: what it is, which lake tables it reads, what DuckDB will run."""

    statement: str  # STATEMENT_SELECT | _DESCRIBE | _SHOW_TABLES | _SHOW_COLUMNS
    tables: tuple[str, ...]  # lake tables read, unqualified and lower-cased
    duckdb_sql: str  # empty for SHOW TABLES, which the catalog answers
    like: str | None = None  # SHOW TABLES LIKE pattern


@dataclass(frozen=True)
class SandboxResult:
    """Rows of one sandboxed query; ``truncated`` means more than ``row_cap`` rows existed."""

    table: pa.Table
    truncated: bool
    elapsed_seconds: float
    tables: tuple[str, ...]
    sql: str  # the DuckDB text actually run
    row_cap: int

    @property
    def rows(self) -> int:
        return self.table.num_rows


# ---------------------------------------------------------------------------------- the check

_TRINO = sqlglot.Dialect.get_or_raise("trino")
_QUERY_STARTS = {"SELECT", "WITH", "(", "TABLE"}
_DESCRIBE_STARTS = {"DESCRIBE", "DESC"}
_REFUSED_STATEMENTS: dict[str, tuple[str, str]] = {
    "COPY": ("file_access", "COPY reads or writes files"),
    "ATTACH": ("file_access", "ATTACH opens another database"),
    "DETACH": ("file_access", "DETACH changes the attached databases"),
    "EXPORT": ("file_access", "EXPORT DATABASE writes files"),
    "IMPORT": ("file_access", "IMPORT DATABASE reads files and creates tables"),
    "UNLOAD": ("file_access", "UNLOAD writes files"),
    "INSTALL": ("extension", "INSTALL downloads an extension"),
    "LOAD": ("extension", "LOAD loads an extension"),
    "FORCE": ("extension", "FORCE INSTALL downloads an extension"),
    "SET": ("configuration", "SET changes the session's configuration"),
    "RESET": ("configuration", "RESET changes the session's configuration"),
    "PRAGMA": ("configuration", "PRAGMA reads or changes the configuration"),
    "USE": ("configuration", "USE changes the default catalog or schema"),
    **{
        word: ("write_statement", f"{word} changes the database")
        for word in [
            "CREATE",
            "ALTER",
            "DROP",
            "INSERT",
            "UPDATE",
            "DELETE",
            "MERGE",
            "TRUNCATE",
            "REPLACE",
            "UPSERT",
            "GRANT",
            "REVOKE",
            "COMMENT",
            "VACUUM",
            "CHECKPOINT",
            "ANALYZE",
            "REFRESH",
            "OPTIMIZE",
        ]
    },
}
_WRITE_NODES: tuple[type[exp.Expression], ...] = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Into,
)
_SESSION_NODES: tuple[type[exp.Expression], ...] = (
    exp.Copy,
    exp.Command,
    exp.Set,
    exp.Pragma,
    exp.Use,
)
# Functions that touch files, other databases or SQL given as text: kind file_access.
_FILE_FUNCTIONS = re.compile(
    r"(read_\w*|\w*_scan(_\w*)?|sniff_csv|glob|parquet_\w*|iceberg_\w*|delta_\w*|"
    r"import_database|copy_database|sqlite_\w*|postgres_\w*|mysql_\w*|ducklake_\w*|"
    r"query|query_table|json_execute_serialized_sql|json_deserialize_sql)",
    re.IGNORECASE,
)
# Functions that read the environment, the configuration or the system catalog.
_SYSTEM_FUNCTIONS = re.compile(
    r"(getenv|current_setting|getvariable|set_variable|duckdb_\w*|pragma_\w*|\w*secret\w*|"
    r"\w*extension\w*|\w*checkpoint\w*|enable_\w*|disable_\w*|\w*external_resource\w*|"
    r"database_size|database_list|storage_info|table_info|metadata_info|show|show_\w*|"
    r"summary|test_all_types|test_vector_types|python_\w*|user_agent|platform|"
    r"has_\w*_privilege|truncate_duckdb_logs)",
    re.IGNORECASE,
)
# Schemas and names that are the engine's, not the lake's. DuckDB resolves its catalog views
# (duckdb_tables, sqlite_master, pg_settings, pragma_database_list …) without a schema.
_SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "main", "system", "temp", "memory"}
_SYSTEM_TABLES = re.compile(
    r"(duckdb_\w*|sqlite_\w*|pragma_\w*|pg_\w*|information_schema)", re.IGNORECASE
)
_TABLE_NAME = re.compile(r"\w+")
# Functions whose result size is an argument. Their result is allocated outside DuckDB's memory
# limit and cannot be interrupted (repeat('x', 600000000) took 1.3 GB under a 256 MB limit, and
# range(30000000) 7 s after the interrupt), so the size must be an integer literal of at most
# MAX_GENERATED. Index None: every argument is a size.
MAX_GENERATED = 10_000
_SIZE_ARGUMENTS: dict[str, int | None] = {
    "range": None,
    "generate_series": None,
    "repeat": 1,
    "lpad": 1,
    "rpad": 1,
    "list_resize": 1,
    "array_resize": 1,
    "bitstring": 1,
    "bar": 3,
    "to_base": 2,
    "equi_width_bins": 2,
}
_FORMAT_FUNCTIONS = {"printf", "format"}
_SEVERITY = [
    "write_statement",
    "file_access",
    "extension",
    "configuration",
    "unsupported_statement",
    "forbidden_function",
    "table_function",
    "outside_namespace",
    "ambiguous_name",
    "unknown_table",
    "size_limit",
]


def allowed_text(namespace: str) -> str:
    """What the sandbox accepts, in one line (the hint of most refusals)."""
    return (
        "Allowed: one SELECT (WITH … SELECT, UNION/INTERSECT/EXCEPT of SELECTs), "
        f"DESCRIBE <table>, SHOW TABLES or SHOW COLUMNS FROM <table>, reading only the "
        f"tables of {namespace} (SHOW TABLES lists them)."
    )


def _one_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = re.sub(r"<Token token_type: [\w.]+, text: (.*?), line: .*?>", r"'\1'", text)
    return " ".join(text.split())


def _refuse(kind: str, message: str, namespace: str, hint: str | None = None) -> SqlRefusedError:
    return SqlRefusedError(kind, message, hint or allowed_text(namespace))


def _tokenize(sql: str, namespace: str) -> list[Token]:
    try:
        return list(_TRINO.tokenize(sql))
    except TokenError as exc:
        raise _refuse(
            "parse_error", f"cannot parse SQL: {_one_line(str(exc))}", namespace
        ) from None


def _statements(tokens: list[Token]) -> list[list[Token]]:
    out: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            out.append([])
        else:
            out[-1].append(token)
    return [s for s in out if s]


def _parse(tokens: list[Token], sql: str, namespace: str) -> exp.Expression:
    try:
        trees = [t for t in _TRINO.parser().parse(tokens, sql) if t is not None]
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        where = f" (line {error['line']}, column {error['col']})" if "line" in error else ""
        text = error.get("description") or str(exc).splitlines()[0]
        raise _refuse(
            "parse_error", f"cannot parse SQL{where}: {_one_line(text)}", namespace
        ) from None
    except RecursionError:
        raise _refuse("parse_error", "cannot parse SQL: nested too deeply", namespace) from None
    if len(trees) != 1:
        raise _refuse("parse_error", "cannot parse SQL as one statement", namespace)
    return trees[0]


def _func_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _function_problem(name: str, where: str, namespace: str) -> SqlRefusedError | None:
    if _FILE_FUNCTIONS.fullmatch(name):
        return _refuse(
            "file_access",
            f"{name}() refused{where}: it reads files or runs SQL given as text; the sandbox "
            f"only reads the tables of {namespace}.",
            namespace,
        )
    if _SYSTEM_FUNCTIONS.fullmatch(name):
        return _refuse(
            "forbidden_function",
            f"{name}() refused{where}: it reads the engine's environment, configuration or "
            "system catalog, not the lake.",
            namespace,
        )
    return None


def _scan_calls(tokens: list[Token], namespace: str) -> None:
    """Refuse a call of a forbidden function by its tokens, before parsing.

    sqlglot cannot parse every DuckDB call (``glob('/etc/*')`` fails as Trino's GLOB); the
    refusal should still say what was refused, not that the text did not parse.
    """
    for token, following in itertools.pairwise(tokens):
        if following.token_type == TokenType.L_PAREN and token.token_type != TokenType.STRING:
            problem = _function_problem(token.text.lower(), "", namespace)
            if problem:
                raise problem


def _known_map(known_tables: Iterable[str] | None) -> dict[str, str] | None:
    if known_tables is None:
        return None
    return {name.lower(): name for name in known_tables}


def _listing(namespace: str, known: dict[str, str]) -> str:
    names = ", ".join(sorted(known.values()))
    return f"tables in {namespace}: {names}" if names else f"{namespace} has no tables yet"


def _table_problem(
    node: exp.Table,
    namespace: str,
    known: dict[str, str] | None,
    ctes: set[str],
    tables: list[str],
) -> SqlRefusedError | None:
    """Check one table reference; a lake table's lower-cased name is appended to ``tables``."""
    if not isinstance(node.this, exp.Identifier):
        funcs = [node.this] if isinstance(node.this, exp.Func) else []
        funcs += list(node.this.find_all(exp.Func))
        for func in funcs:
            problem = _function_problem(_func_name(func), " as a table", namespace)
            if problem:
                return problem
        name = _func_name(funcs[0]) if funcs else node.this.sql("trino")
        return _refuse(
            "table_function",
            f"table function {name}() refused: a query may read only the tables of "
            f"{namespace}, not rows made by functions.",
            namespace,
            hint=f"Read a lake table instead (SHOW TABLES lists them). {allowed_text(namespace)}",
        )
    name = node.name
    shown = node.sql("trino", comments=False)
    if re.search(r"[/\\~:]|\.\w", name) or name.startswith("."):
        return _refuse(
            "file_access",
            f"{shown} refused: a quoted file path or URL used as a table reads files; "
            f"the sandbox only reads the tables of {namespace}.",
            namespace,
        )
    if node.catalog or (node.db and node.db.lower() != namespace.lower()):
        system = node.db.lower() in _SYSTEM_SCHEMAS or bool(node.catalog)
        what = "a system schema or another catalog" if system else "another schema"
        return _refuse(
            "outside_namespace",
            f"table {shown} refused: it is in {what}; only tables of {namespace} can be read.",
            namespace,
            hint=f"Write {namespace}.<table>. {allowed_text(namespace)}",
        )
    if _SYSTEM_TABLES.fullmatch(name):
        return _refuse(
            "outside_namespace",
            f"table {shown} refused: it is a system table, not one of {namespace}.",
            namespace,
        )
    lower = name.lower()
    if not node.db and lower in ctes:
        return None  # a CTE of this query: its own body is checked like the rest
    if node.db and lower in ctes:
        return _refuse(
            "ambiguous_name",
            f"{shown} and a CTE of this query share the name {name}: DuckDB would read the CTE.",
            namespace,
            hint=f"Rename the CTE. {allowed_text(namespace)}",
        )
    if not _TABLE_NAME.fullmatch(name) or (known is not None and lower not in known):
        listing = _listing(namespace, known) if known is not None else "SHOW TABLES lists them"
        return _refuse(
            "unknown_table",
            f"no table {namespace}.{name}; {listing}.",
            namespace,
            hint=f"Use one of the tables listed. {allowed_text(namespace)}",
        )
    if lower not in tables:
        tables.append(lower)
    return None


def _check_query(
    tree: exp.Expression, namespace: str, known: dict[str, str] | None
) -> tuple[str, ...]:
    """Every problem of a SELECT tree; the most severe is raised. Returns the lake tables."""
    if not isinstance(tree, exp.Query):
        raise _refuse(
            "unsupported_statement",
            f"{type(tree).__name__.upper()} refused: only queries run in the sandbox.",
            namespace,
        )
    problems: list[SqlRefusedError] = []
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    tables: list[str] = []
    for node in tree.walk():
        if isinstance(node, _WRITE_NODES):
            kind = "write_statement"
            what = "SELECT … INTO" if isinstance(node, exp.Into) else node.key.upper()
            problems.append(
                _refuse(
                    kind,
                    f"{what} refused: it changes the database; the sandbox only reads.",
                    namespace,
                )
            )
        elif isinstance(node, _SESSION_NODES):
            problems.append(
                _refuse(
                    "configuration",
                    f"{node.key.upper()} refused inside a query: only reads are allowed.",
                    namespace,
                )
            )
        elif isinstance(node, exp.Func):
            problem = _function_problem(_func_name(node), "", namespace)
            if problem:
                problems.append(problem)
        if isinstance(node, exp.Lateral) and not isinstance(node.this, exp.Subquery | exp.Query):
            func = node.this
            name = _func_name(func) if isinstance(func, exp.Func) else func.sql("trino")
            problems.append(
                _function_problem(name, " as a table", namespace)
                or _refuse(
                    "table_function",
                    f"LATERAL {name}() refused: a query may read only the tables of {namespace}.",
                    namespace,
                )
            )
        if isinstance(node, exp.Table):
            problem = _table_problem(node, namespace, known, ctes, tables)
            if problem:
                problems.append(problem)
    if problems:
        problems.sort(key=lambda p: _SEVERITY.index(p.kind) if p.kind in _SEVERITY else 99)
        raise problems[0]
    return tuple(sorted(tables))


def _describe_sql(name: str) -> str:
    table = exp.Table(this=exp.to_identifier(name, quoted=True))
    return exp.Describe(this=table).sql("duckdb")


def _check_describe(
    tree: exp.Expression, namespace: str, known: dict[str, str] | None
) -> CheckedSql:
    target = tree.this
    if not isinstance(target, exp.Table) or not isinstance(target.this, exp.Identifier):
        raise _refuse(
            "unsupported_statement",
            "DESCRIBE refused: only DESCRIBE <table> is allowed, not DESCRIBE of a query.",
            namespace,
        )
    tables: list[str] = []
    problem = _table_problem(target, namespace, known, set(), tables)
    if problem:
        raise problem
    return CheckedSql(STATEMENT_DESCRIBE, tuple(tables), _describe_sql(tables[0]))


def _check_show(rest: str, namespace: str, known: dict[str, str] | None) -> CheckedSql:
    """``SHOW TABLES [FROM|IN ns] [LIKE 'p']`` or ``SHOW COLUMNS FROM|IN <table>``."""
    tokens = _tokenize(rest, namespace)
    words = [t.text.upper() if t.token_type != TokenType.STRING else None for t in tokens]
    refused = _refuse(
        "unsupported_statement",
        f"SHOW {rest.strip()[:60]} refused: only SHOW TABLES [FROM {namespace}] [LIKE '…'] "
        "and SHOW COLUMNS FROM <table> are allowed.",
        namespace,
    )
    if words[:1] == ["TABLES"]:
        i, like = 1, None
        if words[i : i + 1] in (["FROM"], ["IN"]):
            if len(tokens) <= i + 1 or tokens[i + 1].text.lower() != namespace.lower():
                schema = tokens[i + 1].text if len(tokens) > i + 1 else ""
                raise _refuse(
                    "outside_namespace",
                    f"SHOW TABLES FROM {schema} refused: only the tables of {namespace} "
                    "can be listed.",
                    namespace,
                )
            i += 2
        if words[i : i + 1] == ["LIKE"]:
            if len(tokens) <= i + 1 or tokens[i + 1].token_type != TokenType.STRING:
                raise refused
            like = tokens[i + 1].text
            i += 2
        if i != len(tokens):
            raise refused
        return CheckedSql(STATEMENT_SHOW_TABLES, (), "", like)
    if words[:1] == ["COLUMNS"] and words[1:2] in (["FROM"], ["IN"]):
        target = _table_ref(tokens[2:])
        if target is None:
            raise refused
        checked = _check_describe(exp.Describe(this=target), namespace, known)
        return CheckedSql(STATEMENT_SHOW_COLUMNS, checked.tables, checked.duckdb_sql)
    raise refused


def _table_ref(tokens: list[Token]) -> exp.Table | None:
    """``[catalog.][db.]name`` from ``tokens``, or ``None`` if they are anything else."""
    if len(tokens) % 2 == 0 or len(tokens) > 5:
        return None
    parts: list[exp.Identifier | None] = []
    for i, token in enumerate(tokens):
        if i % 2 == 1:
            if token.token_type != TokenType.DOT:
                return None
            continue
        quoted = token.token_type == TokenType.IDENTIFIER
        if not quoted and not re.fullmatch(r"\w+", token.text):
            return None
        parts.append(exp.to_identifier(token.text, quoted=quoted))
    catalog, db, name = [None] * (3 - len(parts)) + parts
    return exp.Table(this=name, db=db, catalog=catalog)


def check_readonly(
    sql: str, namespace: str = DEFAULT_NAMESPACE, known_tables: Iterable[str] | None = None
) -> CheckedSql:
    """Accept one read of the lake's tables or raise ``SqlRefusedError`` saying why not.

    ``sql`` is Trino dialect. With ``known_tables`` (the namespace's tables), a table that is
    not among them is refused before anything is loaded, and the message lists what exists.
    The DuckDB text is checked again by DuckDB's parser (``verify_with_duckdb``) before it is
    returned, on a throwaway connection: parsing needs no table.
    """
    checked = _check_sqlglot(sql, namespace, _known_map(known_tables))
    if checked.duckdb_sql:
        con = sandbox_connection(memory_limit="64MB", threads=1)
        try:
            verify_with_duckdb(con, checked, namespace)
        finally:
            con.close()
    return checked


def _check_sqlglot(sql: str, namespace: str, known: dict[str, str] | None) -> CheckedSql:
    """The first fence: tokens and sqlglot's Trino tree."""
    if len(sql) > MAX_SQL_CHARS:
        raise _refuse(
            "too_long",
            f"SQL of {len(sql):,} characters refused: the limit is {MAX_SQL_CHARS:,}.",
            namespace,
        )
    statements = _statements(_tokenize(sql, namespace))
    if not statements:
        raise _refuse("empty_query", "no SQL statement given.", namespace)
    if len(statements) > 1:
        firsts = ", ".join(s[0].text.upper() for s in statements[:5])
        raise _refuse(
            "multiple_statements",
            f"{len(statements)} statements ({firsts}) refused: send one statement per query.",
            namespace,
        )
    tokens = statements[0]
    first = tokens[0].text.upper()
    if first == "SHOW":
        rest = tokens[1].text if len(tokens) > 1 else ""
        return _check_show(rest, namespace, known)
    if first in _DESCRIBE_STARTS or first in _QUERY_STARTS:
        _scan_calls(tokens, namespace)
    if first in _DESCRIBE_STARTS:
        tree = _parse(tokens, sql, namespace)
        if not isinstance(tree, exp.Describe):
            raise _refuse("unsupported_statement", f"{first} refused.", namespace)
        return _check_describe(tree, namespace, known)
    if first not in _QUERY_STARTS:
        kind, reason = _REFUSED_STATEMENTS.get(
            first, ("unsupported_statement", f"{first} is not a query")
        )
        raise _refuse(kind, f"{first} refused: {reason}; the sandbox only reads.", namespace)
    tree = _parse(tokens, sql, namespace)
    tables = _check_query(tree, namespace, known)
    duck = to_duckdb(tree.sql(dialect="trino", comments=False))
    return CheckedSql(STATEMENT_SELECT, tables, duck)


# ---------------------------------------------------------------------------- the execution


def sandbox_connection(
    memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int = DEFAULT_THREADS
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB that cannot touch files, the network or its own settings.

    Configured before anything is registered and then locked, so even SQL that got past the
    parser check cannot ``SET enable_external_access``, read a file or load an extension.
    ``temp_directory=''`` keeps a big query from spilling to disk: it hits the memory limit.
    """
    con = duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_persistent_secrets": False,
            "python_enable_replacements": False,
            "temp_directory": "",
            "memory_limit": str(memory_limit),
            "threads": int(threads),
        },
    )
    con.execute("SET lock_configuration = true")
    return con


def verify_with_duckdb(
    con: duckdb.DuckDBPyConnection, checked: CheckedSql, namespace: str = DEFAULT_NAMESPACE
) -> None:
    """Check the transpiled text again with DuckDB's own parser (the second fence).

    sqlglot and DuckDB could disagree about some text; what runs is what DuckDB parses, so the
    same rules are applied to DuckDB's syntax tree: one SELECT, no table function, no forbidden
    function, no table but the registered ones and the query's CTEs.
    """
    sql = checked.duckdb_sql
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise _refuse(
            "parse_error", f"DuckDB cannot parse the query: {_one_line(str(exc))}", namespace
        ) from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise _refuse(
            "unsupported_statement", "DuckDB does not read the query as one SELECT.", namespace
        )
    rows = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchall()
    try:
        tree = json.loads(rows[0][0]) if rows else {"error": True}
        if tree.get("error"):
            message = tree.get("error_message", "unknown error")
            raise _refuse("parse_error", f"DuckDB cannot parse the query: {message}", namespace)
        _verify_nodes(tree, set(checked.tables), checked.statement, namespace)
    except RecursionError:
        raise _refuse("parse_error", "the query is nested too deeply", namespace) from None


def _verify_nodes(node: Any, visible: set[str], statement: str, namespace: str) -> None:
    """Walk DuckDB's serialized tree; ``visible`` = registered tables + CTEs in scope."""
    if isinstance(node, list):
        for value in node:
            _verify_nodes(value, visible, statement, namespace)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    if isinstance(cte_map, dict) and cte_map.get("map"):
        visible = visible | {str(entry["key"]).lower() for entry in cte_map["map"]}
    where = " (DuckDB's parser)"
    kind = node.get("type")
    if kind == "TABLE_FUNCTION":
        function = node.get("function")
        name = str(function.get("function_name", "?") if isinstance(function, dict) else "?")
        if name.lower() != "unnest":  # FROM UNNEST(ARRAY[…]) is Trino's; it reads no table
            raise _function_problem(name.lower(), where, namespace) or _refuse(
                "table_function", f"table function {name}() refused{where}.", namespace
            )
    if kind == "BASE_TABLE":
        name = str(node.get("table_name", ""))
        if node.get("schema_name") or node.get("catalog_name"):
            raise _refuse(
                "outside_namespace", f"table {name} in another schema refused{where}.", namespace
            )
        if name.lower() not in visible or _SYSTEM_TABLES.fullmatch(name):
            raise _refuse(
                "unknown_table",
                f"table {name} refused{where}: not a table of {namespace}.",
                namespace,
            )
    if kind == "SHOW_REF" and (
        statement not in (STATEMENT_DESCRIBE, STATEMENT_SHOW_COLUMNS)
        or node.get("show_type") != "DESCRIBE"
    ):
        raise _refuse("unsupported_statement", f"SHOW/DESCRIBE form refused{where}.", namespace)
    if node.get("class") == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        arguments = [
            a.get("expression", a) if isinstance(a, dict) else a
            for a in node.get("arguments") or node.get("children") or []
        ]
        problem = _function_problem(name, where, namespace) or _size_problem(
            name, arguments, namespace
        )
        if problem:
            raise problem
    for value in node.values():
        _verify_nodes(value, visible, statement, namespace)


def _integer_literal(node: Any) -> int | None:
    if not isinstance(node, dict):
        return None
    literal = node.get("literal")
    if node.get("class") != "CONSTANT" or not isinstance(literal, dict):
        return None
    try:
        return int(str(literal.get("text")))
    except ValueError:
        return None


def _size_problem(name: str, arguments: list[Any], namespace: str) -> SqlRefusedError | None:
    """Refuse a size argument that is not a small integer literal (see ``_SIZE_ARGUMENTS``)."""
    hint = (
        f"Give {name}() literal sizes of at most {MAX_GENERATED:,}, e.g. sequence(1, 100); "
        "aggregate or filter lake rows instead of generating data."
    )
    if name in _FORMAT_FUNCTIONS and arguments:
        literal = arguments[0].get("literal") if isinstance(arguments[0], dict) else None
        text = str(literal.get("text")) if isinstance(literal, dict) else None
        widths = [int(n) for n in re.findall(r"\d+", text or "")]
        if (
            text is None
            or "*" in text
            or re.search(r"\{[^}]*\{", text)
            or max(widths, default=0) > MAX_GENERATED
        ):
            return _refuse(
                "size_limit",
                f"{name}() refused: its format must be a string literal without * or nested "
                f"{{}} and with widths of at most {MAX_GENERATED:,}.",
                namespace,
                hint=hint,
            )
        return None
    if name not in _SIZE_ARGUMENTS:
        return None
    index = _SIZE_ARGUMENTS[name]
    sizes = arguments if index is None else arguments[index : index + 1]
    for argument in sizes:
        value = _integer_literal(argument)
        if value is None or abs(value) > MAX_GENERATED:
            return _refuse(
                "size_limit",
                f"{name}() refused: a size that is not an integer literal of at most "
                f"{MAX_GENERATED:,} can allocate memory outside the sandbox's limits.",
                namespace,
                hint=hint,
            )
    return None


def _like(pattern: str) -> re.Pattern[str]:
    """SQL LIKE (``%`` any run, ``_`` one character) as a regular expression."""
    parts = (".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


class SandboxedQuery:
    """Runs untrusted Trino SQL read-only against the Iceberg tables of one namespace.

    Each ``run`` uses a new locked DuckDB connection holding only the tables the query names,
    so queries cannot see or affect each other. The time limit covers DuckDB's execution;
    loading the named tables from Iceberg (pyiceberg, not interruptible) is not counted in it
    but is in ``elapsed_seconds``.
    """

    def __init__(
        self,
        catalog: Catalog,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        row_cap: int = DEFAULT_ROW_CAP,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        if row_cap < 0 or time_limit <= 0 or threads < 1:
            raise ValueError("row_cap must be >= 0, time_limit > 0 and threads >= 1")
        self.catalog = catalog
        self.namespace = namespace
        self.row_cap = row_cap
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.threads = threads

    def table_names(self) -> list[str]:
        return DuckDBEngine(self.catalog, self.namespace).table_names()

    def check(self, sql: str) -> CheckedSql:
        return check_readonly(sql, self.namespace, self.table_names())

    def run(self, sql: str) -> SandboxResult:
        started = time.perf_counter()
        known = self.table_names()
        checked = check_readonly(sql, self.namespace, known)
        if checked.statement == STATEMENT_SHOW_TABLES:
            pattern = _like(checked.like) if checked.like is not None else None
            names = [n for n in sorted(known) if pattern is None or pattern.fullmatch(n)]
            table = pa.table({"Table": pa.array(names, pa.string())})
            return self._result(table, checked, started, "")
        con = sandbox_connection(self.memory_limit, self.threads)
        try:
            actual = {n.lower(): n for n in known}
            schema_only = checked.statement != STATEMENT_SELECT
            for name in checked.tables:
                con.register(name, self._load(actual.get(name, name), schema_only))
            table = self._execute(con, checked.duckdb_sql)
        finally:
            con.close()
        return self._result(table, checked, started, checked.duckdb_sql)

    def _result(
        self, table: pa.Table, checked: CheckedSql, started: float, sql: str
    ) -> SandboxResult:
        return SandboxResult(
            table=table.slice(0, self.row_cap),
            truncated=table.num_rows > self.row_cap,
            elapsed_seconds=time.perf_counter() - started,
            tables=checked.tables,
            sql=sql,
            row_cap=self.row_cap,
        )

    def _load(self, name: str, schema_only: bool) -> pa.Table:
        """The lake table as Arrow; only its schema for DESCRIBE (no data files read)."""
        try:
            table = self.catalog.load_table((self.namespace, name))
            if schema_only:
                return table.schema().as_arrow().empty_table()
            return table.scan().to_arrow()
        except NoSuchTableError:
            raise _refuse(
                "unknown_table", f"no table {self.namespace}.{name}.", self.namespace
            ) from None
        except Exception as exc:
            raise SqlExecutionError(
                "lake_error",
                f"reading {self.namespace}.{name} from the lake failed: {_one_line(str(exc))}",
                "Retry later; if it persists the table's metadata or files need repair.",
                retryable=True,
            ) from None

    def _execute(self, con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
        """Run ``sql``, keeping at most ``row_cap + 1`` rows, interrupted at the time limit."""
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            con.interrupt()

        timer = threading.Timer(self.time_limit, stop)
        timer.daemon = True
        timer.start()
        wanted = self.row_cap + 1
        try:
            reader = con.sql(sql).to_arrow_reader(max(1, min(wanted, 100_000)))
            batches, rows = [], 0
            try:
                for batch in reader:
                    batches.append(batch)
                    rows += batch.num_rows
                    if rows >= wanted:
                        break  # the rest is never computed for a streaming plan
            finally:
                reader.close()
            return pa.Table.from_batches(batches, schema=reader.schema)
        except duckdb.InterruptException:
            raise self._timeout() from None
        except duckdb.OutOfMemoryException as exc:
            raise SqlExecutionError(
                "memory_limit",
                f"query stopped at the {self.memory_limit} memory limit: {_one_line(str(exc))}",
                "Narrow it: filter on dataset_id and year (the partition columns), select fewer "
                "columns, aggregate, or avoid cross joins.",
                retryable=True,
            ) from None
        except duckdb.PermissionException as exc:
            raise _refuse(
                "file_access", f"refused by DuckDB: {_one_line(str(exc))}", self.namespace
            ) from None
        except duckdb.Error as exc:
            if timed_out.is_set():
                raise self._timeout() from None
            raise SqlExecutionError(
                "execution_error",
                f"query failed: {_one_line(str(exc))}",
                "Fix the SQL: DESCRIBE <table> lists a table's columns; SQL is Trino dialect.",
                retryable=True,
            ) from None
        finally:
            timer.cancel()

    def _timeout(self) -> SqlTimeoutError:
        return SqlTimeoutError(
            "timeout",
            f"query stopped after the {self.time_limit:g} s time limit.",
            "Narrow it: filter on dataset_id and year (the partition columns), select fewer "
            "columns, aggregate before joining, avoid cross joins, or add a LIMIT.",
            retryable=True,
        )


def run_readonly(
    catalog: Catalog,
    sql: str,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    row_cap: int = DEFAULT_ROW_CAP,
    time_limit: float = DEFAULT_TIME_LIMIT,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int = DEFAULT_THREADS,
) -> SandboxResult:
    """Check and run one untrusted query (see ``SandboxedQuery``)."""
    sandbox = SandboxedQuery(
        catalog,
        namespace,
        row_cap=row_cap,
        time_limit=time_limit,
        memory_limit=memory_limit,
        threads=threads,
    )
    return sandbox.run(sql)
