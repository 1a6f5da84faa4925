"""What each conformed column means: the column schema shown in the Dagster catalog and docs."""

from __future__ import annotations

import pyarrow as pa

from estat_assets.conform.rules import LABEL_SUFFIX, SEMANTIC_COLUMNS

BASE = {
    "dataset_id": "e-Stat statsDataId of the table the row comes from",
    "year": "year of the time code (calendar or fiscal); 0 when the code has no readable year "
    "and the table has no time axis or survey date",
    "period_kind": "year, fiscal_year, month, quarter or other (parsed from the time code)",
    "month": "month of a monthly time code",
    "quarter": "quarter of a quarterly time code",
    "unit": "the VALUE's @unit, else the unit of its class item",
    "value_raw": "the value exactly as e-Stat sent it (the $ string)",
    "value": "value_raw as a number; null when it is a symbol (***, X, -, …) or out of range",
    "annotation": "the table's NOTE meaning of value_raw (e.g. 数値が秘匿されているもの)",
    "source_updated_date": "e-Stat's UPDATED_DATE of the release the row was loaded from",
    "run_id": "the Dagster run that wrote the row",
    "quarantine_reason": "why a row-level check held the row back",
    "source_row": "the row's position among the VALUEs the run downloaded",
}
AXIS = {
    "tab": "表章項目 (tabulation item)",
    "area": "地域 (area)",
    "time": "時間軸 (time)",
    **{f"cat{i:02d}": f"分類事項{i:02d} (classification {i})" for i in range(1, 16)},
}


def describe(name: str) -> str:
    if name in BASE:
        return BASE[name]
    for axis, label in AXIS.items():
        if name == f"{axis}_code":
            return f"code of the {label} axis (CLASS_INF @code)"
        if name == f"{axis}_name":
            return "name of that code, byte-true Japanese (CLASS_INF @name)"
    for column in SEMANTIC_COLUMNS:
        if name == column:
            return f"{column}: the code of the axis domains.yaml maps to it"
        if name == f"{column}{LABEL_SUFFIX}":
            return f"{column}: the name of that code"
    return ""


def documented(schema: pa.Schema) -> list[tuple[str, str, str]]:
    """(name, type, description) for every column of ``schema``."""
    return [(f.name, str(f.type), describe(f.name)) for f in schema]
