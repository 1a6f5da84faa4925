"""A backfill of one domain over several years through the real daemon (``dagster dev``).

The project's dagster.yaml (queued runs, 2 at a time, pool ``estat_api``), a job backfill launched
through GraphQL ``launchPartitionBackfill`` (what ``dagster job backfill`` and the UI do), every
run as its own process; then the audit sensor's ``estat.ingestion_runs`` rows and the
``estat.dataset_inventory`` row must be right. About a minute on the 2-core machine.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from estat_emulator import EmulatorServer, TableStore

ROOT = Path(__file__).resolve().parents[2]
YEARS = ["1981", "1982", "1983"]


def _ui_check():
    spec = importlib.util.spec_from_file_location("ui_check", ROOT / "scripts" / "ui_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    shutil.which("dagster") is None and not (ROOT / ".venv/bin/dagster").exists(),
    reason="dagster CLI not installed",
)
def test_backfill_of_a_domain_over_years_through_the_daemon(tmp_path, monkeypatch) -> None:
    ui = _ui_check()
    home = tmp_path / "home"
    dagster_home = ui.prepare_dagster_home(home / "dagster")
    domains = tmp_path / "domains.yaml"
    domains.write_text(
        "domains:\n  population:\n    title: population\n    datasets: ['0000020202']\n",
        encoding="utf-8",
    )
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as emulator:
        env = ui.lake_env(home, emulator.api_base, domains)
        for key in ("ESTAT_LAKE_HOME", "DAGSTER_HOME", "ESTAT_DOMAINS_FILE"):
            monkeypatch.setenv(key, env[key])
        ui.register_years(dagster_home, "population", "0000020202", YEARS)
        with ui.DagsterDev(env, tmp_path / "dagster-dev.log") as dev:
            backfill = ui.launch_job_backfill(
                dev, "population_job", [f"0000020202|{y}" for y in YEARS]
            )
            runs = ui.wait_for_backfill(dev, backfill, len(YEARS), timeout=600)
            assert sorted(r["status"] for r in runs) == ["SUCCESS"] * len(YEARS), (
                dev.log.read_text()[-4000:]
            )
            partitions = sorted(
                next(t["value"] for t in r["tags"] if t["key"] == "dagster/partition") for r in runs
            )
            assert partitions == [f"0000020202|{y}" for y in YEARS]
            assert ui.wait_for(
                lambda: ui.backfill_status(dev, backfill).startswith("COMPLETED"),
                120,
                "backfill done",
            )

            def recorded():
                rows = ui.query_lake(
                    env,
                    "SELECT run_id, status, year, table_rows, backfill_id "
                    "FROM estat.ingestion_runs ORDER BY year",
                )
                return rows if len(rows) >= len(YEARS) else None

            rows = ui.wait_for(recorded, 180, "ingestion_runs rows of the backfill")
    assert [(r["status"], r["year"], r["table_rows"]) for r in rows] == [
        ("SUCCESS", int(y), 1) for y in YEARS
    ]
    assert {r["backfill_id"] for r in rows} == {backfill}
    assert {r["run_id"] for r in rows} == {r["runId"] for r in runs}
    manifests = list((home / "lake/population/runs").glob("date=*/*.json"))
    assert len(manifests) == len(YEARS)
    inventory = ui.query_lake(
        env,
        "SELECT dataset_id, rows_stored, years, status, last_success_run_id "
        "FROM estat.dataset_inventory",
    )
    assert len(inventory) == 1
    row = inventory[0]
    assert (row["dataset_id"], row["rows_stored"], row["years"], row["status"]) == (
        "0000020202",
        3,
        ",".join(YEARS),
        "partial",
    )
    assert row["last_success_run_id"] in {r["runId"] for r in runs}
    assert os.environ["DAGSTER_HOME"] == str(dagster_home)
