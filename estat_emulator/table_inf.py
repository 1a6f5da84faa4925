"""TABLE_INF as e-Stat 3.0 sends it: every field, in e-Stat's order.

Why: peers validate TABLE_INF strictly (estat-api-dlt-helper 0.3.2 requires COLLECT_AREA,
DESCRIPTION, STATISTICS_NAME_SPEC and TITLE_SPEC), and a generated table built on a v2 recording
lacks the fields that API 3.0 added. Generated tables are therefore completed here; recorded tables
are served as recorded and never pass through this module.
"""

from __future__ import annotations

from typing import Any

from estat_assets.estat.shape import text

# The fields of a real TABLE_INF, in the order e-Stat sends them (see ../shared/estat-api.md §3).
FIELD_ORDER: tuple[str, ...] = (
    "@id",
    "STAT_NAME",
    "GOV_ORG",
    "STATISTICS_NAME",
    "TITLE",
    "CYCLE",
    "SURVEY_DATE",
    "OPEN_DATE",
    "SMALL_AREA",
    "COLLECT_AREA",
    "MAIN_CATEGORY",
    "SUB_CATEGORY",
    "OVERALL_TOTAL_NUMBER",
    "UPDATED_DATE",
    "STATISTICS_NAME_SPEC",
    "DESCRIPTION",
    "TITLE_SPEC",
)

# Used when neither the base table nor the spec gives the field: the commonest real values.
_DEFAULTS: dict[str, Any] = {
    "STAT_NAME": {"@code": "99999999", "$": "合成統計"},
    "GOV_ORG": {"@code": "99999", "$": "estat-lake emulator"},
    "CYCLE": "-",
    "SURVEY_DATE": 0,
    "SMALL_AREA": 0,
    "COLLECT_AREA": "該当なし",  # what most survey tables say (every census table in the samples)
    "MAIN_CATEGORY": {"@code": "99", "$": "その他"},
    "SUB_CATEGORY": {"@code": "99", "$": "その他"},
    "DESCRIPTION": "",  # e-Stat sends the empty string when a table has no explanation
}


def complete(inf: dict[str, Any], *, statistics_name: str, title: str) -> dict[str, Any]:
    """``inf`` with every missing field filled and all fields in e-Stat order (extras last).

    ``statistics_name`` and ``title`` are the unlabelled texts the two ``*_SPEC`` defaults are made
    of (e-Stat's spec fields split the same texts into parts). Dates default to each other.
    """
    filled = dict(inf)
    for key, value in _DEFAULTS.items():
        filled.setdefault(key, value)
    filled.setdefault("STATISTICS_NAME", statistics_name)
    filled.setdefault("TITLE", title)
    updated = filled.get("UPDATED_DATE") or filled.get("OPEN_DATE") or "2025-01-01"
    filled.setdefault("UPDATED_DATE", updated)
    filled.setdefault("OPEN_DATE", updated)
    filled.setdefault("OVERALL_TOTAL_NUMBER", 0)
    filled.setdefault("STATISTICS_NAME_SPEC", {"TABULATION_CATEGORY": statistics_name})
    filled.setdefault("TITLE_SPEC", {"TABLE_NAME": title})
    ordered = {key: filled[key] for key in FIELD_ORDER if key in filled}
    ordered.update((key, value) for key, value in filled.items() if key not in ordered)
    return ordered


def plain_text(value: Any) -> str:
    """The text of a TITLE/STATISTICS_NAME node (plain string or ``{"@no", "$"}``)."""
    return text(value) or ""
