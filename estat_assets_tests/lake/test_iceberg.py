"""Partition replacement: idempotent, isolated, atomic, and safe under concurrent writers."""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.lake.iceberg import ensure_table, replace_partition
from estat_assets_tests.factories import sample

IDENT = ("estat", "population")


@pytest.fixture
def catalog(tmp_path):
    cat = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    ensure_table(cat, *IDENT)
    return cat


def _rows(year: int, dataset: str = "0000020202") -> pa.Table:
    t = conform_pages(
        [sample("getStatsData_0000020202_limit10.json")],
        ConformInput(dataset_id=dataset, run_id="r"),
    )
    return t.filter(pc.equal(t.column("year"), year))


def _count(cat, **eq) -> int:
    data = cat.load_table(IDENT).scan().to_arrow()
    for k, v in eq.items():
        data = data.filter(pc.equal(data.column(k), v))
    return data.num_rows


def test_rerun_replaces_instead_of_duplicating(catalog) -> None:
    for _ in range(3):
        replace_partition(catalog, IDENT, _rows(1981), "0000020202", 1981)
    replace_partition(catalog, IDENT, _rows(1982), "0000020202", 1982)
    assert _count(catalog) == 2
    assert _count(catalog, year=1981) == 1


def test_other_partitions_untouched_and_empty_slice_deletes(catalog) -> None:
    replace_partition(catalog, IDENT, _rows(1981), "0000020202", 1981)
    replace_partition(catalog, IDENT, _rows(1981, "9900020202"), "9900020202", 1981)
    replace_partition(catalog, IDENT, _rows(1981).slice(0, 0), "0000020202", 1981)
    assert _count(catalog) == 1 and _count(catalog, dataset_id="9900020202") == 1


def test_rows_of_another_slice_are_refused(catalog) -> None:
    with pytest.raises(ValueError, match="do not belong"):
        replace_partition(catalog, IDENT, _rows(1982), "0000020202", 1981)
    assert _count(catalog) == 0


def test_snapshot_summary_carries_provenance(catalog) -> None:
    tbl = replace_partition(
        catalog,
        IDENT,
        _rows(1981),
        "0000020202",
        1981,
        {"estat.updated_date": "2025-06-20", "dagster.run_id": "abc"},
    )
    summary = tbl.current_snapshot().summary
    assert summary["estat.updated_date"] == "2025-06-20" and summary["dagster.run_id"] == "abc"


def test_concurrent_writers_of_one_slice_leave_one_copy(catalog) -> None:
    errors = []

    def write():
        try:
            replace_partition(catalog, IDENT, _rows(1983), "0000020202", 1983)
        except Exception as exc:  # pragma: no cover - surfaced by the assert
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _count(catalog, year=1983) == 1
