"""The whole chain for real: emulator over HTTP → raw → conformed → Iceberg, as Dagster runs.

One run loads one dataset (an e-Stat table): its whole table, or the years of the
``estat/years`` tag. The lake still stores and replaces it a year slice at a time.
"""

from __future__ import annotations

import httpx
import pyarrow as pa
import pytest

from estat_assets.conform import stream
from estat_assets.defs.conformed import CHECK_NAMES
from estat_assets.domains import DomainSpec
from estat_assets_tests.harness import checks, make_lake, step_failure

RECORDED = "0000020202"  # the recorded sample: 10 rows, fiscal years 1981-1990
YEARS = [f"{y}" for y in range(1981, 1991)]


@pytest.fixture
def small(tmp_path, emulator, instance):
    """A population lake whose dataset is the 10-row recorded table."""
    return make_lake(
        tmp_path / "home",
        emulator,
        instance,
        domain=DomainSpec("population", datasets=(RECORDED,)),
    )


def test_one_run_loads_the_whole_table_a_year_slice_each(small) -> None:
    result = small.run(RECORDED)
    assert result.success
    evaluations = checks(result)
    assert sorted(evaluations) == sorted([*CHECK_NAMES, "revision_share"])  # + revisions' check
    assert all(e.passed for e in evaluations.values())
    # partitioned checks: each result is the dataset's own
    assert {e.partition for e in result.get_asset_check_evaluations()} == {RECORDED}
    assert small.slices(RECORDED) == dict.fromkeys(YEARS, 1)
    rows = small.rows(RECORDED, "1981").to_pylist()
    assert len(rows) == 1
    assert rows[0]["value_raw"] == "111801" and rows[0]["area_name"] == "北海道 札幌市"
    assert rows[0]["period_kind"] == "fiscal_year" and rows[0]["run_id"] == result.run_id
    for year in YEARS:
        assert (small.conformed_dir(RECORDED) / f"year={year}/data.parquet").is_file()
    manifest = small.manifest(RECORDED)
    assert manifest["whole"] and manifest["rows"] == manifest["total_number"] == 10
    assert len(manifest["years"]) == 44  # every year of CLASS_INF was asked for, in one request
    assert len(manifest["requests"]) == 1
    assert manifest["requests"][0]["params"].get("cdTime") is None
    conformed = small.manifest(RECORDED, "conformed")
    assert sorted(conformed["years"]) == YEARS  # the years that hold data
    assert len(list((small.raw_dir(RECORDED) / "runs").iterdir())) == 1
    # one commit for the whole load: a single snapshot wrote the ten slices
    table = small.iceberg()
    assert len(table.snapshots()) == 1


def test_rerun_replaces_every_slice_in_one_commit(small) -> None:
    first = small.run(RECORDED)
    second = small.run(RECORDED)
    assert first.success and second.success
    rows = small.rows(RECORDED)
    assert rows.num_rows == 10
    assert set(rows.column("run_id").to_pylist()) == {second.run_id}
    runs = small.raw_dir(RECORDED) / "runs"
    assert [p.name for p in runs.iterdir()] == [second.run_id]
    table = small.iceberg()
    last = table.current_snapshot()
    # the second load is one delete and one append, committed together
    assert last.summary.additional_properties["dagster.run_id"] == second.run_id
    assert len(table.snapshots()) == 3


def test_a_years_tag_replaces_only_those_years(small) -> None:
    assert small.run(RECORDED).success
    before = small.rows(RECORDED)
    result = small.run(RECORDED, years="1985,1987")
    assert result.success
    after = small.rows(RECORDED)
    changed = {r["year"] for r in after.to_pylist() if r["run_id"] == result.run_id}
    assert changed == {1985, 1987}
    assert after.num_rows == before.num_rows == 10
    manifest = small.manifest(RECORDED)
    assert not manifest["whole"] and manifest["years"] == ["1985", "1987"]
    assert [r["params"].get("cdTime") for r in manifest["requests"]] == ["1985100000,1987100000"]


def test_a_year_the_table_does_not_have_fails_and_changes_nothing(small) -> None:
    assert small.run(RECORDED).success
    before = small.state()
    result = small.run(RECORDED, years="1970")
    assert not result.success
    failure = step_failure(result)
    assert failure.step_key == "population__raw"
    message = failure.step_failure_data.user_failure_data.description
    assert "YearNotInTableError" in message and "1970" in message and "1981" in message
    assert small.state() == before


def test_raw_pages_are_byte_exact_and_manifest_has_no_secret(small, emulator) -> None:
    assert small.run(RECORDED, years="1982").success
    text = (small.raw_dir(RECORDED) / "manifest.json").read_text()
    assert "appId" not in text and "test-app-id" not in text
    page = next((small.raw_dir(RECORDED) / "runs").glob("*/page-001-00001.json")).read_bytes()
    direct = httpx.get(
        f"{emulator.api_base}/getStatsData",
        params={
            "appId": "x",
            "lang": "J",
            "statsDataId": RECORDED,
            "cdTime": "1982100000",
            "startPosition": 1,
            "limit": 50000,
            "metaGetFlg": "N",
            "cntGetFlg": "N",
        },
    ).content
    strip = lambda b: b.split(b'"DATE"')[0] + b.split(b'"PARAMETER"')[1]  # noqa: E731
    assert strip(page) == strip(direct)  # identical apart from the server timestamp


def test_wrong_dataset_id_fails_with_estats_message_and_writes_nothing(small) -> None:
    result = small.run("0000099999")
    assert not result.success
    failure = step_failure(result)
    assert failure.step_key == "population__raw"
    message = failure.step_failure_data.user_failure_data.description
    assert "STATUS" in message and message.count("0000099999") == 1
    assert not (small.conformed_dir("0000099999")).exists()
    assert not (small.raw_dir("0000099999") / "manifest.json").exists()
    assert not any(small.raw_dir("0000099999").rglob("page-*.json"))
    assert not any(e.step_key == "population__table" for e in result.all_events)
    assert small.iceberg() is None


def test_failed_blocking_check_stops_the_iceberg_write(small, monkeypatch) -> None:
    assert small.run(RECORDED).success
    before = small.rows(RECORDED)
    real = stream.conform_batch

    def doubling(pages, inp):
        table, inp = real(pages, inp)
        return pa.concat_tables([table, table]), inp

    monkeypatch.setattr(stream, "conform_batch", doubling)
    result = small.run(RECORDED)
    assert not result.success
    evaluations = checks(result)
    failed = {name for name, e in evaluations.items() if not e.passed}
    # the repeats are quarantined (WARN); the row count no longer matches TOTAL_NUMBER (ERROR)
    assert failed == {"unique_keys", "row_count_matches_total"}
    assert evaluations["unique_keys"].severity.value == "WARN"
    table_steps = [e for e in result.all_events if e.step_key == "population__table"]
    assert not any(e.is_successful_output for e in table_steps)
    assert small.rows(RECORDED).equals(before)  # the good slices are untouched


def test_a_large_table_is_paged_and_reconciled(lake) -> None:
    result = lake.run()
    assert result.success
    manifest = lake.manifest()
    assert manifest["total_number"] == manifest["rows"] == 9 * 1913 * 44
    assert manifest["requests"][0]["pages"] == 16  # 757,548 rows at 50,000 a page
    assert sum(lake.slices().values()) == 9 * 1913 * 44 and len(lake.slices()) == 44
    raw = next(m for m in result.asset_materializations_for_node("population__raw"))
    md = {k: v.value for k, v in raw.metadata.items()}
    assert md["expected_rows"] == md["stored_rows"] == md["dagster/row_count"] == 757_548
    assert md["complete"] is True
