"""Run manifests and estat.ingestion_runs, written by the run status sensors, failures included."""

from __future__ import annotations

import json

import dagster as dg

from estat_assets.defs.audit import RUNS_TABLE, build_manifest
from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import partition_key
from estat_assets.query.engine import DuckDBEngine

ENDS = ("RUN_SUCCESS", "RUN_FAILURE", "PIPELINE_SUCCESS", "PIPELINE_FAILURE")


def run_and_record(defs, instance, resources, dataset: str, year: str):
    result = defs.resolve_job_def(job_name("population")).execute_in_process(
        partition_key=str(partition_key(dataset, year)), instance=instance, raise_on_error=False
    )
    run = instance.get_run_by_id(result.run_id)
    end = next(
        e.dagster_event
        for e in instance.all_logs(result.run_id)
        if e.dagster_event and e.dagster_event.event_type_value in ENDS
    )
    name = "ingestion_run_success_sensor" if result.success else "ingestion_run_failure_sensor"
    sensor = defs.resolve_sensor_def(name)
    ctx = dg.build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=end,
        dagster_instance=instance,
        dagster_run=run,
        resources={"lake": resources["lake"], "iceberg": resources["iceberg"]},
    )
    if result.success:
        sensor(ctx)
    else:
        sensor(ctx.for_run_failure())
    return result


def test_success_and_failure_are_both_recorded_and_queryable(lake) -> None:
    defs, instance, resources, home = lake
    ok = run_and_record(defs, instance, resources, "0000020202", "1981")
    bad = run_and_record(defs, instance, resources, "0000099999", "1981")
    assert ok.success and not bad.success

    manifests = sorted((home / "lake/population/runs").glob("date=*/*.json"))
    assert {p.stem for p in manifests} == {ok.run_id, bad.run_id}
    good = json.loads((next(p for p in manifests if p.stem == ok.run_id)).read_text())
    assert good["status"] == "SUCCESS" and good["partition_key"] == "0000020202|1981"
    assert good["layers"]["table"]["rows"] == 1 and good["layers"]["raw"]["rows"] == 1
    steps = {s["step"]: s["status"] for s in good["steps"]}
    for step in ("population__raw", "population__conformed", "population__table"):
        assert steps[step] == "SUCCESS"

    assert all(s["duration_seconds"] >= 0 for s in good["steps"])
    assert good["checks"] and all(c["passed"] for c in good["checks"])
    assert good["source_updated_date"] == "2025-06-20"
    failed = json.loads((next(p for p in manifests if p.stem == bad.run_id)).read_text())
    assert failed["status"] == "FAILURE" and failed["errors"][0]["step"] == "population__raw"
    assert "0000099999" in failed["errors"][0]["error"]

    engine = DuckDBEngine(resources["iceberg"].catalog(), "estat")
    rows = engine.query(
        f"SELECT run_id, status, dataset_id, year, table_rows, failed_step, error, "
        f"checks_passed, duration_seconds FROM estat.{RUNS_TABLE} "
        "WHERE started_at >= current_timestamp - INTERVAL '31' DAY ORDER BY status DESC"
    ).to_pylist()
    assert [(r["status"], r["dataset_id"], r["year"]) for r in rows] == [
        ("SUCCESS", "0000020202", 1981),
        ("FAILURE", "0000099999", 1981),
    ]
    assert rows[0]["table_rows"] == 1 and rows[0]["checks_passed"] >= 4
    assert rows[1]["failed_step"] == "population__raw" and "0000099999" in rows[1]["error"]
    assert all(r["duration_seconds"] > 0 for r in rows)


def test_recording_a_run_twice_keeps_one_row(lake) -> None:
    defs, instance, resources, _ = lake
    result = run_and_record(defs, instance, resources, "0000020202", "1982")
    run = instance.get_run_by_id(result.run_id)
    from estat_assets.defs.audit import record_run

    record_run(instance, run, resources["lake"], resources["iceberg"])
    table = resources["iceberg"].catalog().load_table(("estat", RUNS_TABLE))
    assert table.scan().to_arrow().column("run_id").to_pylist() == [result.run_id]


def test_non_ingestion_runs_are_ignored(lake) -> None:
    defs, instance, _, _ = lake
    result = defs.resolve_job_def("lake_maintenance_job").execute_in_process(instance=instance)
    assert result.success
    assert build_manifest(instance, instance.get_run_by_id(result.run_id)) is None
