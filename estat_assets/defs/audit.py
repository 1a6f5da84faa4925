"""Run manifests and ``estat.ingestion_runs``: what every ingestion run did, success or failure.

Three run status sensors (``ingestion_run_success_sensor`` on SUCCESS,
``ingestion_run_failure_sensor`` on FAILURE, and
``ingestion_run_canceled_sensor`` on CANCELED) watch every run of the code location that
touches a domain asset (domain jobs, UI/CLI backfills, sensors). A sensor, not a hook, because a
hook only sees the steps that ran: a run that fails before its first step (run worker crash, bad
config) or whose ``table`` step was skipped after a failed check must be recorded too.

For each run they read the run's event log and

- write ``<lake root>/<domain>/runs/date=<YYYY-MM-DD>/<run_id>.json``: the partition, status,
  per-step outcome and duration, rows per layer, check results, errors, the release loaded;
- replace the run's row in the Iceberg table ``estat.ingestion_runs`` (overwrite filtered on
  ``run_id``, so a re-evaluated tick never duplicates).

So "what did we load last month and what failed" is one query::

    estat-lake query "SELECT status, count(*) AS runs, sum(table_rows) AS rows
                      FROM estat.ingestion_runs
                      WHERE started_at >= current_timestamp - INTERVAL '31' DAY GROUP BY status"

The sensors are on by default (``DefaultSensorStatus.RUNNING``); they run in the daemon only.
In-process runs (``estat-lake demo``) can call :func:`record_run` themselves.
"""

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import orjson
from pyiceberg.expressions import EqualTo
from pyiceberg.types import DoubleType, IntegerType, LongType, StringType, TimestamptzType

from estat_assets.defs.inventory import ensure_plain_table, fields_schema, replace_rows
from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.lake.io_managers import LakeStorage
from estat_assets.lake.layout import DATASET_DIM, YEAR_DIM

RUNS_TABLE = "ingestion_runs"
LAYERS = ("raw", "conformed", "table")
INTERVAL_ENV = "ESTAT_AUDIT_SENSOR_INTERVAL"
DEFAULT_INTERVAL_SECONDS = 15
MAX_ERROR_CHARS = 2000

_S, _L, _I = StringType(), LongType(), IntegerType()
RUNS_FIELDS: tuple[tuple[str, Any, bool], ...] = (
    ("run_id", _S, True),
    ("domain", _S, True),
    ("job_name", _S, False),
    ("partition_key", _S, False),
    ("dataset_id", _S, False),
    ("year", _I, False),
    ("status", _S, True),  # SUCCESS | FAILURE | CANCELED
    ("started_at", TimestamptzType(), False),
    ("ended_at", TimestamptzType(), False),
    ("duration_seconds", DoubleType(), False),
    ("raw_rows", _L, False),
    ("conformed_rows", _L, False),
    ("quarantined_rows", _L, False),
    ("table_rows", _L, False),
    ("checks_passed", _I, False),
    ("checks_failed", _I, False),
    ("failed_checks", _S, False),
    ("failed_step", _S, False),
    ("error", _S, False),
    ("source_updated_date", _S, False),
    ("snapshot_id", _S, False),
    ("backfill_id", _S, False),
    ("sensor_name", _S, False),
    ("run_key", _S, False),
    ("manifest_path", _S, False),
    ("recorded_at", TimestamptzType(), False),
)


def _ts(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def run_domain(run: dg.DagsterRun) -> str | None:
    """The domain a run loads: the first path part of a ``<domain>/<layer>`` asset it targets."""
    keys: Iterable[dg.AssetKey] = run.asset_selection or ()
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        if len(key.path) == 2 and key.path[1] in LAYERS:
            return key.path[0]
    name = run.job_name or ""
    partitioned = "|" in run.tags.get("dagster/partition", "")
    if partitioned and name.endswith("_job") and not name.startswith("__"):
        return name.removesuffix("_job")
    return None


def build_manifest(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, Any] | None:
    """Everything the run's event log says about the partition it loaded."""
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
                info = event.step_failure_data.error if event.step_failure_data else None
                message = (info.message if info else "step failed").strip()
                s["error"] = message[:MAX_ERROR_CHARS]
                errors.append({"step": step, "error": message[:MAX_ERROR_CHARS]})
            elif kind == "STEP_UP_FOR_RETRY":
                s["status"] = "UP_FOR_RETRY"
            elif kind == "STEP_SKIPPED":
                s["status"] = "SKIPPED"
        if kind == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            layer = mat.asset_key.path[-1]
            meta = {k: _value(v) for k, v in mat.metadata.items()}
            layers[layer] = {
                "asset": mat.asset_key.to_user_string(),
                "partition": mat.partition,
                "rows": meta.get("dagster/row_count"),
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
    dataset_id = tags.get(f"dagster/partition/{DATASET_DIM}")
    year = tags.get(f"dagster/partition/{YEAR_DIM}")
    partition = tags.get("dagster/partition")
    if partition and (not dataset_id or not year) and "|" in partition:
        dataset_id, _, year = partition.partition("|")
    status = run.status.value
    failed = [c["check"] for c in checks if not c["passed"]]
    return {
        "run_id": run.run_id,
        "domain": domain,
        "job_name": run.job_name,
        "status": status,
        "partition_key": partition,
        "dataset_id": dataset_id,
        "year": year,
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


def manifest_parts(manifest: dict[str, Any]) -> tuple[str, ...]:
    day = (manifest.get("started_at") or datetime.now(UTC).isoformat())[:10]
    return (manifest["domain"], "runs", f"date={day}", f"{manifest['run_id']}.json")


def runs_row(manifest: dict[str, Any], manifest_path: str) -> dict[str, Any]:
    layers = manifest["layers"]
    errors = manifest["errors"]

    def rows(layer: str, key: str = "rows") -> int | None:
        value = (layers.get(layer) or {}).get(key)
        return None if value is None else int(value)

    year = manifest.get("year")
    return {
        "run_id": manifest["run_id"],
        "domain": manifest["domain"],
        "job_name": manifest["job_name"],
        "partition_key": manifest["partition_key"],
        "dataset_id": manifest["dataset_id"],
        "year": int(year) if year and str(year).isdigit() else None,
        "status": manifest["status"],
        "started_at": _parse(manifest["started_at"]),
        "ended_at": _parse(manifest["ended_at"]),
        "duration_seconds": manifest["duration_seconds"],
        "raw_rows": rows("raw"),
        "conformed_rows": rows("conformed"),
        "quarantined_rows": rows("conformed", "quarantined_rows"),
        "table_rows": rows("table"),
        "checks_passed": sum(1 for c in manifest["checks"] if c["passed"]),
        "checks_failed": len(manifest["failed_checks"]),
        "failed_checks": ",".join(manifest["failed_checks"]) or None,
        "failed_step": errors[0]["step"] or None if errors else None,
        "error": errors[0]["error"].splitlines()[0][:500] if errors else None,
        "source_updated_date": manifest["source_updated_date"],
        "snapshot_id": (layers.get("table") or {}).get("snapshot_id"),
        "backfill_id": manifest["backfill_id"],
        "sensor_name": manifest["sensor_name"],
        "run_key": manifest["run_key"],
        "manifest_path": manifest_path,
        "recorded_at": datetime.now(UTC),
    }


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def record_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, lake: LakeStorage, iceberg: Any
) -> dict[str, Any] | None:
    """Write the run's manifest and its ``ingestion_runs`` row. ``None`` for non-ingestion runs."""
    manifest = build_manifest(instance, run)
    if manifest is None:
        return None
    storage = lake.storage()
    parts = manifest_parts(manifest)
    storage.write_bytes(storage.path(*parts), orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    path = storage.uri(*parts)
    catalog = iceberg.catalog()
    identifier = iceberg.identifier(RUNS_TABLE)
    ensure_plain_table(catalog, identifier, fields_schema(RUNS_FIELDS))
    row = runs_row(manifest, path)
    replace_rows(
        catalog, identifier, [row], EqualTo("run_id", run.run_id), {"dagster.run_id": run.run_id}
    )
    return {"manifest": manifest, "manifest_path": path, "row": row}


def _interval(environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    try:
        return int(env.get(INTERVAL_ENV) or DEFAULT_INTERVAL_SECONDS)
    except ValueError:
        return DEFAULT_INTERVAL_SECONDS


# (run status, sensor name part, wording): one sensor per end state a run can reach.
AUDITED_STATUSES = (
    (dg.DagsterRunStatus.SUCCESS, "success", "successful"),
    (dg.DagsterRunStatus.FAILURE, "failure", "failed"),
    (dg.DagsterRunStatus.CANCELED, "canceled", "canceled"),
)


def build_audit_sensors(environ: dict[str, str] | None = None) -> list[dg.SensorDefinition]:
    interval = _interval(environ)

    def build(status: dg.DagsterRunStatus, part: str, wording: str) -> dg.SensorDefinition:
        @dg.run_status_sensor(
            name=f"ingestion_run_{part}_sensor",
            run_status=status,
            minimum_interval_seconds=interval,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=f"Writes the run manifest and the estat.ingestion_runs row of {wording} "
            "runs.",
        )
        def audit(
            context: dg.RunStatusSensorContext, lake: LakeStorage, iceberg: IcebergCatalogResource
        ):
            _record(context, lake, iceberg)

        return audit

    return [build(*spec) for spec in AUDITED_STATUSES]


def _record(context: dg.RunStatusSensorContext, lake: LakeStorage, iceberg: Any) -> None:
    out = record_run(context.instance, context.dagster_run, lake, iceberg)
    if out is None:
        context.log.debug(f"run {context.dagster_run.run_id}: not an ingestion run")
        return
    row = out["row"]
    context.log.info(
        f"run {row['run_id']} {row['status']} {row['partition_key']}: "
        f"{row['table_rows']} rows; manifest {out['manifest_path']}"
    )
