"""The documented CLI backfill: ``DAGSTER_HOME=$ESTAT_LAKE_HOME/dagster dagster job backfill -j
population_job --partitions <statsDataIds>`` queues one run per dataset in the lake's instance,
and ``dagster-daemon run`` (no webserver) dequeues and executes them.

``dagster job backfill`` uses the instance of ``DAGSTER_HOME``; without it the runs would go to a
throwaway instance nobody runs, which is why the docs say to set it. The GraphQL/UI path is
covered by ``test_backfill.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from estat_assets.instance import DATASET_TAG, DOMAIN_TAG
from estat_assets.runner import open_instance
from estat_assets_tests import devserver
from estat_assets_tests.defs.test_backfill import ROOT

BIN = Path(sys.executable).parent
DATASETS = {"0000020202": 10, "0003065345": 3}


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop the daemon and everything it started (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@pytest.mark.slow
def test_job_backfill_from_the_cli_queues_one_run_per_dataset_and_the_daemon_runs_them(
    tmp_path, emulator
) -> None:
    ui = devserver
    domains = tmp_path / "domains.yaml"
    domains.write_text(
        "domains:\n  population:\n    datasets: ['0000020202', '0003065345']\n", encoding="utf-8"
    )
    home = tmp_path / "home"
    env = ui.lake_env(home, emulator.api_base, domains)
    ui.prepare_home(env)
    ui.register_datasets(env, "population", list(DATASETS))
    done = subprocess.run(
        [
            str(BIN / "dagster"),
            "job",
            "backfill",
            "-w",
            "workspace.yaml",
            "-j",
            "population_job",
            "--partitions",
            ",".join(DATASETS),
            "--noprompt",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Launched backfill" in done.stdout + done.stderr
    with open_instance(ui.settings_of(env)) as instance:
        assert type(instance.run_coordinator).__name__ == "EstatRunCoordinator"
        backfills = instance.get_backfills()
        runs = instance.get_runs()
    assert len(backfills) == 1 and sorted(backfills[0].partition_names) == sorted(DATASETS)
    backfill = backfills[0].backfill_id
    assert len(runs) == len(DATASETS)
    assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}  # waiting for the daemon
    assert {r.job_name for r in runs} == {"population_job"}
    for run in runs:
        assert run.tags["dagster/backfill"] == backfill
        assert run.tags[DOMAIN_TAG] == "population"  # the per-domain queue limit applies
        assert run.tags[DATASET_TAG] == run.tags["dagster/partition"]  # the run coordinator
    assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(DATASETS)

    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
    try:
        with open_instance(ui.settings_of(env)) as instance:

            def finished():
                now = [instance.get_run_by_id(r.run_id) for r in runs]
                return now if all(r.is_finished for r in now) else None

            ended = ui.wait_for(finished, 300, "the backfill's runs to finish")
            statuses = [r.status for r in ended]
            assert statuses == [dg.DagsterRunStatus.SUCCESS] * len(runs), log.read_text()[-4000:]

        def recorded():
            rows = ui.query_lake(
                env,
                "SELECT run_id, job_name, dataset_id, status, table_rows, backfill_id "
                "FROM estat.ingestion_runs",
            )
            return rows if len(rows) >= len(DATASETS) else None

        rows = ui.wait_for(recorded, 120, "ingestion_runs rows of the backfill")
    finally:
        _stop_group(daemon)
    assert sorted(r["run_id"] for r in rows) == sorted(r.run_id for r in runs)
    for row in rows:
        assert (row["job_name"], row["backfill_id"], row["status"]) == (
            "population_job",
            backfill,
            "SUCCESS",
        )
        assert row["table_rows"] == DATASETS[row["dataset_id"]]
