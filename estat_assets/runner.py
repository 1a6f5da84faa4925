"""Running loads from a shell: the lake's Dagster instance, one in-process run per dataset.

These are the steps ``estat-lake demo``, ``materialize`` and ``load`` chain together. Runs are real
Dagster runs in the ``ESTAT_LAKE_HOME`` instance (so the UI shows them), executed in this
process. Before each run, runs whose worker died are reaped (their pool slots freed); a run that
would wait for the ``estat_api`` pool says so on the console and gives up after
``ESTAT_POOL_WAIT_SECONDS`` instead of blocking for ever.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import dagster as dg
from dagster._core.utils import make_new_run_id

from estat_assets.defs.audit import failure_cause, record_run
from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import (
    ALLOW_SHRINK_TAG,
    DATASET_TAG,
    DOMAIN_TAG,
    YEARS_TAG,
    register,
)
from estat_assets.defs.raw import API_POOL
from estat_assets.defs.reaper import cli_run_tags, reap
from estat_assets.settings import Settings

# Console logs of in-process runs: warnings and errors only (the UI has the full event log).
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class PoolBusyError(RuntimeError):
    """No ``estat_api`` slot came free in time: other runs are fetching from e-Stat."""


HOME_REFERENCE = b"base_dir:\n        env: DAGSTER_HOME\n"


def instance_yaml(home: Path | None = None) -> bytes:
    """The packaged ``dagster.yaml``; with ``home``, its storage path written out, so an
    in-process instance needs no ``DAGSTER_HOME`` in the environment."""
    packaged = resources.files("estat_assets").joinpath("dagster.yaml").read_bytes()
    if home is None:
        return packaged
    if HOME_REFERENCE not in packaged:
        raise RuntimeError("estat_assets/dagster.yaml: the storage's base_dir is not the env form")
    path = json.dumps(str(home.resolve())).encode()  # a JSON string is a YAML string
    return packaged.replace(HOME_REFERENCE, b"base_dir: " + path + b"\n")


def open_instance(settings: Settings) -> dg.DagsterInstance:
    """The lake's Dagster instance under ``ESTAT_LAKE_HOME/dagster``, configured by the packaged
    ``dagster.yaml`` whatever the working directory."""
    paths = settings.paths.ensure()
    home = paths.dagster_home
    target = home / "dagster.yaml"
    wanted = instance_yaml(home)
    if not target.exists() or target.read_bytes() != wanted:
        target.write_bytes(wanted)
    nux = home / ".nux" / "nux.yaml"  # skip the "join the community" modal in the UI
    if not nux.exists():
        nux.parent.mkdir(parents=True, exist_ok=True)
        nux.write_text("seen: 1\n", encoding="utf-8")
    return dg.DagsterInstance.from_config(str(home))


@dataclass(frozen=True)
class Load:
    """One dataset to load: its whole table, or ``years`` of it."""

    domain: str
    dataset_id: str
    years: tuple[str, ...] | None = None
    allow_shrink: bool = False

    def tags(self) -> dict[str, str]:
        tags = {DOMAIN_TAG: self.domain, DATASET_TAG: self.dataset_id, **cli_run_tags()}
        if self.years:
            tags[YEARS_TAG] = ",".join(self.years)
        if self.allow_shrink:
            tags[ALLOW_SHRINK_TAG] = "true"
        return tags


@dataclass
class RunOutcome:
    load: Load
    run_id: str
    success: bool
    checks_passed: int = 0
    checks_failed: int = 0  # ERROR severity: these block the Iceberg write
    checks_warned: int = 0  # WARN severity: reported, the data is still written
    rows_written: int | None = None  # the dataset's rows in the domain table after the run
    rows_loaded: int | None = None
    quarantined: int | None = None
    years: str = ""
    error: str | None = None
    seconds: float = 0.0
    metadata: dict = field(default_factory=dict)


def wait_for_pool(
    instance: dg.DagsterInstance,
    wait_seconds: float,
    say: Callable[[str], None],
    pool: str = API_POOL,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Return when ``pool`` has a free slot; reap dead runs meanwhile; give up after a while."""
    deadline = clock() + wait_seconds
    told = False
    while True:
        reap(instance, say)
        info = instance.event_log_storage.get_concurrency_info(pool)
        if info.limit is None or info.active_slot_count < info.limit:
            return
        holders = ", ".join(sorted(info.active_run_ids)) or "?"
        if clock() >= deadline:
            raise PoolBusyError(
                f"no free '{pool}' slot after {wait_seconds:.0f} s: held by run(s) {holders}. "
                "Wait for them (see the Dagster UI), cancel them, or raise "
                "ESTAT_POOL_WAIT_SECONDS"
            )
        if not told:
            say(
                f"waiting for a free '{pool}' slot ({info.active_slot_count}/{info.limit} "
                f"held by run(s) {holders}); giving up in {wait_seconds:.0f} s"
            )
            told = True
        sleep(1.0)


def _audit(instance: dg.DagsterInstance, run_id: str, defs: dg.Definitions) -> None:
    """In-process runs are not seen by the daemon's run status sensors: audit them here (the
    record is replaced by run id, so a daemon recording it too cannot duplicate it)."""
    res = defs.resources or {}
    run = instance.get_run_by_id(run_id)
    if run is not None and "lake" in res and "iceberg" in res:
        record_run(instance, run, res["lake"], res["iceberg"])


def cancel_run(instance: dg.DagsterInstance, run_id: str, defs: dg.Definitions, why: str) -> None:
    """Stop counting on a run this process was executing: canceled, slots freed, audited. Its
    writes in flight die with the process, which every write of the lake survives (atomic)."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return
    if run.status in (
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.NOT_STARTED,
    ):
        instance.report_run_canceled(run, message=f"Run canceled by estat-lake: {why}.")
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    with contextlib.suppress(Exception):  # never hide the interrupt behind an audit failure
        _audit(instance, run_id, defs)


def _is_warning(evaluation: dg.AssetCheckEvaluation) -> bool:
    return evaluation.severity == dg.AssetCheckSeverity.WARN


def _meta(event: dg.DagsterEvent) -> dict:
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def run_load(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    load: Load,
    settings: Settings,
    say: Callable[[str], None] = print,
    quiet: bool = True,
) -> RunOutcome:
    """One real run of the domain job for one dataset, recorded in ``instance`` and audited."""
    wait_for_pool(instance, settings.pool_wait_seconds, say)
    register(instance, load.domain, [load.dataset_id])
    job = defs.resolve_job_def(job_name(load.domain))
    started = time.monotonic()
    run_id = make_new_run_id()
    box: dict[str, object] = {}

    def execute() -> None:
        try:
            box["result"] = job.execute_in_process(
                partition_key=load.dataset_id,
                instance=instance,
                raise_on_error=False,
                run_config=QUIET if quiet else None,
                tags=load.tags(),
                run_id=run_id,
            )
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    # The run executes in a worker thread so that Ctrl-C and SIGTERM reach this (main) thread:
    # inside a step Dagster would turn the interrupt into a step retry and carry on.
    worker = threading.Thread(target=execute, name=f"estat-load-{run_id[:8]}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        cancel_run(instance, run_id, defs, "interrupted (Ctrl-C or SIGTERM)")
        raise
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    result = box["result"]
    assert isinstance(result, dg.ExecuteInProcessResult)
    _audit(instance, result.run_id, defs)
    evaluations = result.get_asset_check_evaluations()
    outcome = RunOutcome(
        load=load,
        run_id=result.run_id,
        success=result.success,
        checks_passed=sum(1 for e in evaluations if e.passed),
        checks_failed=sum(1 for e in evaluations if not e.passed and not _is_warning(e)),
        checks_warned=sum(1 for e in evaluations if not e.passed and _is_warning(e)),
        seconds=time.monotonic() - started,
    )
    for mat in result.get_asset_materialization_events():
        if mat.asset_key and mat.asset_key.path[-1] == "table":
            meta = _meta(mat)
            outcome.metadata = meta
            outcome.rows_written = meta.get("dagster/partition_row_count")
            outcome.rows_loaded = meta.get("rows_loaded")
            outcome.quarantined = meta.get("quarantined_rows")
            outcome.years = str(meta.get("years_loaded", ""))
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        outcome.error = failure_cause(failures[0]) if failures else "run failed"
        outcome.error = outcome.error.strip().splitlines()[0]
    return outcome
