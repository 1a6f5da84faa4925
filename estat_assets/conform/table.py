"""The conformed long table: one row per e-Stat VALUE, typed, with names, periods and legends.

Everything here is columnar: codes become names through ``index_in`` + ``take`` against the CLASS
lists, time codes are parsed once per distinct code and broadcast through a dictionary, numbers are
recognised by one regex over the whole column. Nothing loops over records in Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from estat_assets.conform.pages import read_pages
from estat_assets.conform.timecodes import parse_time_code
from estat_assets.estat.models import TableInfo, TableMetadata, parse_classes, parse_notes
from estat_assets.estat.shape import AXES, as_dict

# A plain decimal number as e-Stat writes it ("111801", "19.0", "-0.5"). Anything else (symbols,
# clock times like "0:00", "1,234") is not a number: value stays null, value_raw keeps it.
NUMBER_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"

KEY_SUFFIX = "_code"


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


def conformed_schema(axes: Sequence[str] = AXES) -> pa.Schema:
    """The conformed schema for a table with these axes (the Iceberg table uses all of them)."""
    fields = [pa.field("dataset_id", pa.string(), nullable=False)]
    for axis in (a for a in AXES if a in set(axes)):
        fields += axis_fields(axis)
    return pa.schema(fields + TAIL_FIELDS)


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
    extra: dict[str, str] = field(default_factory=dict)


def _const(value: object, n: int, type_: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), n) if n else pa.array([], type_)


def _lookup(codes: pa.Array, keys: list[str], values: list[str | None]) -> pa.Array:
    """codes → values through a small key list, vectorized; unknown codes → null."""
    if not keys:
        return pa.nulls(len(codes), pa.string())
    idx = pc.index_in(codes, value_set=pa.array(keys, pa.string()))
    return pc.take(pa.array(values, pa.string()), idx)


def _periods(time_codes: pa.Array, default_year: int | None) -> dict[str, pa.Array]:
    """Parse each distinct time code once, broadcast to rows through the dictionary indices."""
    n = len(time_codes)
    encoded = pc.dictionary_encode(time_codes)
    parsed = [parse_time_code(code) for code in encoded.dictionary.to_pylist()]
    idx = encoded.indices
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


def conform_pages(pages: Sequence[bytes], inp: ConformInput) -> pa.Table:
    """Raw getStatsData pages (bytes as e-Stat sent them) → the conformed Arrow table."""
    metadata, notes = inp.metadata, inp.notes
    if pages and (notes is None or metadata is None):
        page_meta, page_notes = _first_page_meta(pages[0])
        notes = page_notes if notes is None else notes
        metadata = metadata or page_meta
    notes = notes or {}
    values = read_pages(pages)
    n = values.num_rows
    col = {name: values.column(name).combine_chunks() for name in values.column_names}

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

    time_codes = col["@time"]
    out.update(_periods(time_codes, inp.default_year))
    out["unit"] = pc.coalesce(*unit_sources) if len(unit_sources) > 1 else unit_sources[0]

    raw = col["$"]
    is_number = pc.fill_null(pc.match_substring_regex(raw, NUMBER_PATTERN), False)
    out["value_raw"] = raw
    out["value"] = pc.cast(pc.if_else(is_number, raw, pa.scalar(None, pa.string())), pa.float64())
    legend = _lookup(raw, list(notes), list(notes.values()))
    cell_note = col["@annotation"]
    if cell_note.null_count < n:
        joined = pc.binary_join_element_wise(legend, cell_note, " | ", null_handling="skip")
        legend = pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)
    out["annotation"] = legend
    updated = dt.date.fromisoformat(inp.source_updated_date) if inp.source_updated_date else None
    out["source_updated_date"] = _const(updated, n, pa.date32())
    out["run_id"] = _const(inp.run_id, n, pa.string())

    schema = conformed_schema(present)
    return pa.Table.from_arrays([out[f.name].cast(f.type) for f in schema], schema=schema)
