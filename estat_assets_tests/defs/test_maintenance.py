"""The maintenance job: expire old snapshots (keeping the last K), compact many-file slices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pytest

from estat_assets.defs.maintenance import lake_maintenance_job, maintain
from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.lake.iceberg import align, ensure_table, replace_partition, slice_filter


@pytest.fixture
def iceberg(tmp_path):
    (tmp_path / "wh").mkdir()
    return IcebergCatalogResource(
        catalog_type="sql", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=f"file://{tmp_path}/wh"
    )


def _rows(year: int, n: int, tag: str) -> pa.Table:
    return pa.table(
        {
            "dataset_id": pa.array(["0000000001"] * n, pa.string()),
            "year": pa.array([year] * n, pa.int32()),
            "value_raw": pa.array([f"{tag}{i}" for i in range(n)], pa.string()),
        }
    )


def test_expire_keeps_the_last_snapshots_and_compact_keeps_every_row(iceberg) -> None:
    catalog = iceberg.catalog()
    ident = ("estat", "population")
    ensure_table(catalog, *ident)
    for i in range(4):  # four releases of slice 2001: four snapshots
        replace_partition(catalog, ident, _rows(2001, 3, f"r{i}-"), "0000000001", 2001)
    table = catalog.load_table(ident)
    for i in range(3):  # three small appends to slice 2002: three files
        table.append(align(_rows(2002, 2, f"a{i}-"), table.schema().as_arrow()))
        table = catalog.load_table(ident)
    assert len(table.snapshots()) >= 7  # an overwrite may be a delete and an append
    files_2002 = [t for t in table.scan(row_filter=slice_filter("0000000001", 2002)).plan_files()]
    assert len(files_2002) == 3

    # Nothing is old enough yet: nothing expires, the many-file slice is compacted.
    report = maintain(catalog, "estat", older_than_days=30, retain_last=2, max_files_per_slice=1)
    assert report[0]["compacted"] == ["0000000001|2002 (3 files)"]
    assert report[0]["expired_snapshots"] == 0
    table = catalog.load_table(ident)
    before = len(table.snapshots())
    assert len(list(table.scan(row_filter=slice_filter("0000000001", 2002)).plan_files())) == 1
    rows = table.scan().to_arrow()
    assert rows.num_rows == 3 + 6
    assert sorted(rows.filter(pa.compute.equal(rows["year"], 2002))["value_raw"].to_pylist()) == [
        f"a{i}-{j}" for i in range(3) for j in range(2)
    ]

    # Later: everything is older than the cutoff, the last two snapshots stay.
    later = datetime.now(UTC) + timedelta(days=31)
    report = maintain(catalog, "estat", 30, retain_last=2, max_files_per_slice=8, now=later)
    table = catalog.load_table(ident)
    assert report[0]["expired_snapshots"] == before - 2 and len(table.snapshots()) == 2
    assert table.scan().to_arrow().num_rows == 9  # the current data is untouched


def test_maintenance_job_runs_over_the_namespace(iceberg) -> None:
    catalog = iceberg.catalog()
    ensure_table(catalog, "estat", "population")
    replace_partition(catalog, ("estat", "population"), _rows(2001, 1, "x"), "0000000001", 2001)
    with dg.instance_for_test() as instance:
        result = lake_maintenance_job.execute_in_process(
            instance=instance,
            resources={"iceberg": iceberg},
            run_config={"ops": {"maintain_tables": {"config": {"older_than_days": 0.0}}}},
        )
    assert result.success
    report = result.output_for_node("maintain_tables")
    assert report[0]["table"] == "estat.population" and report[0]["snapshots_left"] == 1
