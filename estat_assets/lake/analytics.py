"""Analytics tables: an engine's answer stored as ``<namespace>.<domain>_<name>``, replaced whole.

The column set follows the query; when it changes the table is recreated. Engine output types are
narrowed to the few types an Iceberg table (and Glue) takes plainly.
"""

from __future__ import annotations

import contextlib

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.table import Table

from estat_assets.lake.iceberg import PROP_RUN, TABLE_PROPERTIES, commit_overwrite


def analytics_table_name(domain: str, name: str) -> str:
    return f"{domain}_{name}"


def _plain_type(t: pa.DataType) -> pa.DataType:
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


def replace_table(
    catalog: Catalog, identifier: tuple[str, str], data: pa.Table, run_id: str = ""
) -> Table:
    """Replace the whole contents of ``identifier`` with ``data`` in one commit (recreated first
    if its columns changed); a stale commit is retried like every write of the lake."""
    with contextlib.suppress(NamespaceAlreadyExistsError):
        catalog.create_namespace(identifier[0])
    try:
        table = catalog.load_table(identifier)
        if table.schema().as_arrow().names != data.schema.names:
            catalog.drop_table(identifier)
            raise NoSuchTableError(str(identifier))
    except NoSuchTableError:
        with contextlib.suppress(Exception):
            catalog.create_table(identifier, schema=data.schema, properties=TABLE_PROPERTIES)
    return commit_overwrite(
        catalog,
        identifier,
        lambda t: data.cast(t.schema().as_arrow()),
        AlwaysTrue(),
        {PROP_RUN: run_id} if run_id else None,
        what="analytics",
    )
