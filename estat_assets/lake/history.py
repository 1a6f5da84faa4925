"""Reading an Iceberg table as it was: snapshots found by the e-Stat release they loaded.

Every load of a dataset (``defs/table.py``) replaces its year slices in one commit (a delete
snapshot, if it had rows, and an append snapshot) whose summaries carry ``estat.dataset_id``,
``estat.years`` (the years replaced), ``estat.updated_date`` (the source UPDATED_DATE) and
``dagster.run_id`` (the ``PROP_*`` constants of ``lake/iceberg.py``). So "the table before the
2026-12-01 release of 0000020202" is the parent of the first snapshot that wrote that release::

    snap = snapshot_before_release(table, "0000020202", "2026-12-01")
    old = table.scan(snapshot_id=snap, row_filter="dataset_id = '0000020202'").to_arrow()

Snapshots older than the maintenance job's retention are expired and can no longer be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from pyiceberg.expressions import BooleanExpression, EqualTo
from pyiceberg.table import Table

from estat_assets.lake.iceberg import PROP_DATASET, PROP_RUN, PROP_UPDATED, PROP_YEARS


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: int
    parent_id: int | None
    sequence_number: int
    committed_at: datetime
    operation: str | None
    dataset_id: str | None
    years: str | None  # the years the commit replaced, "1981,1982" (all of them: a whole load)
    updated_date: str | None
    run_id: str | None


def snapshots(table: Table) -> list[SnapshotInfo]:
    """Every snapshot still in the table's metadata, oldest first, with its e-Stat properties.

    Ordered by sequence number (commit order): the delete and the append snapshot of one commit
    may share a millisecond, and snapshot ids are random.
    """
    out = []
    for snap in table.snapshots():
        props = dict(snap.summary.additional_properties) if snap.summary else {}
        operation = snap.summary.operation.value if snap.summary else None
        out.append(
            SnapshotInfo(
                snapshot_id=snap.snapshot_id,
                parent_id=snap.parent_snapshot_id,
                sequence_number=snap.sequence_number or 0,
                committed_at=datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC),
                operation=operation,
                dataset_id=props.get(PROP_DATASET),
                years=props.get(PROP_YEARS) or None,
                updated_date=props.get(PROP_UPDATED) or None,
                run_id=props.get(PROP_RUN),
            )
        )
    return sorted(out, key=lambda s: (s.sequence_number, s.committed_at, s.snapshot_id))


def release_snapshots(table: Table, dataset_id: str, updated_date: str) -> list[SnapshotInfo]:
    """The snapshots that wrote slices of ``dataset_id`` from release ``updated_date``."""
    return [
        s for s in snapshots(table) if s.dataset_id == dataset_id and s.updated_date == updated_date
    ]


def snapshot_before_release(table: Table, dataset_id: str, updated_date: str) -> int | None:
    """The snapshot just before the first write of that release (``None``: nothing before it).

    Raises ``LookupError`` if no snapshot wrote that release (never loaded, or expired).
    """
    writes = release_snapshots(table, dataset_id, updated_date)
    if not writes:
        raise LookupError(f"no snapshot of {dataset_id} release {updated_date} in {table.name()}")
    return writes[0].parent_id


def read_before_release(
    table: Table,
    dataset_id: str,
    updated_date: str,
    row_filter: BooleanExpression | None = None,
) -> pa.Table:
    """``dataset_id``'s rows as they were before release ``updated_date`` was loaded."""
    snapshot_id = snapshot_before_release(table, dataset_id, updated_date)
    if snapshot_id is None:
        return table.schema().as_arrow().empty_table()
    expr = EqualTo("dataset_id", dataset_id)
    if row_filter is not None:
        from pyiceberg.expressions import And

        expr = And(expr, row_filter)
    return table.scan(snapshot_id=snapshot_id, row_filter=expr).to_arrow()
