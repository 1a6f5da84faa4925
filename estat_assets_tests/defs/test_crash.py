"""Runs SIGKILLed at different points (no cleanup, no ``finally``), then run again.

Each crash happens in a real subprocess running one load (``harness.make_lake`` over this test's
emulator, ``Lake.run``) on the lake the test holds, after a good load of an older release and a
republish in the emulator:

- during the e-Stat fetch (a page held back by an emulator latency fault; the test sees it in the
  emulator's request log and fault counters, then kills the process): the lake stays the old
  release, byte for byte, apart from the dead run's unpublished staging folder;
- at the Iceberg commit of the domain table (the commit never happens): the table stays the old
  release, whole;
- between the Iceberg commit and the inventory update: the table is the new release, whole, and
  ``reconcile_inventory`` heals the stale inventory row.

Afterwards a rerun succeeds and the lake is exactly a clean load of the new release.

"Kill twice, then run": two runs (``runner.run_load`` in subprocesses on the persistent instance of
``runner.open_instance``, pool ``estat_api`` limit 2) are killed while each holds an ``estat_api``
slot; a third must finish, not wait for ever: the reaper in ``run_load`` marks the dead runs failed
and frees their slots. ``wait_for_pool`` gives up with ``PoolBusyError`` when live runs hold every
slot (a fake clock: no timing).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from estat_assets.defs.raw import API_POOL
from estat_assets.defs.reaper import HOST_TAG, PID_TAG, this_host
from estat_assets.domains import DomainSpec
from estat_assets.lake.inventory import read_inventory, reconcile_inventory
from estat_assets.lake.rawstore import STALE_RUN_SECONDS
from estat_assets.runner import PoolBusyError, open_instance, wait_for_pool
from estat_assets_tests import harness
from estat_assets_tests.harness import DATASET, assert_same_content, make_lake
from estat_emulator import EmulatorServer, TableStore

ROOT = Path(__file__).resolve().parents[2]
YEAR = "2023"
PAGE_SIZE = 5_000  # 17,217 rows → 4 pages
ROWS = 9 * 1913
RECORDED = "0000020202"  # 10 rows, one page
DATA = {"endpoint": "getStatsData", "stats_data_id": DATASET}
NO_SUCH_PID = 2**22 + 1  # above Linux's highest possible pid_max: never a process
DEADLINE = 120.0  # seconds a subprocess may take to reach a point (never waited for otherwise)

# One load of 2023 in a subprocess, one page at a time, optionally killing itself at a point.
CRASH = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from types import SimpleNamespace

    import dagster as dg

    home, api_base, dagster_home, point = sys.argv[1:5]

    def die(where):
        print("KILLED " + where, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "commit":
        from pyiceberg.catalog.sql import SqlCatalog

        real_commit = SqlCatalog.commit_table

        def commit_or_die(self, table, requirements, updates):
            if tuple(table.name()) == ("estat", "population") and any(
                type(u).__name__ == "AddSnapshotUpdate" for u in updates
            ):
                die("at the Iceberg commit")
            return real_commit(self, table, requirements, updates)

        SqlCatalog.commit_table = commit_or_die
    elif point == "inventory":
        import estat_assets.defs.table as table_step

        table_step.update_inventory = lambda *a, **k: die("before the inventory update")

    from estat_assets_tests.harness import make_lake

    os.makedirs(dagster_home, exist_ok=True)
    with dg.DagsterInstance.local_temp(dagster_home) as instance:
        lake = make_lake(
            Path(home), SimpleNamespace(api_base=api_base), instance, page_size=5000,
            concurrency=1,
        )
        result = lake.run(years="2023")
    print("NOT KILLED, success:", result.success, flush=True)
    sys.exit(3)
    """
)

# One load through the runner (reaper, pool wait, audit) on the lake's persistent instance.
LOAD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from types import SimpleNamespace

    from estat_assets.domains import DomainSpec
    from estat_assets.runner import Load, open_instance, run_load
    from estat_assets_tests.harness import make_lake, test_settings

    home, api_base, dataset = sys.argv[1:4]
    instance = open_instance(test_settings(Path(home), api_base))
    lake = make_lake(
        Path(home), SimpleNamespace(api_base=api_base), instance,
        domain=DomainSpec("population", datasets=(dataset,)),
    )
    out = run_load(
        lake.defs, instance, Load("population", dataset), lake.settings,
        say=lambda m: print(m, flush=True),
    )
    print("OUTCOME " + json.dumps(
        {"run_id": out.run_id, "success": out.success, "error": out.error}
    ), flush=True)
    """
)


@pytest.fixture
def server():
    with EmulatorServer(TableStore.default()) as s:
        yield s


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _spawn(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Callable[[], bool], what: str, procs=()) -> None:
    """Poll ``condition`` until it holds; fail (never hang) if a process ends or time runs out."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        for proc in procs:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"process ended before {what}: {out[-2000:]}{err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=DEADLINE)
    assert proc.returncode == -signal.SIGKILL


def _crash(tmp_path: Path, home: Path, server: EmulatorServer, point: str) -> str:
    """Run the CRASH script until it kills itself at ``point``; returns its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, str(home), server.api_base, str(tmp_path / "dh"), point],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def _release(lake) -> set[str]:
    return {str(d) for d in lake.rows().column("source_updated_date").to_pylist()}


def _old_and_new(tmp_path, server, instance):
    """A lake holding a good load of the old release, the table republished, and the content
    of a clean load of the new release (on another lake)."""
    lake = make_lake(tmp_path / "home", server, instance, page_size=PAGE_SIZE)
    first = lake.run(years=YEAR)
    assert first.success
    old = lake.manifest()["updated_date"]
    server.store.republish(DATASET, "2026-06-01")  # new values everywhere
    clean = make_lake(tmp_path / "clean", server, instance, page_size=PAGE_SIZE)
    assert clean.run(years=YEAR).success
    new = clean.content()
    assert new["manifest"]["updated_date"] == "2026-06-01" != old
    return lake, first, new


def _inventory_row(lake) -> dict:
    rows = [r for r in read_inventory(lake.catalog(), "estat") if r["dataset_id"] == DATASET]
    assert len(rows) == 1
    return rows[0]


def _age(folder: Path) -> None:
    """Make an unpublished run folder look as old as a crashed one (the sweep's rule)."""
    old = time.time() - STALE_RUN_SECONDS - 60
    os.utime(folder, (old, old))


@pytest.mark.slow
def test_sigkill_during_the_fetch_keeps_the_old_release_then_rerun(
    tmp_path, server, instance
) -> None:
    lake, first, new = _old_and_new(tmp_path, server, instance)
    before = lake.state()
    old_rows = lake.rows()
    server.requests.clear()
    # page 1 is served, page 2 is held for two minutes: the run is mid-fetch
    slow = server.faults.add({"kind": "latency", "seconds": 120, "skip": 1, "times": 1, **DATA})
    proc = _spawn(CRASH, str(lake.home), server.api_base, str(tmp_path / "dh"), "fetch")

    def page_one_served() -> bool:
        return any(
            e["endpoint"] == "getStatsData" and e["params"].get("startPosition") == "1"
            for e in server.requests.entries()
        )

    _wait_for(lambda: page_one_served() and slow.hits == 1, "the fetch of page 2", [proc])
    _kill(proc)

    after = lake.state()
    new_files = sorted(set(after["files"]) - set(before["files"]))
    runs = lake.raw_dir() / "runs"
    dead = [p for p in runs.iterdir() if p.name != first.run_id]
    assert len(dead) == 1  # the dead run's staging folder: page 1, never published
    staged = f"{dead[0].relative_to(lake.home)}/page-001-00001.json"
    assert new_files == [staged]
    assert {k: v for k, v in after["files"].items() if k != staged} == before["files"]
    assert {k: v for k, v in after.items() if k != "files"} == {
        k: v for k, v in before.items() if k != "files"
    }  # no snapshot of any table moved
    assert lake.manifest()["run_id"] == first.run_id  # the old release is what readers see
    assert lake.rows().equals(old_rows)

    _age(dead[0])  # a crashed run's folder is swept once stale (rawstore.STALE_RUN_SECONDS)
    rerun = lake.run(years=YEAR)
    assert rerun.success
    assert not dead[0].exists()
    assert_same_content(lake.content(), new)
    assert _release(lake) == {"2026-06-01"}


@pytest.mark.slow
def test_sigkill_at_the_iceberg_commit_keeps_the_old_table_then_rerun(
    tmp_path, server, instance
) -> None:
    lake, first, new = _old_and_new(tmp_path, server, instance)
    table_before = lake.iceberg().current_snapshot().snapshot_id
    old_rows = lake.rows()
    inventory_before = _inventory_row(lake)
    out = _crash(tmp_path, lake.home, server, "commit")
    assert "KILLED at the Iceberg commit" in out

    assert lake.iceberg().current_snapshot().snapshot_id == table_before  # no commit landed
    assert lake.rows().equals(old_rows)  # the old release, whole
    assert set(lake.rows().column("run_id").to_pylist()) == {first.run_id}
    assert _inventory_row(lake) == inventory_before
    assert reconcile_inventory(lake.catalog(), "estat", "population") == []  # nothing stale

    rerun = lake.run(years=YEAR)
    assert rerun.success
    assert_same_content(lake.content(), new)
    assert _release(lake) == {"2026-06-01"}


@pytest.mark.slow
def test_sigkill_between_the_commit_and_the_inventory_then_reconcile_and_rerun(
    tmp_path, server, instance
) -> None:
    lake, first, new = _old_and_new(tmp_path, server, instance)
    stale = _inventory_row(lake)
    out = _crash(tmp_path, lake.home, server, "inventory")
    assert "KILLED before the inventory update" in out

    killed = lake.manifest()["run_id"]
    assert killed != first.run_id
    assert set(lake.rows().column("run_id").to_pylist()) == {killed}  # the new release, whole
    assert_same_content(lake.content(), new)
    current = lake.iceberg().current_snapshot().snapshot_id
    assert _inventory_row(lake) == stale  # still counting the old snapshot
    assert stale["table_snapshot_id"] != current and stale["updated_date"] != "2026-06-01"

    assert reconcile_inventory(lake.catalog(), "estat", "population") == [DATASET]
    healed = _inventory_row(lake)
    assert healed["table_snapshot_id"] == current
    assert healed["updated_date"] == "2026-06-01" and healed["last_success_run_id"] == killed
    assert healed["rows_stored"] == ROWS and healed["years"] == YEAR
    assert reconcile_inventory(lake.catalog(), "estat", "population") == []  # now current

    rerun = lake.run(years=YEAR)
    assert rerun.success
    assert_same_content(lake.content(), new)
    row = _inventory_row(lake)
    assert row["last_success_run_id"] == rerun.run_id
    assert row["table_snapshot_id"] == lake.iceberg().current_snapshot().snapshot_id


def _runs_of(instance: dg.DagsterInstance, pid: int) -> list[dg.DagsterRun]:
    return [r for r in instance.get_runs() if r.tags.get(PID_TAG) == str(pid)]


def _slot_holders(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(API_POOL)
    return {slot.run_id for slot in info.claimed_slots}


@pytest.mark.slow
def test_two_runs_killed_holding_pool_slots_then_a_third_finishes(tmp_path, server) -> None:
    home = tmp_path / "home"
    # the first two getStatsData requests are held for two minutes; later ones are not
    slow = server.faults.add(
        {
            "kind": "latency",
            "seconds": 120,
            "nth": [1, 2],
            "endpoint": "getStatsData",
            "stats_data_id": RECORDED,
        }
    )
    instance = open_instance(harness.test_settings(home, server.api_base))
    try:
        procs = []
        for n in (1, 2):  # A, then B while A still holds its slot
            procs.append(_spawn(LOAD, str(home), server.api_base, RECORDED))
            _wait_for(lambda n=n: slow.hits == n, f"run {n} to fetch", procs)
            _wait_for(
                lambda n=n: len(_slot_holders(instance)) == n, f"run {n} to hold a slot", procs
            )
        dead = [run for proc in procs for run in _runs_of(instance, proc.pid)]
        assert len(dead) == 2
        assert _slot_holders(instance) == {r.run_id for r in dead}  # 2/2: the pool is full
        for proc in procs:
            _kill(proc)
        for run in dead:  # nobody has noticed yet: without the reaper, C would wait for ever
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        assert _slot_holders(instance) == {r.run_id for r in dead}

        third = subprocess.run(
            [sys.executable, "-c", LOAD, str(home), server.api_base, RECORDED],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,  # a hang fails the test instead of blocking the suite
        )
        assert third.returncode == 0, third.stdout[-2000:] + third.stderr[-3000:]
        outcome = json.loads(third.stdout.split("OUTCOME ", 1)[1])
        assert outcome["success"], outcome
        for run in dead:
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
            assert f"run {run.run_id}: its worker process (pid " in third.stdout
        assert _slot_holders(instance) == set()  # theirs freed, and C's released after it
        assert slow.hits == 2  # C's request was not held
        done = instance.get_run_by_id(outcome["run_id"])
        assert done.status == dg.DagsterRunStatus.SUCCESS
    finally:
        instance.dispose()

    with dg.instance_for_test() as other:  # the lake is exactly a clean load
        lake = make_lake(home, server, other, domain=DomainSpec("population", datasets=(RECORDED,)))
        content = lake.content(RECORDED)
        assert set(lake.rows(RECORDED).column("run_id").to_pylist()) == {outcome["run_id"]}
        clean = make_lake(
            tmp_path / "clean", server, other, domain=DomainSpec("population", datasets=(RECORDED,))
        )
        assert clean.run(RECORDED).success
        assert_same_content(content, clean.content(RECORDED))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def pooled():
    """An instance whose pools hold 2 slots, like the packaged dagster.yaml."""
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 2}}}) as inst:
        yield inst


def _holding_run(instance: dg.DagsterInstance, pid: int) -> str:
    run = dg.DagsterRun(
        job_name="population_job",
        status=dg.DagsterRunStatus.STARTED,
        tags={PID_TAG: str(pid), HOST_TAG: this_host()},
    )
    instance.add_run(run)
    # what a run's step does before claiming: the pool gets the instance's default limit
    instance.event_log_storage.initialize_concurrency_limit_to_default(API_POOL)
    claim = instance.event_log_storage.claim_concurrency_slot(
        API_POOL, run.run_id, "population__raw"
    )
    assert claim.is_claimed
    return run.run_id


def test_wait_for_pool_gives_up_when_live_runs_hold_every_slot(pooled) -> None:
    holders = {_holding_run(pooled, os.getpid()) for _ in range(2)}  # alive: this process
    clock, said = FakeClock(), []
    with pytest.raises(PoolBusyError) as info:
        wait_for_pool(pooled, 30, said.append, sleep=clock.sleep, clock=clock)
    assert clock.now >= 30 and clock.now - clock.sleeps[-1] < 30  # gave up at the deadline
    message = str(info.value)
    assert all(run_id in message for run_id in holders) and "ESTAT_POOL_WAIT_SECONDS" in message
    assert len(said) == 1 and "waiting for a free 'estat_api' slot (2/2" in said[0]
    for run_id in holders:  # live runs are left alone
        assert pooled.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    assert _slot_holders(pooled) == holders


def test_wait_for_pool_reaps_a_dead_holder_and_goes_on(pooled) -> None:
    live = _holding_run(pooled, os.getpid())
    dead = _holding_run(pooled, NO_SUCH_PID)
    clock, said = FakeClock(), []
    wait_for_pool(pooled, 30, said.append, sleep=clock.sleep, clock=clock)
    assert clock.sleeps == []  # a slot was free at once
    assert pooled.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert pooled.get_run_by_id(live).status == dg.DagsterRunStatus.STARTED
    assert _slot_holders(pooled) == {live}
    assert said == [
        f"run {dead}: its worker process (pid {NO_SUCH_PID}) is gone; "
        "marked failed, its pool slots freed"
    ]
