"""Run manifests and estat.ingestion_runs: what every load did, failures included.

Runs are real (the domain job, or the implicit asset job as the UI launches it); they are
recorded by the run status sensors the daemon runs (evaluated here on the run's end event), or
by ``record_run`` directly as the CLI does.
"""

from __future__ import annotations

import dagster as dg
import orjson
import pytest

from estat_assets.defs.audit import build_manifest, launched_as, record_run
from estat_assets.defs.conformed import CHECK_NAMES
from estat_assets.domains import DomainSpec
from estat_assets.lake.runs import RUNS_TABLE
from estat_assets.query.engine import DuckDBEngine
from estat_assets_tests.harness import Lake, make_lake
from estat_emulator import EmulatorServer, TableStore

RECORDED = "0000020202"  # 10 rows, fiscal years 1981-1990, UPDATED_DATE 2025-06-20
MISSING = "0000099999"
ENDS = ("RUN_SUCCESS", "RUN_FAILURE", "PIPELINE_SUCCESS", "PIPELINE_FAILURE")


def small_lake(tmp_path, server, instance) -> Lake:
    spec = DomainSpec("population", datasets=(RECORDED,))
    return make_lake(tmp_path / "home", server, instance, domain=spec)


@pytest.fixture
def small(tmp_path, emulator, instance) -> Lake:
    return small_lake(tmp_path, emulator, instance)


def record_by_sensor(lake: Lake, result: dg.ExecuteInProcessResult) -> None:
    """What the daemon does at the end of a run: the matching run status sensor."""
    instance = lake.instance
    run = instance.get_run_by_id(result.run_id)
    end = next(
        e.dagster_event
        for e in instance.all_logs(result.run_id)
        if e.dagster_event and e.dagster_event.event_type_value in ENDS
    )
    name = "ingestion_run_success_sensor" if result.success else "ingestion_run_failure_sensor"
    sensor = lake.defs.resolve_sensor_def(name)
    ctx = dg.build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=end,
        dagster_instance=instance,
        dagster_run=run,
        resources={"lake": lake.resources["lake"], "iceberg": lake.resources["iceberg"]},
    )
    sensor(ctx if result.success else ctx.for_run_failure())


def runs_rows(lake: Lake) -> dict[str, dict]:
    """estat.ingestion_runs by run id, read with SQL as an analyst would."""
    engine = DuckDBEngine(lake.catalog(), "estat")
    rows = engine.query(f"SELECT * FROM estat.{RUNS_TABLE}").to_pylist()
    return {r["run_id"]: r for r in rows}


def manifest_files(lake: Lake) -> dict[str, dict]:
    root = lake.lake_dir / "population/runs"
    return {p.stem: orjson.loads(p.read_bytes()) for p in root.glob("date=*/*.json")}


def test_a_successful_and_a_failed_load_are_both_recorded(small) -> None:
    ok = small.run(RECORDED, years="1985,1987")
    bad = small.run(MISSING)
    assert ok.success and not bad.success
    record_by_sensor(small, ok)
    record_by_sensor(small, bad)

    files = manifest_files(small)
    assert set(files) == {ok.run_id, bad.run_id}
    good = files[ok.run_id]
    day = good["started_at"][:10]
    assert (small.lake_dir / f"population/runs/date={day}/{ok.run_id}.json").is_file()
    assert good["status"] == "SUCCESS" and good["partition_key"] == RECORDED
    assert good["job_name"] == "population_job" and good["years"] == "1985,1987"
    assert good["layers"]["raw"]["rows"] == 2 and good["layers"]["conformed"]["rows"] == 2
    assert good["layers"]["table"]["rows"] == 2  # rows the lake holds for the dataset
    steps = {s["step"]: s["status"] for s in good["steps"]}
    assert set(steps.values()) == {"SUCCESS"}
    assert {f"population__{x}" for x in ("raw", "conformed", "table", "class_codes")} <= set(steps)
    assert set(CHECK_NAMES) <= {c["check"] for c in good["checks"]}
    assert all(c["passed"] for c in good["checks"]) and good["errors"] == []
    assert good["source_updated_date"] == "2025-06-20"

    rows = runs_rows(small)
    assert set(rows) == {ok.run_id, bad.run_id}
    row = rows[ok.run_id]
    snapshot = small.iceberg().current_snapshot().snapshot_id
    assert (row["status"], row["domain"], row["job_name"]) == (
        "SUCCESS",
        "population",
        "population_job",
    )
    assert (row["dataset_id"], row["partition_key"], row["years"]) == (
        RECORDED,
        RECORDED,
        "1985,1987",
    )
    assert (row["raw_rows"], row["conformed_rows"], row["quarantined_rows"], row["table_rows"]) == (
        2,
        2,
        0,
        2,
    )
    assert row["checks_passed"] == len(good["checks"]) >= len(CHECK_NAMES)
    assert (row["checks_failed"], row["failed_checks"]) == (0, None)
    assert row["failed_step"] is None and row["error"] is None
    assert row["source_updated_date"] == "2025-06-20" and row["snapshot_id"] == str(snapshot)
    assert row["manifest_path"].endswith(f"population/runs/date={day}/{ok.run_id}.json")
    assert row["started_at"] <= row["ended_at"] and row["duration_seconds"] > 0

    failed = rows[bad.run_id]
    assert (failed["status"], failed["dataset_id"], failed["years"]) == ("FAILURE", MISSING, "")
    assert failed["failed_step"] == "population__raw"
    assert MISSING in failed["error"] and "\n" not in failed["error"]
    assert failed["table_rows"] is None and failed["checks_passed"] == 0
    assert files[bad.run_id]["errors"][0]["step"] == "population__raw"


def test_the_error_is_the_first_real_cause_not_the_retry_bookkeeping(small, emulator) -> None:
    emulator.faults.add(
        {"kind": "http_error", "status": 503, "endpoint": "getMetaInfo", "times": None}
    )
    result = small.run(RECORDED)
    assert not result.success
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried  # the step was retried by Dagster before it gave up
    out = record_run(
        small.instance,
        small.instance.get_run_by_id(result.run_id),
        small.resources["lake"],
        small.resources["iceberg"],
    )
    error = out["row"]["error"]
    assert error.startswith("EStatHttpError") and "503" in error
    assert "max_retries" not in error and "Exceeded" not in error
    assert runs_rows(small)[result.run_id]["failed_step"] == "population__raw"


def test_an_unexpected_error_retried_by_dagster_is_recorded_as_itself(small, monkeypatch) -> None:
    from estat_assets.defs import raw as raw_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(raw_module, "download", broken)
    result = small.run(RECORDED)
    assert not result.success
    assert any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    record_by_sensor(small, result)
    row = runs_rows(small)[result.run_id]
    assert row["error"] == "RuntimeError: disk on fire"
    assert row["failed_step"] == "population__raw"


def test_recording_a_run_twice_keeps_one_row_and_one_manifest(small) -> None:
    result = small.run(RECORDED, years="1982")
    assert result.success
    record_by_sensor(small, result)
    first = runs_rows(small)[result.run_id]
    out = record_run(
        small.instance,
        small.instance.get_run_by_id(result.run_id),
        small.resources["lake"],
        small.resources["iceberg"],
    )
    assert out is not None
    table = small.catalog().load_table(("estat", RUNS_TABLE))
    assert table.scan().to_arrow().column("run_id").to_pylist() == [result.run_id]
    assert list(manifest_files(small)) == [result.run_id]
    again = runs_rows(small)[result.run_id]
    assert {k: v for k, v in again.items() if k != "recorded_at"} == {
        k: v for k, v in first.items() if k != "recorded_at"
    }


def test_asset_job_runs_are_named_by_how_they_were_launched(small) -> None:
    """Runs of the implicit asset job (UI materializations, backfills) name what launched them."""
    from estat_assets.defs.partitions import register

    register(small.instance, "population", [RECORDED])
    job = small.defs.resolve_implicit_global_asset_job_def()
    raw = dg.AssetKey(["population", "raw"])
    single = job.execute_in_process(
        partition_key=RECORDED, instance=small.instance, asset_selection=[raw]
    )
    backfill = job.execute_in_process(
        partition_key=RECORDED,
        instance=small.instance,
        asset_selection=[raw],
        tags={"dagster/backfill": "bfabcdef"},
    )
    assert single.success and backfill.success
    for result in (single, backfill):
        record_run(
            small.instance,
            small.instance.get_run_by_id(result.run_id),
            small.resources["lake"],
            small.resources["iceberg"],
        )
    rows = runs_rows(small)
    assert rows[single.run_id]["job_name"] == "asset materialization"
    assert rows[backfill.run_id]["job_name"] == "asset backfill"
    assert rows[backfill.run_id]["backfill_id"] == "bfabcdef"
    for result in (single, backfill):
        assert rows[result.run_id]["domain"] == "population"
        assert rows[result.run_id]["dataset_id"] == RECORDED
        assert rows[result.run_id]["raw_rows"] == 10 and rows[result.run_id]["table_rows"] is None
    domain_run = small.instance.get_run_by_id(small.run(RECORDED, years="1981").run_id)
    assert launched_as(domain_run) == "population_job"


def test_runs_that_load_no_domain_are_not_recorded(small) -> None:
    result = small.defs.resolve_job_def("lake_maintenance_job").execute_in_process(
        instance=small.instance
    )
    assert result.success
    run = small.instance.get_run_by_id(result.run_id)
    assert build_manifest(small.instance, run) is None
    assert (
        record_run(small.instance, run, small.resources["lake"], small.resources["iceberg"]) is None
    )
    assert not (small.lake_dir / "population/runs").exists()


@pytest.mark.slow
def test_a_refused_shrink_is_recorded_with_the_failed_table_step(tmp_path, instance) -> None:
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as server:
        lake = small_lake(tmp_path, server, instance)
        assert lake.run(RECORDED).success
        before = lake.state()
        # The same release (UPDATED_DATE unchanged) now answers without fiscal year 1981.
        server.store.republish(
            RECORDED, "2025-06-20", perturb=False, remove_cells=[{"time": ["1981100000"]}]
        )
        result = lake.run(RECORDED)
    assert not result.success
    assert lake.state()["table"] == before["table"]  # nothing was written
    out = record_run(
        instance,
        instance.get_run_by_id(result.run_id),
        lake.resources["lake"],
        lake.resources["iceberg"],
    )
    row = runs_rows(lake)[result.run_id]
    assert row["status"] == "FAILURE" and row["failed_step"] == "population__table"
    assert row["error"].startswith("SliceShrinkRefusedError") and "1981" in row["error"]
    assert (row["raw_rows"], row["conformed_rows"], row["table_rows"]) == (9, 9, None)
    # the data was fine (every conformed check passed); the guard refused the shrink
    passed = {c["check"] for c in out["manifest"]["checks"] if c["passed"]}
    assert set(CHECK_NAMES) <= passed and row["checks_failed"] == 0
    steps = {s["step"]: s["status"] for s in out["manifest"]["steps"]}
    assert steps["population__raw"] == steps["population__conformed"] == "SUCCESS"
    assert steps["population__table"] == "FAILURE"
