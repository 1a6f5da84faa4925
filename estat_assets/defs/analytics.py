"""``<domain>/<analytics>``: the analytics users ask for, one SQL text for Athena and DuckDB.

Each asset runs one Trino-dialect query (``query/analytics_sql.py``) over the domain's Iceberg
table through the ``query_engine`` resource (DuckDB locally, Athena in aws) and stores the answer
as its own Iceberg table ``<namespace>.<domain>_<name>``, replaced whole in one commit, so it is
queryable by the same engines. Not partitioned: each run recomputes from the whole table.
"""

import dagster as dg
import pyarrow as pa

from estat_assets.defs.resources import IcebergCatalogResource, QueryEngine
from estat_assets.domains import DomainSpec
from estat_assets.lake.analytics import analytics_table_name, normalize, replace_table
from estat_assets.query.analytics_sql import QUERIES, render

ANALYTICS = tuple(QUERIES)
PREVIEW_ROWS = 10


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
        owners=domain.owners,
        tags={"layer": "analytics", "domain": domain.name},
        code_version="1",
        metadata={"dagster/table_name": f"estat.{analytics_table_name(domain.name, name)}"},
        # Recomputed whenever a dataset of the domain is loaded (any partition of its table),
        # once the daemon's automation sensor is on.
        automation_condition=dg.AutomationCondition.eager(),
        description=f"{domain.title or domain.name}: {description}",
    )
    def analytics(
        context: dg.AssetExecutionContext,
        query_engine: dg.ResourceParam[QueryEngine],
        iceberg: IcebergCatalogResource,
    ) -> dg.MaterializeResult:
        sql = render(name, query_engine.table_ref(domain.name))
        data, query_metadata = query_engine.run(sql)
        data = normalize(data)
        identifier = iceberg.identifier(analytics_table_name(domain.name, name))
        table = replace_table(iceberg.catalog(), identifier, data, context.run_id)
        context.log.info(f"{name}: {data.num_rows} rows → {'.'.join(identifier)}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": data.num_rows,
                "dagster/table_name": ".".join(identifier),
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
