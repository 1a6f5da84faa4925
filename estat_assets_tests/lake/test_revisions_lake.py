"""``lake/revisions.py``: the cell-by-cell diff of two releases, its rows and its summaries.

The diff is checked on hand-made tables (every kind, null-safe comparisons, absent axes, repeated
keys); the Iceberg side on a local SQLite catalog, with releases written and tagged the way the
table step does (``replace_slices`` then ``tag_release``).
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from estat_assets.defs.resources import build_resources
from estat_assets.lake import revisions as revisions_module
from estat_assets.lake.iceberg import (
    PROP_DATASET,
    PROP_RUN,
    PROP_UPDATED,
    PROP_YEARS,
    ensure_table,
    replace_slices,
)
from estat_assets.lake.releases import release_storage, releases, tag_release
from estat_assets.lake.revisions import (
    compare_releases,
    diff_release,
    diff_releases,
    largest_revisions,
    per_year,
    previous_release,
    releases_name,
    revisions_name,
    revisions_summary,
    summarise,
    write_revisions,
    year_batches,
)
from estat_assets_tests.harness import test_settings as lake_settings

IDENT = ("estat", "population")
A, B = "0000000001", "0000000002"


def side(rows: list[tuple]) -> pa.Table:
    """(area, time, value_raw, annotation) rows of one dataset; value parsed like conform does."""

    def number(raw: str | None) -> float | None:
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    return pa.table(
        {
            "tab_code": pa.array(["01"] * len(rows), pa.string()),
            "cat01_code": pa.array([None] * len(rows), pa.string()),
            "area_code": pa.array([r[0] for r in rows], pa.string()),
            "time_code": pa.array([r[1] for r in rows], pa.string()),
            "year": pa.array([int(r[1][:4]) for r in rows], pa.int32()),
            "time_name": pa.array([f"{r[1][:4]}年" for r in rows], pa.string()),
            "unit": pa.array(["人"] * len(rows), pa.string()),
            "value_raw": pa.array([r[2] for r in rows], pa.string()),
            "value": pa.array([number(r[2]) for r in rows], pa.float64()),
            "annotation": pa.array([r[3] for r in rows], pa.string()),
        }
    )


def by_key(diff: pa.Table) -> dict[tuple, dict]:
    return {(r["area_code"], r["time_code"]): r for r in diff.to_pylist()}


def test_identical_releases_differ_in_nothing() -> None:
    old = side([("01", "2020000000", "5", None), ("02", "2020000000", "-", "該当数値なし")])
    assert diff_releases(old, old).num_rows == 0
    assert diff_releases(old, old.take([1, 0])).num_rows == 0  # row order is no change


def test_every_kind_of_change_is_found_once_with_old_and_new() -> None:
    old = side(
        [
            ("01", "2020000000", "100", None),  # revised value
            ("02", "2020000000", "7", None),  # unchanged
            ("03", "2020000000", "-", "該当数値なし"),  # symbol becomes a number
            ("04", "2020000000", "9", None),  # annotation added, same value_raw
            ("05", "2020000000", "0", None),  # revised from zero: no relative change
            ("06", "2020000000", "-50", None),  # negative: relative to |old|
            ("07", "2019000000", "3", None),  # removed
        ]
    )
    new = side(
        [
            ("01", "2020000000", "110", None),
            ("02", "2020000000", "7", None),
            ("03", "2020000000", "12", None),
            ("04", "2020000000", "9", "暫定値"),
            ("05", "2020000000", "4", None),
            ("06", "2020000000", "-40", None),
            ("08", "2021000000", "1", None),  # added
        ]
    )
    rows = by_key(diff_releases(old, new))
    assert {k: r["kind"] for k, r in rows.items()} == {
        ("01", "2020000000"): "revised",
        ("03", "2020000000"): "revised",
        ("04", "2020000000"): "revised",
        ("05", "2020000000"): "revised",
        ("06", "2020000000"): "revised",
        ("07", "2019000000"): "removed",
        ("08", "2021000000"): "added",
    }
    r = rows[("01", "2020000000")]
    assert (r["old_value_raw"], r["new_value_raw"], r["old_value"], r["new_value"]) == (
        "100",
        "110",
        100.0,
        110.0,
    )
    assert (r["change"], r["relative_change"], r["year"], r["tab_code"]) == (10.0, 0.1, 2020, "01")
    r = rows[("03", "2020000000")]
    assert (r["old_value"], r["old_annotation"], r["new_value"], r["new_annotation"]) == (
        None,
        "該当数値なし",
        12.0,
        None,
    )
    assert r["change"] is None and r["relative_change"] is None
    r = rows[("04", "2020000000")]
    assert (r["old_annotation"], r["new_annotation"], r["change"]) == (None, "暫定値", 0.0)
    assert rows[("05", "2020000000")]["relative_change"] is None
    assert rows[("06", "2020000000")]["relative_change"] == pytest.approx(0.2)
    r = rows[("07", "2019000000")]
    assert (r["old_value_raw"], r["new_value_raw"], r["year"]) == ("3", None, 2019)
    r = rows[("08", "2021000000")]
    assert (r["old_value_raw"], r["new_value_raw"], r["time_name"]) == (None, "1", "2021年")
    assert all(r["cat01_code"] is None for r in rows.values())  # an axis the table lacks


def test_an_axis_present_on_one_side_only_makes_other_cells() -> None:
    old = side([("01", "2020000000", "5", None)])
    new = old.set_column(
        old.schema.get_field_index("cat01_code"), "cat01_code", pa.array(["A"], pa.string())
    )
    kinds = sorted(r["kind"] for r in diff_releases(old, new).to_pylist())
    assert kinds == ["added", "removed"]


def test_repeated_keys_match_as_multisets() -> None:
    old = side([("01", "2020000000", "5", None), ("01", "2020000000", "6", None)])
    assert diff_releases(old, old.take([1, 0])).num_rows == 0
    new = side([("01", "2020000000", "6", None), ("01", "2020000000", "8", None)])
    assert len(diff_releases(old, new)) == 2  # which repeat is which cannot be known


def test_against_nothing_every_cell_is_added() -> None:
    new = side([("01", "2020000000", "5", None), ("02", "2020000000", "6", None)])
    diff = diff_releases(new.slice(0, 0), new)
    assert diff.column("kind").to_pylist() == ["added", "added"]


def test_summaries_rank_relative_revisions_and_count_per_year() -> None:
    old = side([(f"{i:02d}", "2020000000", str(100 + i), None) for i in range(20)])
    new = side([(f"{i:02d}", "2020000000", str(100 + i + i * i), None) for i in range(20)])
    new = pa.concat_tables([new, side([("99", "2021000000", "1", None)])])
    diff = diff_releases(old, new)
    top = largest_revisions(diff, top=3)
    assert [r["keys"]["area"] for r in top] == ["19", "18", "17"]
    assert top[0]["old_value_raw"] == "119" and top[0]["new_value_raw"] == str(119 + 361)
    assert per_year(diff) == {
        "2020": {"revised": 19, "added": 0, "removed": 0},
        "2021": {"revised": 0, "added": 1, "removed": 0},
    }


# ---------------------------------------------------------------------- on an Iceberg table


@pytest.fixture
def catalog(tmp_path):
    resources = build_resources(lake_settings(tmp_path / "home", "http://127.0.0.1:9"))
    catalog = resources["iceberg"].catalog()
    ensure_table(catalog, *IDENT)
    return catalog


def conformed(dataset: str, rows: list[tuple]) -> pa.Table:
    data = side(rows)
    return data.add_column(0, "dataset_id", pa.array([dataset] * len(rows), pa.string()))


def load(catalog, dataset: str, rows: list[tuple], release: str, run: str, tag: bool = True):
    """What the table step does: replace the dataset's slices in one commit, tag the release."""
    data = conformed(dataset, rows)
    props = {
        PROP_DATASET: dataset,
        PROP_YEARS: ",".join(sorted({r[1][:4] for r in rows})),
        PROP_UPDATED: release,
        PROP_RUN: run,
    }
    table = replace_slices(catalog, IDENT, dataset, None, lambda: [data], props)
    if tag:
        tag_release(table, dataset, release, table.current_snapshot().snapshot_id)
    return catalog.load_table(IDENT)


V1 = [("01", "2019000000", "10", None), ("01", "2020000000", "20", None)]
V2 = [("01", "2019000000", "11", None), ("01", "2020000000", "20", None)]
V3 = [("01", "2020000000", "20", "暫定値"), ("01", "2021000000", "30", None)]


def test_each_release_is_compared_with_the_one_before_it(catalog) -> None:
    load(catalog, A, V1, "2024-01-10", "run-1")
    load(catalog, B, [("02", "2020000000", "1", None)], "2024-01-12", "run-b")
    load(catalog, A, V2, "2024-02-10", "run-2")
    table = load(catalog, A, V3, "2024-03-10", "run-3")
    tags = {r.updated_date: r for r in releases(table, A)}
    assert previous_release(table, A, "2024-01-10") is None
    assert previous_release(table, A, "2024-03-10") == tags["2024-02-10"]
    first = diff_release(table, A, tags["2024-01-10"])
    assert first.old is None and first.cells.num_rows == 0 and first.new_rows == 2
    diff = diff_release(table, A, tags["2024-03-10"])
    assert diff.old == tags["2024-02-10"] and diff.run_id == "run-3"
    assert diff.counts() == {"revised": 1, "added": 1, "removed": 1}
    assert diff.revised_share == 0.5
    summary = summarise(diff)
    assert summary["previous_updated_date"] == "2024-02-10" and summary["rows"] == 2
    assert summary["largest_relative_revisions"] == []  # an annotation changed, not a number
    # any two kept releases, e.g. the first against the last (an assistant's "what changed since")
    across = compare_releases(catalog, IDENT, A, "2024-01-10", "2024-03-10")
    assert across.old == tags["2024-01-10"] and across.new == tags["2024-03-10"]
    assert across.counts() == {"revised": 1, "added": 1, "removed": 1}
    assert {r["old_value_raw"] for r in across.cells.to_pylist()} == {"10", "20", None}
    with pytest.raises(LookupError, match="releases kept"):
        compare_releases(catalog, IDENT, A, "2023-12-31", "2024-03-10")


def test_without_tags_the_previous_release_comes_from_the_history(catalog) -> None:
    """A lake loaded before release tags existed: the dataset as it was before the first write
    of the new release, with the release it held then."""
    load(catalog, A, V1, "2024-01-10", "run-1", tag=False)
    load(catalog, B, [("02", "2020000000", "1", None)], "2024-01-12", "run-b", tag=False)
    table = load(catalog, A, V2, "2024-02-10", "run-2")
    old = previous_release(table, A, "2024-02-10")
    assert old is not None and old.updated_date == "2024-01-10" and old.tag == ""
    diff = diff_release(table, A, releases(table, A)[-1])
    assert diff.counts() == {"revised": 1, "added": 0, "removed": 0}


def test_revisions_of_a_release_are_replaced_never_duplicated(catalog) -> None:
    load(catalog, A, V1, "2024-01-10", "run-1")
    load(catalog, B, V1, "2024-01-10", "run-b1")
    load(catalog, B, V2, "2024-02-11", "run-b2")
    table = load(catalog, A, V2, "2024-02-10", "run-2")
    for dataset in (A, B):
        diff = diff_release(table, dataset, releases(table, dataset)[-1])
        write_revisions(catalog, "estat", "population", diff, "rev-1")
    table = load(catalog, A, V3, "2024-03-10", "run-3")
    diff = diff_release(table, A, releases(table, A)[-1])
    for _ in range(3):  # reruns of one release
        row = write_revisions(catalog, "estat", "population", diff, "rev-2")
    assert (row["revised"], row["added"], row["removed"], row["rows"]) == (1, 1, 1, 2)
    rows = catalog.load_table(("estat", revisions_name("population"))).scan().to_arrow()
    counts: dict[tuple, int] = {}
    for r in rows.to_pylist():
        key = (r["dataset_id"], r["new_updated_date"].isoformat())
        counts[key] = counts.get(key, 0) + 1
    assert counts == {(A, "2024-02-10"): 1, (B, "2024-02-11"): 1, (A, "2024-03-10"): 3}
    revised = next(
        r
        for r in rows.to_pylist()
        if r["kind"] == "revised" and r["new_updated_date"] == date(2024, 3, 10)
    )
    assert (revised["old_updated_date"], revised["run_id"], revised["revisions_run_id"]) == (
        date(2024, 2, 10),
        "run-3",
        "rev-2",
    )
    assert revised["new_snapshot_id"] == releases(table, A)[-1].snapshot_id
    kept = catalog.load_table(("estat", releases_name("population"))).scan().to_arrow()
    assert sorted((r["dataset_id"], str(r["updated_date"])) for r in kept.to_pylist()) == [
        (A, "2024-02-10"),
        (A, "2024-03-10"),
        (B, "2024-02-11"),
    ]


def test_the_summary_lists_every_release_and_what_it_changed(catalog) -> None:
    load(catalog, A, V1, "2024-01-10", "run-1")
    table = load(catalog, A, V2, "2024-02-10", "run-2")
    write_revisions(catalog, "estat", "population", diff_release(table, A, releases(table, A)[-1]))
    table = load(catalog, A, V3, "2024-03-10", "run-3")  # not diffed yet
    summary = revisions_summary(catalog, "estat", A, domain="population")
    assert [e["updated_date"] for e in summary] == ["2024-01-10", "2024-02-10", "2024-03-10"]
    first, second, third = summary
    assert first["diffed"] is False and first["revised"] is None
    assert second["diffed"] and (second["revised"], second["added"], second["removed"]) == (1, 0, 0)
    assert second["previous_updated_date"] == "2024-01-10" and second["run_id"] == "run-2"
    assert second["tag"] == f"{A}@2024-02-10" and second["kept"]
    (largest,) = second["largest_relative_revisions"]
    assert (largest["old_value_raw"], largest["new_value_raw"]) == ("10", "11")
    assert second["per_year"] == {"2019": {"revised": 1, "added": 0, "removed": 0}}
    assert third["diffed"] is False and third["previous_updated_date"] == "2024-02-10"
    since = revisions_summary(catalog, "estat", A, since="2024-02-01", domain="population")
    assert [e["updated_date"] for e in since] == ["2024-02-10", "2024-03-10"]
    with pytest.raises(LookupError, match="dataset_inventory"):
        revisions_summary(catalog, "estat", "0000000009")


def test_release_storage_counts_the_files_only_releases_keep(catalog) -> None:
    load(catalog, A, V1, "2024-01-10", "run-1")
    table = load(catalog, A, V2, "2024-02-10", "run-2")
    cost = release_storage(table)
    assert cost["releases"] == 2 and cost["current_files"] == 2  # a file per year slice
    assert cost["release_only_files"] == 2  # the first release's two files
    assert cost["release_only_bytes"] > 0 and cost["current_bytes"] > 0


def test_years_are_compared_in_batches_of_bounded_rows() -> None:
    old = {2018: 4, 2019: 4, 2020: 4}
    new = {2019: 4, 2020: 4, 2021: 9}
    assert year_batches(old, new, limit=8) == [[2018], [2019], [2020], [2021]]
    assert year_batches(old, new, limit=16) == [[2018, 2019], [2020], [2021]]
    assert year_batches(old, new, limit=100) == [[2018, 2019, 2020, 2021]]
    # not counted from the manifests, or one year on a side (a survey year may move): whole
    assert year_batches(None, new, limit=8) == [None]
    assert year_batches({2020: 4}, new, limit=8) == [None]
    assert year_batches(old, {0: 4}, limit=8) == [None]


YEARS_1 = [("01", f"{y}000000", str(y), None) for y in range(2015, 2021)]
YEARS_2 = [("01", f"{y}000000", str(y + (y == 2017)), None) for y in range(2016, 2022)]


def test_a_batched_comparison_finds_what_a_whole_one_finds(catalog, monkeypatch) -> None:
    load(catalog, A, YEARS_1, "2024-01-10", "run-1")
    table = load(catalog, A, YEARS_2, "2024-02-10", "run-2")
    new = releases(table, A)[-1]
    whole = diff_release(table, A, new)
    reads: list[object] = []
    real_read = revisions_module._read_side

    def counting_read(table, release, years=None):
        reads.append(years)
        return real_read(table, release, years)

    monkeypatch.setattr(revisions_module, "_read_side", counting_read)
    monkeypatch.setattr(revisions_module, "DIFF_BATCH_ROWS", 3)
    batched = diff_release(table, A, new)
    # 2015 and 2021 are on one side only (1 row), the others on both (2 rows)
    assert reads[::2] == [[2015, 2016], [2017], [2018], [2019], [2020, 2021]]
    assert batched.counts() == whole.counts() == {"revised": 1, "added": 1, "removed": 1}
    assert (batched.old_rows, batched.new_rows) == (whole.old_rows, whole.new_rows) == (6, 6)

    def key(t):
        return sorted(map(str, t.select(["kind", "time_code", "new_value_raw"]).to_pylist()))

    assert key(batched.cells) == key(whole.cells)


def test_a_cell_whose_year_moved_between_batches_is_still_paired(catalog, monkeypatch) -> None:
    """A time code the new release parses into another year (e.g. from the survey year): the
    batches see it removed from one year and added to another, so the whole is compared."""
    load(catalog, A, YEARS_1, "2024-01-10", "run-1")
    moved = conformed(A, YEARS_1)
    years = moved.column("year").to_pylist()
    years[0] = 2030  # 2015000000 now counted in 2030, same value
    moved = moved.set_column(
        moved.schema.get_field_index("year"), "year", pa.array(years, pa.int32())
    )
    props = {
        PROP_DATASET: A,
        PROP_YEARS: "2016,2017,2018,2019,2020,2030",
        PROP_UPDATED: "2024-02-10",
        PROP_RUN: "run-2",
    }
    table = replace_slices(catalog, IDENT, A, None, lambda: [moved], props)
    tag_release(table, A, "2024-02-10", table.current_snapshot().snapshot_id)
    table = catalog.load_table(IDENT)
    monkeypatch.setattr(revisions_module, "DIFF_BATCH_ROWS", 2)
    diff = diff_release(table, A, releases(table, A)[-1])
    assert diff.counts() == {"revised": 0, "added": 0, "removed": 0}
    assert (diff.old_rows, diff.new_rows) == (6, 6)
