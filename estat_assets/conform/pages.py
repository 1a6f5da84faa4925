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


def _fast(raw: bytes) -> pa.Table | None:
    """``pyarrow.json`` on one compact page; None when the page needs the exact path."""
    body = raw.strip()
    if not body or b"\n" in body:
        return None
    try:
        table = pajson.read_json(
            io.BytesIO(body),
            read_options=pajson.ReadOptions(block_size=len(body) + 1, use_threads=False),
            parse_options=pajson.ParseOptions(
                explicit_schema=_PAGE_SCHEMA, unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != 1:
        return None
    values = table.column(0).combine_chunks().field("STATISTICAL_DATA").field("DATA_INF")
    values = values.field("VALUE")
    if values.null_count:  # VALUE absent (empty page): let the exact path decide
        return None
    flat = values.flatten()
    return pa.Table.from_arrays([flat.field(n) for n in VALUE_FIELDS], names=list(VALUE_FIELDS))


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


def read_page(raw: bytes) -> pa.Table:
    """One page → VALUE table (every attribute as a string column, ``$`` as sent)."""
    fast = _fast(raw)
    if fast is not None:
        return fast
    return _exact(orjson.loads(raw))


def read_pages(pages: Sequence[bytes], threads: int = 2) -> pa.Table:
    """All pages, in order, as one table. Pages parse in parallel (pyarrow releases the GIL)."""
    if not pages:
        return EMPTY_VALUES
    if len(pages) == 1 or threads <= 1:
        tables = [read_page(p) for p in pages]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            tables = list(pool.map(read_page, pages))
    return pa.concat_tables(tables)
