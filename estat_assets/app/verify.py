"""Verify a figure: does the official value (as loaded from e-Stat) agree with a claim?

The claim is a number as someone wrote it (``364.9``, ``1,234``, ``３６５``, ``12.5%``) and what it
is about: a dataset and axis filters (codes or names, Japanese or English, as in ``series``).
The matching cells are read at one Iceberg snapshot. A claim agrees with a cell when it equals the
official value rounded to the claim's own precision (``365`` agrees with 364.9, ``364.8`` does
not), or is within ``tolerance`` (absolute) or ``relative_tolerance`` (a fraction) when given.

Verdicts: ``agrees``, ``disagrees``, ``ambiguous`` (the filters match cells with different values:
pin the axes listed), ``no_official_value`` (the cell holds a symbol such as ``***``, with its
meaning), ``not_found`` (no cell matches).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from estat_assets import CREDIT_NOTICE, CREDIT_NOTICE_EN
from estat_assets.app.citation import Citation, cite
from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError
from estat_assets.app.series import read_cells, tidy

MAX_CELLS = 50


@dataclass
class VerifyAnswer:
    stats_data_id: str
    claimed: str
    claimed_value: float
    verdict: str  # agrees | disagrees | ambiguous | no_official_value | not_found
    explanation: str
    official_value: float | None
    official_value_raw: str | None
    unit: str | None
    difference: float | None
    tolerance: float
    cells: list[dict[str, Any]]
    matching_cells: int
    filters: list[dict[str, Any]]
    fixed: dict[str, dict[str, Any]]
    pin_axes: list[str]
    citation: Citation
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stats_data_id": self.stats_data_id,
            "claimed": self.claimed,
            "claimed_value": self.claimed_value,
            "verdict": self.verdict,
            "explanation": self.explanation,
            "official_value": self.official_value,
            "official_value_raw": self.official_value_raw,
            "unit": self.unit,
            "difference": self.difference,
            "tolerance": self.tolerance,
            "cells": self.cells,
            "matching_cells": self.matching_cells,
            "filters": self.filters,
            "fixed": self.fixed,
            "pin_axes": self.pin_axes,
            "citation": self.citation.to_dict(),
            "credit": CREDIT_NOTICE,
            "credit_en": CREDIT_NOTICE_EN,
            "notes": self.notes,
        }


def parse_claim(claimed: str | float | int) -> tuple[float, int]:
    """A claimed number and its decimals: ``'1,234.50'`` → (1234.5, 2)."""
    if isinstance(claimed, bool):
        raise AppError("bad_claim", f"claim {claimed!r} is not a number", "give a number")
    text = claimed if isinstance(claimed, str) else repr(claimed)
    text = unicodedata.normalize("NFKC", text).strip()
    text = text.replace(",", "").replace(" ", "").removesuffix("%").replace("−", "-")
    if not re.fullmatch(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(e[-+]?[0-9]+)?", text, re.I):
        raise AppError(
            "bad_claim",
            f"claim {claimed!r} is not a number",
            "give the figure as digits, e.g. 364.9 or 1,234 (no units)",
            retryable=True,
        )
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise AppError("bad_claim", f"claim {claimed!r} is not a number", "give digits") from None
    exponent = number.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return float(number), decimals


def _agrees(official: float, claimed: float, tolerance: float) -> bool:
    return abs(official - claimed) <= tolerance + 1e-12 * max(1.0, abs(official))


def verify(
    ctx: LakeContext,
    dataset_id: str,
    claimed: str | float,
    filters: Mapping[str, str | Sequence[str]] | None = None,
    *,
    tolerance: float | None = None,
    relative_tolerance: float | None = None,
    as_of: str | None = None,
) -> VerifyAnswer:
    """Does ``claimed`` agree with the official value (as published on ``as_of``, if given)?"""
    value, decimals = parse_claim(claimed)
    cells = read_cells(ctx, dataset_id, filters, as_of)
    columns, rows, fixed = tidy(cells)
    rounding = 0.5 * 10 ** (-decimals)
    allowed = max(
        rounding,
        tolerance or 0.0,
        abs(value) * (relative_tolerance or 0.0),
    )
    notes = []
    if tolerance or relative_tolerance:
        notes.append(f"tolerance {allowed:g} (the larger of rounding and the one given)")
    else:
        notes.append(f"a claim of {decimals} decimals agrees within ±{rounding:g} (rounding)")
    citation = cite(
        ctx,
        dataset_id,
        domain=cells.domain,
        table=cells.table,
        snapshot_id=cells.snapshot_id,
        info_en=cells.info_en,
    )
    shown = []
    for row in rows[:MAX_CELLS]:
        official = row.get("value")
        row = dict(row)
        row["agrees"] = None if official is None else _agrees(official, value, allowed)
        shown.append(row)
    numbers = {r["value"] for r in rows if r.get("value") is not None}
    varying = [
        c.removesuffix("_code")
        for c in columns
        if c.endswith("_code") and len({r.get(c) for r in rows}) > 1
    ]
    official_value = official_raw = unit = difference = None
    pin: list[str] = []
    if not rows:
        verdict = "not_found"
        explanation = "no cell of the table matches these filters"
    elif len(numbers) > 1:
        agree = [r for r in shown if r["agrees"]]
        verdict = "ambiguous"
        pin = varying
        explanation = (
            f"{len(rows)} cells match, with {len(numbers)} different values "
            f"({len(agree)} of them agree with the claim): pin {', '.join(pin)}"
        )
    elif not numbers:
        raw = rows[0].get("value_raw")
        verdict = "no_official_value"
        official_raw = raw
        meaning = rows[0].get("annotation")
        explanation = f"the official cell holds {raw!r}" + (f" ({meaning})" if meaning else "")
    else:
        official_value = next(iter(numbers))
        official_raw = rows[0].get("value_raw")
        unit = rows[0].get("unit")
        # in decimal, so 1965 − 1965.4 is −0.4, not −0.40000000000009095
        difference = float(Decimal(repr(value)) - Decimal(repr(official_value)))
        if _agrees(official_value, value, allowed):
            verdict = "agrees"
            how = "exactly" if difference == 0 else f"within ±{allowed:g}"
            explanation = f"the official value is {official_raw} {unit or ''}".rstrip() + f": {how}"
        else:
            verdict = "disagrees"
            explanation = (
                f"the official value is {official_raw} {unit or ''}".rstrip()
                + f"; the claim differs by {difference:+g}"
            )
        if len(rows) > 1:
            notes.append(f"{len(rows)} cells match, all with the same value")
    return VerifyAnswer(
        stats_data_id=dataset_id,
        claimed=str(claimed),
        claimed_value=value,
        verdict=verdict,
        explanation=explanation,
        official_value=official_value,
        official_value_raw=official_raw,
        unit=unit,
        difference=difference,
        tolerance=allowed,
        cells=shown,
        matching_cells=len(rows),
        filters=[f.to_dict() for f in cells.filters],
        fixed=fixed,
        pin_axes=pin,
        citation=citation,
        notes=notes,
    )
