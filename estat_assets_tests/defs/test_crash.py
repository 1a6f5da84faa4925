"""A run SIGKILLed between the conformed write and the Iceberg commit, then re-run.

The job runs in a real subprocess whose pyiceberg catalog kills the process (SIGKILL, no cleanup,
no ``finally``) when it is asked to commit a snapshot: the raw manifest and the conformed Parquet
are written, the Iceberg data files may be, the catalog commit never happens. Afterwards every
partition holds exactly TOTAL_NUMBER rows, no key twice, and no slice e-Stat does not have.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from estat_assets.estat.client import EStatClient
from estat_assets.estat.slicing import time_filter, year_slices
from estat_assets_tests.defs.test_raw_lake import (
    DATASET,
    KEYS,
    make_lake,
    server,  # noqa: F401  (fixture)
)

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from types import SimpleNamespace

    import dagster as dg
    from pyiceberg.catalog.sql import SqlCatalog

    from estat_assets_tests.defs.test_raw_lake import make_lake

    real_commit = SqlCatalog.commit_table

    def commit_or_die(self, table, requirements, updates):
        if any(type(u).__name__ == "AddSnapshotUpdate" for u in updates):
            print("killing myself before the Iceberg commit", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_commit(self, table, requirements, updates)

    SqlCatalog.commit_table = commit_or_die
    home, api_base, dagster_home, year = sys.argv[1:5]
    os.makedirs(dagster_home, exist_ok=True)
    with dg.DagsterInstance.local_temp(dagster_home) as instance:
        lake = make_lake(Path(home), SimpleNamespace(api_base=api_base), instance)
        result = lake.run(year=year)
    print("not killed: success", result.success, flush=True)
    sys.exit(3)
    """
)


def _killed_run(tmp_path: Path, home: Path, api_base: str, year: str) -> None:
    script = tmp_path / "crash_job.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(home), api_base, str(tmp_path / f"dh-{year}"), year],
        cwd=ROOT,
        env={**os.environ, "ESTAT_RAW_RETRIES": "0", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "killing myself before the Iceberg commit" in proc.stdout


def _expected(api_base: str, year: str) -> int:
    with EStatClient("k", api_base) as c:
        meta, _ = c.get_meta_info(DATASET)
        return c.count(DATASET, time_filter(meta, year_slices(meta)[year]))


def test_sigkill_before_the_iceberg_commit_then_rerun(tmp_path, server) -> None:  # noqa: F811
    home = tmp_path / "home"
    totals = {y: _expected(server.api_base, y) for y in ("2022", "2023")}
    with dg.instance_for_test() as instance:
        lake = make_lake(home, server, instance)
        assert lake.run(year="2023").success
        before = lake.iceberg().current_snapshot().snapshot_id

        _killed_run(tmp_path, home, server.api_base, "2022")  # a first load, killed
        _killed_run(tmp_path, home, server.api_base, "2023")  # a replacement, killed

        table = lake.iceberg()
        assert table.current_snapshot().snapshot_id == before  # neither commit happened
        data = table.scan().to_arrow()
        assert set(pc.unique(data.column("year")).to_pylist()) == {2023}  # no orphan slice
        assert data.num_rows == totals["2023"]  # the old slice, whole

        for year in ("2022", "2023"):
            assert lake.run(year=year).success
        data = lake.iceberg().scan().to_arrow()
        for year, total in totals.items():
            part = data.filter(pc.equal(data.column("year"), int(year)))
            assert part.num_rows == total
            keys = part.select(KEYS).group_by(KEYS).aggregate([([], "count_all")])
            assert keys.num_rows == total  # no duplicate keys
            manifest = lake.manifest(year=year)
            assert manifest["rows"] == manifest["total_number"] == total
            runs = [p.name for p in (lake.raw_dir(year=year) / "runs").iterdir()]
            assert runs == [manifest["run_id"]]  # the killed runs' pages are gone
            conformed = home / f"lake/population/conformed/dataset_id={DATASET}/year={year}"
            assert pq.read_metadata(conformed / "data.parquet").num_rows == total
        assert set(pc.unique(data.column("dataset_id")).to_pylist()) == {DATASET}
        assert data.num_rows == sum(totals.values())
