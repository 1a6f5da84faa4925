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

from typing import Any

import dagster as dg

from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.lake.maintenance import maintain
from estat_assets.settings import Settings

JOB_NAME = "lake_maintenance_job"


class MaintenanceConfig(dg.Config):
    older_than_days: float = 30.0
    retain_last: int = 5
    max_files_per_slice: int = 8
    # None: the settings' ESTAT_RELEASE_RETENTION_DAYS (unset: every release is kept forever)
    release_retention_days: float | None = None


def build_maintenance(settings: Settings) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The maintenance job (with the release retention of ``settings``) and its weekly schedule."""

    @dg.op(description="Compact small-file slices and expire old snapshots of every Iceberg table.")
    def maintain_tables(
        context: dg.OpExecutionContext, config: MaintenanceConfig, iceberg: IcebergCatalogResource
    ) -> list[dict[str, Any]]:
        retention = config.release_retention_days
        if retention is None:
            retention = settings.release_retention_days
        report = maintain(
            iceberg.catalog(),
            iceberg.namespace,
            config.older_than_days,
            config.retain_last,
            config.max_files_per_slice,
            release_retention_days=retention,
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
                "release_retention_days": retention if retention is not None else "forever",
                "report": dg.MetadataValue.json(report),
            }
        )
        return report

    @dg.job(
        name=JOB_NAME, description="Weekly Iceberg maintenance: compact slices, expire snapshots."
    )
    def lake_maintenance_job():
        maintain_tables()

    schedule = dg.ScheduleDefinition(
        name="lake_maintenance_schedule",
        job=lake_maintenance_job,
        cron_schedule="0 3 * * 0",
        execution_timezone="Asia/Tokyo",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    return lake_maintenance_job, schedule
