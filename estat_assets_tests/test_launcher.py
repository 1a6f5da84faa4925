"""``estat_assets/launcher.py``: runs are forked from a server that imported their libraries.

What must hold: the server imports every third-party library the code location needs (so a run
imports only the project's own code), and nothing of the project (so edited code applies to the
next run); a library upgraded on disk since then is noticed; through a real ``dagster dev``, each
run executes in its own child of the one fork server, started with the first run, and the UI's
Terminate cancels a run mid-fetch and ends its worker.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from estat_assets.launcher import (
    PRELOAD,
    SERVER_MARK,
    WORKER_PID_TAG,
    _stamp,
    changed,
)
from estat_assets_tests import devserver

PROBE = textwrap.dedent(
    """
    import importlib, json, os, sys, tempfile
    from pathlib import Path
    from estat_assets.launcher import PRELOAD
    for module in PRELOAD:
        importlib.import_module(module)
    preloaded = set(sys.modules)
    own = sorted(m for m in preloaded if m.split(".")[0] == "estat_assets")
    import estat_assets.definitions
    skip = set(sys.stdlib_module_names) | {"estat_assets"}
    code = {m for m in set(sys.modules) - preloaded if m.split(".")[0] not in skip}

    # what a run worker does before its first step: open the instance, build the definitions
    # and the plan of a job, capture the logs
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
    from dagster._core.execution.api import create_execution_plan
    from estat_assets.runner import instance_yaml

    home = Path(tempfile.mkdtemp())
    os.environ.update({"ESTAT_LAKE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")})
    (home / "dagster").mkdir()
    (home / "dagster" / "dagster.yaml").write_bytes(instance_yaml(home / "dagster"))
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    repo = ReconstructableRepository.for_module(
        "estat_assets.definitions", "defs", working_directory=os.getcwd()
    )
    job = ReconstructableJob(repo, repo.get_definition().get_all_jobs()[0].name)
    instance.create_run_for_job(job.get_definition(), execution_plan=create_execution_plan(job))
    with instance.compute_log_manager.capture_logs(["probe"]):
        pass
    importlib.import_module("dagster._core.executor.in_process")
    run = {m for m in set(sys.modules) - preloaded if m.split(".")[0] not in skip}
    print(json.dumps({"own": own, "added": sorted(code), "run": sorted(run)}))
    """
)


def test_the_server_preloads_every_library_of_a_run_and_none_of_its_code() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=180
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    # only the launcher module itself (the spare runs it), never the code location's modules
    assert probe["own"] == ["estat_assets", "estat_assets.launcher"], probe["own"]
    assert probe["added"] == [], probe["added"]  # no third-party module left to import
    assert probe["run"] == [], probe["run"]  # nor for the instance, the definitions, the plan
    assert len(set(PRELOAD)) == len(PRELOAD)


DEFINITIONS_ONCE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    Path(sys.argv[1], "probe_location.py").write_text(
        "import dagster as dg\\n"
        "BUILT = []\\n"
        "@dg.definitions\\n"
        "def defs():\\n"
        "    BUILT.append(1)\\n"
        "    return dg.Definitions(assets=[dg.AssetSpec('a')])\\n"
    )
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from estat_assets.launcher import build_definitions_once
    import probe_location

    def repo():
        return ReconstructableRepository.for_module(
            "probe_location", "defs", working_directory=sys.argv[1]
        )
    before = [repo().get_definition(), repo().get_definition()]
    build_definitions_once()
    build_definitions_once()  # twice is once
    after = [repo().get_definition(), repo().get_definition()]
    print(json.dumps({
        "built": len(probe_location.BUILT),
        "before_same": before[0] is before[1],
        "after_same": after[0] is after[1],
    }))
    """
)


def test_a_run_worker_builds_its_definitions_once(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", DEFINITIONS_ONCE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    # Dagster alone builds them on each call (what a worker did twice per run); then once
    assert probe == {"built": 3, "before_same": False, "after_same": True}, probe


def test_a_library_changed_on_disk_since_the_spare_imported_it_is_noticed(
    tmp_path, monkeypatch
) -> None:
    module = tmp_path / "estat_probe_lib.py"
    module.write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("estat_probe_lib")
    stamps = {"estat_probe_lib": _stamp("estat_probe_lib")}
    assert not changed(stamps)
    module.write_text("X = 2\n")  # an upgrade rewrites the file
    later = module.stat().st_mtime_ns + 1_000_000_000
    os.utime(module, ns=(later, later))
    assert changed(stamps)
    sys.modules.pop("estat_probe_lib")


TERMINATE = """
mutation($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunSuccess { run { runId } }
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}"""

RUN = """
query($runId: ID!) {
  runOrError(runId: $runId) { ... on Run { runId status tags { key value } } }
}"""


def _server_of(pid: int) -> psutil.Process:
    """The fork server whose child ``pid`` is."""
    parent = psutil.Process(pid).parent()
    assert parent is not None and SERVER_MARK in " ".join(parent.cmdline()), parent
    return parent


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # ended, not yet collected
    except psutil.NoSuchProcess:
        return True


def _run(dev: devserver.DagsterDev, run_id: str) -> dict:
    return dev.graphql(RUN, {"runId": run_id})["runOrError"]


def _backfill_one(dev: devserver.DagsterDev, dataset: str) -> str:
    keys = devserver.group_asset_keys(dev, "population")
    backfill = devserver.launch_asset_backfill(dev, keys, [dataset])
    runs = devserver.wait_for(
        lambda: devserver.backfill_runs(dev, backfill) or None, 120, f"the run of {dataset}"
    )
    return runs[0]["runId"]


@pytest.fixture
def dev(tmp_path, emulator):
    domains = tmp_path / "domains.yaml"
    domains.write_text(
        "domains:\n  population:\n    datasets: ['0000020202', '0003065345']\n", encoding="utf-8"
    )
    env = devserver.lake_env(tmp_path / "home", emulator.api_base, domains)
    devserver.prepare_home(env)
    devserver.register_datasets(env, "population", ["0000020202", "0003065345"])
    with devserver.DagsterDev(env, tmp_path / "dagster-dev.log") as server:
        yield server


def _wait_status(dev: devserver.DagsterDev, run_id: str, statuses: set[str]) -> dict:
    return devserver.wait_for(
        lambda: ((r := _run(dev, run_id)) and r["status"] in statuses and r) or None,
        180,
        f"run {run_id} {statuses}",
    )


@pytest.mark.slow
def test_runs_are_forked_from_one_server_and_terminate_cancels_mid_fetch(dev, emulator) -> None:
    # the first run starts the fork server (its imports) and is its first child
    first = _wait_status(dev, _backfill_one(dev, "0000020202"), devserver.TERMINAL)
    assert first["status"] == "SUCCESS", dev.tail()
    assert int({t["key"]: t["value"] for t in first["tags"]}[WORKER_PID_TAG]) > 0

    # the next run, held mid-fetch by e-Stat: a child of the same server, which was waiting
    slow = emulator.faults.add(
        {"kind": "latency", "seconds": 120, "endpoint": "getStatsData", "times": 1}
    )
    launched = time.time()
    run_id = _backfill_one(dev, "0003065345")
    devserver.wait_for(lambda: slow.hits == 1 or None, 120, "the held page")
    worker = int({t["key"]: t["value"] for t in _run(dev, run_id)["tags"]}[WORKER_PID_TAG])
    server = _server_of(worker)
    assert server.create_time() < launched < psutil.Process(worker).create_time() + 1
    assert server.pid != worker

    # Terminate from the UI: the run ends CANCELED and its worker exits; the server stays
    out = dev.graphql(TERMINATE, {"runId": run_id})["terminateRun"]
    assert out["__typename"] == "TerminateRunSuccess", out
    canceled = _wait_status(dev, run_id, {"CANCELED", "FAILURE", "SUCCESS"})
    assert canceled["status"] == "CANCELED", dev.tail()
    devserver.wait_for(lambda: _gone(worker) or None, 60, "the worker's exit")
    assert server.is_running()
