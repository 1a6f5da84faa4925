"""A real ``dagster dev`` for tests and the UI check: started, driven over GraphQL, stopped.

``DagsterDev`` runs ``dagster dev -w workspace.yaml`` on 127.0.0.1 in its own process group with
a throwaway ESTAT_LAKE_HOME whose Dagster home is laid out by ``estat_assets.runner.open_instance``
(the packaged ``dagster.yaml``: ``EstatRunCoordinator``, queued runs, pools); helpers launch asset
and job backfills (partition keys are statsDataIds) and wait for their runs and audit rows. Used
by ``defs/test_backfill*.py``, ``app/test_load_daemon.py`` and ``ui_check.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from estat_assets_tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOCATION = "estat_lake"
REPOSITORY = "__repository__"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def lake_env(
    home: Path, api_url: str, domains_file: Path | None = None, **extra: str
) -> dict[str, str]:
    """The environment of ``dagster dev`` and its runs: the lake under ``home``, DAGSTER_HOME
    inside it (``<home>/dagster``, the layout of ``open_instance``), the given e-Stat."""
    env = {
        **os.environ,
        "ESTAT_LAKE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "ESTAT_API_URL": api_url,
        "ESTAT_AUDIT_SENSOR_INTERVAL": "5",
        "ESTAT_RAW_RETRY_DELAY": "1",
        "TMPDIR": str(home / "tmp"),
        **extra,
    }
    if domains_file is not None:
        env["ESTAT_DOMAINS_FILE"] = str(domains_file)
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def settings_of(env: Mapping[str, str]):
    from estat_assets.settings import Settings

    return Settings.from_env({k: v for k, v in env.items() if k.startswith(("ESTAT_", "AWS_"))})


def prepare_home(env: Mapping[str, str]) -> Path:
    """The Dagster home of the lake, written by ``open_instance`` (packaged dagster.yaml)."""
    from estat_assets.runner import open_instance

    settings = settings_of(env)
    instance = open_instance(settings)
    instance.dispose()
    home = settings.paths.dagster_home
    assert str(home) == env["DAGSTER_HOME"], (home, env["DAGSTER_HOME"])
    return home


def register_datasets(env: Mapping[str, str], domain: str, datasets: list[str]) -> list[str]:
    """Add ``datasets`` as partitions of ``domain`` (what ``estat-lake register`` does)."""
    from estat_assets.defs.partitions import register
    from estat_assets.runner import open_instance

    instance = open_instance(settings_of(env))
    try:
        return register(instance, domain, datasets)
    finally:
        instance.dispose()


def _default_signals() -> None:
    # A background process inherits SIGINT=ignored from a non-interactive shell, and Dagster
    # maps TERM onto its INT handler: without this, `dagster dev` ignores both.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class DagsterDev:
    """``dagster dev -w workspace.yaml`` on 127.0.0.1:<port>, in its own process group.

    ``stop()`` sends SIGTERM to the group (webserver, daemon, code servers, run workers), waits,
    then SIGKILLs whatever of the group is left.
    """

    def __init__(self, env: Mapping[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = dict(env)
        self.log = log
        self.proc: subprocess.Popen | None = None
        self._out: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DagsterDev:
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [
                str(BIN / "dagster"),
                "dev",
                "-w",
                str(ROOT / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None:
            return
        # the webserver, daemon, code servers and run workers share the group: none may be left
        stop_group(self.proc, timeout)
        if self._out is not None:
            self._out.close()
        self.proc = None

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read())
        if data.get("errors"):
            raise RuntimeError(f"GraphQL errors: {data['errors']}")
        return data["data"]

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited: {self.tail()}")
            try:
                data = self.graphql(
                    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus"
                    " locationOrLoadError { __typename ... on PythonError { message } } } } } }",
                    timeout=10,
                )
                entries = data["workspaceOrError"]["locationEntries"]
                loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
                for e in loaded:
                    if e["locationOrLoadError"]["__typename"] == "PythonError":
                        raise RuntimeError(f"code location failed: {e['locationOrLoadError']}")
                if loaded:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(1)
        raise TimeoutError(f"dagster dev not ready in {timeout} s: {self.tail()}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM to the process group ``proc`` leads (started with ``start_new_session``), up to
    ``grace`` seconds for it to end, then SIGKILL to whatever of the group is left."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(10)


_LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""


def _launch(dev: DagsterDev, params: dict) -> str:
    out = dev.graphql(_LAUNCH, {"params": params})["launchPartitionBackfill"]
    if out["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {out}")
    return out["backfillId"]


def launch_job_backfill(dev: DagsterDev, job: str, datasets: list[str]) -> str:
    """A backfill of a domain job (the CLI equivalent: ``dagster job backfill -j <job>``)."""
    return _launch(
        dev,
        {
            "selector": {
                "partitionSetName": f"{job}_partition_set",
                "repositorySelector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                },
            },
            "partitionNames": datasets,
        },
    )


def launch_asset_backfill(
    dev: DagsterDev,
    asset_keys: list[list[str]],
    datasets: list[str],
    tags: Mapping[str, str] | None = None,
):
    """An asset backfill, as the UI's "Materialize selected" → partitions dialog launches it:
    the partition keys are statsDataIds (one partition = one e-Stat table)."""
    params: dict[str, Any] = {
        "assetSelection": [{"path": k} for k in asset_keys],
        "partitionNames": datasets,
    }
    if tags:
        params["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    return _launch(dev, params)


def start_sensor(dev: DagsterDev, name: str) -> str:
    """Turn a sensor on (what its toggle in the UI does); returns its status."""
    data = dev.graphql(
        "mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename"
        " ... on Sensor { sensorState { status } } ... on PythonError { message } } }",
        {
            "s": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "sensorName": name,
            }
        },
    )["startSensor"]
    if data["__typename"] != "Sensor":
        raise RuntimeError(f"sensor {name} not started: {data}")
    return data["sensorState"]["status"]


def runs_tagged(dev: DagsterDev, key: str, value: str) -> list[dict]:
    data = dev.graphql(
        "query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results {"
        " runId status jobName tags { key value } } } } }",
        {"f": {"tags": [{"key": key, "value": value}]}},
    )
    return data["runsOrError"]["results"]


def group_asset_keys(dev: DagsterDev, group: str) -> list[list[str]]:
    """The assets of a domain's group: ``<domain>/raw``, ``conformed``, ``table``,
    ``class_codes`` (the analytics are in ``<domain>_analytics``)."""
    data = dev.graphql(
        "query($g: AssetGroupSelector!) { assetNodes(group: $g) { assetKey { path } } }",
        {
            "g": {
                "groupName": group,
                "repositoryName": REPOSITORY,
                "repositoryLocationName": LOCATION,
            }
        },
    )
    return sorted(n["assetKey"]["path"] for n in data["assetNodes"])


def backfill_runs(dev: DagsterDev, backfill_id: str) -> list[dict]:
    data = dev.graphql(
        "query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results {"
        " runId status jobName tags { key value } assetSelection { path } } } } }",
        {"f": {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}},
    )
    return data["runsOrError"]["results"]


def backfill_status(dev: DagsterDev, backfill_id: str) -> str:
    data = dev.graphql(
        "query($id: String!) { partitionBackfillOrError(backfillId: $id) {"
        " ... on PartitionBackfill { status } } }",
        {"id": backfill_id},
    )
    return data["partitionBackfillOrError"]["status"]


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 1.0):
    """Poll ``predicate`` until it returns something truthy (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(every)


def wait_for_backfill(
    dev: DagsterDev, backfill_id: str, expected_runs: int, timeout: float = 420.0
) -> list[dict]:
    """Poll until the backfill is no longer in progress and ``expected_runs`` of its runs are
    finished (or more appear); returns its runs."""
    state: dict[str, Any] = {}

    def done():
        runs = backfill_runs(dev, backfill_id)
        status = backfill_status(dev, backfill_id)
        state.update(runs=runs, status=status)
        finished = [r for r in runs if r["status"] in TERMINAL]
        settled = status != "REQUESTED" and len(finished) == len(runs)
        return runs if settled and len(runs) >= expected_runs else None

    try:
        return wait_for(done, timeout, f"backfill {backfill_id}", every=2.0)
    except TimeoutError:
        raise TimeoutError(
            f"backfill {backfill_id} ({state.get('status')}): {state.get('runs')}; "
            f"dagster dev log: {dev.tail()}"
        ) from None


def query_lake(env: Mapping[str, str], sql: str) -> list[dict]:
    """Rows of a query on the lake of ``env`` (DuckDB locally); [] while a table is missing."""
    from estat_assets.defs.resources import build_resources
    from estat_assets.query.engine import QueryError

    engine = build_resources(settings_of(env))["query_engine"]
    try:
        return engine.run(sql)[0].to_pylist()
    except QueryError as exc:
        if "no table" in str(exc):
            return []
        raise
