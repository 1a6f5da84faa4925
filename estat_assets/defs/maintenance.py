"""Table maintenance: expire old snapshots and compact slices made of many small files.

``lake_maintenance_job`` (weekly schedule ``lake_maintenance_schedule``, Sunday 03:00 JST, off by
default) goes over every Iceberg table of the namespace:

- **expire**: snapshots committed more than ``older_than_days`` ago are removed from the metadata,
  keeping at least the ``retain_last`` newest and every branch/tag head (pyiceberg
  ``table.maintenance.expire_snapshots().by_ids(...)``). Time travel (``lake/history.py``) then
  reaches back ``older_than_days`` days. pyiceberg 0.12 removes the snapshots from the metadata
  only: their unreferenced data files stay on disk until an orphan-file cleanup (Spark/Athena
  ``VACUUM``) removes them.
- **compact**: pyiceberg 0.12 has no rewrite-data-files action, so a partitioned table's
  ``(dataset_id, year)`` slice that has more than ``max_files_per_slice`` data files is read and
  written back in one ``overwrite`` commit (``lake/iceberg.replace_partition``), which leaves one
  file (or a few large ones). Readers see the old slice or the new one, never both.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.lake.iceberg import replace_partition, slice_filter

JOB_NAME = "lake_maintenance_job"


def expire_snapshots(table: Table, older_than: datetime, retain_last: int = 5) -> list[int]:
    """Expire snapshots older than ``older_than`` except the newest ``retain_last``; their ids."""
    snaps = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.snapshot_id))
    keep = {s.snapshot_id for s in snaps[-retain_last:]} if retain_last > 0 else set()
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    cutoff_ms = int(older_than.timestamp() * 1000)
    expire = [
        s.snapshot_id
        for s in snaps
        if s.timestamp_ms < cutoff_ms and s.snapshot_id not in keep | protected
    ]
    if expire:
        table.maintenance.expire_snapshots().by_ids(expire).commit()
    return expire


def small_file_slices(table: Table, max_files: int) -> list[tuple[str, int, int]]:
    """``(dataset_id, year, files)`` of the slices with more than ``max_files`` data files."""
    names = [f.name for f in table.spec().fields]
    if "dataset_id" not in names or "year" not in names or table.current_snapshot() is None:
        return []
    i_ds, i_year = names.index("dataset_id"), names.index("year")
    counts: Counter[tuple[str, int]] = Counter()
    for task in table.scan().plan_files():
        part = task.file.partition
        counts[(str(part[i_ds]), int(part[i_year]))] += 1
    return [(ds, year, n) for (ds, year), n in sorted(counts.items()) if n > max_files]


def compact_slice(catalog: Catalog, identifier: tuple[str, str], dataset_id: str, year: int):
    table = catalog.load_table(identifier)
    rows = table.scan(row_filter=slice_filter(dataset_id, year)).to_arrow()
    return replace_partition(
        catalog,
        identifier,
        rows,
        dataset_id,
        year,
        snapshot_properties={
            "estat.maintenance": "compact",
            "estat.dataset_id": dataset_id,
            "estat.year": str(year),
        },
    )


def maintain(
    catalog: Catalog,
    namespace: str,
    older_than_days: float = 30,
    retain_last: int = 5,
    max_files_per_slice: int = 8,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Compact, then expire, every table of ``namespace``; one report entry per table."""
    now = now or datetime.now(UTC)
    report = []
    try:
        identifiers = sorted(catalog.list_tables(namespace))
    except Exception:  # no namespace yet: nothing to maintain
        return []
    for identifier in identifiers:
        identifier = tuple(identifier)
        compacted = []
        for dataset_id, year, files in small_file_slices(
            catalog.load_table(identifier), max_files_per_slice
        ):
            compact_slice(catalog, identifier, dataset_id, year)
            compacted.append(f"{dataset_id}|{year} ({files} files)")
        table = catalog.load_table(identifier)
        expired = expire_snapshots(table, now - timedelta(days=older_than_days), retain_last)
        table = catalog.load_table(identifier)
        report.append(
            {
                "table": ".".join(identifier),
                "compacted": compacted,
                "expired_snapshots": len(expired),
                "snapshots_left": len(table.snapshots()),
            }
        )
    return report


class MaintenanceConfig(dg.Config):
    older_than_days: float = 30.0
    retain_last: int = 5
    max_files_per_slice: int = 8


@dg.op(description="Compact small-file slices and expire old snapshots of every Iceberg table.")
def maintain_tables(
    context: dg.OpExecutionContext, config: MaintenanceConfig, iceberg: IcebergCatalogResource
) -> list[dict[str, Any]]:
    report = maintain(
        iceberg.catalog(),
        iceberg.namespace,
        config.older_than_days,
        config.retain_last,
        config.max_files_per_slice,
    )
    for entry in report:
        context.log.info(
            f"{entry['table']}: expired {entry['expired_snapshots']} snapshots "
            f"({entry['snapshots_left']} left), compacted {len(entry['compacted'])} slices"
        )
    context.add_output_metadata(
        {
            "tables": len(report),
            "expired_snapshots": sum(e["expired_snapshots"] for e in report),
            "compacted_slices": sum(len(e["compacted"]) for e in report),
            "report": dg.MetadataValue.json(report),
        }
    )
    return report


@dg.job(name=JOB_NAME, description="Weekly Iceberg maintenance: compact slices, expire snapshots.")
def lake_maintenance_job():
    maintain_tables()


lake_maintenance_schedule = dg.ScheduleDefinition(
    name="lake_maintenance_schedule",
    job=lake_maintenance_job,
    cron_schedule="0 3 * * 0",
    execution_timezone="Asia/Tokyo",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
