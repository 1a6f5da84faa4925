"""The whole chain for real: emulator over HTTP → raw → conformed → Iceberg, as Dagster runs."""

from __future__ import annotations

import pyarrow as pa

from estat_assets.defs import conformed as assets_module
from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import partition_key


def _run(defs, instance, dataset: str, year: str):
    return defs.resolve_job_def(job_name("population")).execute_in_process(
        partition_key=str(partition_key(dataset, year)), instance=instance, raise_on_error=False
    )


def _table_rows(resources) -> pa.Table:
    iceberg = resources["iceberg"]
    return iceberg.catalog().load_table(iceberg.identifier("population")).scan().to_arrow()


def test_one_partition_end_to_end(lake) -> None:
    defs, instance, resources, home = lake
    result = _run(defs, instance, "0000020202", "1981")
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert sorted(c.check_name for c in checks) == sorted(assets_module.CHECK_NAMES)
    assert all(c.passed for c in checks)
    rows = _table_rows(resources).to_pylist()
    assert len(rows) == 1
    assert rows[0]["value_raw"] == "111801" and rows[0]["area_name"] == "北海道 札幌市"
    assert rows[0]["period_kind"] == "fiscal_year" and rows[0]["run_id"] == result.run_id
    part = home / "lake/population/conformed/dataset_id=0000020202/year=1981/data.parquet"
    assert part.is_file()
    raw_dir = home / "lake/population/raw/dataset_id=0000020202/year=1981"
    assert (raw_dir / "manifest.json").is_file()
    assert len(list((raw_dir / "runs").iterdir())) == 1


def test_rerun_replaces_the_slice_and_the_raw_run(lake) -> None:
    defs, instance, resources, home = lake
    first = _run(defs, instance, "0000020202", "1981")
    second = _run(defs, instance, "0000020202", "1981")
    assert first.success and second.success
    rows = _table_rows(resources).to_pylist()
    assert len(rows) == 1 and rows[0]["run_id"] == second.run_id
    runs = home / "lake/population/raw/dataset_id=0000020202/year=1981/runs"
    assert [p.name for p in runs.iterdir()] == [second.run_id]


def test_raw_pages_are_byte_exact_and_manifest_has_no_secret(lake, emulator) -> None:
    defs, instance, _, home = lake
    assert _run(defs, instance, "0000020202", "1982").success
    raw_dir = home / "lake/population/raw/dataset_id=0000020202/year=1982"
    manifest = (raw_dir / "manifest.json").read_text()
    assert "appId" not in manifest and "estat-lake-local-emulator" not in manifest
    page = next((raw_dir / "runs").glob("*/page-00001.json")).read_bytes()
    import httpx

    direct = httpx.get(
        f"{emulator.api_base}/getStatsData",
        params={
            "appId": "x",
            "lang": "J",
            "statsDataId": "0000020202",
            "cdTime": "1982100000",
            "startPosition": 1,
            "limit": 100000,
            "metaGetFlg": "N",
            "cntGetFlg": "N",
        },
    ).content
    strip = lambda b: b.split(b'"DATE"')[0] + b.split(b'"PARAMETER"')[1]  # noqa: E731
    assert strip(page) == strip(direct)  # identical apart from the server timestamp


def test_wrong_dataset_id_fails_with_estats_message_and_writes_nothing(lake) -> None:
    defs, instance, resources, home = lake
    result = _run(defs, instance, "0000099999", "1981")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "STATUS" in message and "0000099999" in message
    assert failure.step_key == "population__raw"
    assert not (home / "lake/population/conformed/dataset_id=0000099999").exists()
    raw_dir = home / "lake/population/raw/dataset_id=0000099999/year=1981"
    assert not (raw_dir / "manifest.json").exists()
    assert not any(raw_dir.rglob("page-*.json"))
    assert not any(e.step_key == "population__table" for e in result.all_events)
    catalog = resources["iceberg"].catalog()
    assert not catalog.list_namespaces() or not catalog.list_tables("estat")


def test_failed_blocking_check_stops_the_iceberg_write(lake, monkeypatch) -> None:
    defs, instance, resources, _ = lake
    assert _run(defs, instance, "0000020202", "1981").success
    real = assets_module.conform_pages

    def duplicating(pages, inp):
        table = real(pages, inp)
        return pa.concat_tables([table, table])

    monkeypatch.setattr(assets_module, "conform_pages", duplicating)
    result = _run(defs, instance, "0000020202", "1981")
    assert not result.success
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert failed == {"unique_keys", "row_count_matches_total"}
    table_steps = [e for e in result.all_events if e.step_key == "population__table"]
    assert not any(e.is_successful_output for e in table_steps)
    rows = _table_rows(resources).to_pylist()
    assert len(rows) == 1  # the earlier good slice is untouched
