"""A new release of a table: what ``TableStore.republish`` and ``/_emulator/republish`` apply.

Why: revision handling can only be tested against the ways e-Stat really republishes a table: a new
UPDATED_DATE with some values revised, periods added or withdrawn (the time code appears in or
disappears from CLASS_INF together with its cells), single cells added or dropped, or nothing but a
new date. JSON form (every key optional; ``statsDataId`` is ignored here)::

    {"updated_date": "2025-07-01",                      # default: the day after the current one
     "perturb": true,                                   # new values for every cell
     "revise": {"time": ["2020100000"]},                # new values for this block (or a list)
     "remove_items": {"time": ["1980100000"]},          # codes leave CLASS_INF with their cells
     "remove_cells": [{"area": ["01100"], "time": ["1981100000"]}],   # cells go, codes stay
     "add_items": {"time": [{"@code": "2024100000", "@name": "2024年度", "@level": "1"}]},
     "add_cells": [{"@tab": "00001", "@cat01": "B1101", "@area": "01100",
                    "@time": "2024100000", "@unit": "ｈａ", "$": "112121"}]}

How a test triggers the three release patterns (over HTTP the answer is the table's summary:
UPDATED_DATE, OVERALL_TOTAL_NUMBER, revision; a bad release is HTTP 400 and changes nothing)::

    # (a) new UPDATED_DATE, some values revised
    POST /_emulator/republish {"statsDataId": "9900020202", "updated_date": "2025-09-01",
                               "revise": {"time": ["2020100000"]}}
    store.republish("9900020202", "2025-09-01", revise={"time": ["2020100000"]})
    # (b) rows removed and added: a year withdrawn (data and CLASS_INF), a year and a cell added
    POST /_emulator/republish {"statsDataId": "0000020202", "updated_date": "2025-07-01",
                               "remove_items": {"time": ["1981100000"]},
                               "add_items": {"time": [{"@code": "2024100000", ...}]},
                               "add_cells": [{"@tab": "00001", ..., "$": "112121"}]}
    store.republish("0000020202", "2025-07-01", remove_items=..., add_items=..., add_cells=...)
    # (c) nothing but a new UPDATED_DATE
    POST /_emulator/republish {"statsDataId": "0000020202", "updated_date": "2025-10-10",
                               "perturb": false}
    store.republish("0000020202", "2025-10-10", perturb=False)

In-process, ``store.release(table_id, Release.from_dict(...))`` is the same call; while a client
pages, a ``republish`` fault rule with a ``release`` applies one between two requests.

A block names cells by codes per axis; an axis left out stands for all its codes. ``add_cells`` are
VALUE rows: a recorded table serves them as given (codes must be in CLASS_INF, via ``add_items`` if
new); a generated table computes values, so there they only restore removed cells (no ``$``).
Changes apply in the order add_items, remove_items, remove_cells, add_cells, revise/perturb, and
all-or-nothing: an invalid release leaves the table as it was. ``perturb`` left out means: new
values everywhere for a generated table given no other change (the old behaviour), otherwise none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_KEYS = {
    "statsDataId",
    "updated_date",
    "perturb",
    "revise",
    "remove_items",
    "remove_cells",
    "add_items",
    "add_cells",
}

Codes = tuple[str, ...]


@dataclass(frozen=True)
class Release:
    """A parsed release (see the module docstring for the JSON form)."""

    updated_date: str | None = None
    perturb: bool | None = None
    revise: tuple[dict[str, Codes], ...] = ()
    remove_items: dict[str, Codes] = field(default_factory=dict)
    remove_cells: tuple[dict[str, Codes], ...] = ()
    add_items: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    add_cells: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Release:
        """Parse and validate the JSON form."""
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ValueError(f"unknown release fields {unknown}; expected some of {sorted(_KEYS)}")
        perturb = data.get("perturb")
        if perturb is not None and not isinstance(perturb, bool):
            raise ValueError("perturb must be true or false")
        date = data.get("updated_date")
        return cls(
            updated_date=None if date is None else str(date),
            perturb=perturb,
            revise=_blocks(data.get("revise"), "revise"),
            remove_items=_codes_by_axis(data.get("remove_items"), "remove_items"),
            remove_cells=_blocks(data.get("remove_cells"), "remove_cells"),
            add_items=_items_by_axis(data.get("add_items")),
            add_cells=_rows(data.get("add_cells")),
        )

    @property
    def has_changes(self) -> bool:
        """True if the release says more than a new date (and perturb)."""
        return bool(
            self.revise
            or self.remove_items
            or self.remove_cells
            or self.add_items
            or self.add_cells
        )

    def whole_table_perturb(self, kind: str) -> bool:
        """Whether every cell gets a new value (see the module docstring for the default)."""
        if self.perturb is not None:
            return self.perturb
        return kind == "generated" and not self.has_changes


def _codes(value: Any, where: str) -> Codes:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: expected a non-empty list of codes")
    return tuple(str(v) for v in value)


def _codes_by_axis(value: Any, where: str) -> dict[str, Codes]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object mapping axis ids to codes")
    return {str(axis): _codes(codes, f"{where}.{axis}") for axis, codes in value.items()}


def _blocks(value: Any, where: str) -> tuple[dict[str, Codes], ...]:
    if value is None:
        return ()
    blocks = value if isinstance(value, list) else [value]
    return tuple(_codes_by_axis(b, where) for b in blocks)


def _items_by_axis(value: Any) -> dict[str, tuple[dict[str, Any], ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("add_items: expected an object mapping axis ids to CLASS items")
    out: dict[str, tuple[dict[str, Any], ...]] = {}
    for axis, items in value.items():
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError(f"add_items.{axis}: expected a list of CLASS objects")
        out[str(axis)] = tuple({k: str(v) for k, v in item.items()} for item in items)
    return out


def _rows(value: Any) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    rows = value if isinstance(value, list) else [value]
    if not all(isinstance(r, dict) for r in rows):
        raise ValueError("add_cells: expected VALUE objects")
    return tuple({k: str(v) for k, v in row.items()} for row in rows)
