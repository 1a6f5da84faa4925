"""``estat.<domain>_class_codes``: every dataset's CLASS_INF as an Iceberg table, beside its data.

One row per (dataset, axis, code): the axis label, the code's name, level, parent code (kept even
when the parent is not in the list), unit and position. CLASS_INF belongs to the dataset, so a
load replaces the dataset's rows as a whole; an unchanged fingerprint (a digest of the rows)
skips the commit, and a republished table's new codes replace the old ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import orjson
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from estat_assets.estat.models import TableMetadata
from estat_assets.lake.iceberg import (
    PROP_DATASET,
    PROP_FINGERPRINT,
    align,
    commit_overwrite,
    dataset_filter,
    ensure_dataset_table,
    last_write,
)

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


def class_codes_name(domain: str) -> str:
    return f"{domain}{CLASS_CODES_SUFFIX}"


def ensure_class_codes_table(catalog: Catalog, identifier: tuple[str, str]) -> Table:
    return ensure_dataset_table(catalog, identifier, CLASS_CODES_SCHEMA)


def class_codes_rows(dataset_id: str, meta: TableMetadata, run_id: str = "") -> pa.Table:
    """CLASS_INF → rows (dataset_id, axis, axis_name, code, name, level, parent_code, unit…)."""
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


def write_class_codes(
    catalog: Catalog,
    identifier: tuple[str, str],
    dataset_id: str,
    rows: pa.Table,
    snapshot_properties: Mapping[str, str] | None = None,
) -> tuple[Table, str, bool]:
    """Replace the dataset's rows unless its CLASS_INF is unchanged: (table, digest, written)."""
    digest = fingerprint(rows)
    table = ensure_class_codes_table(catalog, identifier)
    previous = last_write(table, dataset_id) or {}
    if previous.get(PROP_FINGERPRINT) == digest:
        return table, digest, False
    props = {**(snapshot_properties or {}), PROP_DATASET: dataset_id, PROP_FINGERPRINT: digest}
    table = commit_overwrite(
        catalog,
        identifier,
        lambda t: align(rows, t.schema().as_arrow()),
        dataset_filter(dataset_id),
        props,
        what=f"class codes of {dataset_id}",
    )
    return table, digest, True
