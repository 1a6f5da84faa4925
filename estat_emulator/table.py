"""What the emulator serves per statsDataId: axes (CLASS_OBJ), TABLE_INF, NOTE and VALUE rows.

Three kinds share one interface so the response builders never care where a table came from:
recorded tables (``recorded.py``; rows copied from real responses), generated tables
(``generate.py``; rows computed from row indices) and listed-only tables (a getStatsList entry with
no metadata or data).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from estat_assets.estat.shape import AXES, as_list, text

from .release import Release
from .wire import Raw, one_or_many

# Positions per narrowed axis (sorted, unique); an axis that is not narrowed is absent.
Selection = dict[str, np.ndarray]


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
        self.version = 0  # bumped by every release: caches of derived views key on it
        # tables whose English names (lang=E) this one uses: for CLASS, and for TABLE_INF fields
        # other than ``overridden_fields`` (a generated table's own texts); empty means its own id
        self.english_ids: tuple[str, ...] = ()
        self.english_inf_ids: tuple[str, ...] = ()
        self.overridden_fields: frozenset[str] = frozenset()
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

    def apply(self, release: Release, updated_date: str) -> None:
        """A new release: its changes, then the new UPDATED_DATE (and OVERALL_TOTAL_NUMBER).

        Subclasses validate and apply the changes in :meth:`_apply_changes` all-or-nothing.
        """
        before = self.count({})
        self._apply_changes(release)
        inf = {**self.table_inf, "UPDATED_DATE": updated_date}
        if "OVERALL_TOTAL_NUMBER" in inf and self.has_metadata:
            total = inf["OVERALL_TOTAL_NUMBER"]
            # a recorded total (keep_recorded_totals) moves by the rows added or removed
            if isinstance(total, int) and total != before:
                inf["OVERALL_TOTAL_NUMBER"] = total + self.count({}) - before
            else:
                inf["OVERALL_TOTAL_NUMBER"] = self.count({})
        self.table_inf = inf
        self.version += 1
        self._search_text = None

    def _apply_changes(self, release: Release) -> None:
        if release.has_changes or release.perturb:
            raise ValueError(f"table {self.id} is only listed: it has no cells to change")

    def republish(self, updated_date: str, perturb: bool) -> None:
        """A new release with only a new UPDATED_DATE and (when ``perturb``) new values."""
        self.apply(Release(perturb=perturb), updated_date)

    def search_text(self) -> str:
        """Normalised (NFKC, case-folded) text searchWord is matched against."""
        if self._search_text is None:
            self._search_text = search_text(self.table_inf, self.axes)
        return self._search_text


def search_text(table_inf: dict[str, Any], axes: list[Axis]) -> str:
    """TABLE_INF texts and CLASS names, normalised for substring search."""
    parts = [text(table_inf.get(k)) or "" for k in ("TITLE", "STATISTICS_NAME", "STAT_NAME")]
    for spec in ("STATISTICS_NAME_SPEC", "TITLE_SPEC"):
        node = table_inf.get(spec)
        if isinstance(node, dict):
            parts.extend(str(v) for v in node.values())
    for axis in axes:
        parts.append(str(axis.attrs.get("@name", "")))
        parts.extend(str(item.get("@name", "")) for item in axis.items)
    return _normalise("\n".join(parts))


class ListedTable(Table):
    """A table known only from a getStatsList entry: it can be listed, not fetched."""


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
