"""Operating the lake from a shell: prepare the home, register partitions, run them, summarise.

These are the steps ``estat-lake demo`` chains together. Runs are real Dagster runs in the
``ESTAT_LAKE_HOME`` instance (so the UI shows them), executed in this process one partition at a
time: one run = raw → conformed (+ checks) → Iceberg slice for one (dataset, year).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from estat_assets.defs.audit import record_run
from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import partition_key, register
from estat_assets.domains import DomainSpec
from estat_assets.estat.client import EStatClient
from estat_assets.estat.slicing import time_filter, year_slices
from estat_assets.settings import LocalPaths

# Console logs of in-process runs: warnings and errors only (the UI has the full event log).
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
TELEMETRY_OFF = "telemetry:\n  enabled: false\n"


def prepare_home(paths: LocalPaths, instance_yaml: Path | None = None) -> Path:
    """Create ``ESTAT_LAKE_HOME`` and its Dagster home; point ``DAGSTER_HOME`` at it."""
    paths.ensure()
    home = paths.dagster_home
    target = home / "dagster.yaml"
    source = instance_yaml or Path("dagster.yaml")
    if source.is_file():
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
    elif not target.exists():
        target.write_text(TELEMETRY_OFF, encoding="utf-8")
    nux = home / ".nux" / "nux.yaml"  # skip the "join the community" modal in the UI
    if not nux.exists():
        nux.parent.mkdir(parents=True, exist_ok=True)
        nux.write_text("seen: 1\n", encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@dataclass(frozen=True)
class Slice:
    """A (dataset, year) partition and the rows e-Stat says it has."""

    domain: str
    dataset_id: str
    year: str
    expected_rows: int


def discover(client: EStatClient, domain: DomainSpec, only_with_data: bool = True) -> list[Slice]:
    """Every (dataset, year) of a domain from the tables' own metadata, with row counts."""
    out = []
    for dataset_id in domain.datasets:
        meta, _ = client.get_meta_info(dataset_id)
        for year, codes in sorted(year_slices(meta).items()):
            n = client.count(dataset_id, time_filter(meta, codes))
            if n or not only_with_data:
                out.append(Slice(domain.name, dataset_id, year, n))
    return out


def register_slices(instance: dg.DagsterInstance, domain: str, slices: list[Slice]) -> None:
    by_dataset: dict[str, list[str]] = {}
    for s in slices:
        by_dataset.setdefault(s.dataset_id, []).append(s.year)
    register(instance, domain, by_dataset)


@dataclass
class RunOutcome:
    slice: Slice
    run_id: str
    success: bool
    checks_passed: int = 0
    checks_failed: int = 0  # ERROR severity: these block the Iceberg write
    checks_warned: int = 0  # WARN severity: reported, the slice is still written
    rows_written: int | None = None
    error: str | None = None


@dataclass
class MaterializeReport:
    outcomes: list[RunOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if not o.success]


def _is_warning(evaluation: dg.AssetCheckEvaluation) -> bool:
    return evaluation.severity == dg.AssetCheckSeverity.WARN


def materialize_slice(
    defs: dg.Definitions, instance: dg.DagsterInstance, s: Slice, quiet: bool = True
) -> RunOutcome:
    """One real run of the domain job for one partition, recorded in ``instance``."""
    job = defs.resolve_job_def(job_name(s.domain))
    result = job.execute_in_process(
        partition_key=str(partition_key(s.dataset_id, s.year)),
        instance=instance,
        raise_on_error=False,
        run_config=QUIET if quiet else None,
    )
    # In-process runs are not seen by the daemon's run status sensors: audit them here (the
    # record is replaced by run id, so a daemon recording it too cannot duplicate it).
    resources = defs.resources or {}
    if "lake" in resources and "iceberg" in resources:
        record_run(
            instance, instance.get_run_by_id(result.run_id), resources["lake"], resources["iceberg"]
        )
    evaluations = result.get_asset_check_evaluations()
    rows = None
    for mat in result.get_asset_materialization_events():
        key = mat.asset_key
        if key and key.path[-1] == "table":
            value = mat.materialization.metadata.get("dagster/row_count")
            rows = getattr(value, "value", None)
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        if failures:
            info = failures[0].step_failure_data.error
            error = info.message.strip().splitlines()[0] if info else "step failed"
        else:
            error = "run failed"
    return RunOutcome(
        slice=s,
        run_id=result.run_id,
        success=result.success,
        checks_passed=sum(1 for e in evaluations if e.passed),
        checks_failed=sum(1 for e in evaluations if not e.passed and not _is_warning(e)),
        checks_warned=sum(1 for e in evaluations if not e.passed and _is_warning(e)),
        rows_written=rows,
        error=error,
    )
