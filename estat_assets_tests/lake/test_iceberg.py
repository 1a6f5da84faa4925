"""``lake/iceberg.py`` ``replace_slices``: a dataset's slices replaced in ONE commit.

One commit = one new metadata file (one entry more in the metadata log), however many years and
whether it deletes, appends or both; a whole-table load also drops the years the new release no
longer has, a years load only those years. Rows of another dataset or year are refused before
anything is committed. A commit that lost a race is retried on the fresh table, so concurrent
writers never duplicate a slice or lose another dataset's rows.
"""

from __future__ import annotations

import threading
import types

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.lake import iceberg as ice
from estat_assets.lake.iceberg import (
    PROP_DATASET,
    PROP_RUN,
    PROP_UPDATED,
    PROP_YEARS,
    SlicePart,
    ensure_table,
    last_write,
    replace_partition,
    replace_slices,
    slice_rows,
)
from estat_assets_tests.factories import sample

IDENT = ("estat", "population")
A, B = "0000020202", "9900020202"
YEARS = list(range(1981, 1991))  # the recorded sample: one row per fiscal year


@pytest.fixture
def catalog(tmp_path):
    cat = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    ensure_table(cat, *IDENT)
    return cat


def rows(dataset: str = A, years=None, run: str = "r") -> pa.Table:
    t = conform_pages(
        [sample("getStatsData_0000020202_limit10.json")],
        ConformInput(dataset_id=dataset, run_id=run),
    )
    if years is not None:
        t = t.filter(pc.is_in(t.column("year"), pa.array(list(years), t.column("year").type)))
    return t


def load(catalog, dataset=A, years=None, data=None, run="r", **props):
    data = rows(dataset, years, run) if data is None else data
    properties = {PROP_DATASET: dataset, PROP_RUN: run, **props}
    return replace_slices(catalog, IDENT, dataset, years, lambda: [data], properties)


def commits(catalog) -> int:
    """Catalog commits so far: every commit writes one new metadata file."""
    return len(catalog.load_table(IDENT).metadata.metadata_log) + 1


def held(catalog, dataset=A) -> dict[str, int]:
    return slice_rows(catalog.load_table(IDENT), dataset)


def run_ids(catalog, dataset=A) -> dict[int, set[str]]:
    data = catalog.load_table(IDENT).scan().to_arrow()
    data = data.filter(pc.equal(data.column("dataset_id"), dataset))
    out: dict[int, set[str]] = {}
    for year, run in zip(
        data.column("year").to_pylist(), data.column("run_id").to_pylist(), strict=True
    ):
        out.setdefault(year, set()).add(run)
    return out


def test_a_whole_load_is_one_commit_and_drops_years_the_release_no_longer_has(catalog) -> None:
    before = commits(catalog)
    load(catalog, run="first")
    assert commits(catalog) == before + 1
    assert held(catalog) == {str(y): 1 for y in YEARS}
    load(catalog, B)
    # the next release of A has five years only: one commit deletes ten slices, adds five
    before = commits(catalog)
    table = load(catalog, data=rows(A, YEARS[:5], "second"), run="second")
    assert commits(catalog) == before + 1
    assert held(catalog) == {str(y): 1 for y in YEARS[:5]}
    assert run_ids(catalog) == {y: {"second"} for y in YEARS[:5]}
    assert held(catalog, B) == {str(y): 1 for y in YEARS}  # another dataset is untouched
    assert table.current_snapshot().summary.additional_properties[PROP_RUN] == "second"


def test_a_years_load_replaces_those_years_only(catalog) -> None:
    load(catalog, run="whole")
    before = commits(catalog)
    load(catalog, years=[1985, 1987], run="two-years")
    assert commits(catalog) == before + 1
    ids = run_ids(catalog)
    assert {y for y, r in ids.items() if r == {"two-years"}} == {1985, 1987}
    assert all(r == {"whole"} for y, r in ids.items() if y not in (1985, 1987))
    assert sum(held(catalog).values()) == 10


def test_reruns_replace_instead_of_duplicating(catalog) -> None:
    for run in ("a", "b", "c"):
        load(catalog, run=run)
    assert held(catalog) == {str(y): 1 for y in YEARS}
    assert run_ids(catalog) == {y: {"c"} for y in YEARS}


def test_no_rows_for_a_year_deletes_its_slice(catalog) -> None:
    load(catalog)
    load(catalog, years=[1981], data=rows(A, [1981]).slice(0, 0))
    assert "1981" not in held(catalog) and len(held(catalog)) == 9


@pytest.mark.parametrize(
    ("dataset", "years", "data", "message"),
    [
        (A, None, lambda: rows(B), "do not belong to dataset_id=0000020202"),
        (A, [1981], lambda: rows(A, [1981, 1982]), "do not belong"),
        (
            A,
            None,
            lambda: rows(A).set_column(
                rows(A).schema.get_field_index("year"), "year", pa.nulls(10, pa.int32())
            ),
            "do not belong",
        ),
    ],
    ids=["other-dataset", "other-year", "null-year"],
)
def test_rows_of_other_slices_are_refused_and_nothing_is_committed(
    catalog, dataset, years, data, message
) -> None:
    load(catalog, B)
    before = catalog.load_table(IDENT).metadata_location
    with pytest.raises(ValueError, match=message):
        replace_slices(catalog, IDENT, dataset, years, lambda: [data()])
    assert catalog.load_table(IDENT).metadata_location == before
    assert held(catalog, A) == {}


def test_a_streamed_year_outside_the_loaded_years_is_refused(catalog) -> None:
    before = catalog.load_table(IDENT).metadata_location

    def parts():
        yield SlicePart(1981, lambda: [rows(A, [1981])])
        yield SlicePart(1990, lambda: [rows(A, [1990])])

    with pytest.raises(ValueError, match="year 1990 is not among the years replaced"):
        replace_slices(catalog, IDENT, A, [1981], parts)
    # a part whose rows are of another year than it says is refused while it is written
    with pytest.raises(ValueError, match="do not belong"):
        replace_slices(
            catalog, IDENT, A, None, lambda: [SlicePart(1981, lambda: [rows(A, [1982])])]
        )
    assert catalog.load_table(IDENT).metadata_location == before


def test_streamed_parts_of_a_year_are_one_commit(catalog) -> None:
    data = rows(A)

    def parts():
        for year in YEARS:
            one = data.filter(pc.equal(data.column("year"), year))
            yield SlicePart(year, lambda one=one: [one.slice(0, 0), one.to_batches()[0]])

    before = commits(catalog)
    replace_slices(catalog, IDENT, A, None, parts, {PROP_DATASET: A})
    assert commits(catalog) == before + 1
    assert held(catalog) == {str(y): 1 for y in YEARS}


def test_every_commit_names_its_dataset_release_and_run(catalog) -> None:
    load(catalog, run="r1", **{PROP_UPDATED: "2025-06-20", PROP_YEARS: "1981-1990"})
    load(catalog, B, run="r2")
    table = catalog.load_table(IDENT)
    assert last_write(table, A)[PROP_UPDATED] == "2025-06-20"
    assert last_write(table, A)[PROP_RUN] == "r1" and last_write(table, B)[PROP_RUN] == "r2"
    assert last_write(table, "0000000001") is None


def test_replace_partition_is_one_year_of_replace_slices(catalog) -> None:
    load(catalog)
    replace_partition(catalog, IDENT, rows(A, [1983], "p"), A, 1983)
    assert run_ids(catalog)[1983] == {"p"} and sum(held(catalog).values()) == 10


class RacingCatalog:
    """The real catalog, with another writer committing right after ``replace_slices`` loads
    the table it will commit on (``race_at``-th load): a real lost race, every time."""

    def __init__(self, catalog, race_at: int, other) -> None:
        self.catalog = catalog
        self.race_at = race_at
        self.other = other
        self.loads = 0

    def load_table(self, identifier):
        self.loads += 1
        table = self.catalog.load_table(identifier)
        if self.loads == self.race_at:
            self.other()
        return table


def no_pyiceberg_retries(catalog) -> None:
    """Let a lost commit reach ``replace_slices``'s own retry (pyiceberg retries 4 times first)."""
    table = catalog.load_table(IDENT)
    table.transaction().set_properties(**{"commit.retry.num-retries": "0"}).commit_transaction()


@pytest.mark.parametrize("pyiceberg_retries", [False, True], ids=["ours", "pyiceberg's first"])
def test_a_commit_that_lost_a_race_is_retried_on_the_fresh_table(
    catalog, pyiceberg_retries
) -> None:
    if not pyiceberg_retries:
        no_pyiceberg_retries(catalog)
    # loads: 1 before the data files are written, 2 = the first commit attempt (loses)
    racing = RacingCatalog(catalog, 2, lambda: load(catalog, B, run="other"))
    before = commits(catalog)
    replace_slices(racing, IDENT, A, None, lambda: [rows(A, run="mine")], {PROP_RUN: "mine"})
    if not pyiceberg_retries:
        assert racing.loads >= 4  # our loop loaded the table again and committed on it
    assert commits(catalog) == before + 2  # the other writer's commit, then ours: no more
    assert run_ids(catalog, A) == {y: {"mine"} for y in YEARS}
    assert run_ids(catalog, B) == {y: {"other"} for y in YEARS}  # not lost by our retry


def test_a_commit_that_always_loses_gives_up_with_an_error(catalog, monkeypatch) -> None:
    monkeypatch.setattr(ice, "time", types.SimpleNamespace(sleep=lambda _: None))
    no_pyiceberg_retries(catalog)
    n = {"other": 0}

    def other():
        n["other"] += 1
        load(catalog, B, run=f"other-{n['other']}")

    class AlwaysRacing(RacingCatalog):
        def load_table(self, identifier):
            self.loads += 1
            table = self.catalog.load_table(identifier)
            if self.loads >= 2:
                self.other()
            return table

    with pytest.raises(RuntimeError, match=f"after {ice.COMMIT_ATTEMPTS} attempts"):
        replace_slices(AlwaysRacing(catalog, 2, other), IDENT, A, None, lambda: [rows(A)])
    assert held(catalog, A) == {}  # nothing half-written
    assert n["other"] == ice.COMMIT_ATTEMPTS


def test_concurrent_writers_of_one_dataset_leave_one_copy(catalog) -> None:
    errors: list[BaseException] = []

    def write(run: str) -> None:
        try:
            load(catalog, run=run)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = run_ids(catalog)
    assert held(catalog) == {str(y): 1 for y in YEARS}
    winner = ids[1981]
    assert len(winner) == 1 and all(r == winner for r in ids.values())  # one writer's release


def test_manifest_entries_from_the_writers_footer_equal_what_add_files_reads_back(
    catalog,
) -> None:
    """A committed file's entry (statistics, partition, size) is the one pyiceberg's
    ``add_files`` would compute by opening the file again."""
    from pyiceberg.io.pyarrow import parquet_file_to_data_file

    table = load(catalog)
    entries = [task.file for task in table.scan().plan_files()]
    assert len(entries) == len(YEARS)
    for entry in entries:
        again = parquet_file_to_data_file(table.io, table.metadata, entry.file_path)
        for name in (
            "record_count",
            "file_size_in_bytes",
            "partition",
            "column_sizes",
            "value_counts",
            "null_value_counts",
            "lower_bounds",
            "upper_bounds",
            "split_offsets",
        ):
            assert getattr(entry, name) == getattr(again, name), name
