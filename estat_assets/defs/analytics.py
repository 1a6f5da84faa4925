"""``<domain>/<analytics>``: the analytics users ask for, one SQL text for Athena and DuckDB.

Each asset runs one Trino-dialect query (``query/analytics_sql.py``) over the domain's Iceberg
table through the ``query_engine`` resource (DuckDB locally, Athena in aws) and stores the answer
as its own Iceberg table ``<namespace>.<domain>_<name>``, replaced whole in one commit, so it is
queryable by the same engines. Not partitioned: each run recomputes from the whole table.
"""

import contextlib
import warnings

import dagster as dg
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.table import Table

from estat_assets.defs.resources import IcebergCatalogResource, QueryEngineResource
from estat_assets.domains import DomainSpec
from estat_assets.query.analytics_sql import QUERIES, render

ANALYTICS = tuple(QUERIES)
PREVIEW_ROWS = 10


def analytics_table_name(domain: str, name: str) -> str:
    return f"{domain}_{name}"


def _plain_type(t: pa.DataType) -> pa.DataType:
    """Engine output types → the few types an Iceberg table (and Glue) takes plainly."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pa.float64()
    if pa.types.is_boolean(t) or pa.types.is_date(t) or pa.types.is_timestamp(t):
        return t
    return pa.string()


def normalize(data: pa.Table) -> pa.Table:
    schema = pa.schema([pa.field(f.name, _plain_type(f.type)) for f in data.schema])
    return data.cast(schema)


def replace_table(catalog: Catalog, identifier: tuple[str, str], data: pa.Table) -> Table:
    """Replace the whole contents of ``identifier`` with ``data`` (recreated if columns change)."""
    with contextlib.suppress(NamespaceAlreadyExistsError):
        catalog.create_namespace(identifier[0])
    try:
        table = catalog.load_table(identifier)
        if table.schema().as_arrow().names != data.schema.names:
            catalog.drop_table(identifier)
            raise NoSuchTableError(str(identifier))
    except NoSuchTableError:
        table = catalog.create_table(identifier, schema=data.schema)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        table.overwrite(data.cast(table.schema().as_arrow()))
    return catalog.load_table(identifier)


def _preview(data: pa.Table) -> str:
    head = data.slice(0, PREVIEW_ROWS).to_pandas()
    head = head.dropna(axis=1, how="all")  # the unused axes of a domain
    return head.to_markdown(index=False)


def build_analytics_asset(domain: DomainSpec, name: str) -> dg.AssetsDefinition:
    _, description = QUERIES[name]
    table_key = dg.AssetKey([domain.name, "table"])

    @dg.asset(
        key=dg.AssetKey([domain.name, name]),
        deps=[table_key],
        group_name=f"{domain.name}_analytics",
        kinds={"iceberg", "sql"},
        description=f"{domain.title or domain.name}: {description}",
    )
    def analytics(
        context: dg.AssetExecutionContext,
        query_engine: QueryEngineResource,
        iceberg: IcebergCatalogResource,
    ) -> dg.MaterializeResult:
        sql = render(name, query_engine.table_ref(domain.name))
        data, query_metadata = query_engine.run(sql)
        data = normalize(data)
        identifier = iceberg.identifier(analytics_table_name(domain.name, name))
        table = replace_table(iceberg.catalog(), identifier, data)
        context.log.info(f"{name}: {data.num_rows} rows → {'.'.join(identifier)}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": data.num_rows,
                "table": ".".join(identifier),
                "metadata_location": table.metadata_location,
                "sql": dg.MetadataValue.md(f"```sql\n{sql}\n```"),
                "preview": dg.MetadataValue.md(_preview(data)) if data.num_rows else "",
                **query_metadata,
            }
        )

    return analytics


def build_analytics_assets(domain: DomainSpec) -> list[dg.AssetsDefinition]:
    """Per domain: ``latest_by_area``, ``yoy_change``, ``national_totals``."""
    return [build_analytics_asset(domain, name) for name in ANALYTICS]
