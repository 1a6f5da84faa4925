"""Hierarchy consistency: where an axis has parents (``@parentCode`` or ``@level``), children sum
to the parent.

For each axis with parents, every other axis held fixed, the numeric children of a parent are
summed and compared with the parent's own value. A parent is compared only when all of its children
in ``CLASS_INF`` are present with a number (a suppressed child makes the sum meaningless), and a
parent missing from the list (``01100`` → ``01000``) is tolerated: it is simply never compared.
Many e-Stat axes nest two breakdowns under one total (``ふだんの就業状態，年齢``), or list
"of which" items, so a mismatch is a warning for a person, never a reason to block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from estat_assets.estat.models import TableMetadata

RELATIVE_TOLERANCE = 0.01  # 1 % of the parent
ABSOLUTE_TOLERANCE_PER_CHILD = 0.5  # rounding to the display unit, per child
MIN_CHILDREN = 2  # a breakdown: a parent with a single listed child is not compared


@dataclass(frozen=True)
class HierarchyResult:
    compared: int
    mismatches: pd.DataFrame  # axis, parent_code, parent_value, children_sum, children, + keys
    families: dict[str, int] = field(default_factory=dict)  # axis → parents with ≥ 2 children
    single_child_parents: int = 0  # "of which" items: never compared with their parent

    @property
    def failures(self) -> int:
        return len(self.mismatches)


def children_of(metadata: TableMetadata, axis: str) -> dict[str, list[str]]:
    """parent code → child codes, for parents that are themselves in the list.

    ``@parentCode`` when the axis has any; else, when only ``@level`` is given, the parent of an
    item is the nearest item before it one level up (e-Stat lists a hierarchy in that order).
    """
    cls = metadata.axis(axis)
    if cls is None:
        return {}
    codes = set(cls.codes())
    out: dict[str, list[str]] = {}
    if any(item.parent_code for item in cls.items):
        for item in cls.items:
            if item.parent_code and item.parent_code in codes and item.parent_code != item.code:
                out.setdefault(item.parent_code, []).append(item.code)
        return out
    levels = [item.level for item in cls.items]
    if not all(level and level.isdigit() for level in levels) or len(set(levels)) < 2:
        return {}
    last_at: dict[int, str] = {}
    for item in cls.items:
        level = int(item.level or 0)
        parent = last_at.get(level - 1)
        if parent is not None:
            out.setdefault(parent, []).append(item.code)
        last_at[level] = item.code
        for deeper in [k for k in last_at if k > level]:
            del last_at[deeper]
    return out


def check_hierarchy(
    df: pd.DataFrame,
    axes: Sequence[str],
    metadata: TableMetadata | None,
    relative: float = RELATIVE_TOLERANCE,
    absolute_per_child: float = ABSOLUTE_TOLERANCE_PER_CHILD,
) -> HierarchyResult:
    empty = pd.DataFrame(columns=["axis", "parent_code", "parent_value", "children_sum"])
    if metadata is None or df.empty:
        return HierarchyResult(0, empty)
    numeric = df[df["value"].notna()]
    compared = 0
    found: list[pd.DataFrame] = []
    families: dict[str, int] = {}
    single = 0
    for axis in axes:
        tree = children_of(metadata, axis)
        # A parent with one listed child is an "of which" item, not a breakdown: its child is
        # a part of it, never expected to equal it. Only breakdowns of two or more are compared.
        single += sum(1 for cs in tree.values() if len(cs) < 2)
        tree = {p: cs for p, cs in tree.items() if len(cs) >= MIN_CHILDREN}
        col = f"{axis}_code"
        if not tree or col not in df.columns:
            continue
        families[axis] = len(tree)
        others = [f"{a}_code" for a in axes if a != axis and f"{a}_code" in df.columns]
        parent_of = {c: p for p, cs in tree.items() for c in cs}
        expected = pd.Series({p: len(cs) for p, cs in tree.items()}, name="expected")
        kids = numeric[numeric[col].isin(list(parent_of))][[*others, col, "value"]]
        kids = kids.assign(parent_code=kids[col].map(parent_of))
        sums = (
            kids.groupby([*others, "parent_code"], dropna=False, observed=True)["value"]
            .agg(["sum", "count"])
            .reset_index()
        )
        parents = numeric[numeric[col].isin(list(tree))][[*others, col, "value"]]
        parents = parents.rename(columns={col: "parent_code", "value": "parent_value"})
        merged = parents.merge(sums, on=[*others, "parent_code"], how="inner")
        merged = merged[merged["count"] == merged["parent_code"].map(expected)]
        if merged.empty:
            continue
        compared += len(merged)
        tolerance = (relative * merged["parent_value"].abs()).clip(
            lower=absolute_per_child * merged["count"]
        )
        bad = merged[(merged["sum"] - merged["parent_value"]).abs() > tolerance]
        if not bad.empty:
            bad = bad.rename(columns={"sum": "children_sum", "count": "children"})
            found.append(bad.assign(axis=axis))
    if not found:
        return HierarchyResult(compared, empty, families, single)
    mismatches = pd.concat(found, ignore_index=True)
    first = ["axis", "parent_code", "parent_value", "children_sum", "children"]
    mismatches = mismatches[first + [c for c in mismatches.columns if c not in first]]
    return HierarchyResult(compared, mismatches, families, single)
