"""Every e-Stat release a dataset had in the lake, pinned with an Iceberg tag so it is never lost.

After a load commits, the snapshot holding that release of the dataset is tagged
``<statsDataId>@<UPDATED_DATE>`` (e.g. ``0000020202@2025-06-20``). Snapshot expiry and compaction
keep every tagged snapshot (``lake/iceberg.expire_snapshots`` protects refs), so each release stays
readable for as long as its tag lives (forever by default); untagged intermediate snapshots go
with the normal retention. Tags live in the table metadata: the SQLite catalog and Glue alike.

A reload of the same release moves its tag to the newest snapshot (the same release, possibly
more years); a release is read by scanning its tagged snapshot with ``dataset_id = X``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.table import Table

SEPARATOR = "@"


def release_tag(dataset_id: str, updated_date: str) -> str:
    return f"{dataset_id}{SEPARATOR}{updated_date}"


@dataclass(frozen=True)
class Release:
    dataset_id: str
    updated_date: str
    snapshot_id: int
    tag: str


def releases(table: Table, dataset_id: str | None = None) -> list[Release]:
    """The tagged releases of a table (of one dataset), oldest release first."""
    out = []
    for name, ref in table.metadata.refs.items():
        if ref.snapshot_ref_type != "tag" or SEPARATOR not in name:
            continue
        dataset, _, date = name.partition(SEPARATOR)
        if dataset_id is None or dataset == dataset_id:
            out.append(Release(dataset, date, ref.snapshot_id, name))
    return sorted(out, key=lambda r: (r.dataset_id, r.updated_date))


def tag_release(table: Table, dataset_id: str, updated_date: str, snapshot_id: int) -> Table:
    """Pin ``snapshot_id`` as ``dataset_id``'s release ``updated_date`` (moving an older tag)."""
    name = release_tag(dataset_id, updated_date)
    current = table.metadata.refs.get(name)
    if current is not None and current.snapshot_id == snapshot_id:
        return table
    manage = table.manage_snapshots()
    if current is not None:
        manage = manage.remove_tag(name)
    manage.create_tag(snapshot_id, name).commit()
    return table


def release_as_of(table: Table, dataset_id: str, day: str) -> Release | None:
    """The release of ``dataset_id`` e-Stat had published on ``day`` (``YYYY-MM-DD``): the
    latest tagged release whose UPDATED_DATE is on or before that day."""
    candidates = [r for r in releases(table, dataset_id) if r.updated_date <= day]
    return candidates[-1] if candidates else None
