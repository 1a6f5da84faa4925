"""``estat_assets/instance_storage.py``: the local instance's event log with open connections.

What must hold: the lake's instance uses it; events round-trip and another process (the UI, the
daemon) sees each one as it is committed, woken by the file watcher although the writer's
connection stays open; a home written by Dagster's own SQLite storage keeps its history; the
engines a process keeps are bounded and closed on dispose and wipe; databases that carry their
schema open without Dagster's migration scripts, and those that do not are created by its code.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from dagster._core.test_utils import create_run_for_test

from estat_assets.instance_storage import (
    RUN_ENGINES,
    PooledSqliteEventLogStorage,
    schema_ready,
)
from estat_assets.runner import open_instance
from estat_assets.settings import Settings

WAIT_S = 30.0  # a bound, not a barrier: each wait returns as soon as its event arrives


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"ESTAT_LAKE_HOME": str(tmp_path / "home")})


@dg.op
def _say_three(context) -> int:  # no annotation: @op refuses a string one
    for i in range(3):
        context.log.info(f"message {i}")
    return 3


@dg.job
def _three_messages() -> None:
    _say_three()


def _messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    logs = instance.all_logs(run_id)
    return [e.user_message for e in logs if e.user_message.startswith("message ")]


def test_the_lake_instance_stores_and_reads_events_through_it(tmp_path) -> None:
    settings = _settings(tmp_path)
    with open_instance(settings) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        result = _three_messages.execute_in_process(instance=instance)
        assert result.success
        run_id = result.run_id
        assert _messages(instance, run_id) == ["message 0", "message 1", "message 2"]
    with open_instance(settings) as again:  # a fresh process's view: from the files
        assert _messages(again, run_id) == ["message 0", "message 1", "message 2"]
        assert again.get_run_by_id(run_id).is_success  # type: ignore[union-attr]


WRITER = textwrap.dedent(
    """
    import sys
    from estat_assets.runner import open_instance
    from estat_assets.settings import Settings

    instance = open_instance(Settings.from_env({"ESTAT_LAKE_HOME": sys.argv[1]}))
    run = instance.get_run_by_id(sys.argv[2])
    for i in range(int(sys.argv[3])):
        instance.report_engine_event(f"message {i}", run)
        print(i, flush=True)
        if sys.stdin.readline().strip() != "next":  # the reader has seen it: write the next
            break
    """
)


def test_another_process_follows_each_event_while_the_writer_keeps_its_connection(
    tmp_path,
) -> None:
    """The UI's live run log: the watcher must wake on each commit of a writer whose connection
    stays open (the commit lands in the WAL file, not the database file)."""
    settings = _settings(tmp_path)
    count = 4
    with open_instance(settings) as instance:
        run = create_run_for_test(instance, job_name="followed")
        seen: list[str] = []
        arrived = threading.Condition()

        def on_event(entry, _cursor) -> None:
            with arrived:
                seen.append(entry.message)
                arrived.notify_all()

        instance.watch_event_logs(run.run_id, None, on_event)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path / "home"), run.run_id, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            for i in range(count):
                assert writer.stdout is not None and writer.stdin is not None
                assert writer.stdout.readline().strip() == str(i)  # event i is committed
                with arrived:
                    assert arrived.wait_for(lambda i=i: f"message {i}" in seen, WAIT_S), (
                        f"the watcher did not report event {i}; saw {seen}"
                    )
                writer.stdin.write("next\n")
                writer.stdin.flush()
            assert writer.wait(WAIT_S) == 0
        finally:
            writer.kill()
        instance.end_watch_event_logs(run.run_id, on_event)
        assert [m for m in seen if m.startswith("message ")] == [
            f"message {i}" for i in range(count)
        ]  # each once, in order


def test_a_home_written_by_dagsters_own_sqlite_storage_keeps_its_history(tmp_path) -> None:
    settings = _settings(tmp_path)
    home = settings.paths.ensure().dagster_home
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")  # Dagster's defaults
    with dg.DagsterInstance.from_config(str(home)) as plain:
        assert not isinstance(plain.event_log_storage, PooledSqliteEventLogStorage)
        run_id = _three_messages.execute_in_process(instance=plain).run_id
    with open_instance(settings) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert _messages(instance, run_id) == ["message 0", "message 1", "message 2"]
        assert instance.get_run_by_id(run_id).is_success  # type: ignore[union-attr]


def test_the_engines_a_process_keeps_are_bounded_and_closed(tmp_path) -> None:
    with dg.instance_for_test(
        overrides={
            "storage": {
                "custom": {
                    "module": "estat_assets.instance_storage",
                    "class": "PooledSqliteStorage",
                    "config": {"base_dir": str(tmp_path / "dagster")},
                }
            }
        }
    ) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        runs = [create_run_for_test(instance, job_name=f"job_{i}") for i in range(RUN_ENGINES + 3)]
        for run in runs:
            instance.report_engine_event("hello", run)
        assert len(storage._engines) == RUN_ENGINES + 1  # the runs + the index
        # an evicted run's database is opened again when needed
        assert [e.message for e in instance.all_logs(runs[0].run_id)] == ["hello"]
        storage.wipe()  # the run databases are deleted: their engines first
        assert list(storage._engines) == ["index"]  # (the wipe empties the index)
        assert instance.all_logs(runs[-1].run_id) == []
        instance.report_engine_event("after the wipe", runs[-1])
        assert [e.message for e in instance.all_logs(runs[-1].run_id)] == ["after the wipe"]
        storage.dispose()
        assert storage._engines == {}


def test_databases_with_a_schema_open_without_the_migration_scripts(tmp_path, monkeypatch) -> None:
    from alembic.script import ScriptDirectory

    loads: list[str] = []
    real = ScriptDirectory.from_config

    def counted(config, *args, **kwargs):
        loads.append(config.get_main_option("script_location") or "")
        return real(config, *args, **kwargs)

    monkeypatch.setattr(ScriptDirectory, "from_config", counted)
    settings = _settings(tmp_path)
    with open_instance(settings) as first:  # a new home: Dagster creates and stamps the schema
        run_id = _three_messages.execute_in_process(instance=first).run_id
    assert loads, "a new home's databases are created through Dagster's migrations"
    home = settings.paths.dagster_home
    for db in ("runs", "schedules", "index"):
        found = list(home.rglob(f"{db}.db"))
        assert len(found) == 1, found
        engine = sa.create_engine(f"sqlite:///{found[0]}")
        assert schema_ready(engine), db
        engine.dispose()

    loads.clear()
    with open_instance(settings) as again:  # what a run worker or a sensor evaluation does
        assert _messages(again, run_id) == ["message 0", "message 1", "message 2"]
        assert again.get_run_by_id(run_id).is_success  # type: ignore[union-attr]
        assert loads == []
        second = _three_messages.execute_in_process(instance=again)  # a new run's database
        assert _messages(again, second.run_id) == ["message 0", "message 1", "message 2"]
    assert loads  # created by Dagster's code

    # a database without a revision (an interrupted first start) goes through Dagster's code
    runs_db = next(home.rglob("runs.db"))
    runs_db.unlink()
    runs_db.touch()
    loads.clear()
    with open_instance(settings) as repaired:
        assert repaired.get_runs() == []  # the history was in the deleted file
    assert loads
    engine = sa.create_engine(f"sqlite:///{runs_db}")
    assert schema_ready(engine, "instance_info")
    engine.dispose()
