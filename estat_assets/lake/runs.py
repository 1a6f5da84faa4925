"""``estat.ingestion_runs``: one row per ingestion run, success or failure, and its manifest file.

The row is replaced by ``run_id`` (so recording a run twice never duplicates it). Manifests are
``<lake root>/<domain>/runs/date=<YYYY-MM-DD>/<run_id>.json``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo
from pyiceberg.types import DoubleType, IntegerType, LongType, StringType, TimestamptzType

from estat_assets.lake.iceberg import PROP_RUN, ensure_plain_table, fields_schema, replace_rows
from estat_assets.lake.layout import audit_file
from estat_assets.lake.storage import Storage

RUNS_TABLE = "ingestion_runs"
MAX_ERROR_CHARS = 500

_S, _L, _I = StringType(), LongType(), IntegerType()
RUNS_FIELDS: tuple[tuple[str, Any, bool], ...] = (
    ("run_id", _S, True),
    ("domain", _S, True),
    ("job_name", _S, False),  # the job, or "asset backfill" / "asset materialization"
    ("partition_key", _S, False),
    ("dataset_id", _S, False),
    ("years", _S, False),  # the estat/years tag: "" for a whole-table load
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
    ("error", _S, False),  # the first real cause: the typed error and its message
    ("source_updated_date", _S, False),
    ("snapshot_id", _S, False),
    ("backfill_id", _S, False),
    ("sensor_name", _S, False),
    ("run_key", _S, False),
    ("manifest_path", _S, False),
    ("recorded_at", TimestamptzType(), False),
)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def runs_row(manifest: dict[str, Any], manifest_path: str) -> dict[str, Any]:
    layers = manifest["layers"]
    errors = manifest["errors"]

    def rows(layer: str, key: str = "rows") -> int | None:
        value = (layers.get(layer) or {}).get(key)
        return None if value is None else int(value)

    return {
        "run_id": manifest["run_id"],
        "domain": manifest["domain"],
        "job_name": manifest["job_name"],
        "partition_key": manifest["partition_key"],
        "dataset_id": manifest["dataset_id"],
        "years": manifest.get("years") or "",
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
        "failed_step": (errors[0]["step"] or None) if errors else None,
        "error": errors[0]["error"].splitlines()[0][:MAX_ERROR_CHARS] if errors else None,
        "source_updated_date": manifest["source_updated_date"],
        "snapshot_id": (layers.get("table") or {}).get("snapshot_id"),
        "backfill_id": manifest["backfill_id"],
        "sensor_name": manifest["sensor_name"],
        "run_key": manifest["run_key"],
        "manifest_path": manifest_path,
        "recorded_at": datetime.now(UTC),
    }


def write_run(
    storage: Storage, catalog: Catalog, namespace: str, manifest: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Write the run's manifest file and replace its ``ingestion_runs`` row: (path, row)."""
    day = (manifest.get("started_at") or datetime.now(UTC).isoformat())[:10]
    parts = audit_file(manifest["domain"], day, manifest["run_id"])
    storage.write_bytes(storage.path(*parts), orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    path = storage.uri(*parts)
    identifier = (namespace, RUNS_TABLE)
    ensure_plain_table(catalog, identifier, fields_schema(RUNS_FIELDS))
    row = runs_row(manifest, path)
    replace_rows(
        catalog, identifier, [row], EqualTo("run_id", row["run_id"]), {PROP_RUN: row["run_id"]}
    )
    return path, row
