"""Resources, and the one function that binds them for an environment (``local`` or ``aws``)."""

import os
from typing import Any

import dagster as dg
from pyiceberg.catalog import Catalog, load_catalog

from estat_assets.estat.client import DEFAULT_BASE_URL, EStatClient, RetryConfig
from estat_assets.lake.io_managers import LakeStorage, ManifestIOManager, ParquetIOManager
from estat_assets.settings import emulator_url, environment, local_paths

EMULATOR_APP_ID = "estat-lake-local-emulator"


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
                props["glue.access-key-id"] = self.s3_access_key_id
                props["glue.secret-access-key"] = self.s3_secret_access_key or ""
        else:
            raise ValueError(f"catalog_type {self.catalog_type!r}: expected 'sql' or 'glue'")
        if self.warehouse.startswith("s3://"):
            # Without s3.region pyarrow asks real AWS where the bucket is.
            props["s3.region"] = self.region or "us-east-1"
            if self.s3_endpoint:
                props["s3.endpoint"] = self.s3_endpoint
            if self.s3_access_key_id:
                props["s3.access-key-id"] = self.s3_access_key_id
                props["s3.secret-access-key"] = self.s3_secret_access_key or ""
        return props

    def catalog(self) -> Catalog:
        return load_catalog(self.name, **self.properties())

    def identifier(self, table: str) -> tuple[str, str]:
        return (self.namespace, table)


def local_resources(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Embedded defaults: the bundled emulator, a folder, SQLite and DuckDB. No accounts."""
    env = os.environ if environ is None else environ
    paths = local_paths(env).ensure()
    lake = LakeStorage(root=str(paths.lake))
    app_id: Any = dg.EnvVar("ESTAT_APP_ID") if env.get("ESTAT_APP_ID") else EMULATOR_APP_ID
    return {
        "estat": EStatResource(app_id=app_id, base_url=emulator_url(env)),
        "lake": lake,
        "raw_io_manager": ManifestIOManager(lake=lake),
        "conformed_io_manager": ParquetIOManager(lake=lake),
        "iceberg": IcebergCatalogResource(
            catalog_type="sql",
            uri=f"sqlite:///{paths.catalog_db}",
            warehouse=f"file://{paths.warehouse}",
        ),
    }


def aws_resources(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Production: the real API, S3, Glue. Every location and secret comes from the environment."""
    env = os.environ if environ is None else environ
    missing = [v for v in ("ESTAT_APP_ID", "ESTAT_LAKE_S3_ROOT") if not env.get(v)]
    if missing:
        raise ValueError(f"ESTAT_LAKE_ENV=aws needs {', '.join(missing)} in the environment")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "ap-northeast-1"
    root = env["ESTAT_LAKE_S3_ROOT"].rstrip("/")
    s3_endpoint = env.get("ESTAT_LAKE_S3_ENDPOINT") or None
    lake = LakeStorage(root=f"{root}/lake", s3_endpoint=s3_endpoint, s3_region=region)
    return {
        "estat": EStatResource(
            app_id=dg.EnvVar("ESTAT_APP_ID"),
            base_url=env.get("ESTAT_API_URL") or DEFAULT_BASE_URL,
            rate_limit_per_second=float(env.get("ESTAT_RATE_LIMIT", "2")),
        ),
        "lake": lake,
        "raw_io_manager": ManifestIOManager(lake=lake),
        "conformed_io_manager": ParquetIOManager(lake=lake),
        "iceberg": IcebergCatalogResource(
            catalog_type="glue",
            namespace=env.get("ESTAT_GLUE_DATABASE", "estat"),
            warehouse=f"{root}/warehouse",
            region=region,
            glue_endpoint=env.get("ESTAT_GLUE_ENDPOINT") or None,
            s3_endpoint=s3_endpoint,
        ),
    }


def build_resources(env_name: str | None = None, environ: dict[str, str] | None = None) -> dict:
    """The same resource keys in every environment, bound to that environment's implementations."""
    name = env_name or environment(environ)
    return local_resources(environ) if name == "local" else aws_resources(environ)
