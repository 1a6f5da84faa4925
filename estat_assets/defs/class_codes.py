"""``<domain>/class_codes``: each dataset's CLASS_INF as ``estat.<domain>_class_codes``.

It runs after ``<domain>/table`` (so a refused load changes the class codes no more than the
data) and replaces the dataset's rows only when its CLASS_INF changed (see ``lake/class_codes``).
"""

import dagster as dg
import orjson

from estat_assets.defs.partitions import domain_partitions
from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.ids import check_dataset_id
from estat_assets.estat.models import parse_meta_info
from estat_assets.lake.class_codes import class_codes_name, class_codes_rows, write_class_codes
from estat_assets.lake.iceberg import PROP_RUN, PROP_UPDATED
from estat_assets.lake.io_managers import LakeStorage
from estat_assets.lake.rawstore import read_run_file


def build_class_codes_asset(domain: DomainSpec) -> dg.AssetsDefinition:
    name = domain.name

    @dg.asset(
        key=dg.AssetKey([name, "class_codes"]),
        ins={"raw": dg.AssetIn(key=dg.AssetKey([name, "raw"]))},
        deps=[dg.AssetKey([name, "table"])],
        partitions_def=domain_partitions(name),
        group_name=name,
        kinds={"iceberg"},
        owners=domain.owners,
        tags={"layer": "class_codes", "domain": name},
        code_version="2",
        metadata={"dagster/table_name": f"estat.{class_codes_name(name)}"},
        description=(
            f"{domain.title or name}: every dataset's CLASS_INF (axis, code, name, level, parent, "
            f"unit) as the Iceberg table estat.{class_codes_name(name)}; a dataset's rows are "
            "replaced as a whole when its metadata changes."
        ),
    )
    def class_codes(
        context: dg.AssetExecutionContext,
        raw: dict,
        lake: LakeStorage,
        iceberg: IcebergCatalogResource,
    ) -> dg.MaterializeResult:
        dataset_id = check_dataset_id(context.partition_key)
        storage = lake.storage()
        meta = parse_meta_info(orjson.loads(read_run_file(storage, raw, raw["meta_file"])))
        rows = class_codes_rows(dataset_id, meta, context.run_id)
        identifier = iceberg.identifier(class_codes_name(name))
        _, digest, written = write_class_codes(
            iceberg.catalog(),
            identifier,
            dataset_id,
            rows,
            {PROP_UPDATED: meta.table.updated_date or "", PROP_RUN: context.run_id},
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/partition_row_count": rows.num_rows,
                "dagster/table_name": ".".join(identifier),
                "axes": ", ".join(meta.axes),
                "fingerprint": digest,
                "written": written,
            }
        )

    return class_codes
