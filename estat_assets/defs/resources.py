"""Resources, and the one function that binds them for an environment (``local`` or ``aws``).

The same keys in every environment, bound to that environment's implementation class: the query
engine is :class:`DuckDBQueryEngine` locally and :class:`AthenaQueryEngine` on AWS; the table
writer :class:`PyIcebergWriter` (one commit a load) unless ``ESTAT_TABLE_WRITER=athena`` binds
:class:`AthenaWriter`. Assets call their small protocol and never ask which one they got.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import dagster as dg
import pyarrow as pa

from estat_assets.estat.client import DEFAULT_BASE_URL, EStatClient, RetryConfig
from estat_assets.lake.catalog import Catalog, Table, open_catalog
from estat_assets.lake.iceberg import replace_slices
from estat_assets.lake.io_managers import LakeStorage, ManifestIOManager, resolved
from estat_assets.query.athena import DEFAULT_WORKGROUP, AthenaEngine, athena_client
from estat_assets.query.athena_load import drop_other_years_statement, load_slice_via_athena
from estat_assets.query.engine import DuckDBEngine
from estat_assets.settings import Settings

EMULATOR_APP_ID = "estat-lake-local-emulator"


class QueryEngine(Protocol):
    """What assets ask of the ``query_engine`` resource (DuckDB or Athena)."""

    @property
    def namespace(self) -> str: ...

    def table_ref(self, table: str) -> str: ...

    def run(self, sql: str) -> tuple[pa.Table, dict[str, Any]]: ...


class TableWriter(Protocol):
    """What ``<domain>/table`` asks of the ``table_writer`` resource (pyiceberg or Athena)."""

    @property
    def kind(self) -> str: ...

    def write(
        self,
        domain: str,
        dataset_id: str,
        years: Sequence[int] | None,
        data: Callable[[], Iterable[pa.Table]],
        snapshot_properties: Mapping[str, str],
        log: Callable[[str], None] = ...,
        loaded_years: Sequence[str] = (),
    ) -> Table: ...


def _secret(settings: Settings, name: str, *, in_process_env: bool) -> Any:
    """``EnvVar(name)`` for a secret of the process environment (never shown in the UI); the
    value itself only for settings built from a mapping (tests)."""
    if not settings.has_secret(name):
        return None
    return dg.EnvVar(name) if in_process_env else settings.secret_value(name)


class EStatResource(dg.ConfigurableResource):
    """The e-Stat API. ``app_id`` comes from ``ESTAT_APP_ID`` through ``EnvVar``: never shown."""

    app_id: str
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 60.0
    concurrency: int = 4
    rate_limit_per_second: float | None = None
    retry_attempts: int = 5
    page_size: int = 100_000

    def client(
        self,
        retry: RetryConfig | None = None,
        concurrency: int | None = None,
        timeout: float | None = None,
    ) -> EStatClient:
        return EStatClient(
            resolved(self.app_id) or "",
            self.base_url,
            timeout=timeout or self.timeout_seconds,
            concurrency=concurrency or self.concurrency,
            rate_limit=self.rate_limit_per_second,
            retry=retry or RetryConfig(attempts=self.retry_attempts),
            page_size=self.page_size,
        )


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
        return open_catalog(self.name, self.properties())

    def identifier(self, table: str) -> tuple[str, str]:
        return (self.namespace, table)


class DuckDBQueryEngine(dg.ConfigurableResource):
    """Trino-dialect SQL on DuckDB over pyiceberg scans (local)."""

    iceberg: IcebergCatalogResource

    @property
    def namespace(self) -> str:
        return self.iceberg.namespace

    def table_ref(self, table: str) -> str:
        return f"{self.namespace}.{table}"

    def engine(self) -> DuckDBEngine:
        return DuckDBEngine(self.iceberg.catalog(), self.namespace)

    def run(self, sql: str) -> tuple[pa.Table, dict[str, Any]]:
        return self.engine().query(sql), {"query_engine": "duckdb"}


class AthenaQueryEngine(dg.ConfigurableResource):
    """Trino SQL on Athena (production). Workgroup, output location, database (the Glue
    database) and region are all explicit, never taken from an ambient default."""

    iceberg: IcebergCatalogResource
    region: str
    workgroup: str = DEFAULT_WORKGROUP
    output_location: str | None = None
    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    poll_max_seconds: float = 5.0
    timeout_seconds: float = 1800.0

    @property
    def namespace(self) -> str:
        return self.iceberg.namespace

    def table_ref(self, table: str) -> str:
        return f"{self.namespace}.{table}"

    def engine(self) -> AthenaEngine:
        client = athena_client(
            self.region,
            self.endpoint,
            aws_access_key_id=resolved(self.access_key_id),
            aws_secret_access_key=resolved(self.secret_access_key),
        )
        return AthenaEngine(
            client,
            workgroup=self.workgroup,
            database=self.namespace,
            output_location=self.output_location,
            poll_max=self.poll_max_seconds,
            timeout_seconds=self.timeout_seconds,
        )

    def run(self, sql: str) -> tuple[pa.Table, dict[str, Any]]:
        result = self.engine().execute(sql)
        return result.to_arrow(), {"query_engine": "athena", **result.metadata()}


class PyIcebergWriter(dg.ConfigurableResource):
    """Replaces a dataset's slices with pyiceberg: delete + append in ONE commit."""

    iceberg: IcebergCatalogResource

    @property
    def kind(self) -> str:
        return "pyiceberg"

    def write(
        self,
        domain: str,
        dataset_id: str,
        years: Sequence[int] | None,
        data: Callable[[], Iterable[pa.Table]],
        snapshot_properties: Mapping[str, str],
        log: Callable[[str], None] = lambda _: None,
        loaded_years: Sequence[str] = (),
    ) -> Table:
        catalog = self.iceberg.catalog()
        return replace_slices(
            catalog, self.iceberg.identifier(domain), dataset_id, years, data, snapshot_properties
        )


class AthenaWriter(dg.ConfigurableResource):
    """Replaces a dataset's slices through Athena SQL (DELETE + INSERT per year: two commits a
    year, see ``query/athena_load.py`` and ``deploy/README.md`` for the trade-off)."""

    iceberg: IcebergCatalogResource
    query_engine: AthenaQueryEngine
    conformed_root: str

    @property
    def kind(self) -> str:
        return "athena"

    def write(
        self,
        domain: str,
        dataset_id: str,
        years: Sequence[int] | None,
        data: Callable[[], Iterable[pa.Table]],
        snapshot_properties: Mapping[str, str],
        log: Callable[[str], None] = lambda _: None,
        loaded_years: Sequence[str] = (),
    ) -> Table:
        engine = self.query_engine.engine()
        for year in sorted(int(y) for y in loaded_years):
            results = load_slice_via_athena(engine, domain, self.conformed_root, dataset_id, year)
            log(f"{dataset_id}|{year}: loaded through Athena in {len(results)} statements")
        if years is None:  # a whole-table load: years the release no longer has go too
            engine.execute(
                drop_other_years_statement(engine.database, domain, dataset_id, loaded_years)
            )
            log(f"{dataset_id}: years not in this release deleted through Athena")
        return self.iceberg.catalog().load_table(self.iceberg.identifier(domain))


def local_resources(settings: Settings) -> dict[str, Any]:
    """Embedded defaults: the bundled emulator, a folder, SQLite and DuckDB. No accounts."""
    paths = settings.paths.ensure()
    lake = LakeStorage(root=str(paths.lake))
    app_id: Any = _secret(settings, "ESTAT_APP_ID", in_process_env=settings.secrets_from_process)
    iceberg = IcebergCatalogResource(
        catalog_type="sql",
        uri=f"sqlite:///{paths.catalog_db}",
        warehouse=f"file://{paths.warehouse}",
    )
    return {
        "estat": EStatResource(
            app_id=app_id or EMULATOR_APP_ID,
            base_url=settings.estat_url,
            rate_limit_per_second=settings.rate_limit,
        ),
        "lake": lake,
        "manifest_io_manager": ManifestIOManager(lake=lake),
        "iceberg": iceberg,
        "query_engine": DuckDBQueryEngine(iceberg=iceberg),
        "table_writer": PyIcebergWriter(iceberg=iceberg),
    }


def aws_resources(settings: Settings) -> dict[str, Any]:
    """Production: the real API, S3, Glue, Athena. Every location comes from the settings.

    Credentials: on ECS the task role (boto3's default chain). For an S3-compatible endpoint
    other than AWS (tests: SeaweedFS) set ``ESTAT_LAKE_S3_ACCESS_KEY_ID`` and
    ``ESTAT_LAKE_S3_SECRET_ACCESS_KEY``; Glue and Athena then sign with the same keys.
    """
    settings.check_aws()
    root = settings.s3_root or ""
    env = settings.secrets_from_process
    key_id = _secret(settings, "ESTAT_LAKE_S3_ACCESS_KEY_ID", in_process_env=env)
    secret = _secret(settings, "ESTAT_LAKE_S3_SECRET_ACCESS_KEY", in_process_env=env)
    lake = LakeStorage(
        root=f"{root}/lake",
        s3_endpoint=settings.s3_endpoint,
        s3_region=settings.region,
        s3_access_key_id=key_id,
        s3_secret_access_key=secret,
    )
    iceberg = IcebergCatalogResource(
        catalog_type="glue",
        namespace=settings.glue_database,
        warehouse=f"{root}/warehouse",
        region=settings.region,
        glue_endpoint=settings.glue_endpoint,
        s3_endpoint=settings.s3_endpoint,
        s3_access_key_id=key_id,
        s3_secret_access_key=secret,
    )
    athena = AthenaQueryEngine(
        iceberg=iceberg,
        region=settings.region,
        workgroup=settings.athena_workgroup,
        output_location=settings.athena_output or f"{root}/athena-results/",
        endpoint=settings.athena_endpoint,
        access_key_id=key_id,
        secret_access_key=secret,
    )
    engine: Any = (
        athena if settings.query_engine == "athena" else DuckDBQueryEngine(iceberg=iceberg)
    )
    writer: Any = (
        AthenaWriter(iceberg=iceberg, query_engine=athena, conformed_root=lake.root)
        if settings.table_writer == "athena"
        else PyIcebergWriter(iceberg=iceberg)
    )
    return {
        "estat": EStatResource(
            app_id=_secret(settings, "ESTAT_APP_ID", in_process_env=env),
            base_url=settings.api_url or DEFAULT_BASE_URL,
            rate_limit_per_second=settings.rate_limit,
        ),
        "lake": lake,
        "manifest_io_manager": ManifestIOManager(lake=lake),
        "iceberg": iceberg,
        "query_engine": engine,
        "table_writer": writer,
    }


def build_resources(settings: Settings) -> dict[str, Any]:
    """The same resource keys in every environment, bound to that environment's classes."""
    return local_resources(settings) if settings.env == "local" else aws_resources(settings)
