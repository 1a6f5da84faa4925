"""Raw getStatsData pages → one Arrow table of VALUE attributes (strings, as sent).

The fast path hands each compact page to ``pyarrow.json`` with an explicit schema of just
``DATA_INF.VALUE``, so no Python object is built per record. A page that does not fit that schema
(pretty-printed, a single VALUE object, an unknown attribute type) takes the exact but slower
orjson path. Both give the same columns.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pajson

from estat_assets.estat.shape import AXES, as_dict, as_list

VALUE_FIELDS: tuple[str, ...] = (*(f"@{a}" for a in AXES), "@unit", "@annotation", "$")
VALUE_STRUCT = pa.struct([pa.field(name, pa.string()) for name in VALUE_FIELDS])
_PAGE_SCHEMA = pa.schema(
    [
        pa.field(
            "GET_STATS_DATA",
            pa.struct(
                [
                    pa.field(
                        "STATISTICAL_DATA",
                        pa.struct(
                            [
                                pa.field(
                                    "DATA_INF",
                                    pa.struct([pa.field("VALUE", pa.list_(VALUE_STRUCT))]),
                                )
                            ]
                        ),
                    )
                ]
            ),
        )
    ]
)
EMPTY_VALUES = pa.table({name: pa.array([], pa.string()) for name in VALUE_FIELDS})


def _page_schema(fields: Sequence[str]) -> pa.Schema:
    value = pa.struct([pa.field(name, pa.string()) for name in fields])
    data_inf = pa.struct([pa.field("VALUE", pa.list_(value))])
    statistical = pa.struct([pa.field("DATA_INF", data_inf)])
    return pa.schema(
        [pa.field("GET_STATS_DATA", pa.struct([pa.field("STATISTICAL_DATA", statistical)]))]
    )


def _parse(body: bytes, schema: pa.Schema, behavior: str) -> pa.StructArray | None:
    try:
        table = pajson.read_json(
            io.BytesIO(body),
            read_options=pajson.ReadOptions(block_size=len(body) + 1, use_threads=False),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior=behavior
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != 1:
        return None
    return table.column(0).combine_chunks().field("STATISTICAL_DATA").field("DATA_INF")


def _notes_of(data_inf: pa.StructArray) -> dict[str, str] | None:
    """The NOTE legend when pyarrow inferred it as {@char, $} strings (object or list)."""
    if data_inf.type.get_field_index("NOTE") < 0:
        return {}
    note = data_inf.field("NOTE")
    if pa.types.is_list(note.type):
        note = note.flatten()
    if not pa.types.is_struct(note.type):
        return None
    names = {f.name: f.type for f in note.type}
    if names.get("@char") != pa.string() or names.get("$", pa.string()) != pa.string():
        return None
    chars = note.field("@char").to_pylist()
    texts = note.field("$").to_pylist() if "$" in names else [None] * len(chars)
    return {c: ("" if t is None else t) for c, t in zip(chars, texts, strict=True) if c is not None}


def _values_of(data_inf: pa.StructArray) -> pa.Table | None:
    if data_inf.type.get_field_index("VALUE") < 0:
        return None
    values = data_inf.field("VALUE")
    if values.null_count or not pa.types.is_list(values.type):
        return None  # VALUE absent (empty page) or a single object: let the exact path decide
    flat = values.flatten()
    types = {f.name: f.type for f in flat.type}
    if any(types.get(n, pa.string()) != pa.string() for n in VALUE_FIELDS):
        return None  # an attribute pyarrow did not read as a string: exact path
    n = len(flat)
    return pa.Table.from_arrays(
        [flat.field(f) if f in types else pa.nulls(n, pa.string()) for f in VALUE_FIELDS],
        names=list(VALUE_FIELDS),
    )


def fast_page(
    raw: bytes, fields: Sequence[str] | None = None
) -> tuple[pa.Table | None, dict[str, str] | None]:
    """(VALUE table, NOTE legend) of a compact page, or (None, None) for the exact path.

    With ``fields`` (the attributes the table's axes imply) pyarrow parses only those as declared
    strings and *infers* anything else, so an attribute the hint missed is still read, never
    dropped; parsing fewer declared fields is about twice as fast. Should inference fail (e.g. a
    CLASS_INF mixing object and list CLASS nodes), the page is parsed with every known attribute
    declared and the rest ignored, and only if that fails too does the orjson path take over.
    """
    body = raw.strip()
    if not body or b"\n" in body:
        return None, None
    if fields is not None:
        hinted = [f for f in VALUE_FIELDS if f in set(fields) or f == "$"]
        data_inf = _parse(body, _page_schema(hinted), "infer")
        if data_inf is not None:
            values = _values_of(data_inf)
            if values is not None:
                return values, _notes_of(data_inf)
    data_inf = _parse(body, _PAGE_SCHEMA, "ignore")
    if data_inf is None:
        return None, None
    return _values_of(data_inf), None


def _exact(document: dict[str, Any]) -> pa.Table:
    """The orjson path: handles every shape (VALUE object or list, ``DATA_INF: ""``)."""
    data = as_dict(as_dict(document.get("GET_STATS_DATA")).get("STATISTICAL_DATA"))
    values = [as_dict(v) for v in as_list(as_dict(data.get("DATA_INF")).get("VALUE"))]
    if not values:
        return EMPTY_VALUES
    columns = {}
    for name in VALUE_FIELDS:
        col = [v.get(name) for v in values]
        columns[name] = pa.array([None if c is None else str(c) for c in col], pa.string())
    return pa.table(columns)


def read_page_notes(
    raw: bytes, fields: Sequence[str] | None = None
) -> tuple[pa.Table, dict[str, str] | None]:
    """One page → (VALUE table, its NOTE legend when the fast path read it, else None)."""
    fast, notes = fast_page(raw, fields)
    if fast is not None:
        return fast, notes
    return _exact(orjson.loads(raw)), None


def read_page(raw: bytes, fields: Sequence[str] | None = None) -> pa.Table:
    """One page → VALUE table (every attribute as a string column, ``$`` as sent)."""
    return read_page_notes(raw, fields)[0]


def read_pages_notes(
    pages: Sequence[bytes], threads: int = 2, fields: Sequence[str] | None = None
) -> tuple[pa.Table, dict[str, str] | None]:
    """All pages, in order, as one table, and the first page's legend (None: not read).

    Pages parse in parallel (pyarrow releases the GIL).
    """
    if not pages:
        return EMPTY_VALUES, None
    if len(pages) == 1 or threads <= 1:
        results = [read_page_notes(p, fields) for p in pages]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(lambda p: read_page_notes(p, fields), pages))
    return pa.concat_tables([t for t, _ in results]), results[0][1]


def read_pages(
    pages: Sequence[bytes], threads: int = 2, fields: Sequence[str] | None = None
) -> pa.Table:
    """All pages, in order, as one table."""
    return read_pages_notes(pages, threads, fields)[0]
