"""Table maintenance: expire old snapshots and compact slices made of many small files.

- **expire**: snapshots committed more than ``older_than_days`` ago are removed from the metadata,
  keeping at least the ``retain_last`` newest and every branch/tag head (pyiceberg
  ``table.maintenance.expire_snapshots().by_ids(...)``). pyiceberg 0.12 removes the snapshots from
  the metadata only: their unreferenced data files stay until an orphan-file cleanup (Spark/Athena
  ``VACUUM``) removes them.
- **releases**: every release of a dataset is tagged ``<statsDataId>@<UPDATED_DATE>``
  (``lake/releases.py``), so expiry keeps it and ``--as-of`` can read it. With
  ``release_retention_days`` (``ESTAT_RELEASE_RETENTION_DAYS``; ``None``: forever, the default)
  the tags of releases superseded longer ago are removed first, and their snapshots then expire.
- **compact**: pyiceberg 0.12 has no rewrite-data-files action, so a ``(dataset_id, year)`` slice
  with more than ``max_files_per_slice`` data files is read and written back in one commit, which
  leaves one file (or a few large ones). Readers see the old slice or the new one, never both.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from estat_assets.lake.iceberg import (
    PROP_DATASET,
    PROP_MAINTENANCE,
    PROP_UPDATED,
    PROP_YEARS,
    dataset_filter,
    expire_snapshots,
    held_releases,
    replace_partition,
)
from estat_assets.lake.releases import expire_releases


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
    """Rewrite one slice as few files in one commit; it keeps saying which release it holds."""
    table = catalog.load_table(identifier)
    rows = table.scan(row_filter=dataset_filter(dataset_id, [year])).to_arrow()
    key = f"{int(year):04d}"
    release = held_releases(table, dataset_id).get(key) or ""
    return replace_partition(
        catalog,
        identifier,
        rows,
        dataset_id,
        year,
        snapshot_properties={
            PROP_MAINTENANCE: "compact",
            PROP_DATASET: dataset_id,
            PROP_YEARS: key,
            PROP_UPDATED: release,
        },
    )


def maintain(
    catalog: Catalog,
    namespace: str,
    older_than_days: float = 30,
    retain_last: int = 5,
    max_files_per_slice: int = 8,
    now: datetime | None = None,
    release_retention_days: float | None = None,
) -> list[dict[str, Any]]:
    """Compact, then expire, every table of ``namespace``; one report entry per table.

    Release tags superseded more than ``release_retention_days`` ago are removed before the
    expiry (``None``: every release is kept forever)."""
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
        released = expire_releases(table, release_retention_days, now)
        table = catalog.load_table(identifier) if released else table
        expired = expire_snapshots(table, now - timedelta(days=older_than_days), retain_last)
        table = catalog.load_table(identifier)
        report.append(
            {
                "table": ".".join(identifier),
                "compacted": compacted,
                "expired_snapshots": len(expired),
                "releases_removed": released,
                "snapshots_left": len(table.snapshots()),
            }
        )
    return report
