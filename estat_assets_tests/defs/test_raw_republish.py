"""A table republished in the middle of a run: the fetch restarts, and never mixes two releases.

Its own emulator: republishing changes the table for everyone who uses that server afterwards.
"""

from __future__ import annotations

import dagster as dg
import orjson
import pytest

from estat_assets.defs.raw import RETRIES_ENV, RETRY_DELAY_ENV
from estat_assets_tests.defs.test_raw_lake import (
    DATASET,
    assert_same_content,
    make_lake,
    raw_failure,
)
from estat_emulator import EmulatorServer, TableStore

DATA = {"endpoint": "getStatsData", "stats_data_id": DATASET}


@pytest.fixture
def fresh_server(monkeypatch):
    monkeypatch.setenv(RETRY_DELAY_ENV, "0.05")
    monkeypatch.setenv(RETRIES_ENV, "1")
    with EmulatorServer(TableStore.default()) as s:
        yield s


def _dates(lake) -> set[str]:
    manifest = lake.manifest()
    run_dir = lake.raw_dir() / "runs" / manifest["run_id"]
    return {
        orjson.loads((run_dir / n).read_bytes())["GET_STATS_DATA"]["STATISTICAL_DATA"]["TABLE_INF"][
            "UPDATED_DATE"
        ]
        for n in manifest["page_files"]
    }


def test_republished_mid_run_restarts_and_stores_only_the_new_release(
    tmp_path, fresh_server
) -> None:
    fresh_server.faults.add({**DATA, "kind": "republish", "skip": 2, "updated_date": "2026-03-01"})
    with dg.instance_for_test() as instance:
        lake = make_lake(tmp_path / "home", fresh_server, instance)
        result = lake.run()
        assert result.success
        manifest = lake.manifest()
        assert manifest["restarts"] == 1 and _dates(lake) == {"2026-03-01"}
        raw_md = next(
            m
            for m in result.asset_materializations_for_node("population__raw")
            if m.asset_key.path[-1] == "raw"
        ).metadata
        assert raw_md["restarts"].value == 1 and raw_md["complete"].value is True
        rows = lake.rows()
        assert rows.num_rows == manifest["total_number"]
        assert {str(d) for d in rows.column("source_updated_date").to_pylist()} == {"2026-03-01"}
        republished = lake.content()
    # a fault-free run of the new release gives exactly the same lake
    with dg.instance_for_test() as instance:
        clean = make_lake(tmp_path / "clean", fresh_server, instance)
        assert clean.run().success
        assert_same_content(republished, clean.content())


def test_republished_on_every_attempt_fails_typed_and_keeps_the_old_lake(
    tmp_path, fresh_server
) -> None:
    with dg.instance_for_test() as instance:
        lake = make_lake(tmp_path / "home", fresh_server, instance)
        assert lake.run().success
        before = lake.state()
        for n in range(12):  # a new release under every fetch attempt of every step attempt
            fresh_server.faults.add(
                {
                    **DATA,
                    "kind": "republish",
                    "nth": [2 + 2 * n],
                    "updated_date": f"2027-01-{n + 1:02d}",
                }
            )
        result = lake.run()
        assert not result.success
        failure = raw_failure(result).step_failure_data.user_failure_data
        assert failure.metadata["error"].value == "TableRepublishedError"
        assert "republished" in (failure.description or "")
        assert lake.state() == before


def test_republished_between_metadata_and_pages_fetches_both_again(tmp_path, fresh_server) -> None:
    # the very first page is already of the new release: all pages agree, getMetaInfo does not
    fresh_server.faults.add({**DATA, "kind": "republish", "times": 1, "updated_date": "2026-04-01"})
    with dg.instance_for_test() as instance:
        lake = make_lake(tmp_path / "home", fresh_server, instance)
        assert lake.run().success
        manifest = lake.manifest()
        meta = orjson.loads(
            (lake.raw_dir() / "runs" / manifest["run_id"] / manifest["meta_file"]).read_bytes()
        )
        assert meta["GET_META_INFO"]["METADATA_INF"]["TABLE_INF"]["UPDATED_DATE"] == "2026-04-01"
        assert manifest["updated_date"] == "2026-04-01" and _dates(lake) == {"2026-04-01"}
        assert manifest["restarts"] == 1
        assert {str(d) for d in lake.rows().column("source_updated_date").to_pylist()} == {
            "2026-04-01"
        }
