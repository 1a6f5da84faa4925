"""estat.dataset_inventory: one current row per dataset, also under concurrent slice writes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from estat_assets.defs.inventory import INVENTORY_TABLE, read_inventory, update_inventory
from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import partition_key
from estat_assets.estat.models import TableInfo
from estat_assets.lake.iceberg import ensure_table, replace_partition
from estat_assets.query.engine import DuckDBEngine


def test_table_step_keeps_the_dataset_row_current(lake) -> None:
    defs, instance, resources, _ = lake
    job = defs.resolve_job_def(job_name("population"))
    runs = [
        job.execute_in_process(partition_key=str(partition_key("0000020202", y)), instance=instance)
        for y in ("1981", "1982")
    ]
    rows = read_inventory(resources["iceberg"].catalog(), "estat")
    assert len(rows) == 1
    row = rows[0]
    assert row["dataset_id"] == "0000020202" and row["domain"] == "population"
    assert row["survey_code"] == "00200502" and row["organisation"] == "総務省"
    assert row["title"] and row["open_date"] and row["updated_date"] == "2025-06-20"
    assert row["overall_total_number"] == 10
    assert (row["rows_stored"], row["years_stored"], row["years"]) == (2, 2, "1981,1982")
    assert row["status"] == "partial"  # 2 of the table's 10 rows are loaded
    assert row["last_success_run_id"] == runs[-1].run_id
    assert row["last_partition"] == "0000020202|1982"
    assert row["raw_manifest"].endswith("year=1982/manifest.json")
    mats = runs[-1].get_asset_materialization_events()
    table_meta = next(m for m in mats if m.asset_key.path[-1] == "table").materialization.metadata
    assert table_meta["dataset_rows_stored"].value == 2
    assert table_meta["raw_manifest"].value.endswith("manifest.json")
    out = DuckDBEngine(resources["iceberg"].catalog(), "estat").query(
        f"SELECT dataset_id, rows_stored, status FROM estat.{INVENTORY_TABLE}"
    )
    assert out.to_pylist() == [{"dataset_id": "0000020202", "rows_stored": 2, "status": "partial"}]


def _slice(dataset_id: str, year: int, n: int) -> pa.Table:
    return pa.table(
        {
            "dataset_id": pa.array([dataset_id] * n, pa.string()),
            "year": pa.array([year] * n, pa.int32()),
            "value_raw": pa.array([str(i) for i in range(n)], pa.string()),
        }
    )


def test_concurrent_writers_leave_the_counts_of_every_slice(lake) -> None:
    _, _, resources, _ = lake
    iceberg = resources["iceberg"]
    catalog = iceberg.catalog()
    ensure_table(catalog, "estat", "population")
    info = TableInfo(id="0000000001", title="t", overall_total_number=4 * 5)

    def write(year: int) -> None:
        cat = iceberg.catalog()
        replace_partition(
            cat, ("estat", "population"), _slice("0000000001", year, 5), "0000000001", year
        )
        update_inventory(
            cat,
            "estat",
            "population",
            "0000000001",
            info,
            run_id=f"run-{year}",
            partition=f"0000000001|{year}",
            updated_date="2026-01-01",
        )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, [2001, 2002, 2003, 2004]))
    rows = read_inventory(iceberg.catalog(), "estat")
    assert len(rows) == 1
    assert rows[0]["rows_stored"] == 20 and rows[0]["years"] == "2001,2002,2003,2004"
    assert rows[0]["status"] == "complete"


def test_bookkeeping_history_stays_bounded(tmp_path) -> None:
    """Many commits to a bookkeeping table keep only its recent snapshots; rows are all there."""
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.expressions import EqualTo

    from estat_assets.defs.audit import RUNS_FIELDS
    from estat_assets.defs.inventory import (
        BOOKKEEPING_KEEP_SNAPSHOTS,
        BOOKKEEPING_MAX_SNAPSHOTS,
        ensure_plain_table,
        fields_schema,
        replace_rows,
    )

    cat = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    ident = ("estat", "ingestion_runs")
    table = ensure_plain_table(cat, ident, fields_schema(RUNS_FIELDS))
    names = table.schema().column_names
    for i in range(BOOKKEEPING_MAX_SNAPSHOTS + 5):
        row = dict.fromkeys(names)
        row.update(run_id=f"run-{i:03d}", domain="population", status="SUCCESS")
        table = replace_rows(cat, ident, [row], EqualTo("run_id", row["run_id"]))
    assert len(table.snapshots()) <= BOOKKEEPING_MAX_SNAPSHOTS
    assert len(table.snapshots()) >= BOOKKEEPING_KEEP_SNAPSHOTS
    ids = sorted(table.scan(selected_fields=("run_id",)).to_arrow().column("run_id").to_pylist())
    assert ids == [f"run-{i:03d}" for i in range(BOOKKEEPING_MAX_SNAPSHOTS + 5)]
