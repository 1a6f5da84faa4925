"""The production twin for real: S3 (SeaweedFS) + Glue and Athena (moto_server) behind the same
assets, with ``ESTAT_LAKE_ENV=aws`` settings pointing at the loopback servers.

A dataset load (raw → conformed → table → class codes, one run) must land the same rows as the
local lake, in the Hive-style S3 layout Athena reads, with the Iceberg table registered in Glue.
moto cannot run SQL: the Athena query engine and the Athena table writer are checked for the
calls and statements they send.
"""

from __future__ import annotations

import dagster as dg
import orjson
import pyarrow as pa
import pytest

from estat_assets.definitions import build_definitions
from estat_assets.defs.analytics import build_analytics_assets
from estat_assets.defs.resources import (
    AthenaQueryEngine,
    AthenaWriter,
    DuckDBQueryEngine,
    PyIcebergWriter,
    build_resources,
)
from estat_assets.domains import DomainSpec
from estat_assets.lake.analytics import analytics_table_name
from estat_assets.settings import Settings
from estat_assets_tests import servers
from estat_assets_tests.harness import KEYS, Lake, make_lake

# The loopback servers (session-wide, shared with other modules) and the aws environment.
s3_server, moto_server, aws_env = servers.s3_server, servers.moto_server, servers.aws_env
pytestmark = pytest.mark.slow

RECORDED = "0000020202"  # 10 rows, fiscal years 1981-1990
SYNTHETIC = "9900020202"  # 9 × 1,913 rows a year
DOMAIN = DomainSpec("population", datasets=(RECORDED, SYNTHETIC))


def _lake(home, emulator, instance, env: dict[str, str] | None = None, **extra: str) -> Lake:
    settings_env = {k: v for k, v in (env or {}).items() if k != "ESTAT_API_URL"}
    return make_lake(
        home, emulator, instance, domain=DOMAIN, page_size=5_000, **settings_env, **extra
    )


@pytest.fixture
def aws(tmp_path, emulator, instance, aws_env) -> Lake:
    return _lake(tmp_path / "aws", emulator, instance, aws_env)


@pytest.fixture
def local(tmp_path, emulator, instance) -> Lake:
    return _lake(tmp_path / "local", emulator, instance)


def _bucket_prefix(aws_env) -> tuple[str, str]:
    bucket, prefix = aws_env["ESTAT_LAKE_S3_ROOT"].removeprefix("s3://").split("/", 1)
    return bucket, prefix


def _keys(s3_server, aws_env, under: str) -> list[str]:
    bucket, prefix = _bucket_prefix(aws_env)
    pages = s3_server.client().get_paginator("list_objects_v2")
    out = []
    for page in pages.paginate(Bucket=bucket, Prefix=f"{prefix}/{under}"):
        out += [o["Key"].removeprefix(f"{prefix}/") for o in page.get("Contents", [])]
    return sorted(out)


def _sorted(rows: pa.Table) -> pa.Table:
    return rows.drop_columns(["run_id"]).sort_by([(k, "ascending") for k in KEYS])


def test_a_dataset_load_on_s3_and_glue_matches_the_local_lake(
    aws, local, aws_env, s3_server, moto_server
) -> None:
    assert aws.settings.env == "aws" and aws.resources["iceberg"].catalog_type == "glue"
    assert aws.resources["lake"].root == f"{aws_env['ESTAT_LAKE_S3_ROOT']}/lake"
    result = aws.run(RECORDED)
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    assert local.run(RECORDED).success
    assert aws.slices(RECORDED) == local.slices(RECORDED) == {str(y): 1 for y in range(1981, 1991)}
    assert _sorted(aws.rows(RECORDED)).equals(_sorted(local.rows(RECORDED)))
    assert set(aws.rows(RECORDED).column("run_id").to_pylist()) == {result.run_id}

    # Files on S3 in the Hive-style layout Athena reads; the manifest names the run.
    bucket, prefix = _bucket_prefix(aws_env)
    s3 = s3_server.client()
    base = f"lake/population/raw/dataset_id={RECORDED}"
    manifest = orjson.loads(
        s3.get_object(Bucket=bucket, Key=f"{prefix}/{base}/manifest.json")["Body"].read()
    )
    assert manifest["run_id"] == result.run_id and manifest["whole"]
    assert manifest["rows"] == manifest["total_number"] == 10
    assert "estat-lake-test-app-id" not in orjson.dumps(manifest).decode()
    assert f"{base}/runs/{result.run_id}/page-001-00001.json" in _keys(s3_server, aws_env, base)
    conformed = _keys(s3_server, aws_env, f"lake/population/conformed/dataset_id={RECORDED}/")
    data_files = [k for k in conformed if k.endswith("/data.parquet")]
    assert [k.split("/")[-2] for k in data_files] == [f"year={y}" for y in range(1981, 1991)]

    # Registered in Glue the way Athena reads Iceberg tables.
    glue = moto_server.client("glue")
    entry = glue.get_table(DatabaseName=aws_env["ESTAT_GLUE_DATABASE"], Name="population")["Table"]
    assert entry["TableType"] == "EXTERNAL_TABLE"
    assert entry["Parameters"]["table_type"].upper() == "ICEBERG"
    assert entry["Parameters"]["metadata_location"].startswith(aws_env["ESTAT_LAKE_S3_ROOT"])
    columns = {c["Name"]: c["Type"] for c in entry["StorageDescriptor"]["Columns"]}
    assert columns["value"] == "double" and columns["year"] == "int"
    tables = {
        t["Name"] for t in glue.get_tables(DatabaseName=aws_env["ESTAT_GLUE_DATABASE"])["TableList"]
    }
    assert {"population", "population_class_codes", "dataset_inventory"} <= tables

    inventory = aws.iceberg("dataset_inventory").scan().to_arrow().to_pylist()
    assert [(r["dataset_id"], r["rows_stored"], r["status"]) for r in inventory] == [
        (RECORDED, 10, "complete")
    ]

    # A rerun replaces the dataset on S3 as it does locally; the old run's pages are swept.
    again = aws.run(RECORDED)
    assert again.success
    assert set(aws.rows(RECORDED).column("run_id").to_pylist()) == {again.run_id}
    assert aws.rows(RECORDED).num_rows == 10
    runs = {k.split("/")[5] for k in _keys(s3_server, aws_env, f"{base}/runs/")}
    assert runs == {again.run_id}


def test_a_paged_year_load_on_s3_matches_the_local_lake(aws, local) -> None:
    """One year of the synthetic table: 17,217 rows in 4 pages of 5,000, narrowed by cdTime."""
    result = aws.run(SYNTHETIC, years="2020")
    assert result.success and local.run(SYNTHETIC, years="2020").success
    assert aws.slices(SYNTHETIC) == local.slices(SYNTHETIC) == {"2020": 9 * 1913}
    assert _sorted(aws.rows(SYNTHETIC)).equals(_sorted(local.rows(SYNTHETIC)))
    raw = next(m for m in result.asset_materializations_for_node("population__raw"))
    assert raw.metadata["dagster/row_count"].value == 9 * 1913


def test_aws_settings_bind_the_aws_implementation_of_every_resource_key(aws_env, tmp_path) -> None:
    aws = build_resources(Settings.from_env(aws_env))
    local = build_resources(Settings.from_env({"ESTAT_LAKE_HOME": str(tmp_path)}))
    assert set(aws) == set(local)
    assert isinstance(aws["query_engine"], AthenaQueryEngine)
    assert isinstance(local["query_engine"], DuckDBQueryEngine)
    assert isinstance(aws["table_writer"], PyIcebergWriter)  # the default writer, one commit
    duck = build_resources(Settings.from_env({**aws_env, "ESTAT_QUERY_ENGINE": "duckdb"}))
    assert isinstance(duck["query_engine"], DuckDBQueryEngine)
    defs = build_definitions(Settings.from_env(aws_env), domains=(DOMAIN,), resources=aws)
    defs.resolve_all_job_defs()  # every asset finds the keys it needs
    assert any(k.path[-1] == "national_totals" for k in defs.resolve_all_asset_keys())


def test_analytics_run_on_athena_in_aws(aws_env, moto_server) -> None:
    """The aws binding sends the analytics SQL to Athena and stores its typed answer in Glue."""
    aws = build_resources(Settings.from_env(aws_env))
    moto_server.queue_athena_results(
        [
            {
                "rows": [
                    {"Data": [{"VarCharValue": "dataset_id"}, {"VarCharValue": "value"}]},
                    {"Data": [{"VarCharValue": RECORDED}, {"VarCharValue": "111801.0"}]},
                ],
                "column_info": [
                    {"Name": "dataset_id", "Label": "dataset_id", "Type": "varchar"},
                    {"Name": "value", "Label": "value", "Type": "double"},
                ],
            }
        ]
    )
    asset = build_analytics_assets(DOMAIN)[0]
    defs = dg.Definitions(assets=[asset], resources=aws)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process()
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["query_engine"].value == "athena"
    assert meta["athena/bytes_scanned"].value == 0 and "athena/cost_usd" in meta
    sent = moto_server.client("athena").get_query_execution(
        QueryExecutionId=meta["athena/query_execution_id"].value
    )["QueryExecution"]
    db = aws_env["ESTAT_GLUE_DATABASE"]
    assert f"{db}.population" in sent["Query"]
    assert sent["QueryExecutionContext"]["Database"] == db
    assert sent["WorkGroup"] == aws_env["ESTAT_ATHENA_WORKGROUP"]
    iceberg = aws["iceberg"]
    name = asset.key.path[-1]
    ident = iceberg.identifier(analytics_table_name("population", name))
    rows = iceberg.catalog().load_table(ident).scan().to_arrow().to_pylist()
    assert rows == [{"dataset_id": RECORDED, "value": 111801.0}]


def _sent_since(athena, before: set[str]) -> list[str]:
    ids = [q for q in athena.list_query_executions()["QueryExecutionIds"] if q not in before]
    executions = [athena.get_query_execution(QueryExecutionId=q)["QueryExecution"] for q in ids]
    executions.sort(key=lambda e: e["Status"]["SubmissionDateTime"])
    return [e["Query"] for e in executions]


def test_athena_writer_loads_each_year_with_four_statements(
    tmp_path, emulator, instance, aws_env, moto_server
) -> None:
    """ESTAT_TABLE_WRITER=athena: the table step sends the documented statements to Athena.

    moto cannot run the SQL, so this checks the statements, their order, and that pyiceberg
    wrote no row of the domain table.
    """
    lake = _lake(tmp_path / "aws", emulator, instance, aws_env, ESTAT_TABLE_WRITER="athena")
    assert isinstance(lake.resources["table_writer"], AthenaWriter)
    athena = moto_server.client("athena")
    before = set(athena.list_query_executions()["QueryExecutionIds"])
    result = lake.run(RECORDED, years="1981,1982")
    assert result.success
    table_event = next(
        e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "table"
    )
    assert table_event.materialization.metadata["writer"].value == "athena"
    sent = _sent_since(athena, before)
    assert [q.split()[0] for q in sent] == ["CREATE", "ALTER", "DELETE", "INSERT"] * 2
    db, root = aws_env["ESTAT_GLUE_DATABASE"], aws_env["ESTAT_LAKE_S3_ROOT"]
    for year, statements in ((1981, sent[:4]), (1982, sent[4:])):
        create, alter, delete, insert = statements
        assert f"LOCATION '{root}/lake/population/conformed/'" in create
        assert f"dataset_id={RECORDED}/year={year}/'" in alter
        assert (
            delete
            == f"DELETE FROM {db}.population WHERE dataset_id = '{RECORDED}' AND year = {year}"
        )
        assert insert.startswith(f"INSERT INTO {db}.population (") and f"year = {year}" in insert
    assert lake.rows(RECORDED).num_rows == 0  # the rows were not written by pyiceberg


def test_athena_writer_whole_table_load_drops_the_years_the_release_no_longer_has(
    tmp_path, emulator, instance, aws_env, moto_server
) -> None:
    """As the pyiceberg writer's one commit does: after the years are loaded, one DELETE of the
    dataset's other years (moto accepts it without running it)."""
    lake = _lake(tmp_path / "aws", emulator, instance, aws_env, ESTAT_TABLE_WRITER="athena")
    athena = moto_server.client("athena")
    before = set(athena.list_query_executions()["QueryExecutionIds"])
    assert lake.run(RECORDED).success
    sent = _sent_since(athena, before)
    years = range(1981, 1991)
    assert [q.split()[0] for q in sent] == ["CREATE", "ALTER", "DELETE", "INSERT"] * 10 + ["DELETE"]
    kept = ", ".join(str(y) for y in years)
    db = aws_env["ESTAT_GLUE_DATABASE"]
    assert sent[-1] == (
        f"DELETE FROM {db}.population WHERE dataset_id = '{RECORDED}' AND year NOT IN ({kept})"
    )


def test_unknown_table_writer_is_refused(aws_env) -> None:
    from estat_assets.settings import SettingsError

    with pytest.raises(SettingsError, match="ESTAT_TABLE_WRITER"):
        Settings.from_env({**aws_env, "ESTAT_TABLE_WRITER": "spark"})
