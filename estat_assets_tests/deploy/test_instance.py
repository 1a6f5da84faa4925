"""The production instance for real: deploy/dagster.yaml on Postgres (Debian's server, started
here), a gRPC code server as in deploy/ecs/code-server.json and deploy/workspace.yaml, and
``dagster-daemon run`` dequeuing a queued run of one dataset to SUCCESS.

Only the run launcher (ECS → DefaultRunLauncher) and the compute log manager (S3 → local) are
swapped, in a rendered copy; storage, the run coordinator (``EstatRunCoordinator``), concurrency
and run monitoring are the production file's. The run must carry ``estat/domain`` and
``estat/dataset_id`` (the latter added by the coordinator: the launch passes only the partition)
and the daemon's audit sensor must record it in ``estat.ingestion_runs``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from estat_assets_tests import servers

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BIN = Path(sys.executable).parent
DATASET = "0000020202"  # the recorded 10-row table


def test_postgres_server_binaries_are_installed() -> None:
    """The Postgres test needs Debian's server; ``.ci/run`` installs it. Missing = a failure."""
    assert servers.postgres_available(), (
        f"no initdb under {servers.PG_BIN}: apt-get install postgresql"
    )


def render_instance(home: Path, pg: servers.PostgresServer) -> dict[str, str]:
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert config["run_launcher"]["class"] == "EcsRunLauncher"
    assert config["run_coordinator"]["class"] == "EstatRunCoordinator"
    config["run_launcher"] = {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"}
    config["compute_logs"] = {
        "module": "dagster.core.storage.local_compute_log_manager",
        "class": "LocalComputeLogManager",
        "config": {"base_dir": str(home / "compute-logs")},
    }
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 1
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": pg.host,
        "DAGSTER_PG_PORT": str(pg.port),
        "DAGSTER_PG_USERNAME": pg.user,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": "dagster",
    }


def render_workspace(path: Path, port: int) -> Path:
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    server.update(host="127.0.0.1", port=port)
    path.write_text(yaml.safe_dump(workspace))
    return path


def _default_signals() -> None:
    # A background shell starts us with SIGINT ignored; dagster maps TERM onto INT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_default_signals,
            start_new_session=True,  # its own group: its children are stopped with it
        )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _wait(predicate, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(every)


def _wait_for_code_server(port: int, proc: subprocess.Popen, log: Path) -> None:
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host="127.0.0.1")

    def up() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            client.ping("ready")
        except Exception:
            return False
        return True

    _wait(up, 120, f"code server on {port}: {log}")


@pytest.fixture
def pg(tmp_path_factory):
    if not servers.postgres_available():
        pytest.fail(f"no PostgreSQL server under {servers.PG_BIN} (.ci/run installs it)")
    with servers.postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.mark.slow
def test_queued_run_through_the_daemon_on_postgres(tmp_path, pg, emulator, monkeypatch) -> None:
    from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

    from estat_assets.defs.partitions import register
    from estat_assets.defs.resources import build_resources
    from estat_assets.instance import DATASET_TAG, DOMAIN_TAG, EstatRunCoordinator
    from estat_assets.query.engine import QueryError
    from estat_assets.settings import Settings

    env_vars = render_instance(tmp_path / "dagster_home", pg)
    lake_home = tmp_path / "lake"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ESTAT_")},
        **env_vars,
        "ESTAT_LAKE_ENV": "local",
        "ESTAT_LAKE_HOME": str(lake_home),
        "ESTAT_API_URL": emulator.api_base,
        "ESTAT_AUDIT_SENSOR_INTERVAL": "2",
        "TMPDIR": str(tmp_path),
    }
    for k, v in env_vars.items():
        monkeypatch.setenv(k, v)
    port = servers.free_port()
    workspace = render_workspace(tmp_path / "workspace.yaml", port)
    procs = []
    try:
        # The code server exactly as deploy/ecs/code-server.json runs it, on loopback.
        code = json.loads((DEPLOY / "ecs/code-server.json").read_text())
        cmd = code["containerDefinitions"][0]["command"]
        cmd = [c if c != "0.0.0.0" else "127.0.0.1" for c in cmd]
        cmd[cmd.index("-p") + 1] = str(port)
        procs.append(_start([str(BIN / cmd[0]), *cmd[1:]], env, tmp_path / "grpc.log"))
        _wait_for_code_server(port, procs[0], tmp_path / "grpc.log")
        instance = DagsterInstance.get()  # from the rendered production dagster.yaml
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert isinstance(instance.run_coordinator, EstatRunCoordinator)
        register(instance, "population", [DATASET])
        procs.append(
            _start(
                [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                env,
                tmp_path / "daemon.log",
            )
        )
        # Submit the run to the queue the way the UI does: only the partition is given.
        launch = subprocess.run(
            [
                str(BIN / "dagster"),
                "job",
                "launch",
                "-w",
                str(workspace),
                "-j",
                "population_job",
                "--tags",
                json.dumps({"dagster/partition": DATASET}),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert launch.returncode == 0, launch.stderr[-3000:]
        runs = instance.get_runs()
        assert len(runs) == 1
        run_id = runs[0].run_id
        run = _wait(
            lambda: (r := instance.get_run_by_id(run_id)).is_finished and r,
            300,
            "the run to finish",
        )
        daemon_log = (tmp_path / "daemon.log").read_text()
        assert run.status == DagsterRunStatus.SUCCESS, (run.status, daemon_log[-3000:])
        assert run.job_name == "population_job"
        assert run.tags[DOMAIN_TAG] == "population"
        assert run.tags[DATASET_TAG] == DATASET  # EstatRunCoordinator, under Postgres
        # It went through the queue and the daemon's coordinator launched it.
        queued = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_ENQUEUED)
        assert len(queued.records) == 1
        assert "QueuedRunCoordinatorDaemon" in daemon_log
        settings = Settings.from_env({"ESTAT_LAKE_HOME": str(lake_home)})
        iceberg = build_resources(settings)["iceberg"]
        rows = iceberg.catalog().load_table(iceberg.identifier("population")).scan().to_arrow()
        assert rows.num_rows == 10 and set(rows.column("run_id").to_pylist()) == {run_id}
        engine = build_resources(settings)["query_engine"]

        def recorded():
            try:
                table = engine.run("SELECT run_id, job_name, status FROM estat.ingestion_runs")[0]
            except QueryError as exc:  # the audit sensor has not written the table yet
                assert "no table" in str(exc), exc
                return None
            return table.to_pylist() or None

        rows = _wait(recorded, 120, "the audit sensor's ingestion_runs row")
        assert rows == [{"run_id": run_id, "job_name": "population_job", "status": "SUCCESS"}]
    finally:
        for proc in reversed(procs):
            _stop(proc)
