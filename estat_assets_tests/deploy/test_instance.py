"""The production instance for real: deploy/dagster.yaml on Postgres, a gRPC code server as in
deploy/workspace.yaml, and ``dagster-daemon run`` dequeuing a queued run to SUCCESS.

Only the run launcher (ECS → DefaultRunLauncher) and the compute log manager (S3 → local) are
swapped, in a rendered copy; storage, run coordinator and concurrency are the production file's.
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


def test_postgres_server_binaries_are_installed() -> None:
    """The Postgres tests need Debian's server; ``.ci/run`` installs it. Missing = a failure."""
    assert servers.postgres_available(), (
        f"no initdb under {servers.PG_BIN}: apt-get install postgresql"
    )


def render_instance(home: Path, pg: servers.PostgresServer) -> dict[str, str]:
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert config["run_launcher"]["class"] == "EcsRunLauncher"
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
    # A background shell starts us with SIGINT ignored; dagster maps TERM onto INT (stack-probe §6).
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
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _wait_for_code_server(port: int, proc: subprocess.Popen, log: Path) -> None:
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            client.ping("ready")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def pg(tmp_path_factory):
    with servers.postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


def test_queued_run_through_the_daemon_on_postgres(tmp_path, pg, emulator, monkeypatch) -> None:
    from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

    from estat_assets.defs.partitions import register

    env_vars = render_instance(tmp_path / "dagster_home", pg)
    lake_home = tmp_path / "lake"
    env = {
        **os.environ,
        **env_vars,
        "ESTAT_LAKE_ENV": "local",
        "ESTAT_LAKE_HOME": str(lake_home),
        "ESTAT_API_URL": emulator.api_base,
        "TMPDIR": str(tmp_path),
    }
    for k, v in env_vars.items():
        monkeypatch.setenv(k, v)
    port = servers.free_port()
    workspace = render_workspace(tmp_path / "workspace.yaml", port)
    started = time.monotonic()
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
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        register(instance, "population", {"0000020202": ["1981"]})
        procs.append(
            _start(
                [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                env,
                tmp_path / "daemon.log",
            )
        )
        # Wait for the code server, then submit the run to the queue (what the UI does).
        deadline = time.monotonic() + 60
        tags = {
            "dagster/partition": "0000020202|1981",
            "dagster/partition/dataset": "0000020202",
            "dagster/partition/year": "1981",
        }
        while True:
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
                    json.dumps(tags),
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            if launch.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert launch.returncode == 0, launch.stderr[-3000:]
        runs = instance.get_runs()
        assert len(runs) == 1
        run_id = runs[0].run_id
        while True:
            run = instance.get_run_by_id(run_id)
            if run.is_finished or time.monotonic() > deadline + 30:
                break
            time.sleep(0.5)
        daemon_log = (tmp_path / "daemon.log").read_text()
        assert run.status == DagsterRunStatus.SUCCESS, (run.status, daemon_log[-3000:])
        assert run.job_name == "population_job"
        # It went through the queue and the daemon's coordinator launched it.
        queued = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_ENQUEUED)
        assert len(queued.records) == 1
        assert "QueuedRunCoordinatorDaemon" in daemon_log and "Launched 1 run" in daemon_log
        from estat_assets.defs.resources import build_resources

        iceberg = build_resources("local", {"ESTAT_LAKE_HOME": str(lake_home)})["iceberg"]
        rows = iceberg.catalog().load_table(iceberg.identifier("population")).scan().to_arrow()
        assert rows.num_rows == 1
    finally:
        for proc in reversed(procs):
            _stop(proc)
    assert time.monotonic() - started < 90
