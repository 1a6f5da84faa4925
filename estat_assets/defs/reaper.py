"""Runs that die release what they hold: mark them failed and free their pool slots.

A run killed with ``kill -9`` (its worker, or the CLI that ran it in-process) stays STARTED in the
instance and keeps its ``estat_api`` pool slot; after two such crashes every later run waited for
ever. Dagster's run monitoring cannot see a dead worker of the local run launcher, so we check
the process ourselves: the CLI tags its runs with ``estat/pid`` and ``estat/host``; a run started
by the daemon's launcher names its worker's pid in its event log. A run whose worker is gone (no
such process, or a newer process with that pid) is reported failed, which frees its slots and
lets the audit sensor record it. The ``run_reaper_sensor`` does this every tick; the CLI before
each run and while it waits for a slot.
"""

import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import psutil

from estat_assets.settings import Settings

PID_TAG = "estat/pid"
HOST_TAG = "estat/host"
_STARTED = re.compile(r"Started process for run \(pid: (\d+)\)")
ALIVE_STATUSES = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
START_SLACK_SECONDS = 5.0  # the worker may be created a little after the run record


def this_host() -> str:
    return socket.gethostname()


def cli_run_tags() -> dict[str, str]:
    """Tags that let a later process tell whether this process (running a run) is alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: this_host()}


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    pid: int
    why: str


def worker_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of the process executing ``run`` on this host, if we can know it."""
    if run.tags.get(PID_TAG):
        if run.tags.get(HOST_TAG) != this_host():
            return None
        return int(run.tags[PID_TAG])
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20
    ).records
    for record in records:
        match = _STARTED.search(record.event_log_entry.user_message or "")
        if match:
            return int(match.group(1))
    return None


def _alive(pid: int, started_at: float | None) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return False
    # A process created after the run started is another one that got the pid back.
    return started_at is None or created <= started_at + START_SLACK_SECONDS


def dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    out = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=ALIVE_STATUSES)):
        run = record.dagster_run
        pid = worker_pid(instance, run)
        if pid is None or (pid == os.getpid() and run.tags.get(HOST_TAG) == this_host()):
            continue
        started = record.start_time or record.create_timestamp.timestamp()
        if not _alive(pid, started):
            out.append(DeadRun(run.run_id, pid, f"its worker process (pid {pid}) is gone"))
    return out


def reap(instance: dg.DagsterInstance, log: Callable[[str], None] = lambda _: None) -> list[str]:
    """Mark runs whose worker died as failed and free their pool slots; returns their ids."""
    reaped = []
    for dead in dead_runs(instance):
        run = instance.get_run_by_id(dead.run_id)
        if run is None or run.status not in ALIVE_STATUSES:
            continue
        instance.report_run_failed(run, message=f"Run marked failed by estat-lake: {dead.why}.")
        instance.event_log_storage.free_concurrency_slots_for_run(dead.run_id)
        log(f"run {dead.run_id}: {dead.why}; marked failed, its pool slots freed")
        reaped.append(dead.run_id)
    return reaped


def build_reaper_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="run_reaper_sensor",
        minimum_interval_seconds=settings.audit_sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks runs whose worker process died as failed and frees their pool slots.",
    )
    def run_reaper(context: dg.SensorEvaluationContext):
        reaped = reap(context.instance, context.log.warning)
        return dg.SkipReason(f"{len(reaped)} dead run(s) reaped" if reaped else "no dead runs")

    return run_reaper
