"""Iceberg tables beside each domain table: ``<domain>_quarantine`` and ``<domain>_class_codes``.

``estat.<domain>_quarantine`` has the domain table's columns plus ``quarantine_reason`` and
``source_row``, partitioned like it by ``(dataset_id, year)``; one partition's rows are replaced in
one commit (``replace_partition``), so a rerun leaves exactly the rows of its own run (none, when
the data became clean). ``estat.<domain>_class_codes`` holds each dataset's CLASS_INF, one row per
(axis, code), partitioned by ``dataset_id``; a dataset's rows are replaced as a whole.
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    NoSuchTableError,
)
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform

from estat_assets.lake.iceberg import (
    align,
    commit_overwrite,
    ensure_created,
    iceberg_schema,
    partition_spec,
)

QUARANTINE_SUFFIX = "_quarantine"
CLASS_CODES_SUFFIX = "_class_codes"

CLASS_CODES_SCHEMA = pa.schema(
    [
        pa.field("dataset_id", pa.string(), nullable=False),
        pa.field("axis", pa.string()),
        pa.field("axis_name", pa.string()),
        pa.field("code", pa.string()),
        pa.field("name", pa.string()),
        pa.field("level", pa.string()),
        pa.field("parent_code", pa.string()),
        pa.field("unit", pa.string()),
        pa.field("position", pa.int32()),  # the item's order in CLASS_INF
        pa.field("source_updated_date", pa.string()),
        pa.field("run_id", pa.string()),
    ]
)


def quarantine_name(domain: str) -> str:
    return f"{domain}{QUARANTINE_SUFFIX}"


def class_codes_name(domain: str) -> str:
    return f"{domain}{CLASS_CODES_SUFFIX}"


def ensure_quarantine_table(
    catalog: Catalog, identifier: tuple[str, str], arrow_schema: pa.Schema
) -> Table:
    schema = iceberg_schema(arrow_schema)
    return ensure_created(catalog, identifier, schema, partition_spec(schema))


def table_exists(catalog: Catalog, identifier: tuple[str, str]) -> bool:
    try:
        catalog.load_table(identifier)
    except NoSuchTableError:
        return False
    return True


def ensure_class_codes_table(catalog: Catalog, identifier: tuple[str, str]) -> Table:
    schema = iceberg_schema(CLASS_CODES_SCHEMA)
    spec = PartitionSpec(
        PartitionField(
            source_id=schema.find_field("dataset_id").field_id,
            field_id=1000,
            transform=IdentityTransform(),
            name="dataset_id",
        )
    )
    return ensure_created(catalog, identifier, schema, spec)


def replace_dataset(
    catalog: Catalog,
    identifier: tuple[str, str],
    data: pa.Table,
    dataset_id: str,
    snapshot_properties: dict[str, str] | None = None,
) -> Table:
    """Replace every row of ``dataset_id`` with ``data`` in one commit; retry stale commits."""
    return commit_overwrite(
        catalog,
        identifier,
        lambda table: align(data, table.schema().as_arrow()),
        EqualTo("dataset_id", dataset_id),
        snapshot_properties,
        what=f"dataset {dataset_id}",
    )


def stored_dataset_rows(
    catalog: Catalog, identifier: tuple[str, str], dataset_id: str, columns: tuple[str, ...]
) -> pa.Table:
    table = catalog.load_table(identifier)
    return table.scan(
        row_filter=EqualTo("dataset_id", dataset_id), selected_fields=columns
    ).to_arrow()
