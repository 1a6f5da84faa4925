"""Streaming conform: batches → one Parquet file, identical to the in-memory table."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.conform.stream import conform_to_parquet, iter_conformed
from estat_assets_tests.factories import class_obj, dumps, stats_data

CLASSES = [
    class_obj("cat01", "分類", [{"@code": "A", "@name": "甲"}, {"@code": "B", "@name": "乙"}]),
    class_obj(
        "time", "時間軸", [{"@code": f"{y}000000", "@name": f"{y}年"} for y in range(2000, 2010)]
    ),
]


def _pages(n: int) -> list[bytes]:
    pages = []
    for i in range(n):
        values = [
            {"@cat01": c, "@time": f"{2000 + i}000000", "$": v}
            for c, v in (("A", str(i)), ("B", "X" if i % 2 else "1.5"))
        ]
        doc = stats_data(
            "0000000001",
            CLASSES if i == 0 else None,
            values,
            [{"@char": "X", "$": "秘匿"}],
            total=2 * n,
            start=1 + 2 * i,
        )
        pages.append(dumps(doc, pretty=i == 3))  # one odd page takes the exact path
    return pages


@pytest.mark.parametrize("per_batch", [1, 2, 3])
def test_streamed_parquet_equals_the_in_memory_table(tmp_path, per_batch: int) -> None:
    pages = _pages(7)
    inp = ConformInput(dataset_id="0000000001", run_id="r")
    expected = conform_pages(pages, inp)
    path = tmp_path / "out.parquet"
    rows = conform_to_parquet(iter(pages), inp, path, pages_per_batch=per_batch)
    got = pq.read_table(path)
    assert rows == expected.num_rows == 14
    assert got.schema.equals(expected.schema)
    assert got.to_pylist() == expected.to_pylist()
    assert got.column("annotation").to_pylist().count("秘匿") == 3


def test_later_pages_reuse_the_first_pages_metadata_and_legend() -> None:
    batches = list(iter_conformed(_pages(4), ConformInput(dataset_id="x"), pages_per_batch=1))
    assert [b.num_rows for b in batches] == [2, 2, 2, 2]
    last = batches[-1].to_pylist()
    assert last[0]["cat01_name"] == "甲" and last[1]["annotation"] == "秘匿"


def test_empty_input_writes_nothing(tmp_path) -> None:
    assert conform_to_parquet([], ConformInput(dataset_id="x"), tmp_path / "none.parquet") == 0
    assert not (tmp_path / "none.parquet").exists()
