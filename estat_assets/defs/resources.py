"""Resources, and the one function that binds them for an environment (``local`` or ``aws``)."""

import os
from typing import Any

import dagster as dg
import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog

from estat_assets.estat.client import DEFAULT_BASE_URL, EStatClient, RetryConfig
from estat_assets.lake.io_managers import LakeStorage, ManifestIOManager, ParquetIOManager
from estat_assets.query.athena import DEFAULT_WORKGROUP, AthenaEngine, athena_client
from estat_assets.query.engine import DuckDBEngine
from estat_assets.settings import emulator_url, environment, local_paths

EMULATOR_APP_ID = "estat-lake-local-emulator"
DEFAULT_REGION = "ap-northeast-1"


def resolved(value: Any) -> Any:
    """A field's value: outside a run (the CLI, tests) it may still be an unresolved EnvVar."""
    return value.get_value() if isinstance(value, dg.EnvVar) else value


def _secret(env: Any, name: str) -> Any:
    """``EnvVar(name)`` when it is the process's own variable (never shown in the UI), else the
    value of the mapping we were given (tests build resources from a dict)."""
    value = env.get(name) or None
    if value is None:
        return None
    return dg.EnvVar(name) if os.environ.get(name) == value else value


class EStatResource(dg.ConfigurableResource):
    """The e-Stat API. ``app_id`` comes from ``ESTAT_APP_ID`` through ``EnvVar``: never shown."""

    app_id: str
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 60.0
    concurrency: int = 4
    rate_limit_per_second: float | None = None
    retry_attempts: int = 5
    page_size: int = 100_000

    def client(self) -> EStatClient:
        # Outside a run (the CLI) the field may still be an unresolved EnvVar.
        app_id = self.app_id.get_value() if isinstance(self.app_id, dg.EnvVar) else self.app_id
        return EStatClient(
            app_id or "",
            self.base_url,
            timeout=self.timeout_seconds,
            concurrency=self.concurrency,
            rate_limit=self.rate_limit_per_second,
            retry=RetryConfig(attempts=self.retry_attempts),
            page_size=self.page_size,
        )


TABLE_WRITERS = ("pyiceberg", "athena")


class IcebergCatalogResource(dg.ConfigurableResource):
    """A pyiceberg catalog: SQLite (``sql``) locally, Glue in production."""

    catalog_type: str = "sql"
    name: str = "estat"
    namespace: str = "estat"
    uri: str | None = None  # sql: sqlite:///path/catalog.db
    warehouse: str = ""
    region: str | None = None
    glue_endpoint: str | None = None
    s3_endpoint: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    # How <domain>/table replaces a slice: "pyiceberg" (one commit, the default) or "athena"
    # (DELETE + INSERT through the query engine; two commits, see deploy/README.md).
    writer: str = "pyiceberg"

    def properties(self) -> dict[str, str]:
        props: dict[str, str] = {"warehouse": self.warehouse}
        if self.catalog_type == "sql":
            props.update({"type": "sql", "uri": self.uri or ""})
        elif self.catalog_type == "glue":
            props["type"] = "glue"
            if self.region:
                props["glue.region"] = self.region
            if self.glue_endpoint:
                props["glue.endpoint"] = self.glue_endpoint
            if self.s3_access_key_id:
                props["glue.access-key-id"] = resolved(self.s3_access_key_id)
                props["glue.secret-access-key"] = resolved(self.s3_secret_access_key) or ""
        else:
            raise ValueError(f"catalog_type {self.catalog_type!r}: expected 'sql' or 'glue'")
        if self.warehouse.startswith("s3://"):
            # Without s3.region pyarrow asks real AWS where the bucket is.
            props["s3.region"] = self.region or "us-east-1"
            if self.s3_endpoint:
                props["s3.endpoint"] = self.s3_endpoint
            if self.s3_access_key_id:
                props["s3.access-key-id"] = resolved(self.s3_access_key_id)
                props["s3.secret-access-key"] = resolved(self.s3_secret_access_key) or ""
        return props

    def catalog(self) -> Catalog:
        return load_catalog(self.name, **self.properties())

    def identifier(self, table: str) -> tuple[str, str]:
        return (self.namespace, table)


class QueryEngineResource(dg.ConfigurableResource):
    """Trino-dialect SQL over the lake: DuckDB on pyiceberg scans locally, Athena in production.

    The same key (``query_engine``) and the same SQL in both environments; only this binding
    changes. Athena's workgroup, output location, database (the Glue database) and region are all
    explicit, never taken from an ambient default.
    """

    engine: str = "duckdb"  # or "athena"
    iceberg: IcebergCatalogResource
    region: str | None = None
    athena_workgroup: str = DEFAULT_WORKGROUP
    athena_output_location: str | None = None
    athena_endpoint: str | None = None
    athena_access_key_id: str | None = None
    athena_secret_access_key: str | None = None
    poll_max_seconds: float = 5.0
    timeout_seconds: float = 1800.0

    @property
    def namespace(self) -> str:
        return self.iceberg.namespace

    def table_ref(self, table: str) -> str:
        """How SQL names a lake table: ``<namespace>.<table>`` (the Glue database in aws)."""
        return f"{self.namespace}.{table}"

    def engine_obj(self) -> DuckDBEngine | AthenaEngine:
        if self.engine == "duckdb":
            return DuckDBEngine(self.iceberg.catalog(), self.namespace)
        if self.engine == "athena":
            client = athena_client(
                self.region or DEFAULT_REGION,
                self.athena_endpoint,
                aws_access_key_id=resolved(self.athena_access_key_id),
                aws_secret_access_key=resolved(self.athena_secret_access_key),
            )
            return AthenaEngine(
                client,
                workgroup=self.athena_workgroup,
                database=self.namespace,
                output_location=self.athena_output_location,
                poll_max=self.poll_max_seconds,
                timeout_seconds=self.timeout_seconds,
            )
        raise ValueError(f"query engine {self.engine!r}: expected 'duckdb' or 'athena'")

    def run(self, sql: str) -> tuple[pa.Table, dict[str, Any]]:
        """Run ``sql`` (Trino dialect): the rows, and metadata for the materialization."""
        engine = self.engine_obj()
        if isinstance(engine, AthenaEngine):
            result = engine.execute(sql)
            return result.to_arrow(), {"query_engine": "athena", **result.metadata()}
        return engine.query(sql), {"query_engine": "duckdb"}


def local_resources(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Embedded defaults: the bundled emulator, a folder, SQLite and DuckDB. No accounts."""
    env = os.environ if environ is None else environ
    paths = local_paths(env).ensure()
    lake = LakeStorage(root=str(paths.lake))
    app_id: Any = dg.EnvVar("ESTAT_APP_ID") if env.get("ESTAT_APP_ID") else EMULATOR_APP_ID
    iceberg = IcebergCatalogResource(
        catalog_type="sql",
        uri=f"sqlite:///{paths.catalog_db}",
        warehouse=f"file://{paths.warehouse}",
    )
    return {
        "estat": EStatResource(app_id=app_id, base_url=emulator_url(env)),
        "lake": lake,
        "raw_io_manager": ManifestIOManager(lake=lake),
        "conformed_io_manager": ParquetIOManager(lake=lake),
        "iceberg": iceberg,
        "query_engine": QueryEngineResource(engine="duckdb", iceberg=iceberg),
    }


def aws_resources(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Production: the real API, S3, Glue, Athena. Every location comes from the environment.

    Credentials: on ECS the task role (boto3's default chain). For an S3-compatible endpoint
    other than AWS (tests: SeaweedFS) set ``ESTAT_LAKE_S3_ACCESS_KEY_ID`` and
    ``ESTAT_LAKE_S3_SECRET_ACCESS_KEY``; Glue and Athena then sign with the same keys.
    """
    env = os.environ if environ is None else environ
    missing = [v for v in ("ESTAT_APP_ID", "ESTAT_LAKE_S3_ROOT") if not env.get(v)]
    if missing:
        raise ValueError(f"ESTAT_LAKE_ENV=aws needs {', '.join(missing)} in the environment")
    root = env["ESTAT_LAKE_S3_ROOT"].rstrip("/")
    if not root.startswith("s3://"):
        raise ValueError(f"ESTAT_LAKE_S3_ROOT={root!r}: expected s3://bucket/prefix")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    s3_endpoint = env.get("ESTAT_LAKE_S3_ENDPOINT") or None
    key_id = _secret(env, "ESTAT_LAKE_S3_ACCESS_KEY_ID")
    secret = _secret(env, "ESTAT_LAKE_S3_SECRET_ACCESS_KEY")
    lake = LakeStorage(
        root=f"{root}/lake",
        s3_endpoint=s3_endpoint,
        s3_region=region,
        s3_access_key_id=key_id,
        s3_secret_access_key=secret,
    )
    iceberg = IcebergCatalogResource(
        catalog_type="glue",
        namespace=env.get("ESTAT_GLUE_DATABASE", "estat"),
        warehouse=f"{root}/warehouse",
        region=region,
        glue_endpoint=env.get("ESTAT_GLUE_ENDPOINT") or None,
        s3_endpoint=s3_endpoint,
        s3_access_key_id=key_id,
        s3_secret_access_key=secret,
        writer=env.get("ESTAT_TABLE_WRITER") or "pyiceberg",
    )
    if iceberg.writer not in TABLE_WRITERS:
        raise ValueError(f"ESTAT_TABLE_WRITER={iceberg.writer!r}: expected one of {TABLE_WRITERS}")
    return {
        "estat": EStatResource(
            app_id=dg.EnvVar("ESTAT_APP_ID"),
            base_url=env.get("ESTAT_API_URL") or DEFAULT_BASE_URL,
            rate_limit_per_second=float(env.get("ESTAT_RATE_LIMIT", "2")),
        ),
        "lake": lake,
        "raw_io_manager": ManifestIOManager(lake=lake),
        "conformed_io_manager": ParquetIOManager(lake=lake),
        "iceberg": iceberg,
        "query_engine": QueryEngineResource(
            engine=env.get("ESTAT_QUERY_ENGINE", "athena"),
            iceberg=iceberg,
            region=region,
            athena_workgroup=env.get("ESTAT_ATHENA_WORKGROUP") or DEFAULT_WORKGROUP,
            athena_output_location=env.get("ESTAT_ATHENA_OUTPUT") or f"{root}/athena-results/",
            athena_endpoint=env.get("ESTAT_ATHENA_ENDPOINT") or None,
            athena_access_key_id=key_id,
            athena_secret_access_key=secret,
        ),
    }


def build_resources(env_name: str | None = None, environ: dict[str, str] | None = None) -> dict:
    """The same resource keys in every environment, bound to that environment's implementations."""
    name = env_name or environment(environ)
    return local_resources(environ) if name == "local" else aws_resources(environ)
