"""What the emulator serves per statsDataId: axes (CLASS_OBJ), TABLE_INF, NOTE and VALUE rows.

Three kinds share one interface so the response builders never care where a table came from:
recorded tables (rows copied from real responses), generated tables (``generate.py``; rows computed
from row indices) and listed-only tables (a getStatsList entry with no metadata or data).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from estat_assets.estat.shape import AXES, as_list, text

from .wire import Raw, one_or_many

# Positions per narrowed axis (sorted, unique); an axis that is not narrowed is absent.
Selection = dict[str, np.ndarray]

_MISSING = np.iinfo(np.int64).max  # position of a code that is not in the CLASS list


@dataclass
class Axis:
    """One CLASS_OBJ: its attributes, its CLASS items and a code → position index."""

    id: str
    attrs: dict[str, Any]
    items: list[dict[str, Any]]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {}
        for pos, item in enumerate(self.items):
            self.index.setdefault(str(item.get("@code", "")), pos)

    @classmethod
    def from_class_obj(cls, obj: dict[str, Any]) -> Axis:
        """An axis from a recorded CLASS_OBJ (CLASS may be an object or a list)."""
        attrs = {k: v for k, v in obj.items() if k != "CLASS"}
        return cls(str(obj.get("@id", "")), attrs, [dict(c) for c in as_list(obj.get("CLASS"))])

    @property
    def size(self) -> int:
        return len(self.items)

    @property
    def codes(self) -> list[str]:
        return [str(item.get("@code", "")) for item in self.items]

    def class_obj(self, positions: np.ndarray | None = None) -> dict[str, Any]:
        """The CLASS_OBJ as e-Stat renders it, narrowed to ``positions`` when given."""
        items = self.items if positions is None else [self.items[int(p)] for p in positions]
        return {**self.attrs, "CLASS": one_or_many(items)}


def class_inf(axes: list[Axis], selection: Selection | None = None) -> dict[str, Any]:
    """CLASS_INF for the axes; narrowed axes list only the selected codes (like the real API)."""
    selection = selection or {}
    return {"CLASS_OBJ": one_or_many([a.class_obj(selection.get(a.id)) for a in axes])}


def _normalise(value: str) -> str:
    return unicodedata.normalize("NFKC", value).casefold()


class Table:
    """Base class: a table id with its TABLE_INF; subclasses add axes and rows."""

    kind = "listed"

    def __init__(self, table_inf: dict[str, Any]) -> None:
        self.table_inf = table_inf
        self.axes: list[Axis] = []
        self.notes: list[dict[str, Any]] = []
        self.revision = 0
        self._search_text: str | None = None

    @property
    def id(self) -> str:
        return str(self.table_inf.get("@id", ""))

    @property
    def has_metadata(self) -> bool:
        """False for a table known only from getStatsList (getMetaInfo/getStatsData fail)."""
        return bool(self.axes)

    def class_inf(self, selection: Selection | None = None) -> dict[str, Any]:
        return class_inf(self.axes, selection)

    def count(self, selection: Selection) -> int:
        """Number of VALUE rows matching the selection."""
        return 0

    def values(
        self, selection: Selection, offset: int, n: int, *, ascii_only: bool = True
    ) -> list[dict[str, Any]] | Raw:
        """VALUE rows ``offset`` (0-based) … ``offset + n - 1`` of the selection."""
        return []

    def republish(self, updated_date: str, perturb: bool) -> None:
        """A new release: new UPDATED_DATE and (when ``perturb``) different values."""
        self.table_inf = {**self.table_inf, "UPDATED_DATE": updated_date}
        if perturb:
            self.revision += 1

    def search_text(self) -> str:
        """Normalised (NFKC, case-folded) text searchWord is matched against."""
        if self._search_text is None:
            inf = self.table_inf
            parts = [text(inf.get(k)) or "" for k in ("TITLE", "STATISTICS_NAME", "STAT_NAME")]
            for spec in ("STATISTICS_NAME_SPEC", "TITLE_SPEC"):
                node = inf.get(spec)
                if isinstance(node, dict):
                    parts.extend(str(v) for v in node.values())
            for axis in self.axes:
                parts.append(str(axis.attrs.get("@name", "")))
                parts.extend(str(item.get("@name", "")) for item in axis.items)
            self._search_text = _normalise("\n".join(parts))
        return self._search_text


class ListedTable(Table):
    """A table known only from a getStatsList entry: it can be listed, not fetched."""


_INT = re.compile(r"-?\d+")
_DEC = re.compile(r"(-?\d+)\.(\d+)")


def perturb_value(value: str, revision: int) -> str:
    """A recorded numeric value shifted by ``revision`` so a republished table visibly differs."""
    if revision == 0:
        return value
    if _INT.fullmatch(value):
        return str(int(value) + revision)
    match = _DEC.fullmatch(value)
    if match:
        return f"{int(match.group(1)) + revision}.{match.group(2)}"
    return value


def row_key(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The axis codes of a VALUE row: what identifies a cell."""
    return tuple(
        sorted(
            (k, str(v))
            for k, v in row.items()
            if k.startswith("@") and k not in ("@unit", "@annotation")
        )
    )


class RecordedTable(Table):
    """A table served as exactly the VALUE rows that were recorded (in e-Stat order)."""

    kind = "recorded"

    def __init__(
        self,
        table_inf: dict[str, Any],
        axes: list[Axis],
        notes: list[dict[str, Any]],
        rows: list[dict[str, Any]],
    ) -> None:
        super().__init__(table_inf)
        self.axes = axes
        self.notes = notes
        positions = np.array(
            [[a.index.get(str(r.get(f"@{a.id}", "")), _MISSING) for a in axes] for r in rows],
            dtype=np.int64,
        ).reshape(len(rows), len(axes))
        order = np.lexsort(positions.T[::-1]) if len(rows) else np.zeros(0, dtype=np.intp)
        self.rows = [rows[int(i)] for i in order]
        self.positions = positions[order]

    def _matching(self, selection: Selection) -> np.ndarray:
        mask = np.ones(len(self.rows), dtype=bool)
        for k, axis in enumerate(self.axes):
            if axis.id in selection:
                mask &= np.isin(self.positions[:, k], selection[axis.id])
        return np.flatnonzero(mask)

    def count(self, selection: Selection) -> int:
        return len(self._matching(selection))

    def values(
        self, selection: Selection, offset: int, n: int, *, ascii_only: bool = True
    ) -> list[dict[str, Any]]:
        picked = self._matching(selection)[offset : offset + n]
        rows = [self.rows[int(i)] for i in picked]
        if self.revision:
            rows = [{**r, "$": perturb_value(str(r.get("$", "")), self.revision)} for r in rows]
        return rows


def axes_from_rows(rows: list[dict[str, Any]]) -> list[Axis]:
    """Minimal axes for recorded rows that came without CLASS_INF (codes as names)."""
    seen: dict[str, dict[str, None]] = {}
    for row in rows:
        for axis_id in AXES:
            code = row.get(f"@{axis_id}")
            if code is not None:
                seen.setdefault(axis_id, {})[str(code)] = None
    return [
        Axis(
            axis_id,
            {"@id": axis_id, "@name": axis_id},
            [{"@code": c, "@name": c, "@level": "1"} for c in codes],
        )
        for axis_id in AXES
        if (codes := seen.get(axis_id))
    ]
