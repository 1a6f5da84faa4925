"""``dagster dev`` for ``bench/e2e.py``: webserver + daemon on loopback, launches, run timings.

The server is the one the UI check and the backfill tests use (``estat_assets_tests/devserver``):
``dagster dev -w workspace.yaml -h 127.0.0.1`` in its own process group with a throwaway
``ESTAT_LAKE_HOME`` (its Dagster home laid out by ``runner.open_instance``: the packaged
``dagster.yaml``), stopped with the whole group (webserver, daemon, code server, run workers).
This module adds the launches the UI makes (GraphQL) and the waits for their runs.

Timings come from the instance's own records (run record and event log), read from the same
SQLite storage the daemon writes, so the poll interval of the benchmark never enters a figure.
While a run executes, ``RssSampler`` samples the resident memory of the run worker processes
every 0.1 s.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from estat_assets_tests.devserver import DagsterDev as DevServer
from estat_assets_tests.devserver import stop_group
from estat_assets_tests.servers import free_port

__all__ = ["DagsterDev", "RssSampler", "free_port", "stop_group"]

LOCATION = "estat_lake"
REPOSITORY = "__repository__"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


class DagsterDev(DevServer):
    """The test harness's ``dagster dev`` (start, GraphQL, stop the whole group) plus the
    launches and waits of the benchmark, timed from the instance's own records."""

    def group_asset_keys(self, group: str) -> list[list[str]]:
        data = self.graphql(
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

    def launch_asset_backfill(
        self, keys: list[list[str]], partitions: list[str], tags: Mapping[str, str] | None = None
    ) -> str:
        """``launchPartitionBackfill`` of the assets × partitions (the UI's "Materialize" with
        a partition selection, launched as a backfill); ``tags`` go to every run."""
        params: dict[str, Any] = {
            "assetSelection": [{"path": k} for k in keys],
            "partitionNames": partitions,
        }
        if tags:
            params["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        out = self.graphql(
            "mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams:"
            " $params) { __typename ... on LaunchBackfillSuccess { backfillId }"
            " ... on PythonError { message } ... on InvalidSubsetError { message } } }",
            {"params": params},
        )["launchPartitionBackfill"]
        if out["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {out}")
        return out["backfillId"]

    def launch_run(
        self, keys: list[list[str]], partition: str, tags: Mapping[str, str] | None = None
    ) -> str:
        """``launchPipelineExecution`` of the implicit asset job for one partition: what the
        UI's launch dialog does when one partition is selected (no backfill)."""
        all_tags = {"dagster/partition": partition, **(tags or {})}
        out = self.graphql(
            "mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {"
            " __typename ... on LaunchRunSuccess { run { runId } }"
            " ... on PythonError { message } ... on InvalidSubsetError { message }"
            " ... on RunConfigValidationInvalid { errors { message } } } }",
            {
                "p": {
                    "selector": {
                        "repositoryLocationName": LOCATION,
                        "repositoryName": REPOSITORY,
                        "pipelineName": "__ASSET_JOB",
                        "assetSelection": [{"path": k} for k in keys],
                    },
                    "mode": "default",
                    "executionMetadata": {
                        "tags": [{"key": k, "value": v} for k, v in all_tags.items()]
                    },
                }
            },
        )["launchPipelineExecution"]
        if out["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"run not launched: {out}")
        return out["run"]["runId"]

    def backfill_runs(self, backfill_id: str) -> list[dict]:
        data = self.graphql(
            "query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results {"
            " runId status } } } }",
            {"f": {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}},
        )
        return data["runsOrError"]["results"]

    def run_status(self, run_id: str) -> str:
        data = self.graphql(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id}
        )
        return (data["runOrError"] or {}).get("status", "")

    def wait_backfill_run(self, backfill_id: str, timeout: float) -> dict:
        """The single run of a one-partition backfill, once it has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.backfill_runs(backfill_id)
            if runs and all(r["status"] in TERMINAL for r in runs):
                if len(runs) != 1:
                    raise RuntimeError(f"backfill {backfill_id}: {len(runs)} runs, expected 1")
                return runs[0]
            time.sleep(0.5)
        raise TimeoutError(f"backfill {backfill_id} not done in {timeout:.0f} s: {self.tail()}")

    def wait_run(self, run_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.run_status(run_id)
            if status in TERMINAL:
                return {"runId": run_id, "status": status}
            time.sleep(0.5)
        raise TimeoutError(f"run {run_id} not done in {timeout:.0f} s: {self.tail()}")


# How a run worker's command line reads: the lake's launcher, Dagster's, the CLI's.
WORKER_MARKS = ("multiprocessing.forkserver", "multiprocessing.spawn", "execute_run")


class RssSampler:
    """Peak RSS of the run workers of a process group, sampled: under ``dagster dev`` the lake's
    launcher forks each from its ``multiprocessing`` fork server (Dagster's own launcher: a spawn
    child of the code server; ``dagster api execute_run`` elsewhere)."""

    def __init__(self, pgid: int, every: float = 0.1) -> None:
        self.pgid = pgid
        self.every = every
        self.peak: dict[int, int] = {}
        self.created: dict[int, float] = {}  # pid → process start (epoch seconds)
        self.parent: dict[int, int] = {}  # pid → its parent's pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def servers(self) -> set[int]:
        """The fork servers of the process group now (the launcher starts one with its first
        run); compared by pid, as process start times from ``/proc`` are only as exact as the
        kernel's boot time, a whole second."""
        import psutil

        found = set()
        for proc in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error, OSError):
                cmd = " ".join(proc.info["cmdline"] or ())
                if "multiprocessing.forkserver import main" in cmd and (
                    os.getpgid(proc.pid) == self.pgid
                ):
                    found.add(proc.pid)
        return found

    def _loop(self) -> None:
        import psutil

        workers: dict[int, psutil.Process] = {}
        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline"]):
                if proc.pid in workers:
                    continue
                with contextlib.suppress(psutil.Error, OSError):
                    cmd = " ".join(proc.info["cmdline"] or ())
                    is_worker = any(mark in cmd for mark in WORKER_MARKS)
                    if is_worker and os.getpgid(proc.pid) == self.pgid:
                        workers[proc.pid] = proc
                        self.created[proc.pid] = proc.create_time()
                        self.parent[proc.pid] = proc.ppid()
            for pid, proc in list(workers.items()):
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    workers.pop(pid)
                    continue
                self.peak[pid] = max(self.peak.get(pid, 0), rss)
            self._stop.wait(self.every)

    @property
    def peak_mb(self) -> float:
        return max(self.peak.values(), default=0) / 2**20
