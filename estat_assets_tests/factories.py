"""Builders for e-Stat-shaped documents, so tests can make every shape the API is known to send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

SAMPLES = Path(__file__).resolve().parent.parent / "estat_assets" / "samples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def sample(name: str) -> bytes:
    matches = list(SAMPLES.glob(f"*/{name}"))
    assert len(matches) == 1, name
    return matches[0].read_bytes()


def one_or_many(items: list[Any], single_as_object: bool = True) -> Any:
    """XML→JSON: one element is an object, several a list."""
    if single_as_object and len(items) == 1:
        return items[0]
    return items


def class_obj(axis: str, name: str, items: list[dict], single_as_object=True) -> dict:
    return {"@id": axis, "@name": name, "CLASS": one_or_many(items, single_as_object)}


def stats_data(
    table_id: str,
    class_objs: list[dict] | None,
    values: list[dict],
    notes: list[dict] | None = None,
    total: int | None = None,
    start: int = 1,
    updated: str = "2024-01-01",
    single_as_object: bool = True,
    next_key: int | None = None,
) -> dict:
    total = len(values) if total is None else total
    result_inf: dict[str, Any] = {"TOTAL_NUMBER": total}
    if values:
        result_inf.update({"FROM_NUMBER": start, "TO_NUMBER": start + len(values) - 1})
    if next_key:
        result_inf["NEXT_KEY"] = next_key
    data: dict[str, Any] = {
        "RESULT_INF": result_inf,
        "TABLE_INF": {"@id": table_id, "TITLE": "テスト表", "UPDATED_DATE": updated},
    }
    if class_objs is not None:
        data["CLASS_INF"] = {"CLASS_OBJ": one_or_many(class_objs, single_as_object)}
    if values or notes:
        data_inf: dict[str, Any] = {}
        if notes:
            data_inf["NOTE"] = one_or_many(notes, single_as_object)
        data_inf["VALUE"] = one_or_many(values, single_as_object)
        data["DATA_INF"] = data_inf
    else:
        data["DATA_INF"] = ""
    return {
        "GET_STATS_DATA": {
            "RESULT": {
                "STATUS": 0,
                "ERROR_MSG": "正常に終了しました。",
                "DATE": "2024-01-02T00:00:00.000+09:00",
            },
            "PARAMETER": {"LANG": "J", "STATS_DATA_ID": table_id, "DATA_FORMAT": "J"},
            "STATISTICAL_DATA": data,
        }
    }


def dumps(document: dict, pretty: bool = False) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 if pretty else 0)
