"""The local Dagster instance's SQLite storage, with the event log's connections kept open.

Why: Dagster's ``SqliteEventLogStorage`` builds a SQLAlchemy engine, opens the run's database,
commits and closes it for every event it stores; closing the last connection of a WAL database
checkpoints it and deletes its WAL file. A run of one e-Stat table stores about 70 events and
asks the index about 50 more times (dynamic partitions, materializations), so the 60,000-row,
42-year table spent 0.6-0.8 s of its 2.3-3.4 s load there (docs/benchmarks.md). Here each
process keeps one engine per database (the index and the last few runs), so an event is one
insert and one commit on an open connection.

The file layout, the schema and the migrations are Dagster's own (the same ``history/`` tree as
the default ``storage: sqlite``), so an existing home works unchanged, and production
(Postgres, ``deploy/dagster.yaml``) is not concerned.

Opening a storage is cheap too: Dagster checks each database's alembic revision by loading and
executing every migration script it ships (~40 files, three times per instance), and a new
instance is opened per sensor evaluation in the code server and once per run worker; its code
then creates the schema only when the database carries no revision at all. Here a database that
carries one is opened without the scripts (one query), which is the same decision.

One behaviour to keep: the UI follows a running run's log through a file watcher on the run's
database file, which Dagster's closing connection modified after every event (its checkpoint).
With the connection left open, a commit lands in ``<run>.db-wal``, and the database file would
change only at checkpoints; so after a commit that changed a run's database, its file's time is
touched, which wakes the watchers once the event is readable.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sql import Connection
from dagster._core.storage.sqlite import create_db_conn_string
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData

# Engines kept per process besides the index: the runs a process writes or follows at a time
# (a run worker writes one; the UI follows a few).
RUN_ENGINES = 8


def schema_ready(engine: sa.Engine, table: str | None = None) -> bool:
    """Whether Dagster's storage code would leave this database as it is: it carries an alembic
    revision (and ``table``, which Dagster creates apart from the migrations)."""
    with engine.connect() as conn:
        names = {
            row[0]
            for row in conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        }
        if "alembic_version" not in names or (table is not None and table not in names):
            return False
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).first() is not None


def _open(
    cls: type[SqliteRunStorage] | type[SqliteScheduleStorage],
    base_dir: str,
    name: str,
    table: str | None = None,
):
    """``cls.from_local(base_dir)``, without its migration scripts when the schema is there."""
    conn_string = create_db_conn_string(base_dir, name)
    if os.path.exists(os.path.join(base_dir, f"{name}.db")):
        engine = sa.create_engine(conn_string, poolclass=sa.NullPool)
        try:
            if schema_ready(engine, table):
                return cls(conn_string)
        finally:
            engine.dispose()
    return cls.from_local(base_dir)


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's per-run SQLite event log with one open engine per database (see the module)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        super().__init__(base_dir, inst_data)

    def _engine(self, shard: str) -> sa.Engine:
        """The shard's engine, created on first use; the least recently used run shard's engine
        is closed past ``RUN_ENGINES``."""
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            # One connection at a time per database: ``_connect`` holds ``_db_lock`` while in use.
            engine = sa.create_engine(
                self.conn_string_for_shard(shard),
                pool_size=1,
                max_overflow=1,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            self._engines[shard] = engine
            runs = [key for key in self._engines if key != INDEX_SHARD_NAME]
            for old in runs[: max(0, len(runs) - RUN_ENGINES)]:
                self._engines.pop(old).dispose()
            return engine

    def _initdb(self, engine: sa.Engine, for_index_shard: bool = False) -> None:
        if not schema_ready(engine):  # a new run's database (see the module)
            super()._initdb(engine, for_index_shard)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                sqlite = conn.connection.dbapi_connection
                changes = sqlite.total_changes  # type: ignore[union-attr]
                with conn.begin():
                    yield conn
                if shard != INDEX_SHARD_NAME and sqlite.total_changes != changes:  # type: ignore[union-attr]
                    # the commit is in <run>.db-wal: wake the run's watchers (see the module)
                    os.utime(self.path_for_shard(shard))

    def close_engines(self) -> None:
        with self._engines_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self.close_engines()  # the run databases are about to be deleted
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self.close_engines()


class PooledSqliteStorage(DagsterSqliteStorage):
    """``storage: sqlite`` with :class:`PooledSqliteEventLogStorage` as its event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = _open(
            SqliteRunStorage, _runs_directory(base_dir), "runs", "instance_info"
        )
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = _open(
            SqliteScheduleStorage, _schedule_directory(base_dir), "schedules"
        )
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData, config_value: dict[str, str]
    ) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
