"""Numbers beyond the DOUBLE range are never stored as ±inf: value null, the reason annotated."""

from __future__ import annotations

import math

import orjson

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.conform.table import OUT_OF_RANGE


def _page(values: list[tuple[str, str]]) -> bytes:
    rows = [{"@time": t, "$": v} for t, v in values]
    return orjson.dumps(
        {
            "GET_STATS_DATA": {
                "RESULT": {"STATUS": 0},
                "STATISTICAL_DATA": {
                    "RESULT_INF": {"TOTAL_NUMBER": len(rows)},
                    "TABLE_INF": {"@id": "0000000001"},
                    "DATA_INF": {"NOTE": {"@char": "-", "$": "該当数値なし"}, "VALUE": rows},
                },
            }
        }
    )


def test_out_of_range_numbers_are_null_with_an_annotation() -> None:
    table = conform_pages(
        [
            _page(
                [
                    ("2020000000", "1e400"),
                    ("2021000000", "-1e400"),
                    ("2022000000", "1.5"),
                    ("2023000000", "-"),
                    ("2024000000", "1e308"),
                ]
            )
        ],
        ConformInput(dataset_id="0000000001"),
    )
    rows = table.select(["value_raw", "value", "annotation"]).to_pylist()
    assert rows[0] == {"value_raw": "1e400", "value": None, "annotation": OUT_OF_RANGE}
    assert rows[1] == {"value_raw": "-1e400", "value": None, "annotation": OUT_OF_RANGE}
    assert rows[2] == {"value_raw": "1.5", "value": 1.5, "annotation": None}
    assert rows[3] == {"value_raw": "-", "value": None, "annotation": "該当数値なし"}
    assert rows[4]["value"] == 1e308 and math.isfinite(rows[4]["value"])
    assert not any(v is not None and math.isinf(v) for v in table.column("value").to_pylist())
