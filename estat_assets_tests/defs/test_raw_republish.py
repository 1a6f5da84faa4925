"""A table republished in the middle of a run: the fetch restarts, and never mixes two releases.

The metadata stored with the pages (``meta.json``), every page, the raw manifest and every Iceberg
row are of one release. Each test has its own emulator: republishing changes the table for
everyone who uses that server afterwards.
"""

from __future__ import annotations

import orjson
import pytest

from estat_assets_tests.harness import (
    DATASET,
    assert_same_content,
    make_lake,
    step_failure,
)
from estat_emulator import EmulatorServer, TableStore

pytestmark = pytest.mark.slow  # each test starts its own emulator

YEAR = "2023"
PAGE_SIZE = 5_000  # 17,217 rows → 4 pages
DATA = {"endpoint": "getStatsData", "stats_data_id": DATASET}


@pytest.fixture
def server():
    with EmulatorServer(TableStore.default()) as s:
        yield s


def _release_of_pages(lake) -> set[str]:
    manifest = lake.manifest()
    run_dir = lake.raw_dir() / "runs" / manifest["run_id"]
    return {
        orjson.loads((run_dir / name).read_bytes())["GET_STATS_DATA"]["STATISTICAL_DATA"][
            "TABLE_INF"
        ]["UPDATED_DATE"]
        for request in manifest["requests"]
        for name in request["page_files"]
    }


def _release_of_meta(lake) -> str:
    manifest = lake.manifest()
    meta = orjson.loads(
        (lake.raw_dir() / "runs" / manifest["run_id"] / manifest["meta_file"]).read_bytes()
    )
    return meta["GET_META_INFO"]["METADATA_INF"]["TABLE_INF"]["UPDATED_DATE"]


def _one_release(lake, release: str) -> None:
    """Metadata, pages, manifest and Iceberg rows: all of ``release``."""
    manifest = lake.manifest()
    assert manifest["updated_date"] == release
    assert _release_of_meta(lake) == release
    assert _release_of_pages(lake) == {release}
    rows = lake.rows()
    assert rows.num_rows == manifest["total_number"] == manifest["rows"]
    assert {str(d) for d in rows.column("source_updated_date").to_pylist()} == {release}


def test_republished_mid_fetch_restarts_and_stores_only_the_new_release(
    tmp_path, server, instance
) -> None:
    lake = make_lake(tmp_path / "home", server, instance, page_size=PAGE_SIZE)
    assert lake.run(years=YEAR).success  # the lake holds the old release
    old = lake.manifest()["updated_date"]
    rule = server.faults.add(
        {**DATA, "kind": "republish", "skip": 2, "times": 1, "updated_date": "2026-03-01"}
    )
    result = lake.run(years=YEAR)
    assert result.success and rule.hits == 1 and old != "2026-03-01"
    manifest = lake.manifest()
    assert manifest["run_id"] == result.run_id and manifest["restarts"] >= 1
    raw_md = next(
        m
        for m in result.asset_materializations_for_node("population__raw")
        if m.asset_key.path[-1] == "raw"
    ).metadata
    assert raw_md["restarts"].value == manifest["restarts"] and raw_md["complete"].value is True
    _one_release(lake, "2026-03-01")
    republished = lake.content()
    # a fault-free run of the new release on a fresh lake gives exactly the same lake
    clean = make_lake(tmp_path / "clean", server, instance, page_size=PAGE_SIZE)
    assert clean.run(years=YEAR).success
    assert_same_content(republished, clean.content())


def test_republished_between_metadata_and_pages_fetches_both_again(
    tmp_path, server, instance
) -> None:
    # the very first page is already of the new release: the pages agree, getMetaInfo does not
    rule = server.faults.add(
        {**DATA, "kind": "republish", "times": 1, "updated_date": "2026-04-01"}
    )
    lake = make_lake(tmp_path / "home", server, instance, page_size=PAGE_SIZE)
    result = lake.run(years=YEAR)
    assert result.success and rule.hits == 1
    assert lake.manifest()["restarts"] == 1
    meta_requests = [e for e in server.requests.entries() if e["endpoint"] == "getMetaInfo"]
    assert len(meta_requests) == 2  # the metadata was fetched again, with the new release
    _one_release(lake, "2026-04-01")


def test_republished_on_every_request_fails_typed_and_keeps_the_old_lake(
    tmp_path, server, instance
) -> None:
    lake = make_lake(tmp_path / "home", server, instance, page_size=PAGE_SIZE)
    assert lake.run(years=YEAR).success
    old = lake.manifest()["updated_date"]
    before = lake.state()
    # a new release (the next day) before every page: no two answers agree, ever
    rule = server.faults.add({**DATA, "kind": "republish", "times": None})
    result = lake.run(years=YEAR)
    assert not result.success and rule.hits > 4
    failure = step_failure(result).step_failure_data.user_failure_data
    assert failure.metadata["error"].value == "TableRepublishedError"
    description = failure.description or ""
    assert description.startswith("TableRepublishedError: ") and "republished" in description
    assert description.count(DATASET) == 1
    assert lake.state() == before  # the old release, untouched
    _one_release(lake, old)
