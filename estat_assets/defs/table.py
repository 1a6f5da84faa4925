"""``<domain>/table``: the domain's Iceberg table; one partition = one slice, one commit."""

import dagster as dg
import pyarrow as pa

from estat_assets.defs.partitions import domain_partitions
from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.domains import DomainSpec
from estat_assets.lake.iceberg import ensure_table, replace_partition
from estat_assets.lake.io_managers import partition_dims


def build_table_asset(domain: DomainSpec) -> dg.AssetsDefinition:
    name = domain.name
    parts = domain_partitions(name)
    conformed_key = dg.AssetKey([name, "conformed"])
    table_key = dg.AssetKey([name, "table"])

    @dg.asset(
        key=table_key,
        ins={"conformed": dg.AssetIn(key=conformed_key)},
        partitions_def=parts,
        group_name=name,
        kinds={"iceberg"},
        description=f"{domain.title or name}: the domain's Iceberg table, one slice per partition.",
    )
    def table(
        context: dg.AssetExecutionContext, conformed: pa.Table, iceberg: IcebergCatalogResource
    ) -> dg.MaterializeResult:
        dataset_id, year = partition_dims(context.partition_key)
        catalog = iceberg.catalog()
        identifier = iceberg.identifier(name)
        ensure_table(catalog, *identifier)
        updated = conformed.column("source_updated_date")[0].as_py() if conformed.num_rows else None
        tbl = replace_partition(
            catalog,
            identifier,
            conformed,
            dataset_id,
            int(year),
            snapshot_properties={
                "estat.dataset_id": dataset_id,
                "estat.year": year,
                "estat.updated_date": str(updated or ""),
                "dagster.run_id": context.run_id,
            },
        )
        snapshot = tbl.current_snapshot()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": conformed.num_rows,
                "table": ".".join(identifier),
                "snapshot_id": str(snapshot.snapshot_id) if snapshot else "",
                "metadata_location": tbl.metadata_location,
            }
        )

    return table
