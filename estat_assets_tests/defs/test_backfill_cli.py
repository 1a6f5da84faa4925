"""The documented CLI backfill (docs/operations.md) queues one run per partition for the daemon.

The daemon side (runs dequeued and executed) is covered by test_backfill.py through the UI's
GraphQL path; here the command itself: its partitions, tags and queueing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from estat_assets.defs.jobs import DOMAIN_TAG
from estat_assets.defs.partitions import register

ROOT = Path(__file__).resolve().parents[2]


def test_cli_backfill_of_one_dataset_over_years_queues_one_run_each(tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_bytes((ROOT / "dagster.yaml").read_bytes())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("ESTAT_LAKE_HOME", str(tmp_path / "lake"))
    with dg.DagsterInstance.get() as instance:
        register(instance, "population", {"0000020202": ["1981", "1982", "1983"]})
    keys = ["0000020202|1981", "0000020202|1982", "0000020202|1983"]
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "job",
            "backfill",
            "-w",
            "workspace.yaml",
            "-j",
            "population_job",
            "--partitions",
            ",".join(keys),
            "--noprompt",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Launched backfill" in done.stdout + done.stderr
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        backfills = instance.get_backfills()
    assert len(backfills) == 1 and sorted(backfills[0].partition_names) == keys
    assert sorted(r.tags["dagster/partition"] for r in runs) == keys
    assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}  # waiting for the daemon
    assert {r.tags["dagster/backfill"] for r in runs} == {backfills[0].backfill_id}
    assert {r.tags[DOMAIN_TAG] for r in runs} == {"population"}  # the per-domain queue limit
    assert {r.job_name for r in runs} == {"population_job"}
