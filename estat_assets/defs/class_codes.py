"""``<domain>/class_codes``: each dataset's CLASS_INF as an Iceberg table, beside its data.

``estat.<domain>_class_codes`` has one row per (dataset, axis, code): the axis label, the code's
name, level, parent code (kept even when the parent is not in the list) and unit. The asset is
partitioned like the others (dataset × year) so it runs in the same job, but CLASS_INF belongs to
the dataset, not to a year: every partition replaces the dataset's rows as a whole with the
metadata its raw run fetched. That is idempotent (the same metadata writes the same rows, and an
unchanged fingerprint skips the commit) and a republished table's new codes replace the old ones.
"""

import hashlib

import dagster as dg
import orjson
import pyarrow as pa

from estat_assets.defs.partitions import domain_partitions
from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.models import TableMetadata, parse_meta_info
from estat_assets.lake.io_managers import LakeStorage, partition_dims
from estat_assets.lake.quarantine import (
    CLASS_CODES_SCHEMA,
    class_codes_name,
    ensure_class_codes_table,
    replace_dataset,
)
from estat_assets.lake.rawstore import read_run_file

FINGERPRINT = "estat.class_codes.fingerprint"


def class_codes_table(dataset_id: str, meta: TableMetadata, run_id: str = "") -> pa.Table:
    """CLASS_INF → rows (dataset_id, axis, axis_name, code, name, level, parent_code, unit)."""
    rows: dict[str, list] = {f.name: [] for f in CLASS_CODES_SCHEMA}
    for cls in meta.classes:
        for position, item in enumerate(cls.items):
            rows["dataset_id"].append(dataset_id)
            rows["axis"].append(cls.id)
            rows["axis_name"].append(cls.name)
            rows["code"].append(item.code)
            rows["name"].append(item.name)
            rows["level"].append(item.level)
            rows["parent_code"].append(item.parent_code)
            rows["unit"].append(item.unit)
            rows["position"].append(position)
            rows["source_updated_date"].append(meta.table.updated_date)
            rows["run_id"].append(run_id)
    return pa.table(rows, schema=CLASS_CODES_SCHEMA)


def fingerprint(table: pa.Table) -> str:
    """A digest of the metadata rows (not the run): equal when CLASS_INF did not change."""
    body = table.drop_columns(["run_id"]).to_pylist()
    return hashlib.sha256(orjson.dumps(body)).hexdigest()[:32]


def _stored_fingerprint(catalog, identifier, dataset_id: str) -> str | None:
    """The fingerprint of the last snapshot that wrote this dataset (walking back the history)."""
    table = catalog.load_table(identifier)
    snapshot = table.current_snapshot()
    while snapshot is not None:
        props = snapshot.summary.additional_properties if snapshot.summary else {}
        if props.get("estat.dataset_id") == dataset_id:
            return props.get(FINGERPRINT)
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return None


def build_class_codes_asset(domain: DomainSpec) -> dg.AssetsDefinition:
    name = domain.name
    raw_key = dg.AssetKey([name, "raw"])
    key = dg.AssetKey([name, "class_codes"])

    @dg.asset(
        key=key,
        ins={"raw": dg.AssetIn(key=raw_key)},
        partitions_def=domain_partitions(name),
        group_name=name,
        kinds={"iceberg"},
        description=(
            f"{domain.title or name}: every dataset's CLASS_INF (axis, code, name, level, parent, "
            "unit) as the Iceberg table estat.<domain>_class_codes; a dataset's rows are replaced "
            "as a whole."
        ),
    )
    def class_codes(
        context: dg.AssetExecutionContext,
        raw: dict,
        lake: LakeStorage,
        iceberg: IcebergCatalogResource,
    ) -> dg.MaterializeResult:
        dataset_id, _ = partition_dims(context.partition_key)
        storage = lake.storage()
        meta = parse_meta_info(orjson.loads(read_run_file(storage, raw, raw["meta_file"])))
        rows = class_codes_table(dataset_id, meta, context.run_id)
        digest = fingerprint(rows)
        catalog = iceberg.catalog()
        identifier = iceberg.identifier(class_codes_name(name))
        ensure_class_codes_table(catalog, identifier)
        unchanged = _stored_fingerprint(catalog, identifier, dataset_id) == digest
        if not unchanged:
            replace_dataset(
                catalog,
                identifier,
                rows,
                dataset_id,
                {
                    "estat.dataset_id": dataset_id,
                    FINGERPRINT: digest,
                    "dagster.run_id": context.run_id,
                },
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows.num_rows,
                "table": ".".join(identifier),
                "axes": ", ".join(meta.axes),
                "fingerprint": digest,
                "written": not unchanged,
            }
        )

    return class_codes
