"""Recorded tables: exactly the VALUE rows that were recorded, in e-Stat order, and their releases.

Why apart from ``table.py``: a recorded table is the one kind whose rows are data, so it is where a
release edits rows (and CLASS items) rather than computing them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .layout import insert_items
from .release import Release
from .table import Axis, Selection, Table

_MISSING = np.iinfo(np.int64).max  # position of a code that is not in the CLASS list
_INT = re.compile(r"-?\d+")
_DEC = re.compile(r"(-?\d+)\.(\d+)")
_NOT_AXES = ("@unit", "@annotation")


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
        sorted((k, str(v)) for k, v in row.items() if k.startswith("@") and k not in _NOT_AXES)
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
        self.notes = notes
        self._set(axes, rows, np.zeros(len(rows), dtype=np.int64))

    def _set(self, axes: list[Axis], rows: list[dict[str, Any]], revisions: np.ndarray) -> None:
        """Rows sorted into e-Stat order (CLASS order per axis, unknown codes last)."""
        positions = np.array(
            [[a.index.get(str(r.get(f"@{a.id}", "")), _MISSING) for a in axes] for r in rows],
            dtype=np.int64,
        ).reshape(len(rows), len(axes))
        order = np.lexsort(positions.T[::-1]) if len(rows) else np.zeros(0, dtype=np.intp)
        self.axes = axes
        self.rows = [rows[int(i)] for i in order]
        self.positions = positions[order]
        self.row_revisions = revisions[order]

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
        revisions = self.row_revisions[picked]
        if revisions.any():
            rows = [
                {**r, "$": perturb_value(str(r.get("$", "")), int(v))} if v else r
                for r, v in zip(rows, revisions.tolist(), strict=True)
            ]
        return rows

    # -- releases -------------------------------------------------------------------------

    def _apply_changes(self, release: Release) -> None:
        axes = list(self.axes)
        by_id = {a.id: k for k, a in enumerate(axes)}

        def axis_of(axis_id: str) -> int:
            if axis_id not in by_id:
                raise ValueError(f"table {self.id} has no axis {axis_id!r}")
            return by_id[axis_id]

        for axis_id, items in release.add_items.items():
            k = axis_of(axis_id)
            merged, _ = insert_items(axes[k], items)
            axes[k] = Axis(axis_id, dict(axes[k].attrs), merged)
        keep = np.ones(len(self.rows), dtype=bool)
        for axis_id, codes in release.remove_items.items():
            k = axis_of(axis_id)
            _check_codes(axes[k], codes)
            gone = set(codes)
            keep &= np.array([str(r.get(f"@{axis_id}")) not in gone for r in self.rows], bool)
            left = [item for item in axes[k].items if item.get("@code") not in gone]
            axes[k] = Axis(axis_id, dict(axes[k].attrs), left)
            if not left:
                raise ValueError(f"removing {len(gone)} codes would leave axis {axis_id} empty")
        for block in release.remove_cells:
            keep &= ~self._block_mask(block, axis_of)
        rows = [r for r, kept in zip(self.rows, keep.tolist(), strict=True) if kept]
        revisions = self.row_revisions[keep]
        if release.add_cells:
            rows, revisions = self._with_cells(axes, rows, revisions, release.add_cells)
        for block in release.revise:  # validated before anything changes
            for axis_id, codes in block.items():
                _check_codes(axes[axis_of(axis_id)], codes)
        number = self.revision + 1
        revised = np.zeros(len(rows), dtype=bool)
        if release.whole_table_perturb(self.kind):
            revised[:] = True
        self._set(axes, rows, revisions)
        for block in release.revise:
            revised |= self._block_mask(block, axis_of)
        if revised.any():
            self.row_revisions = np.where(revised, number, self.row_revisions)
            self.revision = number

    def _block_mask(self, block: dict[str, tuple[str, ...]], axis_of: Any) -> np.ndarray:
        """Rows (current order) whose codes lie in the block."""
        mask = np.ones(len(self.rows), dtype=bool)
        for axis_id, codes in block.items():
            k = axis_of(axis_id)
            _check_codes(self.axes[k], codes)
            wanted = set(codes)
            mask &= np.array([str(r.get(f"@{axis_id}")) in wanted for r in self.rows], bool)
        return mask

    def _with_cells(
        self,
        axes: list[Axis],
        rows: list[dict[str, Any]],
        revisions: np.ndarray,
        cells: tuple[dict[str, Any], ...],
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """Rows with ``cells`` added (a cell that exists is replaced: its value changes)."""
        wanted = {f"@{a.id}" for a in axes}
        index = {row_key(r): i for i, r in enumerate(rows)}
        out, revs = list(rows), revisions.tolist()
        for cell in cells:
            keys = {k for k in cell if k.startswith("@") and k not in _NOT_AXES}
            if keys != wanted or "$" not in cell:
                raise ValueError(f"a new cell needs $ and exactly {sorted(wanted)}: {cell}")
            for axis in axes:
                if cell[f"@{axis.id}"] not in axis.index:
                    raise ValueError(
                        f"code {cell[f'@{axis.id}']} is not in CLASS_INF {axis.id}: add_items first"
                    )
            row = {f"@{a.id}": cell[f"@{a.id}"] for a in axes}
            row.update((k, cell[k]) for k in _NOT_AXES if k in cell)
            row["$"] = cell["$"]
            at = index.get(row_key(row))
            if at is None:
                index[row_key(row)] = len(out)
                out.append(row)
                revs.append(0)
            else:
                out[at], revs[at] = row, 0
        return out, np.array(revs, dtype=np.int64)


def _check_codes(axis: Axis, codes: tuple[str, ...]) -> None:
    missing = [c for c in codes if c not in axis.index]
    if missing:
        raise ValueError(f"axis {axis.id} has no codes {missing[:5]}")
