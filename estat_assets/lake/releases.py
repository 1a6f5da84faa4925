"""Every e-Stat release a dataset had in the lake, pinned with an Iceberg tag so it is never lost.

After a load commits, the snapshot holding that release of the dataset is tagged
``<statsDataId>@<UPDATED_DATE>`` (e.g. ``0000020202@2025-06-20``). Snapshot expiry and compaction
keep every tagged snapshot (``lake/iceberg.expire_snapshots`` protects refs), so each release stays
readable for as long as its tag lives (forever by default); untagged intermediate snapshots go
with the normal retention. Tags live in the table metadata: the SQLite catalog and Glue alike.

A reload of the same release moves its tag to the newest snapshot (the same release, possibly
more years); a release is read by scanning its tagged snapshot with ``dataset_id = X``.

Reading: :func:`read_release` (one release by its date), :func:`read_as_published` (the table
as e-Stat had published it on a day: each dataset's release of that day, unioned) and
:func:`as_published_sql` (the same as a Trino/Athena subquery with ``FOR VERSION AS OF``).
Retention: :func:`expire_releases` (``ESTAT_RELEASE_RETENTION_DAYS``: releases superseded longer
ago lose their tag; the current one never does). Cost: :func:`release_storage`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo
from pyiceberg.table import Table

from estat_assets.lake.iceberg import with_commit_retry

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

    def commit(current_table: Table) -> Table:
        current = current_table.metadata.refs.get(name)
        if current is not None and current.snapshot_id == snapshot_id:
            return current_table
        manage = current_table.manage_snapshots()
        if current is not None:
            manage = manage.remove_tag(name)
        manage.create_tag(snapshot_id, name).commit()
        return current_table

    # another load may commit to the table meanwhile: then refresh and tag again
    return with_commit_retry(
        lambda attempt: table if attempt == 0 else table.refresh(), commit, f"tag {name}"
    )


def release_as_of(table: Table, dataset_id: str, day: str) -> Release | None:
    """The release of ``dataset_id`` e-Stat had published on ``day`` (``YYYY-MM-DD``): the
    latest tagged release whose UPDATED_DATE is on or before that day."""
    candidates = [r for r in releases(table, dataset_id) if r.updated_date <= day]
    return candidates[-1] if candidates else None


# ---------------------------------------------------------------------- reading a release


def _day(day: str | date | datetime) -> str:
    """``YYYY-MM-DD`` of a day given as a string, a date or a datetime (refuses anything else)."""
    if isinstance(day, datetime):
        return day.date().isoformat()
    if isinstance(day, date):
        return day.isoformat()
    text = str(day).strip()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"{day!r}: expected a day as YYYY-MM-DD") from None


def release_of(table: Table, dataset_id: str, updated_date: str) -> Release:
    """The tagged release ``updated_date`` of ``dataset_id`` (``LookupError`` if there is none)."""
    for release in releases(table, dataset_id):
        if release.updated_date == updated_date:
            return release
    known = ", ".join(r.updated_date for r in releases(table, dataset_id)) or "none"
    raise LookupError(
        f"{dataset_id} has no release {updated_date} in {'.'.join(table.name())} "
        f"(releases kept: {known})"
    )


def scan_release(
    table: Table,
    release: Release,
    row_filter: BooleanExpression | None = None,
    selected_fields: Sequence[str] | None = None,
) -> pa.Table:
    """The rows of ``release.dataset_id`` in the release's tagged snapshot.

    ``selected_fields`` that the snapshot's schema lacks (columns added later) are left out.
    """
    expr: BooleanExpression = EqualTo("dataset_id", release.dataset_id)
    if row_filter is not None:
        expr = And(expr, row_filter)
    fields: tuple[str, ...] = ("*",)
    if selected_fields is not None:
        names = set(snapshot_schema(table, release.snapshot_id).column_names)
        fields = tuple(f for f in selected_fields if f in names)
    scan = table.scan(row_filter=expr, selected_fields=fields, snapshot_id=release.snapshot_id)
    return scan.to_arrow()


def release_year_rows(table: Table, release: Release) -> dict[int, int] | None:
    """Rows per year of ``release.dataset_id`` in the release's snapshot, from the manifests
    (why: a release of 10M rows need not be read to be counted or cut into batches).

    ``None`` when the manifests cannot say it exactly: a file the dataset's filter keeps holds
    other rows too (a residual filter: no identity partition on ``dataset_id`` and ``year``),
    or carries delete files (pyiceberg writes none; an Athena DELETE may).
    """
    expr = EqualTo("dataset_id", release.dataset_id)
    counts: dict[int, int] = {}
    specs = table.specs()
    for task in table.scan(row_filter=expr, snapshot_id=release.snapshot_id).plan_files():
        if task.residual != AlwaysTrue() or task.delete_files:
            return None
        fields = [f.name for f in specs[task.file.spec_id].fields]
        if "year" not in fields:
            return None
        year = task.file.partition[fields.index("year")]
        counts[year] = counts.get(year, 0) + task.file.record_count
    return counts


def release_row_count(table: Table, release: Release) -> int:
    """Rows of ``release.dataset_id`` in the release's snapshot: from the manifests when they
    say it exactly, else the ``dataset_id`` column read and counted."""
    counts = release_year_rows(table, release)
    if counts is not None:
        return sum(counts.values())
    return scan_release(table, release, selected_fields=["dataset_id"]).num_rows


def snapshot_schema(table: Table, snapshot_id: int):
    """The schema a snapshot was written with (the current one if it does not say)."""
    snapshot = table.snapshot_by_id(snapshot_id)
    if snapshot is None:
        raise LookupError(f"snapshot {snapshot_id} is not in {'.'.join(table.name())}")
    for schema in table.metadata.schemas:
        if snapshot.schema_id is not None and schema.schema_id == snapshot.schema_id:
            return schema
    return table.schema()


def read_release(
    catalog: Catalog,
    identifier: tuple[str, str],
    dataset_id: str,
    updated_date: str,
    row_filter: BooleanExpression | None = None,
) -> pa.Table:
    """``dataset_id``'s rows exactly as the lake loaded its release ``updated_date``."""
    table = catalog.load_table(identifier)
    return scan_release(table, release_of(table, dataset_id, _day(updated_date)), row_filter)


def releases_as_of(
    table: Table, day: str | date | datetime, dataset_ids: Iterable[str] | None = None
) -> list[Release]:
    """For each dataset (of ``dataset_ids``, else every dataset with a release), the release
    e-Stat had published on ``day``; datasets first published after that day are left out."""
    when = _day(day)
    latest: dict[str, Release] = {}
    wanted = None if dataset_ids is None else set(dataset_ids)
    for release in releases(table):  # oldest first per dataset
        if release.updated_date <= when and (wanted is None or release.dataset_id in wanted):
            latest[release.dataset_id] = release
    return [latest[k] for k in sorted(latest)]


def read_as_published(
    catalog: Catalog,
    identifier: tuple[str, str],
    day: str | date | datetime,
    dataset_ids: Iterable[str] | None = None,
    row_filter: BooleanExpression | None = None,
) -> pa.Table:
    """The table as e-Stat had published it on ``day``: each dataset's rows from its release of
    that day (the latest release whose UPDATED_DATE is on or before it), unioned.

    Datasets with no release by then are absent; so are datasets never tagged (loads before
    release tags existed). ``row_filter`` narrows every dataset's scan (e.g. ``year = 2020``).
    """
    table = catalog.load_table(identifier)
    parts = [scan_release(table, r, row_filter) for r in releases_as_of(table, day, dataset_ids)]
    parts = [p for p in parts if p.num_rows] or parts[:1]
    if not parts:
        return table.schema().as_arrow().empty_table()
    return pa.concat_tables(parts, promote_options="default")


# ---------------------------------------------------------------------- retention and its cost


def superseded_on(table: Table) -> dict[str, str]:
    """release tag → the UPDATED_DATE of the next release of its dataset (current ones absent)."""
    out: dict[str, str] = {}
    by_dataset: dict[str, list[Release]] = {}
    for release in releases(table):
        by_dataset.setdefault(release.dataset_id, []).append(release)
    for series in by_dataset.values():
        for older, newer in pairwise(series):
            out[older.tag] = newer.updated_date
    return out


def expire_releases(
    table: Table,
    retention_days: float | None,
    now: datetime | None = None,
    dataset_id: str | None = None,
) -> list[str]:
    """Remove the tags of releases superseded more than ``retention_days`` ago (by the next
    release's UPDATED_DATE); ``None`` keeps every release forever. A dataset's current release
    is never removed. Returns the tags removed; their snapshots then go with normal expiry."""
    if retention_days is None:
        return []
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(days=retention_days)).date().isoformat()
    gone = [
        tag
        for tag, until in sorted(superseded_on(table).items())
        if until < cutoff and (dataset_id is None or tag.partition(SEPARATOR)[0] == dataset_id)
    ]
    if gone:
        manage = table.manage_snapshots()
        for tag in gone:
            manage = manage.remove_tag(tag)
        manage.commit()
    return gone


def _files(table: Table, snapshot_id: int) -> dict[str, int]:
    return {
        task.file.file_path: task.file.file_size_in_bytes
        for task in table.scan(snapshot_id=snapshot_id).plan_files()
    }


def release_storage(table: Table) -> dict[str, int]:
    """What keeping releases costs: bytes of the data files the current snapshot references, and
    of the files referenced only by release tags (the price of "as published on")."""
    current = table.current_snapshot()
    live = _files(table, current.snapshot_id) if current is not None else {}
    kept: dict[str, int] = {}
    tagged = {r.snapshot_id for r in releases(table)}
    for snapshot_id in tagged:
        kept.update({p: n for p, n in _files(table, snapshot_id).items() if p not in live})
    return {
        "releases": len(releases(table)),
        "tagged_snapshots": len(tagged),
        "current_files": len(live),
        "current_bytes": sum(live.values()),
        "release_only_files": len(kept),
        "release_only_bytes": sum(kept.values()),
    }


def as_published_sql(
    table: Table,
    table_ref: str,
    day: str | date | datetime,
    dataset_ids: Iterable[str] | None = None,
) -> str:
    """A Trino/Athena subquery reading ``table_ref`` as published on ``day``: each dataset's
    release snapshot with ``FOR VERSION AS OF``, unioned. What a SQL engine substitutes for the
    table when a query is asked ``--as-of`` a day (``WHERE FALSE`` when nothing was published)."""
    parts = [
        f"SELECT * FROM {table_ref} FOR VERSION AS OF {r.snapshot_id} "
        f"WHERE dataset_id = '{r.dataset_id}'"
        for r in releases_as_of(table, day, dataset_ids)
    ]
    return "\nUNION ALL\n".join(parts) if parts else f"SELECT * FROM {table_ref} WHERE FALSE"
