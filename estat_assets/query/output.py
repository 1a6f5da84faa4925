"""Query results as text for ``estat-lake query --format table|csv|json``.

Values are printed as stored, never reinterpreted: a string ``"19.0"`` stays ``19.0`` (tabulate
would reparse it as the number 19), a DOUBLE prints its shortest exact form (``99716544.0``,
``1.5``), an integer all its digits, and Japanese text byte for byte. The table format pads by
display width (East Asian wide characters take two columns), so columns of 都道府県名 line up
without the optional ``wcwidth`` package.

Nulls are an empty cell (table), an empty field (csv) and ``null`` (json). ``footer`` is the
one-line summary the CLI prints to stderr, so that stdout stays pure csv/json.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
import struct
import unicodedata
from collections.abc import Callable
from typing import Any

import pyarrow as pa

FORMATS = ("table", "csv", "json")
_CONTROL = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (0.1f → 0.1, not 0.10000000149)."""
    for digits in range(1, 10):
        shorter = float(f"{value:.{digits}g}")
        if struct.unpack("f", struct.pack("f", shorter))[0] == value:
            return shorter
    return value


def _column_values(column: pa.ChunkedArray) -> list[Any]:
    if pa.types.is_float16(column.type) or pa.types.is_float32(column.type):
        values = column.cast(pa.float32()).to_pylist()
        return [v if v is None or not math.isfinite(v) else _float32(v) for v in values]
    return column.to_pylist()


def _text(value: Any) -> str | None:
    """A value as text, exactly as stored; ``None`` for null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest string that reads back as the same double
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return json.dumps(value, ensure_ascii=False, default=str)


def _json_value(value: Any) -> str:
    """A value as a JSON fragment: numbers as numbers, exactly; NaN/±inf as null (no JSON)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_json_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (
            f"{json.dumps(str(k), ensure_ascii=False)}: {_json_value(v)}" for k, v in value.items()
        )
        return "{" + ", ".join(pairs) + "}"
    return json.dumps(_text(value), ensure_ascii=False)


def display_width(text: str) -> int:
    """Terminal columns of ``text``: wide/fullwidth characters 2, combining marks 0."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * (width - display_width(text))
    return fill + text if right else text + fill


def _is_numeric(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_)


def _as_table(table: pa.Table, columns: list[list[Any]]) -> str:
    """A GitHub-style table; numeric columns right-aligned (``---:``), others left."""
    if not table.num_columns:
        return ""
    headers = [name.translate(_CONTROL) for name in table.column_names]
    cells = [
        ["" if (t := _text(v)) is None else t.translate(_CONTROL) for v in values]
        for values in columns
    ]
    right = [_is_numeric(f.type) for f in table.schema]
    widths = [
        max([display_width(h), 3, *(display_width(c) for c in col)])
        for h, col in zip(headers, cells, strict=True)
    ]

    def line(row: list[str]) -> str:
        padded = (_pad(c, w, r) for c, w, r in zip(row, widths, right, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join("-" * (w + 1) + (":" if r else "-") for w, r in zip(widths, right, strict=True))
        + "|"
    )
    rows = [list(r) for r in zip(*cells, strict=True)] if cells else []
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _as_csv(table: pa.Table, columns: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in zip(*columns, strict=True):
        writer.writerow(["" if (t := _text(v)) is None else t for v in row])
    return out.getvalue().removesuffix("\n")


def _json_keys(names: list[str]) -> list[str]:
    """Column names as JSON keys; a repeated name gets ``_2``, ``_3`` … so no value is lost."""
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return [json.dumps(k, ensure_ascii=False) for k in keys]


def _as_json(table: pa.Table, columns: list[list[Any]]) -> str:
    """A JSON array with one object per row, one row per line."""
    keys = _json_keys(table.column_names)
    rows = [
        "{" + ", ".join(f"{k}: {_json_value(v)}" for k, v in zip(keys, row, strict=True)) + "}"
        for row in zip(*columns, strict=True)
    ]
    if not rows:
        return "[]"
    return "[\n  " + ",\n  ".join(rows) + "\n]"


_WRITERS: dict[str, Callable[[pa.Table, list[list[Any]]], str]] = {
    "table": _as_table,
    "csv": _as_csv,
    "json": _as_json,
}


def format_table(table: pa.Table, fmt: str = "table", max_rows: int | None = None) -> str:
    """``table`` (its first ``max_rows`` rows) as ``table``, ``csv`` or ``json`` text.

    No trailing newline; no count or "more rows" line (that would corrupt csv/json), see
    ``footer``.
    """
    if fmt not in _WRITERS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if max_rows is not None:
        table = table.slice(0, max(0, max_rows))
    columns = [_column_values(table.column(i)) for i in range(table.num_columns)]
    return _WRITERS[fmt](table, columns)


def footer(rows: int, elapsed: float, truncated: bool = False, shown: int | None = None) -> str:
    """``N rows (truncated at CAP) in X.XX s``, for stderr after the rows.

    ``rows`` is how many rows the query returned; when ``truncated`` the query had more and
    stopped at ``rows`` (the cap). ``shown`` is how many were printed, when fewer than ``rows``.
    """
    notes = []
    if truncated:
        notes.append(f"truncated at {rows}")
    if shown is not None and shown < rows:
        notes.append(f"{shown} shown")
    noun = "row" if rows == 1 else "rows"
    note = f" ({'; '.join(notes)})" if notes else ""
    return f"{rows} {noun}{note} in {elapsed:.2f} s"
