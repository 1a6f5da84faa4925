"""Two loads of the same dataset at once (two processes, two Dagster instances, one lake): the end
state equals one clean load, with exactly one copy of every row, and the raw manifest matches the
pages it names.

The runs are real processes, as two launched runs would be (two ``execute_in_process`` calls in
threads of one process deadlock inside Dagster's SQLite storage). They start together on a file
barrier, and the emulator holds their first page requests until both have arrived, so the two
fetches (and what follows them) really overlap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import orjson
import pytest

from estat_assets_tests.harness import DATASET, KEYS, assert_same_content, make_lake

pytestmark = pytest.mark.slow  # Dagster runs in subprocesses

ROOT = Path(__file__).resolve().parents[2]
YEAR = "2023"
PAGE_SIZE = 5_000  # 17,217 rows → 4 pages
DEADLINE = 120.0

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from types import SimpleNamespace

    import dagster as dg

    from estat_assets.defs.audit import failure_cause
    from estat_assets.defs.jobs import job_name
    from estat_assets_tests.harness import make_lake

    home, api_base, dagster_home, ready_file, start_file = sys.argv[1:6]
    os.makedirs(dagster_home, exist_ok=True)
    with dg.DagsterInstance.local_temp(dagster_home) as instance:
        lake = make_lake(
            Path(home), SimpleNamespace(api_base=api_base), instance, page_size=5000
        )
        lake.defs.resolve_job_def(job_name("population"))  # everything loaded before the start
        Path(ready_file).touch()
        deadline = time.monotonic() + 120
        while not os.path.exists(start_file):  # the start barrier: a file, polled
            if time.monotonic() > deadline:
                sys.exit("no start signal")
            time.sleep(0.01)
        result = lake.run(years="2023")
        failure = next((failure_cause(e) for e in result.all_events if e.is_step_failure), None)
    print("RESULT " + json.dumps(
        {"run_id": result.run_id, "success": result.success, "failure": failure}
    ))
    """
)


def _wait_for_files(paths: list[Path], procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"a run ended before it was ready: {out[-2000:]}{err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail("the runs did not get ready in time")
        time.sleep(0.02)


def _hold_first_pages(server, parties: int):
    """Make the emulator hold the first ``parties`` page-1 requests until all have arrived."""
    barrier = threading.Barrier(parties, timeout=DEADLINE)
    real = server._api
    lock = threading.Lock()
    seen = [0]

    def holding(endpoint, path, params, handler):
        if endpoint == "getStatsData" and params.get("startPosition") == "1":
            with lock:
                seen[0] += 1
                mine = seen[0]
            if mine <= parties:
                barrier.wait()  # BrokenBarrierError (an error reply) if the other never comes
        return real(endpoint, path, params, handler)

    server._api = holding
    return barrier


def test_two_loads_of_one_dataset_at_once_end_as_one_clean_load(
    tmp_path, emulator, instance
) -> None:
    # every page is slowed down too, so that the fetches and publishes overlap all along
    emulator.faults.add(
        {"kind": "latency", "seconds": 0.2, "endpoint": "getStatsData", "times": None}
    )
    barrier = _hold_first_pages(emulator, 2)
    home = tmp_path / "home"
    start = tmp_path / "start"
    ready = [tmp_path / f"ready-{n}" for n in "ab"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    SCRIPT,
                    str(home),
                    emulator.api_base,
                    str(tmp_path / f"dh-{n}"),
                    str(flag),
                    str(start),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n, flag in zip("ab", ready, strict=True)
        ]
        _wait_for_files(ready, procs)
        start.touch()
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        del emulator._api
        emulator.faults.clear()
    assert not barrier.broken  # both fetches were in flight at the same moment
    results = []
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.split("RESULT ", 1)[1]))
    assert any(r["success"] for r in results), results
    for r in results:  # a loser may fail, but only for a named reason, never silently
        assert r["success"] or r["failure"], r

    lake = make_lake(home, emulator, instance, page_size=PAGE_SIZE)
    data = lake.rows()
    manifest = lake.manifest()
    assert manifest["dataset_id"] == DATASET
    assert data.num_rows == manifest["total_number"] == manifest["rows"]
    keys = data.select(KEYS).group_by(KEYS).aggregate([([], "count_all")])
    assert keys.num_rows == data.num_rows  # exactly one copy of every row
    writers = set(data.column("run_id").to_pylist())
    assert len(writers) == 1 and writers <= {r["run_id"] for r in results if r["success"]}
    run_dir = lake.raw_dir() / "runs" / manifest["run_id"]
    counted = 0
    for request in manifest["requests"]:
        for name in request["page_files"]:
            page = orjson.loads((run_dir / name).read_bytes())
            counted += len(page["GET_STATS_DATA"]["STATISTICAL_DATA"]["DATA_INF"]["VALUE"])
    assert counted == manifest["rows"]  # the manifest's pages are all there, complete
    concurrent = lake.content()

    # and a clean load on a fresh lake gives the same thing
    clean = make_lake(tmp_path / "clean", emulator, instance, page_size=PAGE_SIZE)
    assert clean.run(years=YEAR).success
    assert_same_content(concurrent, clean.content())
