"""getStatsData narrowing (cdXxx, cdXxxFrom/To, lvXxx) → selected CLASS positions per axis.

Kept apart from the response builders because both recorded and generated tables use it and the
PARAMETER echo (NARROWING_COND) must follow exactly the same parsing.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from estat_assets.estat.shape import AXES

from .table import Axis, Selection


class NarrowingError(ValueError):
    """A narrowing parameter has a value the API would reject (reported as STATUS 102)."""

    def __init__(self, name: str, value: str) -> None:
        super().__init__(f"{name}={value}")
        self.name = name
        self.value = value


def param_suffix(axis_id: str) -> str:
    """``tab`` → ``Tab``, ``cat01`` → ``Cat01``: how axis ids appear in parameter names."""
    return axis_id[0].upper() + axis_id[1:]


_LEVEL = re.compile(r"(\d*)(-?)(\d*)")


def _level_range(value: str, name: str) -> tuple[int, int]:
    """``X``, ``X-X``, ``-X`` (from level 1) and ``X-`` (to level 9) as an inclusive range."""
    match = _LEVEL.fullmatch(value.strip())
    if not match or not (match.group(1) or match.group(3)):
        raise NarrowingError(name, value)
    low, dash, high = match.groups()
    if not dash:
        return int(low), int(low)
    return (int(low) if low else 1), (int(high) if high else 9)


def _item_level(item: dict[str, Any]) -> int:
    level = str(item.get("@level", "")).strip()
    return int(level) if level.isdigit() else 1


def _bound_mask(axis: Axis, bound: str, *, lower: bool) -> np.ndarray:
    """Items on the right side of a From/To bound: by CLASS position, or by code if unknown."""
    codes = axis.codes
    if bound in ("min", "max"):
        return np.ones(axis.size, dtype=bool)
    if bound in axis.index:
        at = axis.index[bound]
        pos = np.arange(axis.size)
        return pos >= at if lower else pos <= at
    return np.array([(c >= bound) if lower else (c <= bound) for c in codes], dtype=bool)


def parse_narrowing(params: dict[str, str], axes: list[Axis]) -> tuple[Selection, dict[str, str]]:
    """The selection for a request and its NARROWING_COND echo (axes the table lacks: ignored)."""
    by_id = {a.id: a for a in axes}
    selection: Selection = {}
    echo: dict[str, str] = {}
    for axis_id in AXES:
        suffix = param_suffix(axis_id)
        upper = axis_id.upper()
        level = params.get(f"lv{suffix}", "")
        select = params.get(f"cd{suffix}", "")
        low = params.get(f"cd{suffix}From", "")
        high = params.get(f"cd{suffix}To", "")
        if level:
            echo[f"LEVEL_{upper}_COND"] = level
        if select:
            echo[f"CODE_{upper}_SELECT"] = select
        if low:
            echo[f"CODE_{upper}_FROM"] = low
        if high:
            echo[f"CODE_{upper}_TO"] = high
        axis = by_id.get(axis_id)
        if axis is None or not (level or select or low or high):
            continue
        mask = np.ones(axis.size, dtype=bool)
        if level:
            lo, hi = _level_range(level, f"lv{suffix}")
            levels = np.array([_item_level(item) for item in axis.items], dtype=np.int64)
            mask &= (levels >= lo) & (levels <= hi)
        if select:
            wanted = {c.strip() for c in select.split(",") if c.strip()}
            mask &= np.array([c in wanted for c in axis.codes], dtype=bool)
        if low:
            mask &= _bound_mask(axis, low.strip(), lower=True)
        if high:
            mask &= _bound_mask(axis, high.strip(), lower=False)
        selection[axis_id] = np.flatnonzero(mask).astype(np.int64)
    return selection, echo
