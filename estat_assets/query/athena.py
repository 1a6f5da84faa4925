"""Athena on boto3: the production engine behind ``query_engine`` (setup: ``athena_admin.py``).

dagster-aws's ``AthenaClientResource`` ignores the region and assumes the workgroup already has an
output location, so this is a small engine of our own: region, workgroup, database and output
location are explicit; polling backs off; results are typed from ``ResultSetMetadata``; every
query reports bytes scanned and its cost; errors say what to fix.

The workgroup is created or checked by ``estat-lake athena setup-workgroup`` (``athena_admin``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from estat_assets.query.engine import QueryError

# Athena's price (us-east-1, ap-northeast-1): $5 per TB scanned, per query rounded up to the
# megabyte with a 10 MB minimum; DDL and failed queries are free.
USD_PER_TB = 5.0
MIN_BILLED_BYTES = 10 * 1024**2
DEFAULT_WORKGROUP = "estat-lake"


class AthenaError(QueryError):
    """An Athena call or query that failed; the message names the fix."""


def _to_bool(v: str) -> bool:
    return v.lower() == "true"


def _to_timestamp(v: str) -> dt.datetime:
    return dt.datetime.fromisoformat(v.replace(" UTC", ""))


# ColumnInfo.Type → (Python converter, Arrow type)
_CONVERTERS: dict[str, tuple[Callable[[str], Any], pa.DataType]] = {
    "boolean": (_to_bool, pa.bool_()),
    "tinyint": (int, pa.int8()),
    "smallint": (int, pa.int16()),
    "integer": (int, pa.int32()),
    "int": (int, pa.int32()),
    "bigint": (int, pa.int64()),
    "float": (float, pa.float32()),
    "real": (float, pa.float32()),
    "double": (float, pa.float64()),
    "decimal": (decimal.Decimal, pa.float64()),
    "varchar": (str, pa.string()),
    "char": (str, pa.string()),
    "string": (str, pa.string()),
    "date": (dt.date.fromisoformat, pa.date32()),
    "timestamp": (_to_timestamp, pa.timestamp("us")),
    "json": (json.loads, pa.string()),
}


def column_converter(athena_type: str) -> tuple[Callable[[str], Any], pa.DataType]:
    """The converter and Arrow type of an Athena column type (unknown types stay strings)."""
    base = athena_type.lower().split("(")[0].strip()
    return _CONVERTERS.get(base, (str, pa.string()))


def query_cost_usd(bytes_scanned: int) -> float:
    if bytes_scanned <= 0:
        return 0.0
    billed = max(MIN_BILLED_BYTES, math.ceil(bytes_scanned / 1024**2) * 1024**2)
    return billed / 1024**4 * USD_PER_TB


@dataclass
class AthenaResult:
    query_execution_id: str
    columns: list[str]
    types: list[str]
    rows: list[tuple]
    bytes_scanned: int = 0
    engine_ms: int = 0
    output_location: str | None = None
    statement_type: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def cost_usd(self) -> float:
        return query_cost_usd(self.bytes_scanned)

    def to_arrow(self) -> pa.Table:
        schema = pa.schema(
            [
                pa.field(c, column_converter(t)[1])
                for c, t in zip(self.columns, self.types, strict=True)
            ]
        )
        cols = list(zip(*self.rows, strict=True)) if self.rows else [[] for _ in self.columns]
        arrays = []
        for values, f, t in zip(cols, schema, self.types, strict=True):
            if t.lower().startswith("decimal"):
                values = [None if v is None else float(v) for v in values]
            elif t.lower() == "json":
                values = [None if v is None else json.dumps(v) for v in values]
            arrays.append(pa.array(list(values), type=f.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    def metadata(self) -> dict[str, Any]:
        """What a Dagster materialization should show about this query."""
        return {
            "athena/query_execution_id": self.query_execution_id,
            "athena/bytes_scanned": self.bytes_scanned,
            "athena/cost_usd": round(self.cost_usd, 6),
            "athena/engine_ms": self.engine_ms,
            "athena/output_location": self.output_location or "",
        }


class AthenaEngine:
    """Runs Trino SQL on Athena in one workgroup and database, and waits for it."""

    def __init__(
        self,
        client: Any,
        workgroup: str,
        database: str,
        output_location: str | None = None,
        catalog: str = "AwsDataCatalog",
        poll_initial: float = 0.2,
        poll_max: float = 5.0,
        timeout_seconds: float = 1800.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.workgroup = workgroup
        self.database = database
        self.output_location = output_location
        self.catalog = catalog
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.timeout_seconds = timeout_seconds
        self._sleep = sleep
        self.namespace = database
        self.region = getattr(getattr(client, "meta", None), "region_name", "?")

    # ------------------------------------------------------------------ calls
    def start(self, sql: str) -> str:
        kwargs: dict[str, Any] = {
            "QueryString": sql,
            "WorkGroup": self.workgroup,
            "QueryExecutionContext": {"Database": self.database, "Catalog": self.catalog},
        }
        if self.output_location:
            # Ignored when the workgroup enforces its own location (as setup-workgroup makes it).
            kwargs["ResultConfiguration"] = {"OutputLocation": self.output_location}
        try:
            return self.client.start_query_execution(**kwargs)["QueryExecutionId"]
        except self.client.exceptions.InvalidRequestException as exc:
            raise AthenaError(self._explain(str(exc))) from None
        except Exception as exc:
            if "WorkGroup" in str(exc):
                raise AthenaError(self._explain(str(exc))) from None
            raise

    def wait(self, query_id: str) -> dict[str, Any]:
        delay, waited = self.poll_initial, 0.0
        while True:
            execution = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            status = execution["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return execution
            if state in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get(
                    "ErrorMessage", ""
                )
                raise AthenaError(self._explain(f"query {query_id} {state}: {reason}"))
            if waited >= self.timeout_seconds:
                self.client.stop_query_execution(QueryExecutionId=query_id)
                raise AthenaError(
                    f"query {query_id} still {state} after {self.timeout_seconds:.0f} s: stopped. "
                    "Raise timeout_seconds or narrow the query (filter on dataset_id and year, "
                    "the table's partition columns)."
                )
            self._sleep(delay)
            waited += delay
            delay = min(self.poll_max, delay * 2)

    def results(self, query_id: str, execution: dict[str, Any] | None = None) -> AthenaResult:
        paginator = self.client.get_paginator("get_query_results")
        columns: list[str] = []
        types: list[str] = []
        converters: list[Callable[[str], Any]] = []
        rows: list[tuple] = []
        first = True
        for page in paginator.paginate(QueryExecutionId=query_id):
            result_set = page.get("ResultSet", {})
            if not columns:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [c.get("Label") or c["Name"] for c in info]
                types = [c.get("Type", "varchar") for c in info]
                converters = [column_converter(t)[0] for t in types]
            raw_rows = result_set.get("Rows", [])
            for i, row in enumerate(raw_rows):
                values = [d.get("VarCharValue") for d in row.get("Data", [])]
                if first and i == 0 and columns and values == columns:
                    continue  # SELECT results start with a header row of the column labels
                rows.append(
                    tuple(
                        None if v is None else conv(v)
                        for v, conv in zip(values, converters, strict=False)
                    )
                )
            first = False
        execution = (
            execution
            or self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        )
        stats = execution.get("Statistics", {})
        return AthenaResult(
            query_execution_id=query_id,
            columns=columns,
            types=types,
            rows=rows,
            bytes_scanned=int(stats.get("DataScannedInBytes") or 0),
            engine_ms=int(stats.get("EngineExecutionTimeInMillis") or 0),
            output_location=execution.get("ResultConfiguration", {}).get("OutputLocation"),
            statement_type=execution.get("StatementType"),
            stats=stats,
        )

    def execute(self, sql: str) -> AthenaResult:
        query_id = self.start(sql)
        execution = self.wait(query_id)
        return self.results(query_id, execution)

    def query(self, sql: str) -> pa.Table:
        return self.execute(sql).to_arrow()

    # ------------------------------------------------------------------ errors
    def _explain(self, message: str) -> str:
        low = message.lower()
        setup = (
            f"python -m estat_assets.query.athena setup-workgroup --name {self.workgroup} "
            f"--output s3://<bucket>/athena-results/ --region {self.region}"
        )
        if "workgroup" in low and ("not found" in low or "does not exist" in low):
            return (
                f"Athena workgroup {self.workgroup!r} does not exist in {self.region}: "
                f"create it with `{setup}` (or set ESTAT_ATHENA_WORKGROUP). [{message}]"
            )
        if "output location" in low or "outputlocation" in low:
            return (
                f"Athena has no result location for workgroup {self.workgroup!r}: give the "
                f"workgroup one with `{setup}` (or set ESTAT_ATHENA_OUTPUT). [{message}]"
            )
        if (
            "table_not_found" in low
            or ("table" in low and "does not exist" in low)
            or ("entitynotfound" in low)
        ):
            return (
                f"{message}. The Iceberg table is not in Glue database {self.database!r}: "
                "materialize <domain>/table for at least one partition first, or check "
                "ESTAT_GLUE_DATABASE."
            )
        if "schema_not_found" in low or ("database" in low and "does not exist" in low):
            return (
                f"{message}. Glue database {self.database!r} does not exist: the first "
                "<domain>/table materialization creates it, or set ESTAT_GLUE_DATABASE."
            )
        return message


def athena_client(region: str, endpoint_url: str | None = None, **keys: str | None) -> Any:
    import boto3

    kwargs = {k: v for k, v in keys.items() if v}
    return boto3.client("athena", region_name=region, endpoint_url=endpoint_url, **kwargs)
