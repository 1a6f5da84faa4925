"""The release sensor against the emulator over HTTP: new, republished, unchanged, e-Stat down."""

from __future__ import annotations

import json

import dagster as dg
import httpx
import pytest

from estat_assets.definitions import build_definitions
from estat_assets.defs.partitions import dataset_dimension, register, year_dimension
from estat_assets.defs.resources import build_resources
from estat_assets.defs.sensors import load_cursor, sensor_name, today_jst, update_window
from estat_assets.domains import DomainSpec
from estat_emulator import EmulatorServer, TableStore

POPULATION = DomainSpec("population", datasets=("0000020202",), surveys=("00200502",))
YEARS = [str(y) for y in range(1981, 1991)]


@pytest.fixture
def own_emulator():
    """A private emulator: these tests add and republish tables."""
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def setup(tmp_path, own_emulator):
    env = {"ESTAT_LAKE_HOME": str(tmp_path / "home"), "ESTAT_API_URL": own_emulator.api_base}
    resources = build_resources("local", env)
    defs = build_definitions("local", domains=(POPULATION,), resources=resources, environ=env)
    with dg.instance_for_test() as instance:
        register(instance, "population", {"0000020202": YEARS})
        yield defs, instance, resources, own_emulator


def tick(defs, instance, resources, cursor: str | None):
    sensor = defs.resolve_sensor_def(sensor_name("population"))
    with dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        resources=resources,
        definitions=defs,
    ) as ctx:
        return sensor.evaluate_tick(ctx)


def admin(emulator, path: str, body) -> dict:
    resp = httpx.post(f"{emulator.url}/_emulator/{path}", json=body, timeout=10)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def test_nothing_changed_requests_no_run(setup) -> None:
    defs, instance, resources, emulator = setup
    data = tick(defs, instance, resources, None)
    assert data.run_requests == [] and not data.dynamic_partitions_requests
    assert "no new or revised tables" in (data.skip_message or "")
    cursor = load_cursor(data.cursor)
    assert cursor["last_poll"] == today_jst().isoformat()
    again = tick(defs, instance, resources, data.cursor)
    assert again.run_requests == []
    lists = [r for r in emulator.requests.entries() if r["endpoint"] == "getStatsList"]
    assert lists and all(r["params"]["statsCode"] == "00200502" for r in lists)
    assert all(r["params"]["updatedDate"] == update_window(today_jst(), 7, None) for r in lists[:1])


def test_new_table_adds_partitions_and_runs_each_year_once(setup) -> None:
    defs, instance, resources, emulator = setup
    first = tick(defs, instance, resources, None)
    today = today_jst().isoformat()
    added = admin(
        emulator,
        "tables",
        {
            "id": "9900020203",
            "metadata_from": "0000020202",
            "axes": {"time": {"offset": 8, "limit": 3}},
            "updated_date": today,
        },
    )
    data = tick(defs, instance, resources, first.cursor)
    adds = {
        r.partitions_def_name: sorted(r.partition_keys) for r in data.dynamic_partitions_requests
    }
    assert adds[dataset_dimension("population")] == ["9900020203"]
    assert year_dimension("population") not in adds  # 1988-1990 are known years
    assert sorted(r.partition_key for r in data.run_requests) == [
        "9900020203|1988",
        "9900020203|1989",
        "9900020203|1990",
    ]
    total = added["OVERALL_TOTAL_NUMBER"]
    keys = sorted(r.run_key for r in data.run_requests)
    assert keys == [f"9900020203|{y}|{today}|{total}" for y in ("1988", "1989", "1990")]
    assert all(r.job_name in (None, "population_job") for r in data.run_requests)
    assert {r.tags["estat/release"] for r in data.run_requests} == {"new"}
    state = json.loads(data.cursor)["tables"]["9900020203"]
    assert state == {"updated_date": today, "overall_total_number": total, "survey": "00200502"}
    # The next tick sees the same release: no run.
    instance.add_dynamic_partitions(dataset_dimension("population"), ["9900020203"])
    again = tick(defs, instance, resources, data.cursor)
    assert again.run_requests == []


def test_republished_table_reruns_its_years_with_new_run_keys(setup) -> None:
    defs, instance, resources, emulator = setup
    first = tick(defs, instance, resources, None)
    cursor = json.loads(first.cursor)
    cursor["tables"]["0000020202"] = {
        "updated_date": "2025-06-20",
        "overall_total_number": 10,
        "survey": "00200502",
    }
    today = today_jst().isoformat()
    admin(emulator, "republish", {"statsDataId": "0000020202", "updated_date": today})
    data = tick(defs, instance, resources, json.dumps(cursor))
    assert not data.dynamic_partitions_requests
    assert sorted(r.partition_key for r in data.run_requests) == [f"0000020202|{y}" for y in YEARS]
    assert {r.run_key for r in data.run_requests} == {f"0000020202|{y}|{today}|10" for y in YEARS}
    assert {r.tags["estat/release"] for r in data.run_requests} == {"revised"}
    assert json.loads(data.cursor)["tables"]["0000020202"]["updated_date"] == today
    assert tick(defs, instance, resources, data.cursor).run_requests == []


def test_estat_down_skips_with_the_reason_and_keeps_the_cursor(setup) -> None:
    defs, instance, resources, emulator = setup
    first = tick(defs, instance, resources, None)
    admin(emulator, "faults", {"kind": "http_error", "status": 503, "times": None})
    today = today_jst().isoformat()
    admin(emulator, "republish", {"statsDataId": "0000020202", "updated_date": today})
    data = tick(defs, instance, resources, first.cursor)
    assert data.run_requests == []
    assert "e-Stat unavailable" in data.skip_message and "503" in data.skip_message
    assert data.cursor in (None, first.cursor)
    # e-Stat back: the release that happened meanwhile is found.
    httpx.delete(f"{emulator.url}/_emulator/faults", timeout=10)
    back = tick(defs, instance, resources, first.cursor)
    assert len(back.run_requests) == len(YEARS)


def test_declared_dataset_not_yet_registered_is_loaded(setup) -> None:
    defs, instance, resources, _ = setup
    instance.delete_dynamic_partition(dataset_dimension("population"), "0000020202")
    data = tick(defs, instance, resources, None)
    adds = {
        r.partitions_def_name: sorted(r.partition_keys) for r in data.dynamic_partitions_requests
    }
    assert adds == {dataset_dimension("population"): ["0000020202"]}
    assert len(data.run_requests) == len(YEARS)
