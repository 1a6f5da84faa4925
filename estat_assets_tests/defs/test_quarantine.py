"""Quarantine and class codes through real runs against an emulator serving a doctored table.

The emulator serves the recorded table 0000020202 (10 rows, fiscal years 1981-1990) with three
rows added that fail a row-level check: an area code not in CLASS_INF (1981), a VALUE without an
area code (1982) and a second value for the 1983 cell. Those rows must land in
``estat.population_quarantine`` with their reason and source row, never in ``estat.population``;
conformed + quarantined = raw rows, year by year; the WARN checks fail with samples; a later
clean release removes the dataset's quarantine rows of the years it loads.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import orjson
import pytest

from estat_assets.defs.audit import record_run
from estat_assets.defs.conformed import CHECK_NAMES
from estat_assets.domains import DomainSpec
from estat_assets_tests.factories import sample
from estat_assets_tests.harness import Lake, make_lake
from estat_emulator import EmulatorServer, TableStore
from estat_emulator.recorded import RecordedTable

RECORDED = "0000020202"
RECORDED_FILE = "getStatsData_0000020202_limit10.json"
CLEAN_RELEASE = "2026-11-30"
YEARS = [str(y) for y in range(1981, 1991)]
ROGUE = {  # area 99999 is not in the table's CLASS_INF
    "@tab": "00001",
    "@cat01": "B1101",
    "@area": "99999",
    "@time": "1981100000",
    "@unit": "ｈａ",
    "$": "42",
}
HOMELESS = {k: v for k, v in {**ROGUE, "@time": "1982100000", "$": "43"}.items() if k != "@area"}
REPEAT = {**ROGUE, "@area": "01100", "@time": "1983100000", "$": "999999"}  # a second 1983 cell
REASONS = {
    1981: "code_not_in_class_inf:area_code",
    1982: "null_key",
    1983: "duplicate_key",
}


def _doctored_store(tmp: Path) -> TableStore:
    """The recorded table served from a directory, plus the rogue and homeless rows."""
    doc = orjson.loads(sample(RECORDED_FILE))
    data_inf = doc["GET_STATS_DATA"]["STATISTICAL_DATA"]["DATA_INF"]
    data_inf["VALUE"] = [*data_inf["VALUE"], ROGUE, HOMELESS]
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "table.json").write_bytes(orjson.dumps(doc))
    store = TableStore.from_directory(tmp)
    # A recording holds one value per cell (the store merges by cell), so the repeated cell is
    # added to the served rows directly: the same codes as the 1983 cell, another value.
    table = store.get(RECORDED)
    rows = [*table.rows, REPEAT]
    store.add(
        RecordedTable(
            {**table.table_inf, "OVERALL_TOTAL_NUMBER": len(rows)}, table.axes, table.notes, rows
        )
    )
    return store


def _clean_release(store: TableStore) -> None:
    """e-Stat fixes the table: a new release with only the ten good rows."""
    table = store.get(RECORDED)
    rows = [r for r in table.rows if r is not REPEAT and r.get("@area") not in (None, "99999")]
    assert len(rows) == 10
    inf = {**table.table_inf, "OVERALL_TOTAL_NUMBER": 10, "UPDATED_DATE": CLEAN_RELEASE}
    store.add(RecordedTable(inf, table.axes, table.notes, rows))


@pytest.fixture
def world(tmp_path, instance):
    """A population lake over a private emulator serving the doctored table."""
    with EmulatorServer(_doctored_store(tmp_path / "store"), host="127.0.0.1", port=0) as server:
        spec = DomainSpec("population", datasets=(RECORDED,))
        yield make_lake(tmp_path / "home", server, instance, domain=spec)


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    """The conformed asset's check results (other assets of the job may have checks too)."""
    conformed = dg.AssetKey(["population", "conformed"])
    return {
        e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == conformed
    }


def _quarantine(lake: Lake) -> list[dict]:
    return sorted(lake.rows(RECORDED, table="population_quarantine").to_pylist(), key=_by_year)


def _by_year(row: dict) -> int:
    return row["year"]


@pytest.mark.slow
def test_rows_failing_a_row_level_check_are_quarantined_never_loaded(world) -> None:
    result = world.run(RECORDED)
    assert result.success  # row-level failures quarantine; they do not block
    evaluations = checks(result)
    assert sorted(evaluations) == sorted(CHECK_NAMES)
    failed = {n for n, e in evaluations.items() if not e.passed}
    assert failed == {"non_null_keys", "codes_in_class_inf", "unique_keys"}
    for name, year, shown in (
        ("codes_in_class_inf", "1981", "99999"),
        ("non_null_keys", "1982", "area_code"),
        ("unique_keys", "1983", "01100"),
    ):
        evaluation = evaluations[name]
        assert evaluation.severity == dg.AssetCheckSeverity.WARN
        assert evaluation.partition == RECORDED
        meta = evaluation.metadata
        assert meta["failures"].value == 1
        assert meta["failures_by_year"].value == {year: 1}
        assert shown in meta["failing_sample"].md_str and year in meta["failing_sample"].md_str
    assert (
        evaluations["rows_accounted_for"].passed and evaluations["row_count_matches_total"].passed
    )

    # never in the domain table: exactly the ten recorded rows, with their recorded values
    table = world.rows(RECORDED)
    assert table.num_rows == 10
    assert set(table.column("area_code").to_pylist()) == {"01100"}
    assert "999999" not in table.column("value_raw").to_pylist()
    assert world.slices(RECORDED) == dict.fromkeys(YEARS, 1)

    quarantined = _quarantine(world)
    assert [(q["year"], q["quarantine_reason"]) for q in quarantined] == sorted(REASONS.items())
    rogue, homeless, repeat = quarantined
    assert (rogue["area_code"], rogue["value_raw"]) == ("99999", "42")
    assert (homeless["area_code"], homeless["value_raw"]) == (None, "43")
    assert (repeat["area_code"], repeat["value_raw"]) == ("01100", "999999")
    # source_row: the row's position among the VALUEs the run downloaded (e-Stat order: the
    # repeat follows its cell, rows with unknown or missing codes come last)
    assert [q["source_row"] for q in quarantined] == [12, 13, 4]
    assert {q["run_id"] for q in quarantined} == {result.run_id}
    assert {q["dataset_id"] for q in quarantined} == {RECORDED}

    # quarantined + clean = raw rows, in total and year by year
    raw = world.manifest(RECORDED)
    assert raw["rows"] == raw["total_number"] == 13
    held = world.slices(RECORDED, quarantine=True)
    assert held == {"1981": 1, "1982": 1, "1983": 1}
    conformed = world.manifest(RECORDED, "conformed")
    assert conformed["rows"] == 10 and conformed["quarantined"] == 3
    for year, entry in conformed["years"].items():
        assert entry["rows"] + entry["quarantined"] == entry["raw_rows"]
        assert entry["rows"] == world.slices(RECORDED)[year]
        assert entry["quarantined"] == held.get(year, 0)

    report = (world.conformed_dir(RECORDED) / "checks.md").read_text(encoding="utf-8")
    for reason in ("null_key", "code_not_in_class_inf", "duplicate_key", "99999"):
        assert reason in report
    table_meta = next(
        m for m in result.get_asset_materialization_events() if m.asset_key.path[-1] == "table"
    ).materialization.metadata
    assert table_meta["quarantined_rows"].value == 3 and table_meta["rows_loaded"].value == 10

    # the run's audit row says the same
    run = world.instance.get_run_by_id(result.run_id)
    row = record_run(world.instance, run, world.resources["lake"], world.resources["iceberg"])[
        "row"
    ]
    assert (row["raw_rows"], row["conformed_rows"], row["quarantined_rows"]) == (13, 10, 3)
    every = result.get_asset_check_evaluations()
    assert (row["checks_passed"], row["checks_failed"]) == (len(every) - 3, 3)
    assert set(row["failed_checks"].split(",")) == {
        "non_null_keys",
        "codes_in_class_inf",
        "unique_keys",
    }
    assert row["status"] == "SUCCESS" and row["error"] is None


@pytest.mark.slow
def test_a_clean_release_removes_the_quarantine_rows_of_the_years_it_loads(world) -> None:
    assert world.run(RECORDED).success
    assert world.slices(RECORDED, quarantine=True) == {"1981": 1, "1982": 1, "1983": 1}
    _clean_release(world.server.store)

    partial = world.run(RECORDED, years="1981,1982")
    assert partial.success
    # 1981 and 1982 are clean now; 1983 was not loaded and keeps its quarantined row
    assert world.slices(RECORDED, quarantine=True) == {"1983": 1}
    assert [q["quarantine_reason"] for q in _quarantine(world)] == ["duplicate_key"]
    assert all(e.passed for e in checks(partial).values())
    release = {r["year"]: str(r["source_updated_date"]) for r in world.rows(RECORDED).to_pylist()}
    assert release[1981] == release[1982] == CLEAN_RELEASE
    assert release[1983] == "2025-06-20"  # not loaded this time
    assert world.slices(RECORDED) == dict.fromkeys(YEARS, 1)


@pytest.mark.slow
def test_a_whole_clean_load_empties_the_datasets_quarantine(world) -> None:
    assert world.run(RECORDED).success
    _clean_release(world.server.store)
    whole = world.run(RECORDED)
    assert whole.success
    assert all(e.passed for e in checks(whole).values())
    assert world.slices(RECORDED, quarantine=True) == {}
    assert world.rows(RECORDED, table="population_quarantine").num_rows == 0
    assert world.slices(RECORDED) == dict.fromkeys(YEARS, 1)
    raw = world.manifest(RECORDED)
    assert raw["rows"] == 10 and raw["updated_date"] == CLEAN_RELEASE


@pytest.mark.slow
def test_a_whole_load_after_a_partial_load_judges_each_year_by_its_own_release(world) -> None:
    assert world.run(RECORDED).success  # 1983 holds 2 rows (1 clean + 1 quarantined) of 2025-06-20
    _clean_release(world.server.store)
    assert world.run(RECORDED, years="1981,1982").success
    whole = world.run(RECORDED)  # 1983 now offers 1 row of 2026-11-30, and the count agrees
    assert whole.success
    assert world.slices(RECORDED, quarantine=True) == {}


@pytest.mark.slow
def test_the_class_codes_table_holds_the_datasets_class_inf(world) -> None:
    first = world.run(RECORDED)
    assert first.success
    codes = world.iceberg("population_class_codes").scan().to_arrow()
    doc = orjson.loads(sample(RECORDED_FILE))
    objs = doc["GET_STATS_DATA"]["STATISTICAL_DATA"]["CLASS_INF"]["CLASS_OBJ"]
    expected = {
        (o["@id"], c["@code"])
        for o in objs
        for c in (o["CLASS"] if isinstance(o["CLASS"], list) else [o["CLASS"]])
    }
    rows = {(r["axis"], r["code"]): r for r in codes.to_pylist()}
    assert set(rows) == expected and codes.num_rows == len(expected)
    sapporo = rows[("area", "01100")]
    assert sapporo["name"] == "北海道 札幌市" and sapporo["level"] == "2"
    assert sapporo["parent_code"] == "01000"  # kept although 01000 is not in the list
    assert rows[("cat01", "B1101")]["unit"] == "ｈａ"
    # another load of the dataset replaces its codes, never duplicates them
    assert world.run(RECORDED, years="1982").success
    assert world.iceberg("population_class_codes").scan().to_arrow().num_rows == len(expected)
