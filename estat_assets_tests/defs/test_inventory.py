"""estat.dataset_inventory: one current row per dataset, under concurrent writers, healed if stale.

The table step writes the row after its commit (real runs here); ``reconcile_inventory`` recounts
the rows a later write of their dataset made stale (a run killed between its Iceberg commit and its
inventory update, simulated by writing the domain table with ``replace_slices`` directly); the
bookkeeping tables keep a bounded history.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo

from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec
from estat_assets.estat.models import TableInfo
from estat_assets.lake import iceberg as iceberg_module
from estat_assets.lake.iceberg import (
    BOOKKEEPING_KEEP_SNAPSHOTS,
    BOOKKEEPING_MAX_SNAPSHOTS,
    PROP_DATASET,
    PROP_RUN,
    PROP_UPDATED,
    ensure_plain_table,
    ensure_table,
    fields_schema,
    replace_rows,
    replace_slices,
)
from estat_assets.lake.inventory import (
    INVENTORY_TABLE,
    inventory_status,
    loaded_release_lookup,
    read_inventory,
    reconcile_inventory,
    update_inventory,
)
from estat_assets.lake.runs import RUNS_FIELDS
from estat_assets.query.engine import DuckDBEngine
from estat_assets_tests.harness import make_lake
from estat_assets_tests.harness import test_settings as lake_settings

RECORDED = "0000020202"  # 10 rows, fiscal years 1981-1990
NAMESPACE = "estat"
DOMAIN_ID = (NAMESPACE, "population")


@pytest.fixture
def small(tmp_path, emulator, instance):
    spec = DomainSpec("population", datasets=(RECORDED,))
    return make_lake(tmp_path / "home", emulator, instance, domain=spec)


@pytest.fixture
def iceberg(tmp_path, emulator):
    """The local lake's catalog resource, with the population table created (no runs)."""
    resources = build_resources(lake_settings(tmp_path / "home", emulator.api_base))
    ensure_table(resources["iceberg"].catalog(), *DOMAIN_ID)
    return resources["iceberg"]


def _rows(dataset_id: str, year: int, n: int, tag: str = "") -> pa.Table:
    return pa.table(
        {
            "dataset_id": pa.array([dataset_id] * n, pa.string()),
            "year": pa.array([year] * n, pa.int32()),
            "value_raw": pa.array([f"{tag}{i}" for i in range(n)], pa.string()),
        }
    )


def _inventory(catalog) -> dict[str, dict]:
    return {r["dataset_id"]: r for r in read_inventory(catalog, NAMESPACE)}


def test_the_table_step_keeps_one_current_row_per_dataset(small) -> None:
    partial = small.run(RECORDED, years="1981,1982")
    assert partial.success
    catalog = small.catalog()
    rows = read_inventory(catalog, NAMESPACE)
    assert len(rows) == 1
    row = rows[0]
    # what e-Stat's TABLE_INF says about the table
    assert (row["dataset_id"], row["domain"]) == (RECORDED, "population")
    assert row["title"] == "Ｂ\u3000自然環境"
    assert row["statistics_name"] == "市区町村データ 基礎データ（廃置分合処理済）"
    assert (row["survey_code"], row["survey_name"]) == ("00200502", "社会・人口統計体系")
    assert (row["organisation_code"], row["organisation"]) == ("00200", "総務省")
    assert (row["cycle"], row["open_date"], row["updated_date"]) == (
        "年度次",
        "2025-06-20",
        "2025-06-20",
    )
    assert row["overall_total_number"] == 10 and row["synthetic"] is False
    # what the lake holds
    assert (row["rows_stored"], row["years_stored"], row["years"]) == (2, 2, "1981,1982")
    assert row["status"] == "partial"
    assert row["table_snapshot_id"] == small.iceberg().current_snapshot().snapshot_id
    assert row["last_success_run_id"] == partial.run_id and row["last_partition"] == RECORDED
    assert row["raw_manifest"].endswith(f"raw/dataset_id={RECORDED}/manifest.json")
    # a partial load is not "the release is loaded": the release sensor would still load it
    assert loaded_release_lookup(small.catalog, NAMESPACE)(RECORDED) is None

    whole = small.run(RECORDED)
    assert whole.success
    rows = read_inventory(small.catalog(), NAMESPACE)
    assert len(rows) == 1  # replaced, never appended
    row = rows[0]
    assert (row["rows_stored"], row["years_stored"]) == (10, 10)
    assert row["years"] == ",".join(str(y) for y in range(1981, 1991))
    assert row["status"] == "complete" and row["last_success_run_id"] == whole.run_id
    assert row["table_snapshot_id"] == small.iceberg().current_snapshot().snapshot_id
    assert loaded_release_lookup(small.catalog, NAMESPACE)(RECORDED) == ("2025-06-20", 10)

    mat = next(
        m for m in whole.get_asset_materialization_events() if m.asset_key.path[-1] == "table"
    ).materialization.metadata
    assert mat["dagster/partition_row_count"].value == 10
    assert mat["dataset_status"].value == "complete"
    out = DuckDBEngine(small.catalog(), NAMESPACE).query(
        f"SELECT dataset_id, rows_stored, status FROM estat.{INVENTORY_TABLE}"
    )
    assert out.to_pylist() == [{"dataset_id": RECORDED, "rows_stored": 10, "status": "complete"}]


def test_status_is_complete_partial_or_empty() -> None:
    assert inventory_status(10, 10) == "complete"
    assert inventory_status(11, 10) == "complete"
    assert inventory_status(9, 10) == "partial"
    assert inventory_status(3, None) == "partial"  # e-Stat's total unknown: never "complete"
    assert inventory_status(0, 10) == "empty"
    assert inventory_status(0, None) == "empty"


def test_concurrent_writers_end_with_the_counts_of_every_slice(iceberg) -> None:
    """Threads write slices of two datasets and each updates its row: the last writer of a
    dataset always leaves the counts of everything committed."""
    jobs = [("0000000001", year) for year in (2001, 2002, 2003, 2004)]
    jobs += [("0000000002", year) for year in (2001, 2002)]
    totals = {"0000000001": 4 * 5, "0000000002": 2 * 5}
    start = threading.Barrier(len(jobs))

    def write(job: tuple[str, int]) -> None:
        dataset_id, year = job
        catalog = iceberg.catalog()  # a catalog per thread, as per run
        start.wait()
        replace_slices(
            catalog,
            DOMAIN_ID,
            dataset_id,
            [year],
            lambda: [_rows(dataset_id, year, 5)],
            {PROP_DATASET: dataset_id, PROP_RUN: f"run-{dataset_id}-{year}"},
        )
        update_inventory(
            catalog,
            NAMESPACE,
            "population",
            dataset_id,
            TableInfo(id=dataset_id, title="t", overall_total_number=totals[dataset_id]),
            run_id=f"run-{dataset_id}-{year}",
            partition=dataset_id,
            updated_date="2026-01-01",
        )

    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(write, jobs))
    catalog = iceberg.catalog()
    rows = _inventory(catalog)
    assert set(rows) == {"0000000001", "0000000002"}
    one, two = rows["0000000001"], rows["0000000002"]
    assert (one["rows_stored"], one["years"], one["status"]) == (
        20,
        "2001,2002,2003,2004",
        "complete",
    )
    assert (two["rows_stored"], two["years"], two["status"]) == (10, "2001,2002", "complete")
    assert catalog.load_table(DOMAIN_ID).scan().to_arrow().num_rows == 30
    assert reconcile_inventory(catalog, NAMESPACE, "population") == []  # nothing left stale


def test_reconcile_recounts_a_stale_row_and_leaves_fresh_rows_alone(iceberg) -> None:
    catalog = iceberg.catalog()
    for dataset_id in ("0000000001", "0000000002"):
        replace_slices(
            catalog,
            DOMAIN_ID,
            dataset_id,
            None,
            lambda d=dataset_id: [_rows(d, 2001, 3), _rows(d, 2002, 3)],
            {PROP_DATASET: dataset_id, PROP_UPDATED: "2026-01-01", PROP_RUN: f"run-{dataset_id}"},
        )
        update_inventory(
            catalog,
            NAMESPACE,
            "population",
            dataset_id,
            TableInfo(id=dataset_id, title=f"title {dataset_id}", overall_total_number=6),
            run_id=f"run-{dataset_id}",
            partition=dataset_id,
            updated_date="2026-01-01",
        )
    fresh = _inventory(catalog)
    assert reconcile_inventory(catalog, NAMESPACE, "population") == []

    # A later run of 0000000001 committed a new release (2002 withdrawn, 2003 added) and died
    # before its inventory update: the row still counts the old snapshot.
    replace_slices(
        catalog,
        DOMAIN_ID,
        "0000000001",
        None,
        lambda: [_rows("0000000001", 2001, 3, "r2-"), _rows("0000000001", 2003, 4, "r2-")],
        {PROP_DATASET: "0000000001", PROP_UPDATED: "2026-02-01", PROP_RUN: "run-killed"},
    )
    inventory = catalog.load_table((NAMESPACE, INVENTORY_TABLE))
    commits_before = len(inventory.snapshots())
    assert _inventory(catalog) == fresh  # stale: nothing updated it

    assert reconcile_inventory(catalog, NAMESPACE, "population") == ["0000000001"]
    rows = _inventory(catalog)
    healed = rows["0000000001"]
    current = catalog.load_table(DOMAIN_ID).current_snapshot().snapshot_id
    assert (healed["rows_stored"], healed["years"], healed["status"]) == (
        7,
        "2001,2003",
        "complete",
    )
    assert healed["table_snapshot_id"] == current
    assert healed["updated_date"] == "2026-02-01"  # the release the table now holds
    assert healed["last_success_run_id"] == "run-killed"
    assert healed["title"] == "title 0000000001"  # what e-Stat said is kept
    assert rows["0000000002"] == fresh["0000000002"]  # the fresh row was not touched
    # one commit healed one row; a second reconcile finds nothing to do
    inventory = catalog.load_table((NAMESPACE, INVENTORY_TABLE))
    assert len(inventory.snapshots()) > commits_before
    after = len(inventory.snapshots())
    assert reconcile_inventory(catalog, NAMESPACE, "population") == []
    assert len(catalog.load_table((NAMESPACE, INVENTORY_TABLE)).snapshots()) == after


def test_reconcile_adds_the_row_of_a_dataset_whose_first_run_died(iceberg) -> None:
    catalog = iceberg.catalog()
    replace_slices(
        catalog,
        DOMAIN_ID,
        "0000000003",
        None,
        lambda: [_rows("0000000003", 2010, 2)],
        {PROP_DATASET: "0000000003", PROP_UPDATED: "2026-03-01", PROP_RUN: "run-first"},
    )
    assert _inventory(catalog) == {}
    assert reconcile_inventory(catalog, NAMESPACE, "population") == ["0000000003"]
    row = _inventory(catalog)["0000000003"]
    assert (row["rows_stored"], row["years"], row["updated_date"]) == (2, "2010", "2026-03-01")
    assert row["status"] == "partial"  # e-Stat's total is not known without TABLE_INF


def test_bookkeeping_history_stays_bounded_and_keeps_every_row(tmp_path, monkeypatch) -> None:
    """Many commits to a bookkeeping table keep only its recent snapshots; rows are all there.

    The bounds are made small so the test commits a dozen times instead of the real 60+.
    """
    assert 0 < BOOKKEEPING_KEEP_SNAPSHOTS < BOOKKEEPING_MAX_SNAPSHOTS
    monkeypatch.setattr(iceberg_module, "BOOKKEEPING_MAX_SNAPSHOTS", 6)
    monkeypatch.setattr(iceberg_module, "BOOKKEEPING_KEEP_SNAPSHOTS", 2)
    resources = build_resources(lake_settings(tmp_path / "home", "http://127.0.0.1:9"))
    catalog = resources["iceberg"].catalog()
    ident = (NAMESPACE, "ingestion_runs")
    table = ensure_plain_table(catalog, ident, fields_schema(RUNS_FIELDS))
    names = table.schema().column_names
    commits = 15
    counts = []
    for i in range(commits):
        row = dict.fromkeys(names)
        row.update(run_id=f"run-{i:03d}", domain="population", status="SUCCESS")
        table = replace_rows(catalog, ident, [row], EqualTo("run_id", row["run_id"]))
        counts.append(len(table.snapshots()))
    assert max(counts) <= 6
    assert min(counts[2:]) >= 2
    assert counts[-1] < commits  # history was bounded, not kept whole
    head = catalog.load_table(ident).current_snapshot().snapshot_id
    assert head in {s.snapshot_id for s in table.snapshots()}
    ids = sorted(table.scan(selected_fields=("run_id",)).to_arrow().column("run_id").to_pylist())
    assert ids == [f"run-{i:03d}" for i in range(commits)]
