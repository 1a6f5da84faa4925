"""Generator specs: what a generated table is (its metadata and how its values are drawn).

Why a spec file and not code: the tables the tests, demo and benchmarks need are data, reviewed
and changed like the recorded samples next to them (``estat_assets/samples/generated/``).

Spec format (a JSON file with root ``GENERATED_TABLE``; the root may be omitted over HTTP)::

    {"GENERATED_TABLE": {
        "id": "9900020202",              # 10-digit statsDataId of the generated table
        "metadata_from": "0000020202",   # table whose TABLE_INF/CLASS_INF/NOTE are reused
        "seed": 7,                       # values are a pure function of (seed, revision, cell)
        "special_rate": 0.01,            # share of cells holding a NOTE symbol (***, -, X …)
        "decimal_rate": 0.1,             # share of numeric cells rendered with a decimal ("19.0")
        "updated_date": "2025-06-20",    # TABLE_INF.UPDATED_DATE (default: the base's)
        "open_date": "2025-06-20",       # optional TABLE_INF.OPEN_DATE
        "specials": ["***", "-"],        # optional: symbols to use (default: base NOTE @chars)
        "table_inf": {"CYCLE": "年次"},  # optional: TABLE_INF fields to override
        "axes": {                        # optional per-axis overrides, applied in this order:
            "area": {"codes": ["01100", "01101"]},   # keep only these codes (CLASS order kept)
            "time": {"offset": 2, "limit": 5}        # skip the first codes, keep at most `limit`
        },
        "missing": [{"cat01": ["B1104"], "time": ["1980100000"]}]   # optional absent cells
    }}

Without ``metadata_from`` the table has its own metadata: ``table_inf`` gives its TABLE_INF (missing
fields get e-Stat's commonest values, see ``table_inf.py``), ``notes`` its NOTE legend (default
``***``, ``-``, ``X``), ``synthetic_note`` the text of its SYNTHETIC field, and every axis is
defined in ``axes`` (put in e-Stat order tab, cat01…cat15, area, time; see ``spec_axes.py`` for
``count``, ``items``, ``years``, ``quarters`` and ``from``)::

    {"GENERATED_TABLE": {"id": "9990000001", "seed": 1, "special_rate": 0.01,
        "axes": {"tab": {"count": 1, "unit": "人"}, "cat01": {"count": 100},
                 "area": {"count": 100}, "time": {"count": 100}}}}   # 1,000,000 cells

``missing`` lists blocks of cells (codes per axis; an axis left out means all its codes) that the
table does not have, as when a series starts later than the others: the table is then its axes'
cross product minus those cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from estat_assets.estat.shape import AXES

from . import spec_axes

_TABLE_ID = re.compile(r"\d{10}")


@dataclass(frozen=True)
class GeneratedSpec:
    """A parsed generator spec (see the module docstring for the JSON form)."""

    id: str
    metadata_from: str | None = None
    seed: int = 0
    special_rate: float = 0.01
    decimal_rate: float = 0.1
    updated_date: str | None = None
    open_date: str | None = None
    specials: tuple[str, ...] | None = None
    table_inf: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: tuple[dict[str, tuple[str, ...]], ...] = ()
    notes: tuple[dict[str, str], ...] | None = None
    synthetic_note: str | None = None

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> GeneratedSpec:
        """Parse ``{"GENERATED_TABLE": {...}}`` (or the bare inner object) and validate it."""
        body = document.get("GENERATED_TABLE", document)
        if not isinstance(body, dict):
            raise ValueError("GENERATED_TABLE must be an object")
        table_id = str(body.get("id", ""))
        if not _TABLE_ID.fullmatch(table_id):
            raise ValueError(f"generated table id must be 10 digits, got {table_id!r}")
        rate = float(body.get("special_rate", 0.01))
        decimal_rate = float(body.get("decimal_rate", 0.1))
        if not (0.0 <= rate <= 1.0 and 0.0 <= decimal_rate <= 1.0):
            raise ValueError("special_rate and decimal_rate must be within [0, 1]")
        axes = body.get("axes") or {}
        if not isinstance(axes, dict) or not all(isinstance(v, dict) for v in axes.values()):
            raise ValueError("axes must map an axis id to an object")
        unknown = sorted(set(axes) - set(AXES))
        if unknown:
            raise ValueError(f"unknown axis ids {unknown}; expected some of {list(AXES)}")
        base = body.get("metadata_from")
        if base is None:
            if not axes:
                raise ValueError("a spec without metadata_from must define its axes")
            for axis_id, definition in axes.items():
                spec_axes.validate(axis_id, definition)
        specials = body.get("specials")
        notes = body.get("notes")
        if notes is not None and not (
            isinstance(notes, list) and all(isinstance(n, dict) and "@char" in n for n in notes)
        ):
            raise ValueError('notes must be a list of {"@char": ..., "$": ...}')
        return cls(
            id=table_id,
            metadata_from=None if base is None else str(base),
            seed=int(body.get("seed", 0)),
            special_rate=rate,
            decimal_rate=decimal_rate,
            updated_date=body.get("updated_date"),
            open_date=body.get("open_date"),
            specials=None if specials is None else tuple(str(s) for s in specials),
            table_inf=dict(body.get("table_inf") or {}),
            axes={k: dict(v) for k, v in axes.items()},
            missing=_missing(body.get("missing")),
            notes=None
            if notes is None
            else tuple({k: str(v) for k, v in n.items()} for n in notes),
            synthetic_note=body.get("synthetic_note"),
        )


def _missing(value: Any) -> tuple[dict[str, tuple[str, ...]], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
        raise ValueError("missing must be a list of {axis id: [codes]} blocks")
    return tuple({str(k): tuple(str(c) for c in v) for k, v in b.items()} for b in value)


def synthetic_spec(
    table_id: str,
    counts: dict[str, int],
    *,
    seed: int = 0,
    special_rate: float = 0.01,
    **extra: Any,
) -> dict[str, Any]:
    """A fully synthetic spec document, e.g. for benchmarks (cells = product of counts)."""
    axes: dict[str, dict[str, Any]] = {a: {"count": int(c)} for a, c in counts.items()}
    body = {"id": table_id, "seed": seed, "special_rate": special_rate, "axes": axes, **extra}
    return {"GENERATED_TABLE": body}


def benchmark_spec(table_id: str, cells: int, *, seed: int = 0) -> dict[str, Any]:
    """A 4-axis synthetic spec with ``cells`` cells (a multiple of 10,000): 1M, 5M, …"""
    if cells <= 0 or cells % 10_000:
        raise ValueError("cells must be a positive multiple of 10,000")
    spec = synthetic_spec(
        table_id,
        {"tab": 1, "cat01": cells // 10_000, "area": 100, "time": 100},
        seed=seed,
        table_inf={"TITLE": {"@no": "1", "$": f"ベンチマーク用合成表 {cells:,} セル"}},
    )
    spec["GENERATED_TABLE"]["axes"]["cat01"]["units"] = ["人", "千円", "％"]
    return spec
