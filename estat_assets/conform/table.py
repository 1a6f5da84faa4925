"""The conformed long table: one row per e-Stat VALUE, typed, with names, periods and legends.

Everything here is columnar: codes become names through ``index_in`` + ``take`` against the CLASS
lists, time codes are parsed once per distinct code and broadcast through a dictionary, numbers are
recognised by one regex over the whole column. Nothing loops over records in Python.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from estat_assets.conform.pages import read_pages_notes
from estat_assets.conform.rules import LABEL_SUFFIX, SEMANTIC_COLUMNS, SemanticRule, match_axes
from estat_assets.conform.timecodes import parse_time_code
from estat_assets.estat.models import TableInfo, TableMetadata, parse_classes, parse_notes
from estat_assets.estat.shape import AXES, as_dict

# A plain decimal number as e-Stat writes it ("111801", "19.0", "-0.5"). Anything else (symbols,
# clock times like "0:00", "1,234") is not a number: value stays null, value_raw keeps it.
NUMBER_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"

KEY_SUFFIX = "_code"
# The annotation of a value_raw that reads as a number beyond the DOUBLE range (value stays null).
OUT_OF_RANGE = "倍精度の範囲外のため数値化せず (out of DOUBLE range: not stored as a number)"


def axis_fields(axis: str) -> list[pa.Field]:
    return [pa.field(f"{axis}_code", pa.string()), pa.field(f"{axis}_name", pa.string())]


TAIL_FIELDS: list[pa.Field] = [
    pa.field("year", pa.int32()),  # a key: the checks require it non-null
    pa.field("period_kind", pa.string()),
    pa.field("month", pa.int8()),
    pa.field("quarter", pa.int8()),
    pa.field("unit", pa.string()),
    pa.field("value_raw", pa.string()),
    pa.field("value", pa.float64()),
    pa.field("annotation", pa.string()),
    pa.field("source_updated_date", pa.date32()),
    pa.field("run_id", pa.string()),
]


def semantic_fields(column: str) -> list[pa.Field]:
    return [pa.field(column, pa.string()), pa.field(f"{column}{LABEL_SUFFIX}", pa.string())]


def conformed_schema(
    axes: Sequence[str] = AXES, semantic: Sequence[str] = SEMANTIC_COLUMNS
) -> pa.Schema:
    """The conformed schema for a table with these axes and semantic columns.

    The defaults (every axis, every semantic column) are the Iceberg table's schema. Semantic
    columns come last, so a lake created before they existed gains them by appending
    (``union_by_name``) with the same order and field ids as a fresh one.
    """
    fields = [pa.field("dataset_id", pa.string(), nullable=False)]
    for axis in (a for a in AXES if a in set(axes)):
        fields += axis_fields(axis)
    fields += TAIL_FIELDS
    for column in (c for c in SEMANTIC_COLUMNS if c in set(semantic)):
        fields += semantic_fields(column)
    return pa.schema(fields)


def key_columns(axes: Sequence[str]) -> list[str]:
    """The columns that identify one observation: the dataset and every axis code."""
    return ["dataset_id", *(f"{a}{KEY_SUFFIX}" for a in AXES if a in set(axes))]


@dataclass(frozen=True)
class ConformInput:
    """What conforming needs besides the pages: whose table this is and who is writing it."""

    dataset_id: str
    metadata: TableMetadata | None = None
    notes: dict[str, str] | None = None
    run_id: str = ""
    source_updated_date: str | None = None
    default_year: int | None = None
    rules: tuple[SemanticRule, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


def _const(value: object, n: int, type_: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), n) if n else pa.array([], type_)


def _lookup(codes: pa.Array, keys: list[str], values: list[str | None]) -> pa.Array:
    """codes → values through a small key list, vectorized; unknown codes → null."""
    if not keys:
        return pa.nulls(len(codes), pa.string())
    idx = pc.index_in(codes, value_set=pa.array(keys, pa.string()))
    return pc.take(pa.array(values, pa.string()), idx)


def join_skip_nulls(parts: Sequence[pa.Array], sep: str) -> pa.Array:
    """Element-wise join of string arrays, skipping nulls; null where every part is null.

    Not ``binary_join_element_wise(null_handling="skip")``: pyarrow 26 drops the rows where every
    part is null, so the result is shorter than its inputs.
    """
    out = parts[0]
    for part in parts[1:]:
        both = pc.binary_join_element_wise(out, part, sep)  # null when either is null
        out = pc.if_else(pc.is_null(out), part, pc.if_else(pc.is_null(part), out, both))
    return out


def _periods(time_codes: pa.Array, default_year: int | None) -> dict[str, pa.Array]:
    """Parse each distinct time code once, broadcast to rows through the dictionary indices."""
    n = len(time_codes)
    distinct = pc.unique(time_codes)
    parsed = [parse_time_code(code) for code in distinct.to_pylist()]
    idx = pc.index_in(time_codes, value_set=distinct)
    years = pc.take(pa.array([p.year for p in parsed], pa.int32()), idx)
    if default_year is not None:
        years = pc.fill_null(years, pa.scalar(default_year, pa.int32()))
    return {
        "year": years if n else pa.array([], pa.int32()),
        "period_kind": pc.take(pa.array([p.kind for p in parsed], pa.string()), idx),
        "month": pc.take(pa.array([p.month for p in parsed], pa.int8()), idx),
        "quarter": pc.take(pa.array([p.quarter for p in parsed], pa.int8()), idx),
    }


def _first_page_meta(page: bytes) -> tuple[TableMetadata | None, dict[str, str]]:
    """CLASS_INF (when the page was fetched with metaGetFlg=Y) and the NOTE legend of a page."""
    body = as_dict(orjson.loads(page).get("GET_STATS_DATA"))
    data = as_dict(body.get("STATISTICAL_DATA"))
    notes = parse_notes(data.get("DATA_INF"))
    classes = parse_classes(data.get("CLASS_INF"))
    meta = TableMetadata(TableInfo.parse(data.get("TABLE_INF")), classes) if classes else None
    return meta, notes


PAGES_PER_BATCH = 2  # pages conformed together: bounded working set, same result


def conform_pages(pages: Sequence[bytes], inp: ConformInput) -> pa.Table:
    """Raw getStatsData pages (bytes as e-Stat sent them) → the conformed Arrow table.

    Pages are conformed a batch at a time (the working set of a batch stays in cache and is
    freed before the next) and the batches concatenated without copying.
    """
    first, inp = conform_batch(pages[:PAGES_PER_BATCH], inp)
    if len(pages) <= PAGES_PER_BATCH:
        return first
    # Later batches reuse the first batch's metadata and legend.
    tables = [first] + [
        conform_batch(pages[i : i + PAGES_PER_BATCH], inp)[0]
        for i in range(PAGES_PER_BATCH, len(pages), PAGES_PER_BATCH)
    ]
    names = {n for t in tables for n in t.column_names}
    axes = [a for a in AXES if f"{a}_code" in names]
    schema = conformed_schema(axes, [c for c in SEMANTIC_COLUMNS if c in names])
    return pa.concat_tables([align_to(t, schema) for t in tables])


def align_to(table: pa.Table, schema: pa.Schema, *, strict: bool = False) -> pa.Table:
    """``table`` with exactly ``schema``'s columns, in its order and types: absent columns become
    nulls, present ones are cast (exactly: a lossy cast raises). With ``strict``, a column the
    schema does not have is an error instead of being dropped. The one align of the lake."""
    if table.schema.equals(schema):
        return table
    if strict:
        extra = set(table.column_names) - set(schema.names)
        if extra:
            raise ValueError(
                f"columns {sorted(extra)} are not in the schema: pass the table's metadata "
                "(getMetaInfo) so every batch has the same axes"
            )
    n = table.num_rows
    arrays = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(n, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def conform_batch(pages: Sequence[bytes], inp: ConformInput) -> tuple[pa.Table, ConformInput]:
    """One batch of pages → (conformed table, ``inp`` with the metadata and legend it used)."""
    metadata, notes = inp.metadata, inp.notes
    # Parse only the attributes the table's axes imply (anything else is still inferred).
    fields = [f"@{a}" for a in metadata.axes] + ["@unit", "@annotation"] if metadata else None
    values, page_notes = read_pages_notes(pages, fields=fields)
    if notes is None and page_notes is not None:
        notes = page_notes
    if pages and (notes is None or metadata is None):
        first_meta, first_notes = _first_page_meta(pages[0])
        notes = first_notes if notes is None else notes
        metadata = metadata or first_meta
    notes = notes or {}
    n = values.num_rows
    # Chunked columns as they are (one chunk per page): no concatenation of 1M strings.
    col = {name: values.column(name) for name in values.column_names}

    classes = {c.id: c for c in metadata.classes} if metadata else {}
    present = [a for a in AXES if a in classes or col[f"@{a}"].null_count < n]
    out: dict[str, pa.Array] = {"dataset_id": _const(inp.dataset_id, n, pa.string())}
    unit_sources: list[pa.Array] = [col["@unit"]]
    for axis in present:
        codes = col[f"@{axis}"]
        cls = classes.get(axis)
        items = cls.items if cls else ()
        out[f"{axis}_code"] = codes
        out[f"{axis}_name"] = (
            _lookup(codes, [i.code for i in items], [i.name for i in items])
            if n
            else pa.array([], pa.string())
        )
        if any(i.unit for i in items):
            unit_sources.append(_lookup(codes, [i.code for i in items], [i.unit for i in items]))

    semantic = match_axes(inp.rules, metadata.classes) if metadata else {}
    semantic = {c: a for c, a in semantic.items() if a in present}
    for column, axis in semantic.items():
        out[column] = out[f"{axis}_code"]
        out[f"{column}{LABEL_SUFFIX}"] = out[f"{axis}_name"]

    time_codes = col["@time"]
    out.update(_periods(time_codes, inp.default_year))
    out["unit"] = pc.coalesce(*unit_sources) if len(unit_sources) > 1 else unit_sources[0]

    raw = col["$"]
    is_number = pc.fill_null(pc.match_substring_regex(raw, NUMBER_PATTERN), False)
    out["value_raw"] = raw
    value = pc.cast(pc.if_else(is_number, raw, pa.scalar(None, pa.string())), pa.float64())
    # "1e400" matches the number pattern but is no DOUBLE: never store ±inf as a value.
    too_big = pc.fill_null(pc.invert(pc.is_finite(value)), False)
    has_too_big = n and pc.any(too_big).as_py()
    if has_too_big:
        value = pc.if_else(too_big, pa.scalar(None, pa.float64()), value)
    out["value"] = value
    legend = _lookup(raw, list(notes), list(notes.values()))
    if has_too_big:
        legend = join_skip_nulls(
            [legend, pc.if_else(too_big, pa.scalar(OUT_OF_RANGE), pa.scalar(None, pa.string()))],
            " | ",
        )
    cell_note = col["@annotation"]
    if cell_note.null_count < n:
        joined = join_skip_nulls([legend, cell_note], " | ")
        legend = pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)
    out["annotation"] = legend
    updated = dt.date.fromisoformat(inp.source_updated_date) if inp.source_updated_date else None
    out["source_updated_date"] = _const(updated, n, pa.date32())
    out["run_id"] = _const(inp.run_id, n, pa.string())

    schema = conformed_schema(present, list(semantic))
    table = pa.Table.from_arrays([out[f.name].cast(f.type) for f in schema], schema=schema)
    return table, dataclasses.replace(inp, metadata=metadata, notes=notes)


def empty_conformed(metadata: TableMetadata | None, rules: Sequence[SemanticRule] = ()) -> pa.Table:
    """The conformed table of no rows, with the columns this table would have."""
    axes = metadata.axes if metadata else []
    semantic = list(match_axes(rules, metadata.classes)) if metadata else []
    return conformed_schema(axes, semantic).empty_table()
