"""An asset backfill through the real webserver and daemon (``dagster dev`` on loopback).

The lake's own Dagster home (``ESTAT_LAKE_HOME/dagster``, laid out and configured by
``runner.open_instance``: the packaged ``dagster.yaml`` with ``EstatRunCoordinator``), the UI's
GraphQL ``launchPartitionBackfill`` with the domain's assets and two statsDataIds as partition
keys. Each dataset must load as ONE run (raw → conformed → table → class codes …), every run must
carry ``estat/domain`` and ``estat/dataset_id`` (the coordinator adds them: asset runs have only
Dagster's tags), and the audit sensor's ``estat.ingestion_runs`` rows and the
``estat.dataset_inventory`` rows must be right. The tables are the recorded 10-row 0000020202 and
3-row 0003065345, so the run overhead dominates.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from estat_assets.instance import DATASET_TAG, DOMAIN_TAG
from estat_assets.runner import instance_yaml
from estat_assets_tests import devserver

ROOT = Path(__file__).resolve().parents[2]
DATASETS = {"0000020202": 10, "0003065345": 3}  # recorded tables and their rows
LAYERS = ["class_codes", "conformed", "raw", "table"]


@pytest.fixture
def domains_file(tmp_path) -> Path:
    path = tmp_path / "domains.yaml"
    path.write_text(
        "domains:\n  population:\n    datasets: ['0000020202', '0003065345']\n", encoding="utf-8"
    )
    return path


@pytest.mark.slow
def test_asset_backfill_of_two_datasets_is_one_run_each(tmp_path, emulator, domains_file) -> None:
    ui = devserver
    home = tmp_path / "home"
    env = ui.lake_env(home, emulator.api_base, domains_file)
    dagster_home = ui.prepare_home(env)
    assert dagster_home == home / "dagster"
    # the packaged dagster.yaml, its storage path written out
    assert (dagster_home / "dagster.yaml").read_bytes() == instance_yaml(dagster_home)
    assert ui.register_datasets(env, "population", list(DATASETS)) == sorted(DATASETS)
    with ui.DagsterDev(env, tmp_path / "dagster-dev.log") as dev:
        keys = ui.group_asset_keys(dev, "population")  # the chain and what runs in its runs
        assert {tuple(k) for k in keys} >= {("population", layer) for layer in LAYERS}
        backfill = ui.launch_asset_backfill(dev, keys, list(DATASETS))
        runs = ui.wait_for_backfill(dev, backfill, len(DATASETS))
        assert [r["status"] for r in runs] == ["SUCCESS"] * len(runs), dev.tail()
        # one run per dataset, each materializing the whole chain of its partition
        assert len(runs) == len(DATASETS), runs
        tags = {ui.tags_of(r)["dagster/partition"]: ui.tags_of(r) for r in runs}
        assert sorted(tags) == sorted(DATASETS)
        for dataset, t in tags.items():
            assert t[DOMAIN_TAG] == "population" and t[DATASET_TAG] == dataset
            assert t["dagster/backfill"] == backfill
        for run in runs:
            assert run["jobName"].startswith("__ASSET_JOB")
            assert sorted(k["path"] for k in run["assetSelection"]) == keys
        ui.wait_for(
            lambda: ui.backfill_status(dev, backfill) == "COMPLETED_SUCCESS",
            60,
            "backfill COMPLETED_SUCCESS",
        )

        def recorded():
            rows = ui.query_lake(
                env,
                "SELECT run_id, domain, job_name, dataset_id, partition_key, years, status, "
                "table_rows, checks_failed, backfill_id FROM estat.ingestion_runs",
            )
            return rows if len(rows) >= len(DATASETS) else None

        rows = ui.wait_for(recorded, 120, "ingestion_runs rows of the backfill")
    assert len(rows) == len(DATASETS), rows
    by_dataset = {r["dataset_id"]: r for r in rows}
    assert {r["run_id"] for r in rows} == {r["runId"] for r in runs}
    for dataset, n in DATASETS.items():
        row = by_dataset[dataset]
        assert row["job_name"] == "asset backfill" and row["backfill_id"] == backfill
        assert (row["domain"], row["partition_key"], row["years"]) == ("population", dataset, "")
        assert (row["status"], row["table_rows"], row["checks_failed"]) == ("SUCCESS", n, 0)
    manifests = list((home / "lake/population/runs").glob("date=*/*.json"))
    assert sorted(p.stem for p in manifests) == sorted(r["runId"] for r in runs)

    inventory = ui.query_lake(
        env,
        "SELECT dataset_id, domain, rows_stored, overall_total_number, status, "
        "last_success_run_id, last_partition FROM estat.dataset_inventory",
    )
    assert len(inventory) == len(DATASETS)
    run_of = {ui.tags_of(r)["dagster/partition"]: r["runId"] for r in runs}
    for row in inventory:
        dataset = row["dataset_id"]
        assert row["domain"] == "population"
        assert row["rows_stored"] == row["overall_total_number"] == DATASETS[dataset]
        assert row["status"] == "complete"
        assert row["last_success_run_id"] == run_of[dataset]
        assert row["last_partition"] == dataset
    counts = ui.query_lake(
        env, "SELECT dataset_id, count(*) AS n FROM estat.population GROUP BY dataset_id"
    )
    assert {r["dataset_id"]: r["n"] for r in counts} == DATASETS
