"""Maintenance: expire old snapshots (keeping the newest and every branch/tag head), compact
many-file slices in one commit that still says which release they hold, and the job itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pytest

from estat_assets.defs.maintenance import JOB_NAME, build_maintenance
from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec
from estat_assets.lake.iceberg import (
    PROP_DATASET,
    PROP_MAINTENANCE,
    PROP_RUN,
    PROP_UPDATED,
    PROP_YEARS,
    dataset_filter,
    ensure_table,
    expire_snapshots,
    last_write,
    replace_slices,
    slice_rows,
)
from estat_assets.lake.maintenance import maintain, small_file_slices
from estat_assets.settings import Settings
from estat_assets_tests.harness import make_lake
from estat_assets_tests.harness import test_settings as lake_settings
from estat_emulator import EmulatorServer, TableStore

IDENT = ("estat", "population")
DATASET = "0000000001"
RECORDED = "0000020202"


@pytest.fixture
def iceberg(tmp_path):
    resources = build_resources(lake_settings(tmp_path / "home", "http://127.0.0.1:9"))
    ensure_table(resources["iceberg"].catalog(), *IDENT)
    return resources["iceberg"]


def _rows(year: int, n: int, tag: str) -> pa.Table:
    return pa.table(
        {
            "dataset_id": pa.array([DATASET] * n, pa.string()),
            "year": pa.array([year] * n, pa.int32()),
            "value_raw": pa.array([f"{tag}{i}" for i in range(n)], pa.string()),
        }
    )


def _load(catalog, parts: list[pa.Table], release: str, run: str):
    """A whole-dataset load as the table step commits it: one commit, properties on it."""
    props = {PROP_DATASET: DATASET, PROP_YEARS: "", PROP_UPDATED: release, PROP_RUN: run}
    return replace_slices(catalog, IDENT, DATASET, None, lambda: parts, props)


def _files(table, year: int) -> list[str]:
    return sorted(
        t.file.file_path
        for t in table.scan(row_filter=dataset_filter(DATASET, [year])).plan_files()
    )


def _values(table, year: int) -> list[str]:
    rows = table.scan(row_filter=dataset_filter(DATASET, [year])).to_arrow()
    return sorted(rows.column("value_raw").to_pylist())


def test_expire_keeps_the_newest_snapshots_and_every_branch_and_tag_head(iceberg) -> None:
    catalog = iceberg.catalog()
    for i in range(4):
        table = _load(catalog, [_rows(2001, 2, f"r{i}-")], f"2026-0{i + 1}-01", f"run-{i}")
    snaps = sorted(table.snapshots(), key=lambda s: s.sequence_number)
    assert len(snaps) == 7  # the first load appends; each later one deletes and appends
    tagged, branched = snaps[2].snapshot_id, snaps[0].snapshot_id  # release 2, release 1
    table.manage_snapshots().create_tag(tagged, "before-release-2").commit()
    table.manage_snapshots().create_branch(branched, "audit").commit()
    table = catalog.load_table(IDENT)

    # Nothing is older than the cutoff yet: nothing expires.
    assert expire_snapshots(table, datetime.now(UTC) - timedelta(days=30), retain_last=2) == []
    # Everything is older: all but the two newest and the tag/branch heads go.
    later = datetime.now(UTC) + timedelta(days=1)
    expired = expire_snapshots(table, later, retain_last=2)
    table = catalog.load_table(IDENT)
    left = {s.snapshot_id for s in table.snapshots()}
    assert left == {snaps[-1].snapshot_id, snaps[-2].snapshot_id, tagged, branched}
    assert sorted(expired) == sorted(s.snapshot_id for s in snaps if s.snapshot_id not in left)
    assert _values(table, 2001) == ["r3-0", "r3-1"]  # the current data is untouched
    for head, rows in ((tagged, ["r1-0", "r1-1"]), (branched, ["r0-0", "r0-1"])):
        marked = table.scan(snapshot_id=head).to_arrow()  # still reads what it marked
        assert sorted(marked.column("value_raw").to_pylist()) == rows


def test_compaction_rewrites_a_many_file_slice_in_one_commit_keeping_its_release(iceberg) -> None:
    catalog = iceberg.catalog()
    _load(catalog, [_rows(2001, 2, "a")], "2025-06-20", "run-old")  # another slice, one file
    parts = [_rows(2002, 2, f"p{i}-") for i in range(3)] + [_rows(2001, 2, "b")]
    table = _load(catalog, parts, "2026-02-01", "run-release")  # 2002 arrives as three files
    assert len(_files(table, 2002)) == 3
    untouched = _files(table, 2001)
    before_values = _values(table, 2002)
    assert small_file_slices(table, 1) == [(DATASET, 2002, 3)]
    known = {s.snapshot_id for s in table.snapshots()}

    report = maintain(catalog, "estat", older_than_days=30, retain_last=5, max_files_per_slice=1)
    entry = next(e for e in report if e["table"] == "estat.population")
    assert entry["compacted"] == [f"{DATASET}|2002 (3 files)"]
    assert entry["expired_snapshots"] == 0  # nothing is 30 days old

    table = catalog.load_table(IDENT)
    assert len(_files(table, 2002)) == 1 and _values(table, 2002) == before_values
    assert _files(table, 2001) == untouched
    assert slice_rows(table, DATASET) == {"2001": 2, "2002": 6}
    new = [s for s in table.snapshots() if s.snapshot_id not in known]
    # one commit: the delete and the append of the rewrite, both saying what they hold
    assert sorted(s.summary.operation.value for s in new) == ["append", "delete"]
    for snap in new:
        props = snap.summary.additional_properties
        assert props[PROP_MAINTENANCE] == "compact"
        assert (props[PROP_DATASET], props[PROP_YEARS]) == (DATASET, "2002")
        assert props[PROP_UPDATED] == "2026-02-01"
    # the shrink guard's question "which release does the lake hold?" has the same answer
    assert last_write(table, DATASET)[PROP_UPDATED] == "2026-02-01"
    # a second pass finds nothing to compact
    again = maintain(catalog, "estat", older_than_days=30, retain_last=5, max_files_per_slice=1)
    assert next(e for e in again if e["table"] == "estat.population")["compacted"] == []


def test_the_maintenance_job_runs_in_process_over_the_namespace(iceberg) -> None:
    catalog = iceberg.catalog()
    _load(catalog, [_rows(2001, 1, "x")], "2026-01-01", "run-x")
    job, _ = build_maintenance(Settings.from_env({}))
    defs = dg.Definitions(jobs=[job], resources={"iceberg": iceberg})
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(JOB_NAME).execute_in_process(
            instance=instance,
            run_config={"ops": {"maintain_tables": {"config": {"older_than_days": 0.0}}}},
        )
    assert result.success
    report = result.output_for_node("maintain_tables")
    assert [e["table"] for e in report] == ["estat.population"]
    assert report[0]["snapshots_left"] == 1 and report[0]["compacted"] == []
    meta = next(
        e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"
    ).step_output_data.metadata
    assert meta["tables"].value == 1


def test_every_job_of_the_code_location_runs_in_process(tmp_path, emulator, instance) -> None:
    lake = make_lake(
        tmp_path / "home", emulator, instance, domain=DomainSpec("population", datasets=(RECORDED,))
    )
    for name in (JOB_NAME, "population_job"):
        assert lake.defs.resolve_job_def(name).executor_def.name == "in_process"


@pytest.mark.slow
def test_a_compacted_lake_still_accepts_a_new_release_that_withdraws_a_year(
    tmp_path, instance
) -> None:
    """End to end: after compaction the table step still finds the release the lake holds, so a
    new release that really withdraws a year (the count agrees) is loaded, not refused."""
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as server:
        spec = DomainSpec("population", datasets=(RECORDED,))
        lake = make_lake(tmp_path / "home", server, instance, domain=spec)
        assert lake.run(RECORDED).success
        catalog = lake.catalog()
        report = maintain(catalog, "estat", older_than_days=30, max_files_per_slice=0)
        entry = next(e for e in report if e["table"] == "estat.population")
        assert len(entry["compacted"]) == 10  # every slice rewritten, one commit each
        table = lake.iceberg()
        assert table.current_snapshot().summary.additional_properties[PROP_MAINTENANCE] == "compact"
        assert last_write(table, RECORDED)[PROP_UPDATED] == "2025-06-20"

        server.store.republish(RECORDED, "2026-11-30", remove_items={"time": ["1981100000"]})
        result = lake.run(RECORDED)
    assert result.success
    assert sorted(lake.slices(RECORDED)) == [str(y) for y in range(1982, 1991)]
