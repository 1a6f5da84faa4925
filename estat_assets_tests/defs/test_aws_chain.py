"""The production twin for real: S3 (SeaweedFS) + Glue (moto) behind the same assets.

One partition runs raw → conformed → table with ``ESTAT_LAKE_ENV=aws`` resources built from an
environment pointing at the loopback servers, and must land the same rows as the local lake.
"""

from __future__ import annotations

import dagster as dg
import orjson
import pytest

from estat_assets.definitions import build_definitions
from estat_assets.defs.analytics import analytics_table_name, build_analytics_assets
from estat_assets.defs.assets import build_domain_assets
from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import partition_key, register
from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec
from estat_assets.runner import discover
from estat_assets_tests import servers

# The loopback servers (session-wide, shared with other modules) and the aws environment.
s3_server, moto_server, aws_env = servers.s3_server, servers.moto_server, servers.aws_env

POPULATION = DomainSpec("population", datasets=("0000020202", "9900020202"))


def _run(resources, dataset: str, year: str):
    defs = build_definitions(domains=(POPULATION,), resources=resources)
    with dg.instance_for_test() as instance:
        register(instance, "population", {dataset: [year]})
        result = defs.resolve_job_def(job_name("population")).execute_in_process(
            partition_key=str(partition_key(dataset, year)), instance=instance
        )
    assert result.success
    return result


def _rows(resources) -> list[dict]:
    iceberg = resources["iceberg"]
    table = iceberg.catalog().load_table(iceberg.identifier("population"))
    return (
        table.scan(selected_fields=("dataset_id", "year", "area_code", "time_code", "value_raw"))
        .to_arrow()
        .to_pylist()
    )


@pytest.fixture
def synthetic_year(lake_env) -> tuple[str, int]:
    """A year of the synthetic table with rows, and e-Stat's count for it."""
    client = build_resources("local", lake_env)["estat"].client()
    spec = DomainSpec("population", datasets=("9900020202",))
    slices = [s for s in discover(client, spec) if s.expected_rows]
    return slices[len(slices) // 2].year, slices[len(slices) // 2].expected_rows


def test_one_partition_on_s3_and_glue_matches_the_local_lake(
    aws_env, lake_env, s3_server, moto_server, synthetic_year
) -> None:
    year, expected = synthetic_year
    aws = build_resources(environ=aws_env)
    assert aws["iceberg"].catalog_type == "glue" and aws["lake"].root.startswith("s3://")
    result = _run(aws, "9900020202", year)
    assert all(c.passed for c in result.get_asset_check_evaluations())

    local = build_resources("local", lake_env)
    _run(local, "9900020202", year)
    aws_rows, local_rows = _rows(aws), _rows(local)
    assert len(aws_rows) == len(local_rows) == expected
    key = lambda r: (r["area_code"], r["time_code"], r["value_raw"])  # noqa: E731
    assert sorted(map(key, aws_rows)) == sorted(map(key, local_rows))

    # Files on S3 in the Hive-style layout Athena reads; the manifest names the run.
    s3 = s3_server.client()
    bucket, prefix = aws_env["ESTAT_LAKE_S3_ROOT"].removeprefix("s3://").split("/", 1)
    part = f"{prefix}/lake/population/conformed/dataset_id=9900020202/year={year}/data.parquet"
    assert s3.head_object(Bucket=bucket, Key=part)["ContentLength"] > 0
    manifest_key = part.replace("conformed", "raw").replace("data.parquet", "manifest.json")
    manifest = orjson.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    assert manifest["run_id"] == result.run_id
    assert "estat-lake-test-app-id" not in orjson.dumps(manifest).decode()

    # Registered in Glue the way Athena reads Iceberg tables.
    glue = moto_server.client("glue")
    entry = glue.get_table(DatabaseName=aws_env["ESTAT_GLUE_DATABASE"], Name="population")["Table"]
    assert entry["TableType"] == "EXTERNAL_TABLE"
    assert entry["Parameters"]["table_type"].upper() == "ICEBERG"
    assert entry["Parameters"]["metadata_location"].startswith(aws_env["ESTAT_LAKE_S3_ROOT"])
    columns = {c["Name"]: c["Type"] for c in entry["StorageDescriptor"]["Columns"]}
    assert columns["value"] == "double" and columns["year"] == "int"

    # A rerun replaces the slice on S3 as it does locally.
    _run(aws, "9900020202", year)
    assert len(_rows(aws)) == expected


def test_analytics_run_on_athena_in_aws(aws_env, moto_server) -> None:
    """The aws binding sends the analytics SQL to Athena and stores its typed answer in Glue."""
    aws = build_resources(environ=aws_env)
    assert aws["query_engine"].engine == "athena"
    moto_server.queue_athena_results(
        [
            {
                "rows": [
                    {"Data": [{"VarCharValue": "dataset_id"}, {"VarCharValue": "value"}]},
                    {"Data": [{"VarCharValue": "0000020202"}, {"VarCharValue": "111801.0"}]},
                ],
                "column_info": [
                    {"Name": "dataset_id", "Label": "dataset_id", "Type": "varchar"},
                    {"Name": "value", "Label": "value", "Type": "double"},
                ],
            }
        ]
    )
    assets = [build_analytics_assets(POPULATION)[0]]
    defs = dg.Definitions(assets=assets, resources=aws)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process()
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["query_engine"].value == "athena"
    assert meta["athena/bytes_scanned"].value == 0 and "athena/cost_usd" in meta
    sent = moto_server.client("athena").get_query_execution(
        QueryExecutionId=meta["athena/query_execution_id"].value
    )["QueryExecution"]
    assert f"{aws_env['ESTAT_GLUE_DATABASE']}.population" in sent["Query"]
    assert sent["QueryExecutionContext"]["Database"] == aws_env["ESTAT_GLUE_DATABASE"]
    iceberg = aws["iceberg"]
    ident = iceberg.identifier(analytics_table_name("population", "latest_by_area"))
    rows = iceberg.catalog().load_table(ident).scan().to_arrow().to_pylist()
    assert rows == [{"dataset_id": "0000020202", "value": 111801.0}]


def test_aws_definitions_bind_every_resource_key_the_assets_need(aws_env, tmp_path) -> None:
    aws = build_resources(environ=aws_env)
    local = build_resources("local", {"ESTAT_LAKE_HOME": str(tmp_path)})
    assert set(aws) == set(local)
    assets = build_domain_assets(POPULATION)  # the chain, class codes and analytics
    assert any(a.key.path[-1] == "national_totals" for a in assets)
    dg.Definitions(assets=assets, resources=aws).resolve_all_job_defs()


def test_athena_writer_loads_the_slice_with_four_statements(aws_env, moto_server) -> None:
    """ESTAT_TABLE_WRITER=athena: the table step sends the four documented statements to Athena.

    moto cannot run the SQL, so this checks the call sequence and that pyiceberg wrote nothing.
    """
    aws = build_resources(environ={**aws_env, "ESTAT_TABLE_WRITER": "athena"})
    assert aws["iceberg"].writer == "athena"
    athena = moto_server.client("athena")
    before = set(athena.list_query_executions()["QueryExecutionIds"])
    result = _run(aws, "0000020202", "1981")
    table_event = next(
        e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "table"
    )
    assert table_event.materialization.metadata["writer"].value == "athena"
    new = [q for q in athena.list_query_executions()["QueryExecutionIds"] if q not in before]
    sent = [athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"] for q in new]
    db = aws_env["ESTAT_GLUE_DATABASE"]
    kinds = sorted(q.split()[0] for q in sent)
    assert kinds == ["ALTER", "CREATE", "DELETE", "INSERT"]
    delete = next(q for q in sent if q.startswith("DELETE"))
    assert f"{db}.population" in delete and "dataset_id = '0000020202' AND year = 1981" in delete
    create = next(q for q in sent if q.startswith("CREATE"))
    assert f"{aws_env['ESTAT_LAKE_S3_ROOT']}/lake/population/conformed/" in create
    assert _rows(aws) == []  # the slice was not written by pyiceberg


def test_unknown_table_writer_is_refused(aws_env) -> None:
    with pytest.raises(ValueError, match="ESTAT_TABLE_WRITER"):
        build_resources(environ={**aws_env, "ESTAT_TABLE_WRITER": "spark"})
