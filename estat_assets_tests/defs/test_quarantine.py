"""Quarantine, class codes and the check report through real Dagster runs against an emulator.

The emulator serves a copy of the recorded table 0000020202 with one extra VALUE whose area code is
not in the table's CLASS_INF: that row must land in ``estat.population_quarantine`` with its reason,
never in ``estat.population``, and conformed + quarantined must equal the raw rows.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import orjson
import pyarrow as pa
import pytest

from estat_assets.definitions import build_definitions
from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import partition_key, register
from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec
from estat_assets.quality.checks import CHECK_NAMES
from estat_assets_tests.factories import sample
from estat_emulator import EmulatorServer, TableStore

POPULATION = DomainSpec(
    "population",
    datasets=("0000020202",),
    rules={"semantic_columns": {"age_group": "年齢"}},
)
ROGUE = {
    "@tab": "00001",
    "@cat01": "B1101",
    "@area": "99999",
    "@time": "1981100000",
    "@unit": "ｈａ",
    "$": "42",
}


def _store(tmp: Path, extra: list[dict]) -> TableStore:
    doc = orjson.loads(sample("getStatsData_0000020202_limit10.json"))
    data_inf = doc["GET_STATS_DATA"]["STATISTICAL_DATA"]["DATA_INF"]
    data_inf["VALUE"] = [*data_inf["VALUE"], *extra]
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "table.json").write_bytes(orjson.dumps(doc))
    return TableStore.from_directory(tmp)


@pytest.fixture
def world(tmp_path):
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        register(instance, "population", {"0000020202": ["1981", "1982"]})

        def run(extra: list[dict], year: str = "1981"):
            store = _store(tmp_path / f"store{len(extra)}", extra)
            with EmulatorServer(store, host="127.0.0.1", port=0) as server:
                env = {"ESTAT_LAKE_HOME": str(home), "ESTAT_API_URL": server.api_base}
                resources = build_resources("local", env)
                defs = build_definitions("local", domains=(POPULATION,), resources=resources)
                result = defs.resolve_job_def(job_name("population")).execute_in_process(
                    partition_key=str(partition_key("0000020202", year)),
                    instance=instance,
                    raise_on_error=False,
                )
            return result, resources

        yield run, home


def _scan(resources, name: str) -> pa.Table:
    iceberg = resources["iceberg"]
    return iceberg.catalog().load_table(iceberg.identifier(name)).scan().to_arrow()


def test_code_not_in_class_inf_is_quarantined_not_loaded(world) -> None:
    run, home = world
    result, resources = run([ROGUE])
    assert result.success  # a row-level failure quarantines, it does not block
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == set(CHECK_NAMES)
    bad = checks["codes_in_class_inf"]
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.WARN
    assert checks["rows_accounted_for"].passed and checks["row_count_matches_total"].passed
    assert all(c.passed for n, c in checks.items() if n != "codes_in_class_inf")

    table = _scan(resources, "population").to_pylist()
    assert [r["area_code"] for r in table] == ["01100"]
    quarantine = _scan(resources, "population_quarantine").to_pylist()
    assert len(quarantine) == 1
    q = quarantine[0]
    assert q["area_code"] == "99999" and q["value_raw"] == "42"
    assert q["quarantine_reason"] == "code_not_in_class_inf:area_code"
    assert q["source_row"] == 2 and q["run_id"] == result.run_id
    assert q["dataset_id"] == "0000020202" and q["year"] == 1981

    report = home / "lake/population/conformed/dataset_id=0000020202/year=1981/checks.md"
    text = report.read_text(encoding="utf-8")
    assert "codes_in_class_inf" in text and "99999" in text and "⚠️ warning" in text
    assert "written to Iceberg" in text
    mat = next(
        m for m in result.get_asset_materialization_events() if m.asset_key.path[-1] == "conformed"
    )
    md = mat.materialization.metadata["checks_report"]
    assert isinstance(md, dg.MarkdownMetadataValue) and "rows_accounted_for" in md.md_str


def test_a_value_without_an_axis_code_is_quarantined_as_null_key(world) -> None:
    run, _ = world
    homeless = {k: v for k, v in ROGUE.items() if k != "@area"}
    result, resources = run([homeless])
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["non_null_keys"].passed
    assert checks["non_null_keys"].severity == dg.AssetCheckSeverity.WARN
    assert checks["rows_accounted_for"].passed
    quarantine = _scan(resources, "population_quarantine").to_pylist()
    assert [(q["area_code"], q["quarantine_reason"]) for q in quarantine] == [(None, "null_key")]
    assert _scan(resources, "population").num_rows == 1


def test_rerun_replaces_the_quarantine_slice(world) -> None:
    run, _ = world
    first, _ = run([ROGUE])
    second, resources = run([ROGUE])
    assert first.success and second.success
    quarantine = _scan(resources, "population_quarantine").to_pylist()
    assert len(quarantine) == 1 and quarantine[0]["run_id"] == second.run_id
    # The data is fixed upstream: the next run empties the slice.
    clean, resources = run([])
    assert clean.success
    assert _scan(resources, "population_quarantine").num_rows == 0
    assert all(c.passed for c in clean.get_asset_check_evaluations())
    assert _scan(resources, "population").num_rows == 1


def test_table_level_failure_still_blocks(world, monkeypatch) -> None:
    """Row count ≠ TOTAL_NUMBER is not a row problem: the Iceberg write must not happen."""
    from estat_assets.defs import conformed as module

    run, _ = world
    real = module.conform_pages
    monkeypatch.setattr(module, "conform_pages", lambda pages, inp: real(pages, inp).slice(0, 0))
    result, _ = run([])
    assert not result.success
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert failed == {"row_count_matches_total"}
    steps = [e for e in result.all_events if e.step_key == "population__table"]
    assert not any(e.is_successful_output for e in steps)


def test_class_codes_table_holds_the_datasets_class_inf(world) -> None:
    run, _ = world
    first, resources = run([])
    assert first.success
    codes = _scan(resources, "population_class_codes")
    doc = orjson.loads(sample("getStatsData_0000020202_limit10.json"))
    objs = doc["GET_STATS_DATA"]["STATISTICAL_DATA"]["CLASS_INF"]["CLASS_OBJ"]
    expected = {
        (o["@id"], c["@code"]): c
        for o in objs
        for c in (o["CLASS"] if isinstance(o["CLASS"], list) else [o["CLASS"]])
    }
    rows = {(r["axis"], r["code"]): r for r in codes.to_pylist()}
    assert set(rows) == set(expected)
    sapporo = rows[("area", "01100")]
    assert sapporo["name"] == "北海道 札幌市" and sapporo["level"] == "2"
    assert sapporo["parent_code"] == "01000"  # kept although 01000 is not in the list
    assert sapporo["axis_name"] == "地域"
    assert rows[("cat01", "B1101")]["unit"] == "ｈａ"
    # Another year of the same dataset: the dataset's rows are replaced, never duplicated.
    second, resources = run([], year="1982")
    assert second.success
    assert _scan(resources, "population_class_codes").num_rows == codes.num_rows
