"""The axes (CLASS_OBJ) of a generated table, from the axis definitions of its spec.

Why apart from the value generator: axis definitions are where a spec says what a table looks
like (real-looking codes, names, levels, parents and units), and they are plain data.

Definitions (one object per axis id; all accept ``name``, ``description`` and ``unit``/``units``,
and end with the ``codes``/``offset``/``limit`` overrides):

* ``{"count": 100}``: synthetic codes and names (``合成分類01_001`` …), as for benchmarks;
* ``{"items": [{"@code": "11", "@name": "…", "@level": "1", "@parentCode": "…"}, …]}``: explicit;
* ``{"years": [1975, 2024]}``: calendar years ``YYYY000000`` named ``YYYY年``;
* ``{"quarters": ["1994Q1", "2022Q2"]}``: ``YYYY00SSEE`` named ``YYYY年S～E月期``, level 3, parents
  ``YYYY010000`` (Q1, Q2) and ``YYYY020000`` (Q3, Q4) as real quarterly tables have them;
* ``{"from": "0000020202", "axis": "area", "limit": 1000}``: an axis of another loaded table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .table import Axis, Table

_KINDS = ("count", "items", "years", "quarters", "from")
_QUARTER = re.compile(r"(\d{4})Q([1-4])")
_DEFAULT_NAMES = {"time": "時間軸（年次）", "area": "地域", "tab": "表章項目"}


def override_axis(axis: Axis, override: dict[str, Any]) -> Axis:
    """Apply ``codes`` / ``offset`` / ``limit`` to an axis (CLASS order kept)."""
    items = axis.items
    if "codes" in override:
        wanted = {str(c) for c in override["codes"]}
        items = [item for item in items if str(item.get("@code")) in wanted]
    offset = int(override.get("offset", 0))
    items = items[offset:]
    if "limit" in override:
        items = items[: int(override["limit"])]
    if not items:
        raise ValueError(f"axis {axis.id}: the override leaves no codes")
    return Axis(axis.id, dict(axis.attrs), [dict(item) for item in items])


def validate(axis_id: str, definition: dict[str, Any]) -> None:
    """A definition of a fully specified table's axis names exactly one way to build it."""
    kinds = [k for k in _KINDS if k in definition]
    if len(kinds) != 1:
        raise ValueError(f"axis {axis_id}: give exactly one of {list(_KINDS)}, got {kinds}")


def build_axis(
    axis_id: str, definition: dict[str, Any], lookup: Callable[[str], Table | None]
) -> Axis:
    """The axis for one definition; ``lookup`` finds the table a ``from`` axis is taken from."""
    validate(axis_id, definition)
    if "from" in definition:
        axis = _borrowed(axis_id, definition, lookup)
    else:
        if "count" in definition:
            name, items = _synthetic_items(axis_id, int(definition["count"]))
        elif "items" in definition:
            name, items = _DEFAULT_NAMES.get(axis_id, axis_id), _explicit(definition["items"])
        elif "years" in definition:
            name, items = "時間軸（年次）", _years(definition["years"])
        else:
            name, items = "時間軸（四半期）", _quarters(definition["quarters"])
        attrs: dict[str, Any] = {"@id": axis_id, "@name": str(definition.get("name", name))}
        if definition.get("description"):
            attrs["@description"] = str(definition["description"])
        axis = Axis(axis_id, attrs, items)
    _apply_units(axis, definition)
    return override_axis(axis, definition)


def _borrowed(
    axis_id: str, definition: dict[str, Any], lookup: Callable[[str], Table | None]
) -> Axis:
    source_id = str(definition["from"])
    source = lookup(source_id)
    if source is None or not source.has_metadata:
        raise ValueError(f"axis {axis_id}: table {source_id} is not loaded (or has no CLASS_INF)")
    wanted = str(definition.get("axis", axis_id))
    axis = next((a for a in source.axes if a.id == wanted), None)
    if axis is None:
        raise ValueError(f"axis {axis_id}: table {source_id} has no axis {wanted}")
    attrs = {**axis.attrs, "@id": axis_id}
    if "name" in definition:
        attrs["@name"] = str(definition["name"])
    return Axis(axis_id, attrs, [dict(item) for item in axis.items])


def _explicit(items: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not items:
        raise ValueError("items must be a non-empty list of CLASS objects")
    out = []
    for item in items:
        if not isinstance(item, dict) or not str(item.get("@code", "")):
            raise ValueError(f"every item needs a @code: {item!r}")
        out.append({k: str(v) for k, v in item.items()})
    return out


def _years(span: Any) -> list[dict[str, Any]]:
    first, last = (int(y) for y in span)
    if not 1000 <= first <= last <= 9999:
        raise ValueError(f"years must be [first, last], got {span!r}")
    return [
        {"@code": f"{year}000000", "@name": f"{year}年", "@level": "1"}
        for year in range(first, last + 1)
    ]


def _quarters(span: Any) -> list[dict[str, Any]]:
    bounds = [_QUARTER.fullmatch(str(q)) for q in span] if isinstance(span, list) else []
    if len(bounds) != 2 or not all(bounds):
        raise ValueError(f'quarters must be ["YYYYQn", "YYYYQn"], got {span!r}')
    first, last = ((int(m.group(1)), int(m.group(2))) for m in bounds if m)
    items = []
    year, quarter = first
    while (year, quarter) <= last:
        start, end = 3 * quarter - 2, 3 * quarter
        items.append(
            {
                "@code": f"{year}00{start:02d}{end:02d}",
                "@name": f"{year}年{start}～{end}月期",
                "@level": "3",
                "@parentCode": f"{year}0{1 if quarter <= 2 else 2}0000",
            }
        )
        year, quarter = (year, quarter + 1) if quarter < 4 else (year + 1, 1)
    return items


def _synthetic_items(axis_id: str, count: int) -> tuple[str, list[dict[str, Any]]]:
    """CLASS items for a synthetic axis: plausible e-Stat-shaped codes."""
    if count <= 0:
        raise ValueError(f"axis {axis_id}: count must be positive")
    items: list[dict[str, Any]] = []
    if axis_id == "time":
        if count <= 100:
            name = "時間軸（年次）"
            for year in range(2025 - count, 2025):
                items.append({"@code": f"{year}000000", "@name": f"{year}年", "@level": "1"})
        else:
            name = "時間軸（月次）"
            for i in range(count):
                year, month = 1990 + i // 12, i % 12 + 1
                code = f"{year}00{month:02d}{month:02d}"
                items.append({"@code": code, "@name": f"{year}年{month}月", "@level": "1"})
    elif axis_id == "area":
        name = "地域"
        items.append({"@code": "00000", "@name": "全国", "@level": "1"})
        for i in range(1, count):
            code = f"{i:05d}"
            items.append(
                {"@code": code, "@name": f"合成地域{code}", "@level": "2", "@parentCode": "00000"}
            )
    elif axis_id == "tab":
        name = "表章項目"
        for i in range(count):
            items.append({"@code": f"{i + 1:05d}", "@name": f"合成表章項目{i + 1}", "@level": ""})
    else:
        name = f"合成分類{axis_id[3:]}"
        width = max(3, len(str(count)))
        for i in range(count):
            code = f"{i + 1:0{width}d}"
            items.append({"@code": code, "@name": f"{name}_{code}", "@level": "1"})
    return name, items


def _apply_units(axis: Axis, definition: dict[str, Any]) -> None:
    """``unit`` (every code) or ``units`` (cycled over the codes) for items without ``@unit``."""
    units = definition.get("units")
    if units is None and definition.get("unit"):
        units = [definition["unit"]]
    if not units:
        return
    for i, item in enumerate(axis.items):
        unit = units[i % len(units)]
        if unit and not item.get("@unit"):
            item["@unit"] = str(unit)
