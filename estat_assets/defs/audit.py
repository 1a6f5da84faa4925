"""What every ingestion run did, from its event log: a manifest file and ``estat.ingestion_runs``.

Three run status sensors (``ingestion_run_{success,failure,canceled}_sensor``) watch every run of
the code location that touches a domain asset (domain jobs, UI/CLI backfills, sensors). A sensor,
not a hook, because a hook only sees the steps that ran: a run that fails before its first step
(run worker crash, bad config) or whose ``table`` step was skipped after a failed check must be
recorded too. In-process runs (the CLI) call :func:`record_run` themselves. The error recorded is
the first real cause (the typed error a step failed with), never Dagster's "Exceeded max_retries".

So "what did we load last month and what failed" is one query::

    estat-lake query "SELECT status, count(*) AS runs, sum(table_rows) AS rows
                      FROM estat.ingestion_runs
                      WHERE started_at >= current_timestamp - INTERVAL '31' DAY GROUP BY status"
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from estat_assets.defs.partitions import DOMAIN_TAG, LAYERS, YEARS_TAG
from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.lake.inventory import reconcile_inventory
from estat_assets.lake.io_managers import LakeStorage
from estat_assets.lake.runs import write_run
from estat_assets.settings import Settings

MAX_ERROR_CHARS = 2000
ASSET_JOB = "__ASSET_JOB"


def _ts(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def run_domain(run: dg.DagsterRun) -> str | None:
    """The domain a run loads: its ``estat/domain`` tag, else the first path part of a
    ``<domain>/<layer>`` asset it targets."""
    if run.tags.get(DOMAIN_TAG):
        return run.tags[DOMAIN_TAG]
    keys: Iterable[dg.AssetKey] = run.asset_selection or ()
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        if len(key.path) == 2 and key.path[1] in LAYERS:
            return key.path[0]
    return None


def launched_as(run: dg.DagsterRun) -> str:
    """The job, or for runs of the implicit asset job what launched them."""
    if not (run.job_name or "").startswith(ASSET_JOB):
        return run.job_name
    if run.tags.get("dagster/backfill"):
        return "asset backfill"
    return "asset materialization"


# Dagster's own wrappers around the error a step really failed with.
WRAPPERS = frozenset(
    {
        "DagsterExecutionStepExecutionError",
        "DagsterMaxRetriesExceededError",
        "RetryRequestedFromPolicy",
        "DagsterUserCodeExecutionError",
    }
)


def failure_cause(event: dg.DagsterEvent) -> str:
    """The first real cause of a step failure, in one line: our typed error's description (a
    ``Failure``), else the innermost error that is not Dagster's wrapper or retry bookkeeping
    (``TypeError: …``, not "Error occurred while executing op" or "Exceeded max_retries")."""
    data = event.step_failure_data
    if data is None:
        return "step failed"
    user = data.user_failure_data
    if user is not None and user.description:
        return " ".join(user.description.split())
    error = data.error
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause or getattr(error, "context", None)
    for e in chain:
        if (e.cls_name or "") not in WRAPPERS and "Exceeded max_retries" not in e.message:
            lines = [line for line in e.message.strip().splitlines() if line.strip()]
            return lines[0] if lines else (e.cls_name or "error")
    return " ".join(chain[0].message.split())[:300] if chain else "step failed"


def build_manifest(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, Any] | None:
    """Everything the run's event log says about the dataset it loaded."""
    domain = run_domain(run)
    if domain is None:
        return None
    tags = run.tags
    record = instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record else None
    ended = record.end_time if record else None
    steps: dict[str, dict[str, Any]] = {}
    layers: dict[str, dict[str, Any]] = {}
    checks: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for entry in instance.all_logs(run.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        step = event.step_key
        kind = event.event_type_value
        if step:
            s = steps.setdefault(step, {"step": step, "status": "NOT_STARTED", "attempts": 0})
            if kind == "STEP_START":
                s["status"] = "STARTED"
                s["attempts"] += 1
                s.setdefault("started_at", entry.timestamp)
            elif kind == "STEP_SUCCESS":
                s["status"] = "SUCCESS"
                s["ended_at"] = entry.timestamp
            elif kind == "STEP_FAILURE":
                s["status"] = "FAILURE"
                s["ended_at"] = entry.timestamp
                cause = failure_cause(event)[:MAX_ERROR_CHARS]
                s["error"] = cause
                errors.append({"step": step, "error": cause})
            elif kind == "STEP_UP_FOR_RETRY":
                s["status"] = "UP_FOR_RETRY"
            elif kind == "STEP_SKIPPED":
                s["status"] = "SKIPPED"
        if kind == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            meta = {k: _value(v) for k, v in mat.metadata.items()}
            layers[mat.asset_key.path[-1]] = {
                "asset": mat.asset_key.to_user_string(),
                "partition": mat.partition,
                "rows": meta.get("dagster/partition_row_count", meta.get("dagster/row_count")),
                "quarantined_rows": meta.get("quarantined_rows"),
                "updated_date": meta.get("updated_date") or meta.get("source_updated_date"),
                "snapshot_id": meta.get("snapshot_id"),
            }
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            checks.append(
                {
                    "check": evaluation.check_name,
                    "passed": bool(evaluation.passed),
                    "severity": str(getattr(evaluation.severity, "value", evaluation.severity)),
                }
            )
        elif kind in ("RUN_FAILURE", "PIPELINE_FAILURE") and not errors:
            message = (event.message or "run failed").strip()
            errors.append({"step": "", "error": message[:MAX_ERROR_CHARS]})
    for s in steps.values():
        if "started_at" in s and "ended_at" in s:
            s["duration_seconds"] = round(s["ended_at"] - s["started_at"], 3)
        for key in ("started_at", "ended_at"):
            if key in s:
                s[key] = _ts(s[key]).isoformat()
    # A raw step that gave up after retries records one failure per attempt: the first
    # attempt's cause is the real one; keep the errors in order.
    partition = tags.get("dagster/partition")
    failed = [c["check"] for c in checks if not c["passed"]]
    return {
        "run_id": run.run_id,
        "domain": domain,
        "job_name": launched_as(run),
        "status": run.status.value,
        "partition_key": partition,
        "dataset_id": tags.get("estat/dataset_id") or partition,
        "years": tags.get(YEARS_TAG) or "",
        "started_at": _ts(started).isoformat() if started else None,
        "ended_at": _ts(ended).isoformat() if ended else None,
        "duration_seconds": round(ended - started, 3) if started and ended else None,
        "layers": layers,
        "steps": sorted(steps.values(), key=lambda s: s.get("started_at") or "~"),
        "checks": checks,
        "failed_checks": failed,
        "errors": errors,
        "source_updated_date": (layers.get("raw") or layers.get("table") or {}).get("updated_date"),
        "backfill_id": tags.get("dagster/backfill"),
        "sensor_name": tags.get("dagster/sensor_name"),
        "run_key": tags.get("dagster/run_key"),
        "release": {k: v for k, v in tags.items() if k.startswith("estat/")},
    }


def record_run(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    lake: LakeStorage,
    iceberg: IcebergCatalogResource,
) -> dict[str, Any] | None:
    """Write the run's manifest and its ``ingestion_runs`` row; heal the domain's inventory.

    ``None`` for runs that load no domain. A failed run may have died between the Iceberg commit
    and the inventory update: the inventory of its domain is reconciled from the table itself.
    """
    manifest = build_manifest(instance, run)
    if manifest is None:
        return None
    catalog = iceberg.catalog()
    path, row = write_run(lake.storage(), catalog, iceberg.namespace, manifest)
    if manifest["status"] != "SUCCESS":
        reconcile_inventory(catalog, iceberg.namespace, manifest["domain"])
    return {"manifest": manifest, "manifest_path": path, "row": row}


# (run status, sensor name part, wording): one sensor per end state a run can reach.
AUDITED_STATUSES = (
    (dg.DagsterRunStatus.SUCCESS, "success", "successful"),
    (dg.DagsterRunStatus.FAILURE, "failure", "failed"),
    (dg.DagsterRunStatus.CANCELED, "canceled", "canceled"),
)


def build_audit_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    def build(status: dg.DagsterRunStatus, part: str, wording: str) -> dg.SensorDefinition:
        @dg.run_status_sensor(
            name=f"ingestion_run_{part}_sensor",
            run_status=status,
            minimum_interval_seconds=settings.audit_sensor_interval,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=f"Writes the run manifest and the estat.ingestion_runs row of {wording} "
            "runs.",
        )
        def audit(
            context: dg.RunStatusSensorContext, lake: LakeStorage, iceberg: IcebergCatalogResource
        ):
            out = record_run(context.instance, context.dagster_run, lake, iceberg)
            if out is None:
                context.log.debug(f"run {context.dagster_run.run_id}: not an ingestion run")
                return
            row = out["row"]
            context.log.info(
                f"run {row['run_id']} {row['status']} {row['partition_key']}: "
                f"{row['table_rows']} rows; manifest {out['manifest_path']}"
            )

        return audit

    return [build(*spec) for spec in AUDITED_STATUSES]
