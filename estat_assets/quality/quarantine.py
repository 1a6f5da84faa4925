"""Row-level failures leave the conformed table for the quarantine table, with their reason.

A row is quarantined when a key is null (dataset, an axis code or the year), when an axis code is
not in the table's own ``CLASS_INF``, or when its key repeats one already seen (the first
occurrence stays). Everything is an Arrow mask: no per-row Python. The split is exact: every input
row is in exactly one of ``clean`` and ``quarantined`` (a check asserts it), and ``source_row``
(the row's 1-based position among the partition's VALUEs) traces a quarantined row to its page.
Table-level failures (row count ≠ TOTAL_NUMBER, a missing column) are not row problems: they stay
blocking checks and stop the Iceberg write instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from estat_assets.conform.table import conformed_schema, join_skip_nulls, key_columns
from estat_assets.conform.years import ROW
from estat_assets.estat.models import TableMetadata

NULL_KEY = "null_key"
CODE_NOT_IN_CLASS_INF = "code_not_in_class_inf"
DUPLICATE_KEY = "duplicate_key"

QUARANTINE_FIELDS = [pa.field("quarantine_reason", pa.string()), pa.field("source_row", pa.int64())]


def quarantine_schema() -> pa.Schema:
    """The quarantine table: every conformed column (all axes), the reason and the source row."""
    base = conformed_schema()
    return pa.schema([*base, *QUARANTINE_FIELDS])


@dataclass(frozen=True)
class Split:
    clean: pa.Table
    quarantined: pa.Table  # the conformed columns + quarantine_reason + source_row
    counts: dict[str, int] = field(default_factory=dict)  # rows per reason (a row may have 2)

    @property
    def raw_rows(self) -> int:
        return self.clean.num_rows + self.quarantined.num_rows


def _false(n: int) -> pa.Array:
    return pa.repeat(pa.scalar(False), n) if n else pa.array([], pa.bool_())


def _reason(mask: pa.Array, label: str) -> pa.Array:
    return pc.if_else(mask, pa.scalar(label), pa.scalar(None, pa.string()))


def _repeats(keys: list[pa.Array], candidates: pa.Array, codes: dict[int, pa.Array]) -> np.ndarray:
    """True where a candidate row's key equals an earlier candidate row's key.

    Each key column becomes small integer codes (``index_in`` against its CLASS list when known,
    else against its own distinct values), the codes one int64 per row (mixed radix), and
    ``np.unique(return_index=True)`` gives each key's first row.
    """
    n = len(candidates)
    combined = np.zeros(n, dtype=np.int64)
    radix = 1
    for i, key in enumerate(keys):
        index = codes.get(i)
        if index is None:
            distinct = pc.unique(key)
            index = pc.index_in(key, value_set=distinct)
            size = len(distinct)
        else:
            size = int(pc.max(index).as_py() or 0) + 1
        if radix * (size + 1) >= 2**62:
            return _repeats_group_by(keys, candidates)
        packed = pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        combined += packed * radix
        radix *= size + 1
    rows = np.flatnonzero(candidates.to_numpy(zero_copy_only=False))
    _, first = np.unique(combined[rows], return_index=True)
    repeat = np.zeros(n, dtype=bool)
    repeat[rows] = True
    repeat[rows[first]] = False
    return repeat


def _repeats_group_by(keys: list[pa.Array], candidates: pa.Array) -> np.ndarray:
    """The same with an Arrow group-by, for keys too many to pack into one integer."""
    n = len(candidates)
    names = [f"k{i}" for i in range(len(keys))]
    index = pa.array(np.arange(n, dtype=np.int64))
    table = pa.Table.from_arrays([*keys, index], names=[*names, "__row"]).filter(candidates)
    firsts = table.group_by(names, use_threads=False).aggregate([("__row", "min")])
    repeat = candidates.to_numpy(zero_copy_only=False).copy()
    repeat[firsts.column("__row_min").to_numpy()] = False
    return repeat


def split_rows(
    table: pa.Table, axes: Sequence[str], metadata: TableMetadata | None = None
) -> Split:
    """Split a conformed table into rows fit for the lake and rows for quarantine.

    ``source_row`` is the table's ``__row`` column when it has one (the row's position in the
    download, see ``conform.years``), else the row's position in ``table``.
    """
    n = table.num_rows
    if ROW in table.column_names:
        source = table.column(ROW).combine_chunks()
        table = table.drop_columns([ROW])
    else:
        source = pa.array(np.arange(1, n + 1, dtype=np.int64))

    def col(name: str) -> pa.Array:
        chunked = table.column(name)
        return chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()

    keys = [c for c in [*key_columns(axes), "year"] if c in table.column_names]
    null_key = _false(n)
    for key in keys:
        null_key = pc.or_(null_key, pc.is_null(col(key)))

    row_keys = [k for k in key_columns(axes) if k in table.column_names]
    key_arrays = [col(k) for k in row_keys]
    class_codes: dict[int, pa.Array] = {}  # key position → index into its CLASS list
    unknown = _false(n)
    unknown_axes: list[tuple[str, pa.Array]] = []  # (column, its rows with a code not in CLASS_INF)
    for cls in metadata.classes if metadata else ():
        column = f"{cls.id}_code"
        if column not in row_keys or not cls.items:
            continue
        codes = key_arrays[row_keys.index(column)]
        index = pc.index_in(codes, value_set=pa.array(cls.codes(), pa.string()))
        class_codes[row_keys.index(column)] = index
        bad = pc.and_(pc.is_valid(codes), pc.is_null(index))
        unknown = pc.or_(unknown, bad)
        unknown_axes.append((column, bad))

    # Duplicates among the rows that are otherwise fine: the first occurrence stays.
    ok = pc.invert(pc.or_(null_key, unknown))
    duplicate = _false(n)
    if n and row_keys:
        duplicate = pc.and_(ok, pa.array(_repeats(key_arrays, ok, class_codes)))

    bad_row = pc.or_(pc.or_(null_key, unknown), duplicate)
    bad_count = pc.sum(bad_row.cast(pa.int64())).as_py() or 0
    clean = table.filter(pc.invert(bad_row)) if bad_count else table
    if bad_count:
        # reasons are strings: built for the quarantined rows only (most tables have none)
        def of_bad(mask: pa.Array) -> pa.Array:
            return mask.filter(bad_row)

        parts = [_reason(of_bad(null_key), NULL_KEY)]
        if unknown_axes:
            which = join_skip_nulls([_reason(of_bad(m), c) for c, m in unknown_axes], ",")
            parts.append(pc.binary_join_element_wise(f"{CODE_NOT_IN_CLASS_INF}:", which, ""))
        parts.append(_reason(of_bad(duplicate), DUPLICATE_KEY))
        quarantined = (
            table.filter(bad_row)
            .append_column("quarantine_reason", join_skip_nulls(parts, "; "))
            .append_column("source_row", source.filter(bad_row))
        )
    else:
        empty = table.slice(0, 0)
        quarantined = empty.append_column(
            "quarantine_reason", pa.array([], pa.string())
        ).append_column("source_row", pa.array([], pa.int64()))
    counts = {
        NULL_KEY: pc.sum(null_key.cast(pa.int64())).as_py() or 0,
        CODE_NOT_IN_CLASS_INF: pc.sum(unknown.cast(pa.int64())).as_py() or 0,
        DUPLICATE_KEY: pc.sum(duplicate.cast(pa.int64())).as_py() or 0,
    }
    return Split(clean=clean, quarantined=quarantined, counts=counts)
