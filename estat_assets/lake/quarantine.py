"""``estat.<domain>_quarantine``: rows a row-level check held back, with the reason.

It has the domain table's columns plus ``quarantine_reason`` and ``source_row`` (the row's position
among the VALUEs the run downloaded), partitioned like it by ``(dataset_id, year)``. A load replaces
the dataset's quarantine slices of the years it loads in one commit, so a rerun leaves exactly
the rows of its own run (none, when the data became clean).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from estat_assets.lake.iceberg import (
    ensure_created,
    iceberg_schema,
    partition_spec,
    replace_slices,
    slice_rows,
    table_exists,
)
from estat_assets.quality.quarantine import quarantine_schema

QUARANTINE_SUFFIX = "_quarantine"


def quarantine_name(domain: str) -> str:
    return f"{domain}{QUARANTINE_SUFFIX}"


def ensure_quarantine_table(catalog: Catalog, identifier: tuple[str, str]) -> Table:
    schema = iceberg_schema(quarantine_schema())
    return ensure_created(catalog, identifier, schema, partition_spec(schema))


def write_quarantine(
    catalog: Catalog,
    identifier: tuple[str, str],
    dataset_id: str,
    years: Sequence[int] | None,
    data: Callable[[], Iterable[pa.Table]],
    any_rows: bool,
    snapshot_properties: Mapping[str, str] | None = None,
) -> Table | None:
    """Replace the dataset's quarantine slices (``years`` or all); no table is created for
    nothing, and nothing is committed when there is nothing to add or remove."""
    if not any_rows and not table_exists(catalog, identifier):
        return None
    table = ensure_quarantine_table(catalog, identifier)
    if not any_rows and not _holds(table, dataset_id):
        return table
    return replace_slices(catalog, identifier, dataset_id, years, data, snapshot_properties)


def _holds(table: Table, dataset_id: str) -> bool:
    return bool(slice_rows(table, dataset_id))
