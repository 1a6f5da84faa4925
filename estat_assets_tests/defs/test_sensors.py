"""The release sensor against the emulator over HTTP: new, republished, unchanged, e-Stat down.

One run request per new or revised table (a dataset partition), run key
``<dataset>|<UPDATED_DATE>|<OVERALL_TOTAL_NUMBER>``. Ticks are evaluated the way the daemon does
(``evaluate_tick`` with an ``instance_ref``, so the run requests are validated against the job and
its dynamic partitions), and the requested runs are then executed with the tags the sensor gave
them. Tests that add or republish tables use their own emulator.
"""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
import httpx
import pytest

from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import dataset_dimension, register
from estat_assets.defs.sensors import sensor_name
from estat_assets.domains import DomainSpec
from estat_assets.estat.releases import load_cursor, today_jst, update_window
from estat_assets_tests.harness import Lake, make_lake
from estat_emulator import EmulatorServer, TableStore

RECORDED = "0000020202"  # survey 00200502, UPDATED_DATE 2025-06-20, 10 rows
SURVEY = "00200502"
NEW = "9900020203"
DOMAIN = "population"


@pytest.fixture
def own_emulator():
    """A private emulator: these tests add and republish tables."""
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as server:
        yield server


def lake_for(tmp_path, server, instance, datasets=(RECORDED,)) -> Lake:
    spec = DomainSpec(DOMAIN, datasets=tuple(datasets), surveys=(SURVEY,))
    return make_lake(tmp_path / "home", server, instance, domain=spec)


def tick(lake: Lake, cursor: str | None):
    sensor = lake.defs.resolve_sensor_def(sensor_name(DOMAIN))
    with dg.build_sensor_context(
        instance=lake.instance,
        instance_ref=lake.instance.get_ref(),
        cursor=cursor,
        resources=lake.resources,
        definitions=lake.defs,
    ) as ctx:
        return sensor.evaluate_tick(ctx)


def adds(data) -> dict[str, list[str]]:
    return {
        r.partitions_def_name: sorted(r.partition_keys) for r in data.dynamic_partitions_requests
    }


def admin(server: EmulatorServer, path: str, body) -> dict:
    resp = httpx.post(f"{server.url}/_emulator/{path}", json=body, timeout=10)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def launch(lake: Lake, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Run what the sensor asked for, as the daemon would: its partition and its tags."""
    return lake.run(request.partition_key, tags=request.tags)


def test_the_sensor_targets_the_domain_job_at_the_configured_interval(
    tmp_path, emulator, instance
) -> None:
    spec = DomainSpec(DOMAIN, datasets=(RECORDED,), surveys=(SURVEY,))
    lake = make_lake(
        tmp_path / "home",
        emulator,
        instance,
        domain=spec,
        ESTAT_RELEASE_SENSOR_INTERVAL="120",
        ESTAT_RELEASE_WINDOW_DAYS="30",
    )
    sensor = lake.defs.resolve_sensor_def(sensor_name(DOMAIN))
    assert sensor.job_name == job_name(DOMAIN)
    assert sensor.minimum_interval_seconds == 120
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED  # an operator turns it on
    data = tick(lake, None)
    lists = [r for r in emulator.requests.entries() if r["endpoint"] == "getStatsList"]
    last_poll = date.fromisoformat(load_cursor(data.cursor)["last_poll"])
    assert [r["params"]["updatedDate"] for r in lists] == [update_window(last_poll, 30, None)]


def test_a_declared_dataset_never_loaded_is_added_and_loaded_once(
    tmp_path, emulator, instance
) -> None:
    lake = lake_for(tmp_path, emulator, instance)
    data = tick(lake, None)
    assert adds(data) == {dataset_dimension(DOMAIN): [RECORDED]}
    assert [r.partition_key for r in data.run_requests] == [RECORDED]
    request = data.run_requests[0]
    assert request.job_name in (None, job_name(DOMAIN))
    # not listed in the window: its release is not known yet, the load finds it
    assert request.run_key == f"{RECORDED}||"
    assert request.tags["estat/dataset_id"] == RECORDED
    assert request.tags["estat/release"] == "new"
    cursor = load_cursor(data.cursor)
    lists = [r for r in emulator.requests.entries() if r["endpoint"] == "getStatsList"]
    window = update_window(date.fromisoformat(cursor["last_poll"]), 7, None)
    assert [(r["params"]["statsCode"], r["params"]["updatedDate"]) for r in lists] == [
        (SURVEY, window)
    ]

    # The daemon applies the add request and launches the run; the run loads the table.
    instance.add_dynamic_partitions(dataset_dimension(DOMAIN), [RECORDED])
    result = launch(lake, request)
    assert result.success and sum(lake.slices(RECORDED).values()) == 10
    assert instance.get_run_by_id(result.run_id).tags["estat/release"] == "new"

    # Unchanged: the next tick skips with the reason and requests nothing.
    again = tick(lake, data.cursor)
    assert again.run_requests == [] and not again.dynamic_partitions_requests
    assert "no new or revised tables" in (again.skip_message or "")
    # A lost cursor does not reload it either: the inventory says the lake holds it.
    fresh = tick(lake, None)
    assert fresh.run_requests == [] and not fresh.dynamic_partitions_requests


def test_estat_down_skips_with_the_reason_and_keeps_the_cursor(tmp_path, emulator, instance):
    lake = lake_for(tmp_path, emulator, instance)
    register(instance, DOMAIN, [RECORDED])
    emulator.faults.add(
        {"kind": "http_error", "status": 503, "endpoint": "getStatsList", "times": None}
    )
    data = tick(lake, None)
    assert data.run_requests == [] and not data.dynamic_partitions_requests
    assert "e-Stat unavailable" in data.skip_message and "503" in data.skip_message
    assert data.cursor is None  # the stored cursor stays as it was
    # e-Stat back: the load that was due is requested; nothing was lost.
    emulator.faults.clear()
    back = tick(lake, None)
    assert [r.partition_key for r in back.run_requests] == [RECORDED]


@pytest.mark.slow
def test_a_new_table_of_a_watched_survey_is_one_run_then_its_baseline(
    tmp_path, own_emulator, instance
) -> None:
    lake = lake_for(tmp_path, own_emulator, instance, datasets=())
    first = tick(lake, None)
    assert first.run_requests == [] and "no new or revised tables" in first.skip_message
    today = today_jst().isoformat()
    added = admin(
        own_emulator,
        "tables",
        {
            "id": NEW,
            "metadata_from": RECORDED,
            "axes": {"area": {"limit": 2}, "time": {"offset": 8, "limit": 3}},
            "updated_date": today,
        },
    )
    total = added["OVERALL_TOTAL_NUMBER"]
    assert total == 9 * 2 * 3
    data = tick(lake, first.cursor)
    assert adds(data) == {dataset_dimension(DOMAIN): [NEW]}
    assert [(r.partition_key, r.run_key) for r in data.run_requests] == [
        (NEW, f"{NEW}|{today}|{total}")
    ]
    tags = data.run_requests[0].tags
    assert tags["estat/dataset_id"] == NEW and tags["estat/updated_date"] == today
    assert tags["estat/release"] == "new"
    assert load_cursor(data.cursor)["tables"][NEW] == {
        "updated_date": today,
        "overall_total_number": total,
        "survey": SURVEY,
    }

    instance.add_dynamic_partitions(dataset_dimension(DOMAIN), [NEW])
    result = launch(lake, data.run_requests[0])
    assert result.success and sum(lake.slices(NEW).values()) == total
    assert sorted(lake.slices(NEW)) == ["1988", "1989", "1990"]

    # The same release on the next tick: nothing to run.
    assert tick(lake, data.cursor).run_requests == []
    # With its cursor lost the sensor finds the release in the inventory: baseline, no run.
    fresh = tick(lake, None)
    assert fresh.run_requests == [] and not fresh.dynamic_partitions_requests
    assert load_cursor(fresh.cursor)["tables"][NEW]["updated_date"] == today


@pytest.mark.slow
def test_a_republished_table_is_one_revised_run(tmp_path, own_emulator, instance) -> None:
    lake = lake_for(tmp_path, own_emulator, instance)
    first_load = lake.run(RECORDED)
    assert first_load.success
    before = {r["year"]: r["value_raw"] for r in lake.rows(RECORDED).to_pylist()}
    baseline = tick(lake, None)  # declared, registered and loaded: nothing to do
    assert baseline.run_requests == [] and not baseline.dynamic_partitions_requests

    today = today_jst().isoformat()
    admin(
        own_emulator,
        "republish",
        {"statsDataId": RECORDED, "updated_date": today, "perturb": True},
    )
    data = tick(lake, baseline.cursor)
    assert not data.dynamic_partitions_requests
    assert [(r.partition_key, r.run_key) for r in data.run_requests] == [
        (RECORDED, f"{RECORDED}|{today}|10")
    ]
    assert data.run_requests[0].tags["estat/release"] == "revised"
    assert data.run_requests[0].tags["estat/updated_date"] == today

    result = launch(lake, data.run_requests[0])
    assert result.success
    after = lake.rows(RECORDED).to_pylist()
    assert {str(r["source_updated_date"]) for r in after} == {today}
    assert {r["year"]: r["value_raw"] for r in after} != before  # the revised values
    assert tick(lake, data.cursor).run_requests == []
    assert tick(lake, None).run_requests == []  # the inventory holds this very release


@pytest.mark.slow
def test_a_release_while_estat_was_down_is_found_when_it_is_back(
    tmp_path, own_emulator, instance
) -> None:
    lake = lake_for(tmp_path, own_emulator, instance)
    register(instance, DOMAIN, [RECORDED])
    cursor = load_cursor(None)
    cursor["tables"][RECORDED] = {
        "updated_date": "2025-06-20",
        "overall_total_number": 10,
        "survey": SURVEY,
    }
    cursor["last_poll"] = today_jst().isoformat()
    known = json.dumps(cursor)
    admin(own_emulator, "faults", {"kind": "http_error", "status": 503, "times": None})
    today = today_jst().isoformat()
    admin(own_emulator, "republish", {"statsDataId": RECORDED, "updated_date": today})
    down = tick(lake, known)
    assert down.run_requests == [] and "e-Stat unavailable" in down.skip_message
    assert down.cursor in (None, known)  # kept: the daemon stores nothing new
    httpx.delete(f"{own_emulator.url}/_emulator/faults", timeout=10)
    back = tick(lake, known)
    assert [(r.run_key, r.tags["estat/release"]) for r in back.run_requests] == [
        (f"{RECORDED}|{today}|10", "revised")
    ]
