"""Two materializations of the same partition at once (two processes, two Dagster instances, one
lake): the end state equals one clean run, and the raw manifest matches the pages it names.

(Two ``execute_in_process`` calls in threads of one process deadlock inside Dagster's SQLite
storage, so the runs are real processes, as two launched runs would be.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import orjson
import pyarrow.compute as pc

from estat_assets_tests.defs.test_raw_lake import (
    KEYS,
    assert_same_content,
    make_lake,
    server,  # noqa: F401  (fixture)
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from types import SimpleNamespace

    import dagster as dg

    from estat_assets_tests.defs.test_raw_lake import make_lake

    home, api_base, dagster_home, start_file = sys.argv[1:5]
    os.makedirs(dagster_home, exist_ok=True)
    with dg.DagsterInstance.local_temp(dagster_home) as instance:
        lake = make_lake(Path(home), SimpleNamespace(api_base=api_base), instance)
        job = lake.defs.resolve_job_def("population_job")  # load everything before the start
        while not os.path.exists(start_file):
            pass
        result = lake.run()
        failure = next((e.message for e in result.all_events if e.is_step_failure), None)
        print(json.dumps({"run_id": result.run_id, "success": result.success, "failure": failure}))
    """
)


def test_two_runs_of_one_partition_at_once_end_as_one_clean_run(
    tmp_path,
    server,  # noqa: F811
) -> None:
    server.faults.clear()
    # every page is slowed down, so that the two fetches and publishes overlap
    server.faults.add(
        {"kind": "latency", "seconds": 0.2, "endpoint": "getStatsData", "times": None}
    )
    home = tmp_path / "home"
    script = tmp_path / "run_job.py"
    script.write_text(SCRIPT)
    start = tmp_path / "start"
    env = {**os.environ, "ESTAT_RAW_RETRY_DELAY": "0.05", "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(home),
                server.api_base,
                str(tmp_path / n),
                str(start),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in ("dh-a", "dh-b")
    ]
    import time

    time.sleep(0.5)
    start.touch()
    outs = [p.communicate(timeout=600) for p in procs]
    server.faults.clear()
    results = []
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert any(r["success"] for r in results), results
    for r in results:  # a loser may fail, but only for a named reason, never silently
        assert r["success"] or r["failure"], r

    with dg.instance_for_test() as instance:
        lake = make_lake(home, server, instance)
        data = lake.rows()
        manifest = lake.manifest()
        assert data.num_rows == manifest["total_number"] == manifest["rows"]
        keys = data.select(KEYS).group_by(KEYS).aggregate([([], "count_all")])
        assert keys.num_rows == data.num_rows  # no duplicate keys
        assert set(pc.unique(data.column("run_id")).to_pylist()) <= {r["run_id"] for r in results}
        run_dir = lake.raw_dir() / "runs" / manifest["run_id"]
        counted = 0
        for name in manifest["page_files"]:
            page = orjson.loads((run_dir / name).read_bytes())
            counted += len(page["GET_STATS_DATA"]["STATISTICAL_DATA"]["DATA_INF"]["VALUE"])
        assert counted == manifest["rows"]  # the manifest's pages are all there, complete
        concurrent = lake.content()

    # and a clean run on a fresh lake gives the same thing
    with dg.instance_for_test() as other:
        clean = make_lake(tmp_path / "clean", server, other)
        assert clean.run().success
        assert_same_content(concurrent, clean.content())
