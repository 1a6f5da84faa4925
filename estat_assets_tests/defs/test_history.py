"""Reading a domain table as it was before a release, found by the snapshot summaries.

Every load commits its dataset's slices with ``estat.dataset_id``, ``estat.years``,
``estat.updated_date`` and ``dagster.run_id`` in the snapshot summary (``PROP_*`` of
``lake/iceberg.py``); ``lake/history.py`` finds a release's first write by them.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.expressions import EqualTo

from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec
from estat_assets.lake.history import (
    read_before_release,
    release_snapshots,
    snapshot_before_release,
    snapshots,
)
from estat_assets.lake.iceberg import (
    PROP_DATASET,
    PROP_RUN,
    PROP_UPDATED,
    PROP_YEARS,
    ensure_table,
    replace_slices,
)
from estat_assets_tests.harness import make_lake
from estat_assets_tests.harness import test_settings as lake_settings
from estat_emulator import EmulatorServer, TableStore

RECORDED = "0000020202"  # 10 rows, fiscal years 1981-1990, release 2025-06-20
OLD_RELEASE = "2025-06-20"
NEW_RELEASE = "2026-11-30"
IDENT = ("estat", "population")


def _rows(dataset_id: str, years: list[int], tag: str) -> pa.Table:
    return pa.table(
        {
            "dataset_id": pa.array([dataset_id] * len(years), pa.string()),
            "year": pa.array(years, pa.int32()),
            "value_raw": pa.array([f"{tag}-{y}" for y in years], pa.string()),
        }
    )


def _write(catalog, dataset_id: str, years: list[int] | None, data: pa.Table, release: str, run):
    props = {
        PROP_DATASET: dataset_id,
        PROP_YEARS: ",".join(str(y) for y in (years or sorted(set(data["year"].to_pylist())))),
        PROP_UPDATED: release,
        PROP_RUN: run,
    }
    return replace_slices(catalog, IDENT, dataset_id, years, lambda: [data], props)


@pytest.fixture
def catalog(tmp_path):
    resources = build_resources(lake_settings(tmp_path / "home", "http://127.0.0.1:9"))
    catalog = resources["iceberg"].catalog()
    ensure_table(catalog, *IDENT)
    return catalog


def test_snapshots_carry_the_release_properties_in_commit_order(catalog) -> None:
    _write(catalog, "0000000001", None, _rows("0000000001", [2001, 2002], "a"), "2026-01-01", "r1")
    _write(catalog, "0000000002", None, _rows("0000000002", [2001], "x"), "2026-01-05", "r2")
    _write(catalog, "0000000001", [2002], _rows("0000000001", [2002], "b"), "2026-02-01", "r3")
    table = _write(
        catalog, "0000000001", None, _rows("0000000001", [2001, 2003], "c"), "2026-03-01", "r4"
    )
    infos = snapshots(table)
    assert len(infos) == len(table.snapshots())
    assert [s.sequence_number for s in infos] == sorted(s.sequence_number for s in infos)
    # each snapshot's parent is the one before it: commit order, whatever the clock says
    assert [s.parent_id for s in infos[1:]] == [s.snapshot_id for s in infos[:-1]]
    assert list(dict.fromkeys(s.run_id for s in infos)) == ["r1", "r2", "r3", "r4"]
    third = release_snapshots(table, "0000000001", "2026-02-01")
    # the delete and the append of one commit, both with the properties
    assert [s.operation for s in third] == ["delete", "append"]
    assert {(s.dataset_id, s.years, s.run_id) for s in third} == {("0000000001", "2002", "r3")}
    fourth = release_snapshots(table, "0000000001", "2026-03-01")
    assert {s.years for s in fourth} == {"2001,2003"}
    assert release_snapshots(table, "0000000002", "2026-03-01") == []


def test_read_before_a_release_gives_the_rows_the_release_replaced(catalog) -> None:
    _write(catalog, "0000000001", None, _rows("0000000001", [2001, 2002], "a"), "2026-01-01", "r1")
    _write(catalog, "0000000002", None, _rows("0000000002", [2001], "x"), "2026-01-05", "r2")
    _write(catalog, "0000000001", [2002], _rows("0000000001", [2002], "b"), "2026-02-01", "r3")
    table = _write(
        catalog, "0000000001", None, _rows("0000000001", [2001, 2003], "c"), "2026-03-01", "r4"
    )

    def values(t: pa.Table) -> list[str]:
        return sorted(t.column("value_raw").to_pylist())

    assert values(table.scan(row_filter=EqualTo("dataset_id", "0000000001")).to_arrow()) == [
        "c-2001",
        "c-2003",
    ]
    assert values(read_before_release(table, "0000000001", "2026-03-01")) == ["a-2001", "b-2002"]
    assert values(read_before_release(table, "0000000001", "2026-02-01")) == ["a-2001", "a-2002"]
    only_2002 = read_before_release(table, "0000000001", "2026-03-01", EqualTo("year", 2002))
    assert values(only_2002) == ["b-2002"]
    # the other dataset is never part of the answer
    before = read_before_release(table, "0000000001", "2026-03-01")
    assert set(before.column("dataset_id").to_pylist()) == {"0000000001"}
    # nothing before the first release; an unknown release is an error that says so
    assert read_before_release(table, "0000000001", "2026-01-01").num_rows == 0
    assert snapshot_before_release(table, "0000000001", "2026-01-01") is None
    with pytest.raises(LookupError, match="0000000001 release 2099-01-01"):
        read_before_release(table, "0000000001", "2099-01-01")


@pytest.mark.slow
def test_the_table_before_a_republished_release_is_readable(tmp_path, instance) -> None:
    """Real loads: a release, its republication loaded in two runs, and the table before it."""
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as server:
        spec = DomainSpec("population", datasets=(RECORDED,))
        lake = make_lake(tmp_path / "home", server, instance, domain=spec)
        first = lake.run(RECORDED)
        assert first.success
        original = lake.rows(RECORDED).drop_columns(["run_id"]).sort_by("year")
        server.store.republish(RECORDED, NEW_RELEASE, perturb=True)
        second = lake.run(RECORDED, years="1981,1982")
        third = lake.run(RECORDED)
    assert second.success and third.success

    table = lake.iceberg()
    writes = release_snapshots(table, RECORDED, NEW_RELEASE)
    assert list(dict.fromkeys(s.run_id for s in writes)) == [second.run_id, third.run_id]
    assert writes[0].years == "1981,1982"
    assert writes[-1].years == ",".join(str(y) for y in range(1981, 1991))
    first_writes = release_snapshots(table, RECORDED, OLD_RELEASE)
    assert {s.run_id for s in first_writes} == {first.run_id}
    in_order = list(dict.fromkeys(s.run_id for s in snapshots(table) if s.dataset_id))
    assert in_order == [first.run_id, second.run_id, third.run_id]

    now = lake.rows(RECORDED)
    assert set(pc.cast(now["source_updated_date"], pa.string()).to_pylist()) == {NEW_RELEASE}
    before = read_before_release(table, RECORDED, NEW_RELEASE).sort_by("year")
    assert before.num_rows == 10
    assert set(before.column("run_id").to_pylist()) == {first.run_id}
    assert before.drop_columns(["run_id"]).equals(original)  # exactly the first release's rows
    assert before.column("value_raw").to_pylist()[0] == "111801"  # the recorded value
    assert now.sort_by("year").column("value_raw").to_pylist()[0] != "111801"  # revised since
