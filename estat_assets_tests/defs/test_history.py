"""Reading a domain table as it was before a release, found by the snapshot summary."""

from __future__ import annotations

import dagster as dg
import httpx
import pytest

from estat_assets.definitions import build_definitions
from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import partition_key, register
from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec
from estat_assets.lake.history import read_before_release, release_snapshots, snapshots
from estat_emulator import EmulatorServer, TableStore

POPULATION = DomainSpec("population", datasets=("0000020202",))
NEW_RELEASE = "2026-11-30"


@pytest.fixture
def lake(tmp_path):
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as emulator:
        env = {"ESTAT_LAKE_HOME": str(tmp_path / "home"), "ESTAT_API_URL": emulator.api_base}
        resources = build_resources("local", env)
        defs = build_definitions("local", domains=(POPULATION,), resources=resources)
        with dg.instance_for_test() as instance:
            register(instance, "population", {"0000020202": ["1981", "1982"]})
            yield defs, instance, resources, emulator


def test_table_before_a_release_is_readable(lake) -> None:
    defs, instance, resources, emulator = lake
    job = defs.resolve_job_def(job_name("population"))

    def run(year: str):
        return job.execute_in_process(
            partition_key=str(partition_key("0000020202", year)), instance=instance
        )

    first = [run("1981"), run("1982")]
    resp = httpx.post(
        f"{emulator.url}/_emulator/republish",
        json={"statsDataId": "0000020202", "updated_date": NEW_RELEASE, "perturb": True},
        timeout=10,
    )
    assert resp.status_code == 200
    second = run("1981")

    iceberg = resources["iceberg"]
    table = iceberg.catalog().load_table(iceberg.identifier("population"))
    writes = release_snapshots(table, "0000020202", NEW_RELEASE)
    # pyiceberg's overwrite may commit a delete and an append snapshot: both carry the summary
    assert {s.run_id for s in writes} == {second.run_id} and writes[0].year == "1981"
    in_order = list(dict.fromkeys(s.run_id for s in snapshots(table)))
    assert in_order == [r.run_id for r in (*first, second)]

    now = table.scan().to_arrow().sort_by("year").to_pylist()
    assert [(r["year"], str(r["source_updated_date"])) for r in now] == [
        (1981, NEW_RELEASE),
        (1982, "2025-06-20"),
    ]
    before = read_before_release(table, "0000020202", NEW_RELEASE).sort_by("year").to_pylist()
    assert [(r["year"], str(r["source_updated_date"]), r["run_id"]) for r in before] == [
        (1981, "2025-06-20", first[0].run_id),
        (1982, "2025-06-20", first[1].run_id),
    ]
    assert before[0]["value_raw"] == "111801"  # the recorded value, before the revision
