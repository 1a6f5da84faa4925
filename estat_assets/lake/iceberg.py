"""The Iceberg side of the lake: one table per domain, one ``(dataset_id, year)`` slice per commit.

A partition is replaced with ``overwrite(..., overwrite_filter=dataset_id AND year)``: the delete
and the append land in one catalog commit, so readers see the old slice or the new one, never
both, and a rerun never duplicates. Stale writers get ``CommitFailedException``; we reload and
retry, so concurrent writers of one slice end with exactly one copy.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.expressions import And, BooleanExpression, EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    DateType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
)
from sqlalchemy.exc import OperationalError

from estat_assets.conform.table import conformed_schema

DEFAULT_NAMESPACE = "estat"
PARTITION_COLUMNS = ("dataset_id", "year")
REQUIRED = frozenset(PARTITION_COLUMNS)
COMMIT_ATTEMPTS = 8
TABLE_PROPERTIES = {"write.parquet.compression-codec": "zstd", "format-version": "2"}

_TYPES: dict[pa.DataType, IcebergType] = {
    pa.string(): StringType(),
    pa.int8(): IntegerType(),  # Iceberg has no 8-bit integer
    pa.int32(): IntegerType(),
    pa.int64(): LongType(),
    pa.float64(): DoubleType(),
    pa.date32(): DateType(),
}


def iceberg_schema(arrow_schema: pa.Schema | None = None) -> Schema:
    """The domain table schema: the conformed columns for every e-Stat axis."""
    arrow_schema = arrow_schema or conformed_schema()
    fields = [
        NestedField(
            field_id=i,
            name=f.name,
            field_type=_TYPES[f.type],
            required=f.name in REQUIRED,
        )
        for i, f in enumerate(arrow_schema, start=1)
    ]
    return Schema(*fields)


def partition_spec(schema: Schema) -> PartitionSpec:
    return PartitionSpec(
        *(
            PartitionField(
                source_id=schema.find_field(name).field_id,
                field_id=1000 + i,
                transform=IdentityTransform(),
                name=name,
            )
            for i, name in enumerate(PARTITION_COLUMNS)
        )
    )


def ensure_created(
    catalog: Catalog,
    identifier: tuple[str, str],
    schema: Schema,
    spec: PartitionSpec | None = None,
    location: str | None = None,
) -> Table:
    """Load a table, creating its namespace and the table on first use (safe under races)."""
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        pass
    try:
        props = {"location": f"{location.rstrip('/')}/{identifier[0]}.db"} if location else {}
        catalog.create_namespace(identifier[0], properties=props)
    except NamespaceAlreadyExistsError:
        pass
    try:
        return catalog.create_table(
            identifier,
            schema=schema,
            partition_spec=spec or PartitionSpec(),
            properties=TABLE_PROPERTIES,
        )
    except TableAlreadyExistsError:
        return catalog.load_table(identifier)


def _evolve(catalog: Catalog, table: Table) -> Table:
    """Add conformed columns a table created by an older release lacks (additive, nullable)."""
    wanted = iceberg_schema()
    if set(wanted.column_names) - set(table.schema().column_names):
        with table.update_schema() as update:
            update.union_by_name(wanted)
        table = catalog.load_table(table.name())
    return table


def ensure_table(catalog: Catalog, namespace: str, name: str, location: str | None = None) -> Table:
    """Load ``namespace.name``, creating namespace and table on first use (race-safe)."""
    identifier = (namespace, name)
    try:
        return _evolve(catalog, catalog.load_table(identifier))
    except NoSuchTableError:
        schema = iceberg_schema()
        return ensure_created(catalog, identifier, schema, partition_spec(schema), location)


def align(data: pa.Table, table_schema: pa.Schema) -> pa.Table:
    """Conformed rows → the table's columns: missing axes become nulls, types cast exactly."""
    n = data.num_rows
    arrays = []
    for f in table_schema:
        if f.name in data.column_names:
            arrays.append(data.column(f.name).cast(f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(arrays, schema=table_schema)


def slice_filter(dataset_id: str, year: int) -> And:
    return And(EqualTo("dataset_id", dataset_id), EqualTo("year", int(year)))


RETRYABLE_COMMIT_ERRORS: tuple[type[Exception], ...] = (
    CommitFailedException,  # a concurrent writer committed first
    ValidationException,  # pyiceberg's own retry found the conflict
    OperationalError,  # the local SQLite catalog is locked by another writer
)


def commit_overwrite(
    catalog: Catalog,
    identifier: tuple[str, str],
    make_data: Callable[[Table], pa.Table],
    overwrite_filter: BooleanExpression,
    snapshot_properties: Mapping[str, str] | None = None,
    what: str = "",
) -> Table:
    """Replace the rows matching ``overwrite_filter`` with ``make_data(table)`` in one commit.

    On a lost race the table is reloaded and ``make_data`` called again, so the last writer wins
    cleanly and no one's rows are duplicated. Every overwrite in the lake goes through here.
    """
    props = {k: str(v) for k, v in (snapshot_properties or {}).items()}
    last: Exception | None = None
    for attempt in range(COMMIT_ATTEMPTS):
        table = catalog.load_table(identifier)
        data = make_data(table)
        try:
            with warnings.catch_warnings():
                # A first load of a slice deletes nothing; that is expected, not news.
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                table.overwrite(data, overwrite_filter=overwrite_filter, snapshot_properties=props)
            return catalog.load_table(identifier)
        except RETRYABLE_COMMIT_ERRORS as exc:
            last = exc
            time.sleep(min(2.0, 0.05 * 2**attempt))
    raise RuntimeError(
        f"could not commit {'.'.join(identifier)} {what} after {COMMIT_ATTEMPTS} attempts: {last}"
    )


def replace_partition(
    catalog: Catalog,
    identifier: tuple[str, str],
    data: pa.Table,
    dataset_id: str,
    year: int,
    snapshot_properties: Mapping[str, str] | None = None,
) -> Table:
    """Replace one ``(dataset_id, year)`` slice with ``data`` in one commit; retry stale commits."""
    if data.num_rows:
        wrong = pc.sum(
            pc.or_(
                pc.not_equal(data.column("dataset_id"), dataset_id),
                pc.not_equal(data.column("year"), pa.scalar(int(year), pa.int32())),
            ).cast(pa.int64())
        ).as_py()
        if wrong or data.column("year").null_count:
            raise ValueError(
                f"{wrong} rows do not belong to slice dataset_id={dataset_id}, year={year}: "
                "refusing to write them into another partition"
            )
    return commit_overwrite(
        catalog,
        identifier,
        lambda table: align(data, table.schema().as_arrow()),
        slice_filter(dataset_id, year),
        snapshot_properties,
        what=f"slice {dataset_id}/{year}",
    )
