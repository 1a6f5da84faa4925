"""The Athena engine: the call sequence on moto_server, typed results, errors that name the fix."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from estat_assets.query import athena_admin
from estat_assets.query.athena import (
    AthenaEngine,
    AthenaError,
    athena_client,
    query_cost_usd,
)
from estat_assets.query.athena_admin import ensure_workgroup
from estat_assets.query.athena_load import load_slice_via_athena, load_statements
from estat_assets_tests import servers

moto_server = servers.moto_server


@pytest.fixture
def client(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return athena_client(
        moto_server.region,
        moto_server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def workgroup(client) -> str:
    name = f"wg-{uuid.uuid4().hex[:8]}"
    assert ensure_workgroup(client, name, "s3://results-bucket/athena") == "created"
    return name


def _col(name: str, type_: str) -> dict:
    return {"Name": name, "Label": name, "Type": type_}


def _row(*values) -> dict:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


def test_workgroup_setup_is_idempotent_and_enforces_the_output(client) -> None:
    name = f"wg-{uuid.uuid4().hex[:8]}"
    assert ensure_workgroup(client, name, "s3://results-bucket/athena") == "created"
    assert ensure_workgroup(client, name, "s3://results-bucket/athena/") == "unchanged"
    config = client.get_work_group(WorkGroup=name)["WorkGroup"]["Configuration"]
    assert config["ResultConfiguration"]["OutputLocation"] == "s3://results-bucket/athena/"
    assert config["EnforceWorkGroupConfiguration"] is True
    with pytest.raises(AthenaError, match="s3://"):
        ensure_workgroup(client, name, "/tmp/results")


def test_setup_workgroup_command(moto_server, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name = f"wg-{uuid.uuid4().hex[:8]}"
    argv = [
        "setup-workgroup",
        "--name",
        name,
        "--output",
        "s3://b/r/",
        "--region",
        moto_server.region,
        "--endpoint-url",
        moto_server.endpoint,
    ]
    assert athena_admin.main(argv) == 0
    assert "created" in capsys.readouterr().out
    assert athena_admin.main(argv) == 0
    assert "unchanged" in capsys.readouterr().out


def test_query_sequence_and_typed_results(client, workgroup, moto_server) -> None:
    moto_server.queue_athena_results(
        [
            {
                "rows": [
                    _row("dataset_id", "year", "n", "value", "ok", "day", "ratio"),
                    _row("0000020202", "1981", "10", "111801.5", "true", "2020-01-02", "0.25"),
                    _row("0003065345", "2011", "3", None, "false", "2011-10-20", "1.50"),
                ],
                "column_info": [
                    _col("dataset_id", "varchar"),
                    _col("year", "integer"),
                    _col("n", "bigint"),
                    _col("value", "double"),
                    _col("ok", "boolean"),
                    _col("day", "date"),
                    _col("ratio", "decimal(10,2)"),
                ],
            }
        ]
    )
    engine = AthenaEngine(client, workgroup=workgroup, database="estat", poll_initial=0.01)
    result = engine.execute("SELECT dataset_id, year, count(*) AS n FROM estat.population")
    assert result.columns == ["dataset_id", "year", "n", "value", "ok", "day", "ratio"]
    assert result.rows[0] == (
        "0000020202",
        1981,
        10,
        111801.5,
        True,
        dt.date(2020, 1, 2),
        __import__("decimal").Decimal("0.25"),
    )
    assert result.rows[1][3] is None and result.rows[1][4] is False
    table = result.to_arrow()
    assert str(table.schema.field("year").type) == "int32"
    assert str(table.schema.field("ratio").type) == "double"
    assert table.column("ratio").to_pylist() == [0.25, 1.5]
    # What was sent: workgroup, database, catalog; the result location is the workgroup's.
    sent = client.get_query_execution(QueryExecutionId=result.query_execution_id)["QueryExecution"]
    assert sent["WorkGroup"] == workgroup
    assert sent["QueryExecutionContext"] == {"Database": "estat", "Catalog": "AwsDataCatalog"}
    assert result.metadata()["athena/bytes_scanned"] == 0
    assert result.metadata()["athena/cost_usd"] == 0.0


def test_missing_workgroup_says_how_to_create_it(client) -> None:
    engine = AthenaEngine(client, workgroup="no-such-workgroup", database="estat")
    with pytest.raises(AthenaError, match="setup-workgroup --name no-such-workgroup"):
        engine.execute("SELECT 1")


class _FakeAthena:
    """Just enough of a boto3 client to drive state changes moto cannot produce."""

    class exceptions:
        class InvalidRequestException(Exception):
            pass

    def __init__(self, states: list[dict], start_error: str | None = None) -> None:
        self.states = states
        self.start_error = start_error
        self.stopped: list[str] = []
        self.meta = type("M", (), {"region_name": "ap-northeast-1"})()

    def start_query_execution(self, **kwargs):
        if self.start_error:
            raise self.exceptions.InvalidRequestException(self.start_error)
        self.kwargs = kwargs
        return {"QueryExecutionId": "q-1"}

    def get_query_execution(self, QueryExecutionId):
        status = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"QueryExecution": {"Status": status, "Statistics": {}}}

    def stop_query_execution(self, QueryExecutionId):
        self.stopped.append(QueryExecutionId)


def test_polling_backs_off_and_a_missing_table_names_the_fix() -> None:
    sleeps: list[float] = []
    fake = _FakeAthena(
        [
            {"State": "QUEUED"},
            {"State": "RUNNING"},
            {"State": "RUNNING"},
            {
                "State": "FAILED",
                "StateChangeReason": "TABLE_NOT_FOUND: line 1:15: "
                "Table 'awsdatacatalog.estat.nope' does not exist",
            },
        ]
    )
    engine = AthenaEngine(
        fake, "estat-lake", "estat", poll_initial=0.1, poll_max=0.3, sleep=sleeps.append
    )
    with pytest.raises(AthenaError, match=r"materialize <domain>/table"):
        engine.execute("SELECT * FROM estat.nope")
    assert sleeps == [0.1, 0.2, 0.3]


def test_a_missing_output_location_names_the_fix() -> None:
    fake = _FakeAthena(
        [],
        start_error="No output location provided. An output location is "
        "required either through the Workgroup result configuration setting",
    )
    with pytest.raises(AthenaError, match="give the workgroup one"):
        AthenaEngine(fake, "estat-lake", "estat").execute("SELECT 1")


def test_a_query_past_its_timeout_is_stopped() -> None:
    fake = _FakeAthena([{"State": "RUNNING"}])
    engine = AthenaEngine(
        fake, "wg", "estat", poll_initial=1, poll_max=1, timeout_seconds=3, sleep=lambda s: None
    )
    with pytest.raises(AthenaError, match="still RUNNING after 3 s"):
        engine.execute("SELECT 1")
    assert fake.stopped == ["q-1"]


def test_cost_is_5_usd_per_tb_with_a_10_mb_minimum() -> None:
    assert query_cost_usd(0) == 0.0
    assert query_cost_usd(1) == pytest.approx(10 / 1024**2 * 5)
    assert query_cost_usd(1024**4) == pytest.approx(5.0)


def test_loading_a_slice_through_athena(client, workgroup) -> None:
    statements = load_statements("estat", "population", "s3://lake/x/lake", "0000020202", 1981)
    assert "LOCATION 's3://lake/x/lake/population/conformed/'" in statements[0]
    assert "PARTITIONED BY (`dataset_id` string, `year` int)" in statements[0]
    assert "dataset_id=0000020202/year=1981/" in statements[1]
    assert statements[2] == (
        "DELETE FROM estat.population WHERE dataset_id = '0000020202' AND year = 1981"
    )
    assert statements[3].startswith("INSERT INTO estat.population (dataset_id, tab_code")
    with pytest.raises(ValueError, match="only letters"):
        load_statements("estat", "population", "s3://x", "1'; DROP TABLE x; --", 1981)
    engine = AthenaEngine(client, workgroup=workgroup, database="estat", poll_initial=0.01)
    results = load_slice_via_athena(engine, "population", "s3://lake/x/lake", "0000020202", 1981)
    sent = [
        client.get_query_execution(QueryExecutionId=r.query_execution_id)["QueryExecution"]["Query"]
        for r in results
    ]
    assert sent == statements


def test_workgroup_setup_updates_a_drifted_workgroup() -> None:
    class Drifted(_FakeAthena):
        def get_work_group(self, WorkGroup):
            config = {"ResultConfiguration": {"OutputLocation": "s3://old/"}}
            return {"WorkGroup": {"Name": WorkGroup, "Configuration": config}}

        def update_work_group(self, **kwargs):
            self.updated = kwargs

    fake = Drifted([])
    assert ensure_workgroup(fake, "estat-lake", "s3://new/results", 10 * 1024**3) == "updated"
    updates = fake.updated["ConfigurationUpdates"]
    assert updates["ResultConfigurationUpdates"] == {"OutputLocation": "s3://new/results/"}
    assert updates["EnforceWorkGroupConfiguration"] is True
    assert updates["BytesScannedCutoffPerQuery"] == 10 * 1024**3
