"""What a release changed: the diff of a dataset between two releases, as rows and as a summary.

e-Stat republishes a table under a new UPDATED_DATE and the old numbers vanish from the API. The
lake keeps every release (``lake/releases.py``: a tag ``<statsDataId>@<UPDATED_DATE>`` on the
snapshot that loaded it); this module compares the previous release of a dataset with the new
one, cell by cell. A cell is one observation: the dataset and every axis code (``tab``,
``cat01``-``cat15``, ``area``, ``time``). Its kind is

- ``revised``: present in both releases, with another ``value_raw`` or ``annotation``;
- ``added``: only in the new release (a new period, a cell filled in);
- ``removed``: only in the previous release (a period withdrawn, a cell dropped).

The rows go to ``estat.<domain>_revisions`` (partitioned by ``dataset_id``): keys, old and new
``value_raw``/``value``/``annotation``, the change, both UPDATED_DATEs, both snapshots and the run
that loaded the new release. The rows of one (dataset, new release) are replaced in ONE commit, so
a rerun never duplicates them. ``estat.<domain>_releases`` gets one row per (dataset, release)
with its counts (zero for a release that changed nothing) and the snapshot to read it from, which
is what SQL users need for Athena's ``FOR VERSION AS OF <snapshot_id>``.

Everything is columnar: keys are joined into one string per row and matched with hash lookups
(``index_in``/``is_in``), so a million-row release diffs in about a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In
from pyiceberg.table import Table
from pyiceberg.types import DateType, DoubleType, IntegerType, LongType, StringType, TimestamptzType

from estat_assets.estat.shape import AXES
from estat_assets.lake.history import snapshot_before_release, snapshots
from estat_assets.lake.iceberg import (
    PROP_DATASET,
    PROP_RUN,
    PROP_UPDATED,
    commit_files,
    ensure_dataset_table,
    ensure_plain_table,
    fields_schema,
    replace_rows,
    write_parquet_file,
)
from estat_assets.lake.releases import (
    Release,
    release_of,
    release_row_count,
    release_year_rows,
    releases,
    scan_release,
    snapshot_schema,
)

REVISED, ADDED, REMOVED = "revised", "added", "removed"
KINDS = (REVISED, ADDED, REMOVED)
CODE_COLUMNS = tuple(f"{axis}_code" for axis in AXES)
PAYLOAD = ("value_raw", "value", "annotation")
# Columns read from each side of a diff (besides the codes).
READ_COLUMNS = ("year", "time_name", "unit", *PAYLOAD)
KEY_SEPARATOR = "\x1f"
NULL_CODE = "\x00"  # an axis a row does not have: joins must match it, so it cannot stay null
TOP_REVISIONS = 10
DIFF_BATCH_ROWS = 2_000_000  # both releases' rows held at once while comparing them

_S, _D, _L = StringType(), DoubleType(), LongType()
REVISION_FIELDS: tuple[tuple[str, Any, bool], ...] = (
    ("dataset_id", _S, True),
    ("new_updated_date", DateType(), True),  # the release that made the change
    ("old_updated_date", DateType(), False),  # the release it was compared with
    ("kind", _S, True),  # revised | added | removed
    ("year", IntegerType(), False),
    *((c, _S, False) for c in CODE_COLUMNS),
    ("time_name", _S, False),
    ("unit", _S, False),
    ("old_value_raw", _S, False),
    ("new_value_raw", _S, False),
    ("old_value", _D, False),
    ("new_value", _D, False),
    ("old_annotation", _S, False),
    ("new_annotation", _S, False),
    ("change", _D, False),  # new_value - old_value
    ("relative_change", _D, False),  # (new - old) / |old|; null when old is 0 or not a number
    ("old_snapshot_id", _L, False),
    ("new_snapshot_id", _L, False),
    ("run_id", _S, False),  # the run that loaded the new release
    ("revisions_run_id", _S, False),  # the run that computed these rows
    ("detected_at", TimestamptzType(), False),
)
RELEASE_FIELDS: tuple[tuple[str, Any, bool], ...] = (
    ("dataset_id", _S, True),
    ("updated_date", DateType(), True),
    ("tag", _S, False),  # <statsDataId>@<UPDATED_DATE>: the Iceberg tag of the release
    ("snapshot_id", _L, False),  # its snapshot of estat.<domain> (Athena: FOR VERSION AS OF)
    ("previous_updated_date", DateType(), False),
    ("previous_snapshot_id", _L, False),
    ("rows", _L, False),  # cells of the dataset in this release
    ("previous_rows", _L, False),
    ("revised", _L, False),
    ("added", _L, False),
    ("removed", _L, False),
    ("revised_share", _D, False),  # revised / previous_rows
    ("run_id", _S, False),
    ("revisions_run_id", _S, False),
    ("detected_at", TimestamptzType(), False),
)


def revisions_name(domain: str) -> str:
    return f"{domain}_revisions"


def releases_name(domain: str) -> str:
    return f"{domain}_releases"


def revisions_schema():
    return fields_schema(REVISION_FIELDS)


def ensure_revisions_table(catalog: Catalog, identifier: tuple[str, str]) -> Table:
    return ensure_dataset_table(catalog, identifier, revisions_schema())


# ---------------------------------------------------------------------- the diff


def _null_safe_differs(a: pa.ChunkedArray | pa.Array, b: pa.ChunkedArray | pa.Array) -> pa.Array:
    """a != b, with null == null and null != anything else."""
    ne = pc.fill_null(pc.not_equal(a, b), False)
    return pc.or_(ne, pc.xor(pc.is_null(a), pc.is_null(b)))


def _key_columns(old: pa.Table, new: pa.Table) -> list[str]:
    """The axis code columns either side has values in (an absent axis is no part of the key)."""
    out = []
    for column in CODE_COLUMNS:
        for side in (old, new):
            if column in side.column_names and side.column(column).null_count < side.num_rows:
                out.append(column)
                break
    return out


def _codes(side: pa.Table, column: str) -> pa.ChunkedArray | pa.Array:
    if column in side.column_names:
        return side.column(column).cast(pa.string())
    return pa.nulls(side.num_rows, pa.string())


def _keys(side: pa.Table, columns: Sequence[str]) -> pa.Array:
    """One string per row: its codes joined; a duplicated key gets its ordinal appended (the
    conformed checks quarantine duplicates, so this is only a safety net)."""
    if not side.num_rows:
        return pa.array([], pa.string())
    parts = [pc.fill_null(_codes(side, c), NULL_CODE) for c in columns] or [
        pa.repeat(pa.scalar("", pa.string()), side.num_rows)
    ]
    key = pc.binary_join_element_wise(*parts, KEY_SEPARATOR) if len(parts) > 1 else parts[0]
    key = key.combine_chunks() if isinstance(key, pa.ChunkedArray) else key
    if pc.count_distinct(key).as_py() == len(key):
        return key
    # Order repeats by their payload so identical multisets of repeats match across releases.
    tiebreak = [pc.fill_null(side.column(c).cast(pa.string()), NULL_CODE) for c in PAYLOAD]
    order = pc.sort_indices(
        pa.table({"k": key, **{f"p{i}": t for i, t in enumerate(tiebreak)}}),
        sort_keys=[("k", "ascending"), *((f"p{i}", "ascending") for i in range(len(PAYLOAD)))],
    ).to_numpy()
    sorted_keys = key.take(pa.array(order))
    starts = np.ones(len(key), dtype=bool)
    if len(key) > 1:
        starts[1:] = pc.not_equal(sorted_keys[1:], sorted_keys[:-1]).to_numpy(zero_copy_only=False)
    positions = np.arange(len(key))
    run_start = np.maximum.accumulate(np.where(starts, positions, 0))
    ordinal = np.empty(len(key), dtype=np.int64)
    ordinal[order] = positions - run_start
    suffix = pc.cast(pa.array(ordinal), pa.string())
    return pc.binary_join_element_wise(key, suffix, KEY_SEPARATOR + "#")


def _flat_codes(side: pa.Table, column: str) -> pa.Array:
    codes = pc.fill_null(_codes(side, column), NULL_CODE)
    return codes.combine_chunks() if isinstance(codes, pa.ChunkedArray) else codes


def _int_keys(
    old: pa.Table, new: pa.Table, columns: Sequence[str]
) -> tuple[pa.Array, pa.Array] | None:
    """One int64 per row, the same for the same codes on both sides: each code column is
    dictionary-encoded over both sides at once and the indices are combined positionally.
    ``None`` when the combinations would not fit in 62 bits or a side repeats a key (then the
    string keys of :func:`_keys` decide)."""
    n_old = old.num_rows
    old_key = np.zeros(n_old, dtype=np.int64)
    new_key = np.zeros(new.num_rows, dtype=np.int64)
    size = 1
    for column in columns:
        both = pa.concat_arrays([_flat_codes(old, column), _flat_codes(new, column)])
        encoded = pc.dictionary_encode(both)
        cardinality = max(1, len(encoded.dictionary))
        if size * cardinality >= 2**62:
            return None
        indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        old_key += indices[:n_old] * size
        new_key += indices[n_old:] * size
        size *= cardinality
    old_arr, new_arr = pa.array(old_key), pa.array(new_key)
    for arr in (old_arr, new_arr):
        if len(arr) and pc.count_distinct(arr).as_py() != len(arr):
            return None
    return old_arr, new_arr


def _match_keys(old: pa.Table, new: pa.Table, columns: Sequence[str]) -> tuple[pa.Array, pa.Array]:
    fast = _int_keys(old, new, columns)
    return fast if fast is not None else (_keys(old, columns), _keys(new, columns))


def _column(side: pa.Table, name: str, kind: pa.DataType) -> pa.Array:
    if name in side.column_names:
        col = side.column(name).cast(kind)
        return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return pa.nulls(side.num_rows, kind)


_PAYLOAD_TYPES = {"value_raw": pa.string(), "value": pa.float64(), "annotation": pa.string()}


def diff_releases(old: pa.Table, new: pa.Table) -> pa.Table:
    """Every cell that differs between two reads of one dataset (``old`` may be empty).

    Columns: ``kind``, ``year``, every axis code, ``time_name``, ``unit``, ``old_``/``new_``
    ``value_raw``, ``value``, ``annotation``, ``change`` and ``relative_change``. A cell is
    revised when its ``value_raw`` or its ``annotation`` differs (null-safe).
    """
    key_cols = _key_columns(old, new)
    old_key, new_key = _match_keys(old, new, key_cols)
    position = pc.index_in(new_key, value_set=old_key)  # new row → old row (null: added)
    matched = pc.is_valid(position)
    added = pc.invert(matched)
    removed = pc.invert(pc.is_in(old_key, value_set=new_key))
    old_of_match = pc.drop_null(position)
    changed = None
    if len(old_of_match):
        new_match = {c: _column(new, c, t).filter(matched) for c, t in _PAYLOAD_TYPES.items()}
        old_match = {c: _column(old, c, t).take(old_of_match) for c, t in _PAYLOAD_TYPES.items()}
        changed = pc.or_(
            _null_safe_differs(old_match["value_raw"], new_match["value_raw"]),
            _null_safe_differs(old_match["annotation"], new_match["annotation"]),
        )
    parts = []
    if changed is not None and pc.any(changed).as_py():
        new_rows = pc.indices_nonzero(matched).filter(changed)
        old_rows = old_of_match.filter(changed)
        parts.append(_assemble(REVISED, new, new_rows, old, old_rows, key_cols))
    if pc.any(added).as_py():
        parts.append(_assemble(ADDED, new, pc.indices_nonzero(added), old, None, key_cols))
    if len(removed) and pc.any(removed).as_py():
        parts.append(_assemble(REMOVED, old, pc.indices_nonzero(removed), None, None, key_cols))
    if not parts:
        return diff_schema().empty_table()
    return pa.concat_tables(parts)


def diff_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("kind", pa.string()),
            pa.field("year", pa.int32()),
            *(pa.field(c, pa.string()) for c in CODE_COLUMNS),
            pa.field("time_name", pa.string()),
            pa.field("unit", pa.string()),
            *(pa.field(f"{s}_{c}", t) for c, t in _PAYLOAD_TYPES.items() for s in ("old", "new")),
            pa.field("change", pa.float64()),
            pa.field("relative_change", pa.float64()),
        ]
    )


def _assemble(
    kind: str,
    keyed: pa.Table,
    keyed_rows: pa.Array,
    other: pa.Table | None,
    other_rows: pa.Array | None,
    key_cols: Sequence[str],
) -> pa.Table:
    """Rows of one kind: keys and context from ``keyed``; for revised cells ``keyed`` is the new
    release and ``other`` the old one; for added cells the new one alone; for removed the old."""
    n = len(keyed_rows)
    take = lambda side, rows, name, kind_: _column(side, name, kind_).take(rows)  # noqa: E731
    columns: dict[str, pa.Array] = {
        "kind": pa.repeat(pa.scalar(kind, pa.string()), n),
        "year": take(keyed, keyed_rows, "year", pa.int32()),
    }
    for c in CODE_COLUMNS:
        columns[c] = (
            take(keyed, keyed_rows, c, pa.string()) if c in key_cols else pa.nulls(n, pa.string())
        )
    columns["time_name"] = take(keyed, keyed_rows, "time_name", pa.string())
    columns["unit"] = take(keyed, keyed_rows, "unit", pa.string())
    for name, t in _PAYLOAD_TYPES.items():
        here = take(keyed, keyed_rows, name, t)
        if kind == REVISED:
            assert other is not None and other_rows is not None
            columns[f"old_{name}"] = take(other, other_rows, name, t)
            columns[f"new_{name}"] = here
        elif kind == ADDED:
            columns[f"old_{name}"] = pa.nulls(n, t)
            columns[f"new_{name}"] = here
        else:
            columns[f"old_{name}"] = here
            columns[f"new_{name}"] = pa.nulls(n, t)
    old_v, new_v = columns["old_value"], columns["new_value"]
    change = pc.subtract(new_v, old_v)
    nonzero = pc.if_else(pc.equal(old_v, 0.0), pa.scalar(None, pa.float64()), pc.abs(old_v))
    columns["change"] = change
    columns["relative_change"] = pc.divide(change, nonzero)
    return pa.table(columns, schema=diff_schema())


# ---------------------------------------------------------------------- releases to compare


def previous_release(table: Table, dataset_id: str, updated_date: str) -> Release | None:
    """The release a new one is compared with: the latest tagged release before it, else (a lake
    loaded before release tags existed) the dataset as it was just before the new release's first
    write, if that snapshot is still there. ``None``: nothing came before (a first load)."""
    earlier = [r for r in releases(table, dataset_id) if r.updated_date < updated_date]
    if earlier:
        return earlier[-1]
    try:
        snapshot_id = snapshot_before_release(table, dataset_id, updated_date)
    except LookupError:
        return None
    if snapshot_id is None or table.snapshot_by_id(snapshot_id) is None:
        return None
    held = None
    for info in snapshots(table):  # the release the dataset held at that snapshot
        if info.dataset_id == dataset_id and info.updated_date:
            held = info.updated_date
        if info.snapshot_id == snapshot_id:
            break
    if held is None:
        return None
    return Release(dataset_id, held, snapshot_id, "")


def _read_side(table: Table, release: Release, years: Sequence[int] | None = None) -> pa.Table:
    names = set(snapshot_schema(table, release.snapshot_id).column_names)
    fields = [c for c in (*CODE_COLUMNS, *READ_COLUMNS) if c in names]
    row_filter = In("year", list(years)) if years is not None else None
    return scan_release(table, release, row_filter=row_filter, selected_fields=fields)


def year_batches(
    old: dict[int, int] | None, new: dict[int, int] | None, limit: int
) -> list[list[int] | None]:
    """Years compared together, both sides' rows per batch at most ``limit`` (a bigger year is a
    batch of its own), so that comparing two releases of 10M rows never holds both whole.

    ``[None]`` (one batch, the whole dataset) when the manifests could not count a side, or a
    side holds a single year: a table without a time axis takes its year from the survey, which
    a new release may move, and its cells must still meet their old selves.
    """
    if old is None or new is None or len(old) <= 1 or len(new) <= 1:
        return [None]
    batches: list[list[int] | None] = []
    batch: list[int] = []
    rows = 0
    for year in sorted(set(old) | set(new)):
        size = old.get(year, 0) + new.get(year, 0)
        if batch and rows + size > limit:
            batches.append(batch)
            batch, rows = [], 0
        batch.append(year)
        rows += size
    batches.append(batch)
    return batches


def _moved_between_batches(cells: pa.Table) -> bool:
    """Whether a cell removed in one year batch is added in another (its year moved: a time code
    the release parses differently): then only a whole comparison pairs it as revised."""
    kinds = cells.column("kind")
    removed = cells.filter(pc.equal(kinds, REMOVED))
    added = cells.filter(pc.equal(kinds, ADDED))
    if not removed.num_rows or not added.num_rows:
        return False

    def key(side: pa.Table) -> pa.Array:
        parts = [pc.fill_null(_codes(side, c), NULL_CODE) for c in CODE_COLUMNS]
        return pc.binary_join_element_wise(*parts, KEY_SEPARATOR)

    old_key, new_key = key(removed), key(added)
    return bool(pc.any(pc.is_in(new_key, value_set=old_key)).as_py())


@dataclass(frozen=True)
class ReleaseDiff:
    """A new release of a dataset, the one it was compared with, and what changed."""

    dataset_id: str
    new: Release
    old: Release | None
    new_rows: int
    old_rows: int
    cells: pa.Table  # diff_releases(): one row per cell that changed
    run_id: str | None  # the run that loaded the new release

    def counts(self) -> dict[str, int]:
        kinds = self.cells.column("kind") if self.cells.num_rows else pa.array([], pa.string())
        values = pc.value_counts(kinds).to_pylist() if len(kinds) else []
        found = {v["values"]: v["counts"] for v in values}
        return {k: int(found.get(k, 0)) for k in KINDS}

    @property
    def revised_share(self) -> float:
        return self.counts()[REVISED] / self.old_rows if self.old_rows else 0.0


def run_of(table: Table, snapshot_id: int) -> str | None:
    snapshot = table.snapshot_by_id(snapshot_id)
    props = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
    return props.get(PROP_RUN)


def diff_release(
    table: Table, dataset_id: str, new: Release, old: Release | None = None
) -> ReleaseDiff:
    """Compare release ``new`` of a dataset with ``old`` (default: :func:`previous_release`).

    A first release (nothing before it) changes nothing: its cells are not listed as added.
    """
    old = old if old is not None else previous_release(table, dataset_id, new.updated_date)
    if old is None:  # counted from the manifests: a first release is not read back
        return ReleaseDiff(
            dataset_id,
            new,
            None,
            release_row_count(table, new),
            0,
            diff_schema().empty_table(),
            run_of(table, new.snapshot_id),
        )
    counts = release_year_rows(table, old), release_year_rows(table, new)
    batches = year_batches(*counts, limit=DIFF_BATCH_ROWS)
    cells, old_rows, new_rows = _diff_in_batches(table, old, new, batches)
    if len(batches) > 1 and _moved_between_batches(cells):
        cells, old_rows, new_rows = _diff_in_batches(table, old, new, [None])
    return ReleaseDiff(
        dataset_id, new, old, new_rows, old_rows, cells, run_of(table, new.snapshot_id)
    )


def _diff_in_batches(
    table: Table, old: Release, new: Release, batches: Sequence[Sequence[int] | None]
) -> tuple[pa.Table, int, int]:
    """The changed cells, and the old and new row counts, one year batch in memory at a time."""
    parts, old_rows, new_rows = [], 0, 0
    for years in batches:
        old_side, new_side = _read_side(table, old, years), _read_side(table, new, years)
        old_rows, new_rows = old_rows + old_side.num_rows, new_rows + new_side.num_rows
        parts.append(diff_releases(old_side, new_side))
        del old_side, new_side
    return pa.concat_tables(parts), old_rows, new_rows


def compare_releases(
    catalog: Catalog,
    identifier: tuple[str, str],
    dataset_id: str,
    old_date: str,
    new_date: str,
) -> ReleaseDiff:
    """What changed between two kept releases of a dataset (any two, in either order of
    publication; ``LookupError`` naming the kept releases if one is not kept)."""
    table = catalog.load_table(identifier)
    new = release_of(table, dataset_id, new_date)
    old = release_of(table, dataset_id, old_date)
    return diff_release(table, dataset_id, new, old)


def latest_release(table: Table, dataset_id: str) -> Release | None:
    found = releases(table, dataset_id)
    return found[-1] if found else None


# ---------------------------------------------------------------------- writing


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def revision_rows(
    diff: ReleaseDiff, revisions_run_id: str | None = None, at: datetime | None = None
) -> pa.Table:
    """The diff as rows of ``estat.<domain>_revisions``."""
    cells = diff.cells
    n = cells.num_rows
    at = at or datetime.now(UTC)

    def const(value: Any, kind: pa.DataType) -> pa.Array:
        return pa.repeat(pa.scalar(value, kind), n) if n else pa.array([], kind)

    columns = {
        "dataset_id": const(diff.dataset_id, pa.string()),
        "new_updated_date": const(_date(diff.new.updated_date), pa.date32()),
        "old_updated_date": const(_date(diff.old.updated_date) if diff.old else None, pa.date32()),
        **{name: cells.column(name) for name in cells.column_names},
        "old_snapshot_id": const(diff.old.snapshot_id if diff.old else None, pa.int64()),
        "new_snapshot_id": const(diff.new.snapshot_id, pa.int64()),
        "run_id": const(diff.run_id, pa.string()),
        "revisions_run_id": const(revisions_run_id, pa.string()),
        "detected_at": const(at, pa.timestamp("us", tz="UTC")),
    }
    return pa.table({name: columns[name] for name, _, _ in REVISION_FIELDS})


def _release_filter(dataset_id: str, column: str, updated_date: str):
    return And(EqualTo("dataset_id", dataset_id), EqualTo(column, updated_date))


def replace_release_rows(
    catalog: Catalog,
    identifier: tuple[str, str],
    dataset_id: str,
    rows: pa.Table,
    row_filter: BooleanExpression,
    snapshot_properties: Mapping[str, str],
) -> Table:
    """Replace the rows matching ``row_filter`` (one dataset's, one release's) with ``rows`` in
    ONE commit: delete + add the file written beforehand; a lost race is retried on a fresh
    table with the same file, so a rerun or a concurrent writer never duplicates."""
    table = catalog.load_table(identifier)
    files = [write_parquet_file(table, [rows], f"dataset_id={dataset_id}")] if rows.num_rows else []
    return commit_files(
        catalog, identifier, row_filter, files, snapshot_properties, what=f"rows of {dataset_id}"
    )


def write_revisions(
    catalog: Catalog,
    namespace: str,
    domain: str,
    diff: ReleaseDiff,
    revisions_run_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Replace the revisions of (dataset, new release) in one commit, then its releases row.

    Returns the releases row. A rerun writes the same rows again in place of the old ones.
    """
    at = at or datetime.now(UTC)
    rows = revision_rows(diff, revisions_run_id, at)
    identifier = (namespace, revisions_name(domain))
    ensure_revisions_table(catalog, identifier)
    props = {
        PROP_DATASET: diff.dataset_id,
        PROP_UPDATED: diff.new.updated_date,
        PROP_RUN: revisions_run_id or "",
    }
    replace_release_rows(
        catalog,
        identifier,
        diff.dataset_id,
        rows,
        _release_filter(diff.dataset_id, "new_updated_date", diff.new.updated_date),
        props,
    )
    counts = diff.counts()
    row = {
        "dataset_id": diff.dataset_id,
        "updated_date": _date(diff.new.updated_date),
        "tag": diff.new.tag,
        "snapshot_id": diff.new.snapshot_id,
        "previous_updated_date": _date(diff.old.updated_date) if diff.old else None,
        "previous_snapshot_id": diff.old.snapshot_id if diff.old else None,
        "rows": diff.new_rows,
        "previous_rows": diff.old_rows if diff.old else None,
        **counts,
        "revised_share": diff.revised_share,
        "run_id": diff.run_id,
        "revisions_run_id": revisions_run_id,
        "detected_at": at,
    }
    rel_id = (namespace, releases_name(domain))
    ensure_plain_table(catalog, rel_id, fields_schema(RELEASE_FIELDS))
    replace_rows(
        catalog,
        rel_id,
        [row],
        _release_filter(diff.dataset_id, "updated_date", diff.new.updated_date),
        props,
    )
    return row


# ---------------------------------------------------------------------- summaries


def pct(share: float | None) -> str:
    """A relative change as a signed percentage with four significant digits (+0.0009%)."""
    return "n/a" if share is None else f"{share * 100:+.4g}%"


def _fmt(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def largest_revisions(cells: pa.Table, top: int = TOP_REVISIONS) -> list[dict[str, Any]]:
    """The ``top`` revised cells with the largest relative change (by magnitude; cells whose
    number did not move, e.g. only their annotation changed, are not listed)."""
    if not cells.num_rows:
        return []
    numeric = pc.fill_null(pc.not_equal(cells.column("relative_change"), 0.0), False)
    revised = cells.filter(pc.and_(pc.equal(cells.column("kind"), REVISED), numeric))
    if not revised.num_rows:
        return []
    revised = revised.append_column("magnitude", pc.abs(revised.column("relative_change")))
    best = pc.select_k_unstable(
        revised, k=min(top, revised.num_rows), sort_keys=[("magnitude", "descending")]
    )
    picked = revised.take(best).sort_by([("magnitude", "descending")])
    out = []
    for row in picked.to_pylist():
        keys = {c.removesuffix("_code"): row[c] for c in CODE_COLUMNS if row.get(c) is not None}
        out.append(
            {
                "year": row["year"],
                "keys": keys,
                "time_name": row["time_name"],
                "old_value_raw": row["old_value_raw"],
                "new_value_raw": row["new_value_raw"],
                "relative_change": _fmt(row["relative_change"]),
            }
        )
    return out


def per_year(cells: pa.Table) -> dict[str, dict[str, int]]:
    """year → cells revised/added/removed in that year (years with a change only)."""
    if not cells.num_rows:
        return {}
    grouped = cells.group_by(["year", "kind"]).aggregate([([], "count_all")]).to_pylist()
    out: dict[str, dict[str, int]] = {}
    for g in sorted(grouped, key=lambda g: (g["year"] is None, g["year"] or 0)):
        year = "unknown" if g["year"] is None else f"{int(g['year']):04d}"
        out.setdefault(year, dict.fromkeys(KINDS, 0))[g["kind"]] = int(g["count_all"])
    return out


def summarise(diff: ReleaseDiff, top: int = TOP_REVISIONS) -> dict[str, Any]:
    """What a release changed, for metadata, notifications and the CLI."""
    counts = diff.counts()
    return {
        "dataset_id": diff.dataset_id,
        "updated_date": diff.new.updated_date,
        "previous_updated_date": diff.old.updated_date if diff.old else None,
        "snapshot_id": diff.new.snapshot_id,
        "previous_snapshot_id": diff.old.snapshot_id if diff.old else None,
        "rows": diff.new_rows,
        "previous_rows": diff.old_rows if diff.old else None,
        **counts,
        "revised_share": _fmt(diff.revised_share),
        "largest_relative_revisions": largest_revisions(diff.cells, top),
        "per_year": per_year(diff.cells),
        "run_id": diff.run_id,
    }


def domain_of(catalog: Catalog, namespace: str, dataset_id: str) -> str | None:
    """The domain whose table holds ``dataset_id`` (from ``estat.dataset_inventory``)."""
    from estat_assets.lake.inventory import read_inventory

    for row in read_inventory(catalog, namespace):
        if row["dataset_id"] == dataset_id:
            return row["domain"]
    return None


def read_revisions(
    catalog: Catalog,
    namespace: str,
    domain: str,
    dataset_id: str,
    since: str | date | None = None,
) -> pa.Table:
    """The revisions rows of a dataset (of releases on or after ``since``)."""
    try:
        table = catalog.load_table((namespace, revisions_name(domain)))
    except NoSuchTableError:
        return pa.schema([pa.field(n, _arrow_of(t)) for n, t, _ in REVISION_FIELDS]).empty_table()
    expr = EqualTo("dataset_id", dataset_id)
    if since is not None:
        from pyiceberg.expressions import GreaterThanOrEqual

        expr = And(expr, GreaterThanOrEqual("new_updated_date", str(since)))
    return table.scan(row_filter=expr).to_arrow()


def _arrow_of(kind: Any) -> pa.DataType:
    return {
        StringType(): pa.string(),
        DoubleType(): pa.float64(),
        LongType(): pa.int64(),
        IntegerType(): pa.int32(),
        DateType(): pa.date32(),
        TimestamptzType(): pa.timestamp("us", tz="UTC"),
    }[kind]


def revisions_summary(
    catalog: Catalog,
    namespace: str,
    dataset_id: str,
    since: str | date | None = None,
    domain: str | None = None,
    top: int = TOP_REVISIONS,
) -> list[dict[str, Any]]:
    """Every kept release of a dataset (on or after ``since``), oldest first, and what it changed.

    One dict per release: ``updated_date``, ``previous_updated_date``, ``tag``, ``snapshot_id``,
    ``run_id``, ``rows``, ``revised``/``added``/``removed``, ``revised_share``,
    ``largest_relative_revisions``, ``per_year`` and ``diffed`` (False: the revisions asset has
    not compared this release yet; its counts are then unknown, ``None``). ``domain`` defaults to
    the dataset's domain in the inventory. ``LookupError`` for a dataset the lake does not hold.
    """
    domain = domain or domain_of(catalog, namespace, dataset_id)
    if domain is None:
        raise LookupError(f"{dataset_id} is not in {namespace}.dataset_inventory")
    table = catalog.load_table((namespace, domain))
    since_text = None if since is None else date.fromisoformat(str(since)).isoformat()
    tagged = releases(table, dataset_id)
    rows = release_rows(catalog, namespace, domain, dataset_id)
    cells = read_revisions(catalog, namespace, domain, dataset_id, since_text)
    out = []
    previous: Release | None = None
    for release in tagged:
        if since_text is None or release.updated_date >= since_text:
            out.append(_summary_entry(table, release, previous, rows, cells, top))
        previous = release
    # releases diffed whose tag has since been removed by the retention policy
    listed = {e["updated_date"] for e in out}
    for day, row in sorted(rows.items()):
        if day not in listed and (since_text is None or day >= since_text):
            out.append(_summary_entry(table, None, None, {day: row}, cells, top, day=day))
    return sorted(out, key=lambda e: e["updated_date"])


def release_rows(
    catalog: Catalog, namespace: str, domain: str, dataset_id: str
) -> dict[str, dict[str, Any]]:
    """UPDATED_DATE → the dataset's row of ``estat.<domain>_releases`` (releases diffed)."""
    try:
        table = catalog.load_table((namespace, releases_name(domain)))
    except NoSuchTableError:
        return {}
    rows = table.scan(row_filter=EqualTo("dataset_id", dataset_id)).to_arrow().to_pylist()
    return {r["updated_date"].isoformat(): r for r in rows}


def _summary_entry(
    table: Table,
    release: Release | None,
    previous: Release | None,
    rows: Mapping[str, dict[str, Any]],
    cells: pa.Table,
    top: int,
    day: str | None = None,
) -> dict[str, Any]:
    day = release.updated_date if release else day
    assert day is not None
    row = rows.get(day)
    mine = (
        cells.filter(pc.equal(cells.column("new_updated_date"), date.fromisoformat(day)))
        if cells.num_rows
        else cells
    )
    diff_cells = mine.select([c for c in diff_schema().names]) if mine.num_rows else None
    entry: dict[str, Any] = {
        "updated_date": day,
        "tag": release.tag if release else None,
        "kept": release is not None,
        "snapshot_id": release.snapshot_id if release else (row or {}).get("snapshot_id"),
        "run_id": run_of(table, release.snapshot_id) if release else (row or {}).get("run_id"),
        "diffed": row is not None,
    }
    if row is not None:
        prev = row.get("previous_updated_date")
        entry.update(
            previous_updated_date=prev.isoformat() if prev else None,
            rows=row["rows"],
            previous_rows=row["previous_rows"],
            revised=row["revised"],
            added=row["added"],
            removed=row["removed"],
            revised_share=_fmt(row["revised_share"]),
        )
    else:
        entry.update(
            previous_updated_date=previous.updated_date if previous else None,
            rows=None,
            previous_rows=None,
            revised=None,
            added=None,
            removed=None,
            revised_share=None,
        )
    entry["largest_relative_revisions"] = (
        largest_revisions(diff_cells, top) if diff_cells is not None else []
    )
    entry["per_year"] = per_year(diff_cells) if diff_cells is not None else {}
    return entry
