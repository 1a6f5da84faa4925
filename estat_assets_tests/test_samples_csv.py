"""e-Stat's own CSV rendering (getSimpleStatsData, v2.1 and v3.0) of a request we conform from JSON.

The CSV is e-Stat's flattening of the same three rows: codes, labels, units and values must agree
with our conformed table byte for byte.
"""

from __future__ import annotations

import csv

import pytest

from estat_assets.conform import ConformInput, conform_pages
from estat_assets_tests.factories import FIXTURES, sample

CSV_FILES = [
    "getSimpleStatsData_0003065345_sectionHeaderFlg2__v2.1_2016-07-31.csv",
    "getSimpleStatsData_0003065345_sectionHeaderFlg2__v3.0_2020-04-12.csv",
]


def read_csv(name: str) -> list[dict[str, str]]:
    with open(FIXTURES / name, encoding="utf-8", newline="") as fh:
        lines = [row for row in csv.reader(fh) if row and row != ["VALUE"]]
    header, *rows = lines
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.mark.parametrize("name", CSV_FILES)
def test_csv_rendering_agrees_with_conformed_json(name: str) -> None:
    page = sample("getStatsData_0003065345_cdCat01_limit3_meta__v2.0_2016-02-05.json")
    rows = conform_pages([page], ConformInput(dataset_id="0003065345")).to_pylist()
    records = read_csv(name)
    assert len(records) == len(rows) == 3
    for row, rec in zip(rows, records, strict=True):
        for axis in ("cat01", "cat02", "cat03", "area", "time"):
            assert row[f"{axis}_code"] == rec[f"{axis}_code"]
        assert row["cat01_name"] == rec["趣味・娯楽の種類別行動者数等"]
        assert row["cat02_name"] == rec["性別"]
        assert row["cat03_name"] == rec["ふだんの就業状態，年齢_2011"]
        assert row["area_name"] == rec["地域 _ 2011"]
        assert row["time_name"] == rec["時間軸(年次)"]
        assert row["unit"] == rec["unit"]
        assert row["value_raw"] == rec["value"]
        if "annotation" in rec:  # v3.0 added the column
            assert (row["annotation"] or "") == rec["annotation"]
