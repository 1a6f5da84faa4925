"""The cells of a generated table: its axes' cross product minus holes, with stable identities.

Why: a generated table never materialises its rows; row ``k`` of a (narrowed) request is found by
arithmetic on mixed-radix digits. Real tables are not always full cross products (a series starts
later than the others) and releases add and remove codes and cells, so a layout also keeps:

* **holes**: absent cells, as stable item ids per axis (explicit, so there are few of them);
* **stable ids**: each CLASS item keeps the id it had when the table was built and new items get new
  ids, so a cell keeps its identity (hence its value) when other codes come and go.

Row order stays e-Stat's: CLASS order per axis, last axis fastest, holes skipped. A layout is
immutable; a release builds a new one, so a request in flight keeps a consistent view.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .hashing import mix
from .table import Axis, Selection

MAX_BLOCK_CELLS = 1_000_000  # a hole block larger than this should be a removed code instead
_FRESH_SALT = np.uint64(0x5DEECE66D2545F49)  # separates identities of cells added by a release

# Cells named by codes: axis id → codes; an axis left out stands for all of its codes.
Block = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Layout:
    """Axes, their items' stable ids, the build-time sizes (identity radix) and the holes."""

    axes: tuple[Axis, ...]
    ids: tuple[np.ndarray, ...]
    base_sizes: tuple[int, ...]
    holes: np.ndarray  # (h, len(axes)) int64 stable ids, unique rows

    @classmethod
    def full(cls, axes: Iterable[Axis]) -> Layout:
        """Every cell of the cross product present; ids are the CLASS positions."""
        axes = tuple(axes)
        ids = tuple(np.arange(a.size, dtype=np.int64) for a in axes)
        holes = np.zeros((0, len(axes)), dtype=np.int64)
        return cls(axes, ids, tuple(a.size for a in axes), holes)

    # -- derived --------------------------------------------------------------------------

    @cached_property
    def sizes(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @cached_property
    def base_strides(self) -> tuple[int, ...]:
        return tuple(math.prod(self.base_sizes[k + 1 :]) for k in range(len(self.axes)))

    @cached_property
    def position_of(self) -> tuple[np.ndarray, ...]:
        """Per axis: stable id → current CLASS position (-1 for an id no longer present)."""
        out = []
        for ids in self.ids:
            table = np.full(int(ids.max(initial=-1)) + 1, -1, dtype=np.int64)
            table[ids] = np.arange(len(ids), dtype=np.int64)
            out.append(table)
        return tuple(out)

    def axis_index(self, axis_id: str) -> int:
        for k, axis in enumerate(self.axes):
            if axis.id == axis_id:
                return k
        raise ValueError(f"the table has no axis {axis_id!r}")

    # -- requests -------------------------------------------------------------------------

    def _selected_sizes(self, selection: Selection) -> list[int]:
        return [len(selection[a.id]) if a.id in selection else a.size for a in self.axes]

    def hole_ranks(self, selection: Selection) -> np.ndarray:
        """Sorted ranks (within the selection's cross product) of the holes it contains."""
        if not len(self.holes):
            return np.zeros(0, dtype=np.int64)
        rank = np.zeros(len(self.holes), dtype=np.int64)
        inside = np.ones(len(self.holes), dtype=bool)
        stride = 1
        for k in range(len(self.axes) - 1, -1, -1):
            lookup = self.position_of[k]
            pos = lookup[self.holes[:, k]]
            chosen = selection.get(self.axes[k].id)
            if chosen is not None:
                order = np.full(self.sizes[k], -1, dtype=np.int64)
                order[chosen] = np.arange(len(chosen), dtype=np.int64)
                pos = np.where(pos >= 0, order[np.maximum(pos, 0)], -1)
                size = len(chosen)
            else:
                size = self.sizes[k]
            inside &= pos >= 0
            rank += np.maximum(pos, 0) * stride
            stride *= size
        return np.unique(rank[inside])

    def count(self, selection: Selection) -> int:
        """Cells matching the selection."""
        return math.prod(self._selected_sizes(selection)) - len(self.hole_ranks(selection))

    def positions(self, selection: Selection, offset: int, n: int) -> list[np.ndarray]:
        """Per-axis CLASS positions of selected rows offset … offset+n-1 (holes skipped)."""
        rest = np.arange(offset, offset + n, dtype=np.int64)
        ranks = self.hole_ranks(selection)
        if len(ranks):
            # the k-th present row follows every hole j with (ranks[j] - j) <= k
            before = ranks - np.arange(len(ranks), dtype=np.int64)
            rest = rest + np.searchsorted(before, rest, side="right")
        out: list[np.ndarray] = [rest] * len(self.axes)
        for k in range(len(self.axes) - 1, -1, -1):
            chosen = selection.get(self.axes[k].id)
            size = len(chosen) if chosen is not None else self.sizes[k]
            digit = rest % size
            rest = rest // size
            out[k] = chosen[digit] if chosen is not None else digit
        return out

    def stable_ids(self, positions: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [ids[pos] for ids, pos in zip(self.ids, positions, strict=True)]

    def identities(self, positions: Sequence[np.ndarray]) -> np.ndarray:
        """Cell identities (uint64): the build-time cell index; a hash for cells added later."""
        n = len(positions[0]) if positions else 0
        ident = np.zeros(n, dtype=np.uint64)
        fresh = np.zeros(n, dtype=bool)
        with np.errstate(over="ignore"):
            for sid, size, stride in zip(
                self.stable_ids(positions), self.base_sizes, self.base_strides, strict=True
            ):
                fresh |= sid >= size
                ident += sid.astype(np.uint64) * np.uint64(stride)
            if fresh.any():
                ident[fresh] = mix(ident[fresh] ^ _FRESH_SALT)
        return ident

    # -- blocks of cells ------------------------------------------------------------------

    def block_ids(self, block: Block) -> list[np.ndarray | None]:
        """Per axis: the stable ids a block names (None: every code of that axis)."""
        unknown = sorted(set(block) - {a.id for a in self.axes})
        if unknown:
            raise ValueError(f"the table has no axes {unknown}")
        out: list[np.ndarray | None] = []
        for axis, ids in zip(self.axes, self.ids, strict=True):
            codes = block.get(axis.id)
            if codes is None:
                out.append(None)
                continue
            missing = [c for c in codes if c not in axis.index]
            if missing:
                raise ValueError(f"axis {axis.id} has no codes {missing[:5]}")
            out.append(np.unique(ids[[axis.index[c] for c in codes]]))
        return out

    def _block_cells(self, block: Block) -> np.ndarray:
        per_axis = [
            ids if chosen is None else chosen
            for ids, chosen in zip(self.ids, self.block_ids(block), strict=True)
        ]
        cells = math.prod(len(p) for p in per_axis)
        if cells > MAX_BLOCK_CELLS:
            raise ValueError(f"a block of {cells:,} cells: remove codes (remove_items) instead")
        if not per_axis:
            return np.zeros((0, 0), dtype=np.int64)
        grid = np.meshgrid(*per_axis, indexing="ij")
        return np.stack([g.ravel() for g in grid], axis=1).astype(np.int64)

    def with_holes(self, block: Block) -> Layout:
        """The layout with a block of cells absent."""
        holes = np.unique(np.concatenate([self.holes, self._block_cells(block)]), axis=0)
        return Layout(self.axes, self.ids, self.base_sizes, holes.reshape(-1, len(self.axes)))

    def without_holes(self, block: Block) -> Layout:
        """The layout with a block of cells present again (cells never absent are unaffected)."""
        cells = self._block_cells(block)
        if not len(self.holes) or not len(cells):
            return self
        keep = ~_rows_in(self.holes, cells)
        return Layout(self.axes, self.ids, self.base_sizes, self.holes[keep])

    # -- codes ----------------------------------------------------------------------------

    def without_items(self, axis_id: str, codes: Sequence[str]) -> Layout:
        """The layout without some CLASS items of an axis (and so without their cells)."""
        k = self.axis_index(axis_id)
        axis = self.axes[k]
        missing = [c for c in codes if c not in axis.index]
        if missing:
            raise ValueError(f"axis {axis_id} has no codes {missing[:5]}")
        drop = {axis.index[c] for c in codes}
        keep = [p for p in range(axis.size) if p not in drop]
        if not keep:
            raise ValueError(f"removing {len(drop)} codes would leave axis {axis_id} empty")
        new_axis = Axis(axis.id, dict(axis.attrs), [axis.items[p] for p in keep])
        ids = self.ids[k][keep]
        holes = self.holes[np.isin(self.holes[:, k], ids)] if len(self.holes) else self.holes
        return self._replace_axis(k, new_axis, ids, holes)

    def with_items(self, axis_id: str, items: Sequence[dict[str, Any]]) -> Layout:
        """The layout with new CLASS items (new ids); a sorted axis stays sorted by code."""
        k = self.axis_index(axis_id)
        axis = self.axes[k]
        merged, order = insert_items(axis, items)
        next_id = max(int(self.ids[k].max(initial=-1)) + 1, self.base_sizes[k])
        fresh = np.arange(next_id, next_id + len(items), dtype=np.int64)
        all_ids = np.concatenate([self.ids[k], fresh])[order]
        return self._replace_axis(k, Axis(axis.id, dict(axis.attrs), merged), all_ids, self.holes)

    def _replace_axis(self, k: int, axis: Axis, ids: np.ndarray, holes: np.ndarray) -> Layout:
        axes = (*self.axes[:k], axis, *self.axes[k + 1 :])
        all_ids = (*self.ids[:k], ids, *self.ids[k + 1 :])
        return Layout(axes, all_ids, self.base_sizes, holes)


def insert_items(axis: Axis, items: Sequence[dict[str, Any]]) -> tuple[list[dict], np.ndarray]:
    """Axis items with ``items`` added, and the order (indices into old + new) that gives them.

    New codes go where they sort if the axis is sorted by code (time axes), else at the end.
    """
    codes = [str(item.get("@code", "")) for item in items]
    if any(not c for c in codes) or len(set(codes)) != len(codes):
        raise ValueError("new items need distinct, non-empty @code values")
    clash = [c for c in codes if c in axis.index]
    if clash:
        raise ValueError(f"axis {axis.id} already has codes {clash[:5]}")
    combined = [*axis.items, *(dict(item) for item in items)]
    old = axis.codes
    if old == sorted(old):
        order = sorted(range(len(combined)), key=lambda i: str(combined[i].get("@code", "")))
    else:
        order = list(range(len(combined)))
    return [combined[i] for i in order], np.array(order, dtype=np.int64)


def _rows_in(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each row of ``rows``: is it one of the rows of ``others``?"""
    if not len(others):
        return np.zeros(len(rows), dtype=bool)
    wanted = {tuple(r) for r in others.tolist()}
    return np.array([tuple(r) in wanted for r in rows.tolist()], dtype=bool)
