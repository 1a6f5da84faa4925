"""On AWS the SQL goes to Athena, after the same read-only check, with the tables' snapshots cited.

SeaweedFS (S3) and moto (Glue, Athena) on loopback: the domain table exists in Glue, Athena's
answer is a canned result (moto does not run SQL), so what is tested is the path: the sandbox's
parser refuses before anything reaches Athena, the settings' engine answers, the row cap holds,
and the answer names the Glue table and cites the dataset.
"""

from __future__ import annotations

import pytest

from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError
from estat_assets.app.query import run_sql
from estat_assets.lake.iceberg import ensure_table
from estat_assets.settings import Settings
from estat_assets_tests import servers
from estat_assets_tests.app.conftest import write_domains

s3_server, moto_server, aws_env = servers.s3_server, servers.moto_server, servers.aws_env


def _col(name: str, type_: str) -> dict:
    return {"Name": name, "Label": name, "Type": type_}


def _row(*values) -> dict:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


@pytest.mark.slow
def test_sql_on_aws_is_checked_then_answered_by_athena(tmp_path, aws_env, moto_server) -> None:
    settings = Settings.from_env({**aws_env, "ESTAT_DOMAINS_FILE": str(write_domains(tmp_path))})
    assert settings.query_engine == "athena"
    ctx = LakeContext(settings)
    namespace = ctx.namespace
    ensure_table(ctx.catalog(), namespace, "labor", location=ctx.resources["iceberg"].warehouse)
    athena = moto_server.client("athena")

    def executions() -> int:
        return len(athena.list_query_executions(WorkGroup="primary").get("QueryExecutionIds", []))

    before = executions()
    with pytest.raises(AppError) as err:
        run_sql(ctx, f"DROP TABLE {namespace}.labor")
    assert err.value.type == "sql_write_statement"
    with pytest.raises(AppError) as err:
        run_sql(ctx, "SELECT * FROM read_text('/etc/passwd')")
    assert err.value.type == "sql_file_access"
    assert executions() == before  # refused SQL never reached Athena

    moto_server.queue_athena_results(
        [
            {
                "rows": [
                    _row("dataset_id", "value_raw"),
                    _row("9900000004", "19.0"),
                    _row("9900000004", "364.9"),
                    _row("9900000004", "***"),
                ],
                "column_info": [_col("dataset_id", "varchar"), _col("value_raw", "varchar")],
            }
        ]
    )
    answer = run_sql(ctx, f"SELECT dataset_id, value_raw FROM {namespace}.labor", row_cap=2)
    assert answer.engine == "athena" and executions() == before + 1
    assert answer.rows() == [
        {"dataset_id": "9900000004", "value_raw": "19.0"},
        {"dataset_id": "9900000004", "value_raw": "364.9"},
    ]
    assert answer.truncated and answer.row_count == 2
    assert answer.tables == [{"table": f"{namespace}.labor", "snapshot_id": None}]
    [citation] = answer.citations
    assert citation.stats_data_id == "9900000004"
    assert citation.url == "https://www.e-stat.go.jp/dbview?sid=9900000004"
    assert citation.credit.startswith("このサービスは")
