"""``<domain>/table``: the domain's Iceberg table; one partition = one slice, one commit.

After the slice is committed the step refreshes the dataset's row of ``estat.dataset_inventory``
(see ``defs/inventory.py``). The snapshot summary carries the source release
(``estat.updated_date``) and the run (``dagster.run_id``), so ``lake/history.py`` can read the
table as it was before any release.
"""

from datetime import UTC, datetime

import dagster as dg
import orjson
import pyarrow as pa

from estat_assets.defs.inventory import INVENTORY_TABLE, update_inventory
from estat_assets.defs.partitions import domain_partitions
from estat_assets.defs.resources import IcebergCatalogResource, QueryEngineResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.models import TableInfo, parse_meta_info
from estat_assets.lake.iceberg import ensure_table, replace_partition
from estat_assets.lake.io_managers import LakeStorage, partition_dims
from estat_assets.lake.layout import partition_dir
from estat_assets.lake.rawstore import MANIFEST, load_manifest, read_run_file
from estat_assets.query.athena import AthenaEngine
from estat_assets.query.athena_load import load_slice_via_athena


def _table_info(lake: LakeStorage, domain: str, dataset_id: str, year: str):
    """The raw manifest of the partition and the TABLE_INF of its getMetaInfo (best effort)."""
    storage = lake.storage()
    manifest = load_manifest(storage, domain, dataset_id, year)
    info = None
    if manifest is not None:
        try:
            meta = read_run_file(storage, manifest, manifest["meta_file"])
            info = parse_meta_info(orjson.loads(meta)).table
        except Exception:  # the inventory must not fail a good slice write on odd metadata
            info = TableInfo(
                id=dataset_id,
                title=manifest.get("title"),
                statistics_name=manifest.get("statistics_name"),
                updated_date=manifest.get("updated_date"),
                overall_total_number=manifest.get("overall_total_number"),
            )
    return storage, manifest, info


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
        context: dg.AssetExecutionContext,
        conformed: pa.Table,
        iceberg: IcebergCatalogResource,
        lake: LakeStorage,
        query_engine: QueryEngineResource,
    ) -> dg.MaterializeResult:
        dataset_id, year = partition_dims(context.partition_key)
        catalog = iceberg.catalog()
        identifier = iceberg.identifier(name)
        ensure_table(catalog, *identifier)
        updated = conformed.column("source_updated_date")[0].as_py() if conformed.num_rows else None
        storage, manifest, info = _table_info(lake, name, dataset_id, year)
        if updated is None and manifest is not None:
            updated = manifest.get("updated_date")
        if iceberg.writer == "athena":
            # The optional Athena load reads the conformed Parquet this run just wrote.
            engine = query_engine.engine_obj()
            if not isinstance(engine, AthenaEngine):
                raise dg.Failure("ESTAT_TABLE_WRITER=athena needs the Athena query engine")
            results = load_slice_via_athena(engine, name, lake.root, dataset_id, int(year))
            context.log.info(
                f"{dataset_id}|{year}: loaded through Athena in {len(results)} statements"
            )
            tbl = catalog.load_table(identifier)
        else:
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
        raw_path = storage.uri(*partition_dir(name, "raw", dataset_id, year), MANIFEST)
        inventory = update_inventory(
            catalog,
            iceberg.namespace,
            name,
            dataset_id,
            info,
            run_id=context.run_id,
            partition=str(context.partition_key),
            updated_date=str(updated) if updated else None,
            synthetic=bool(manifest and manifest.get("synthetic")),
            raw_manifest=raw_path,
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": conformed.num_rows,
                "writer": iceberg.writer,
                "table": ".".join(identifier),
                "snapshot_id": str(snapshot.snapshot_id) if snapshot else "",
                "metadata_location": dg.MetadataValue.path(tbl.metadata_location),
                "source_updated_date": str(updated or ""),
                "written_at": dg.MetadataValue.timestamp(datetime.now(UTC)),
                "raw_manifest": dg.MetadataValue.path(raw_path),
                "conformed_file": dg.MetadataValue.path(
                    storage.uri(*partition_dir(name, "conformed", dataset_id, year), "data.parquet")
                ),
                "dataset_rows_stored": inventory["rows_stored"],
                "dataset_overall_total": inventory["overall_total_number"] or 0,
                "dataset_status": inventory["status"],
                "dataset_years": inventory["years"],
                "inventory_table": f"{iceberg.namespace}.{INVENTORY_TABLE}",
                "query": dg.MetadataValue.md(
                    f"```sql\nSELECT * FROM {'.'.join(identifier)}\n"
                    f"WHERE dataset_id = '{dataset_id}' AND year = {int(year)}\n```"
                ),
                "e-Stat": dg.MetadataValue.url(f"https://www.e-stat.go.jp/dbview?sid={dataset_id}"),
            }
        )

    return table
