"""Domain rules from ``domains.yaml``: which e-Stat axis becomes which semantic column.

An axis is matched by its label (``CLASS_OBJ/@name``, e.g. ``性別``, ``年齢階級``) with a regular
expression, never by its id (``cat02`` means something different in every table). A matched axis
is copied into the semantic column (its code) and ``<column>_label`` (its name); the generic
``catNN_code``/``catNN_name`` columns stay as they are, and unmatched axes stay generic only.

The set of semantic columns is fixed here (the Iceberg table schema is built from it); a domain's
rules pick from it, so a typo in ``domains.yaml`` fails at load time instead of adding a column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from estat_assets.estat.models import ClassObj
from estat_assets.estat.shape import AXES

SEMANTIC_COLUMNS: tuple[str, ...] = (
    "gender",
    "age_group",
    "industry_code",
    "indicator_type",
    "employment_status",
    "occupation",
    "school_type",
    "grade_level",
    "disease_code",
    "facility_type",
)
LABEL_SUFFIX = "_label"


@dataclass(frozen=True)
class SemanticRule:
    """``column`` takes the codes of the first axis (e-Stat order) whose name matches."""

    column: str
    pattern: str

    def matches(self, axis_name: str) -> bool:
        return re.search(self.pattern, axis_name) is not None


def parse_rules(rules: Mapping[str, Any] | None, where: str = "rules") -> tuple[SemanticRule, ...]:
    """``rules.semantic_columns: {column: regex}`` → rules; errors name the field to fix."""
    body = (rules or {}).get("semantic_columns") or {}
    if not isinstance(body, Mapping):
        raise ValueError(f"{where}.semantic_columns: expected a mapping column → regex")
    out = []
    for column, pattern in body.items():
        if column not in SEMANTIC_COLUMNS:
            raise ValueError(
                f"{where}.semantic_columns: unknown column {column!r}; "
                f"choose from {', '.join(SEMANTIC_COLUMNS)}"
            )
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise ValueError(f"{where}.semantic_columns.{column}: bad regex: {exc}") from None
        out.append(SemanticRule(str(column), str(pattern)))
    return tuple(out)


def match_axes(rules: Iterable[SemanticRule], classes: Sequence[ClassObj]) -> dict[str, str]:
    """{semantic column: axis id} for this table. A column takes one axis (the first match);
    an axis may feed several columns (``ふだんの就業状態，年齢`` is employment status and age)."""
    ordered = sorted((c for c in classes if c.id in AXES), key=lambda c: AXES.index(c.id))
    matched: dict[str, str] = {}
    for rule in rules:
        for cls in ordered:
            if rule.matches(cls.name):
                matched[rule.column] = cls.id
                break
    return {c: matched[c] for c in SEMANTIC_COLUMNS if c in matched}
