"""The Iceberg side of the lake: one table per domain, one ``(dataset_id, year)`` slice per commit.

A partition is replaced with ``overwrite(..., overwrite_filter=dataset_id AND year)``: the delete
and the append land in one catalog commit, so readers see the old slice or the new one, never
both, and a rerun never duplicates. Stale writers get ``CommitFailedException``; we reload and
retry, so concurrent writers of one slice end with exactly one copy.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In
from pyiceberg.io.pyarrow import (
    _check_pyarrow_schema_compatible,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
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

from estat_assets.conform.table import align_to, conformed_schema

PARTITION_COLUMNS = ("dataset_id", "year")
REQUIRED = frozenset(PARTITION_COLUMNS)
COMMIT_ATTEMPTS = 8

# Snapshot summary properties: every commit says which dataset, release and run it came from.
PROP_DATASET = "estat.dataset_id"
PROP_YEARS = "estat.years"
PROP_UPDATED = "estat.updated_date"
PROP_RUN = "dagster.run_id"
PROP_FINGERPRINT = "estat.class_codes.fingerprint"
PROP_MAINTENANCE = "estat.maintenance"
NAME_MAPPING = "schema.name-mapping.default"  # how files without field ids map to columns
ROW_GROUP_ROWS = 131_072
WRITE_THREADS = 2  # year data files written at once (the machines this runs on have 2+ cores)
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


def ensure_dataset_table(
    catalog: Catalog, identifier: tuple[str, str], schema: pa.Schema | Schema
) -> Table:
    """Load or create a table partitioned by ``dataset_id`` alone (class codes, revisions)."""
    schema = schema if isinstance(schema, Schema) else iceberg_schema(schema)
    spec = PartitionSpec(
        PartitionField(
            source_id=schema.find_field("dataset_id").field_id,
            field_id=1000,
            transform=IdentityTransform(),
            name="dataset_id",
        )
    )
    return ensure_created(catalog, identifier, schema, spec)


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
    return align_to(data, table_schema)


RETRYABLE_COMMIT_ERRORS: tuple[type[Exception], ...] = (
    CommitFailedException,  # a concurrent writer committed first
    ValidationException,  # pyiceberg's own retry found the conflict
    OperationalError,  # the local SQLite catalog is locked by another writer
)


def with_commit_retry(
    table_of: Callable[[int], Table], commit: Callable[[Table], Table], what: str
) -> Table:
    """``commit(table_of(attempt))`` until one lands: the one commit-with-retry of the lake.

    A lost race (another writer committed first) is retried on the table ``table_of`` gives
    for the next attempt (reloaded), with a short exponential backoff, so the last writer wins
    cleanly. Nothing is half-applied: an Iceberg commit lands whole or not at all.
    """
    last: Exception | None = None
    for attempt in range(COMMIT_ATTEMPTS):
        table = table_of(attempt)
        try:
            with warnings.catch_warnings():
                # A first load of a slice deletes nothing; that is expected, not news.
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                return commit(table)
        except RETRYABLE_COMMIT_ERRORS as exc:
            last = exc
            time.sleep(min(2.0, 0.05 * 2**attempt))
    raise RuntimeError(f"could not commit {what} after {COMMIT_ATTEMPTS} attempts: {last}")


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

    def commit(table: Table) -> Table:
        table.overwrite(
            make_data(table), overwrite_filter=overwrite_filter, snapshot_properties=props
        )
        return catalog.load_table(identifier)

    return with_commit_retry(
        lambda _: catalog.load_table(identifier), commit, f"{'.'.join(identifier)} {what}"
    )


def replace_partition(
    catalog: Catalog,
    identifier: tuple[str, str],
    data: pa.Table,
    dataset_id: str,
    year: int,
    snapshot_properties: Mapping[str, str] | None = None,
) -> Table:
    """Replace one ``(dataset_id, year)`` slice with ``data`` in one commit."""
    return replace_slices(
        catalog, identifier, dataset_id, [int(year)], lambda: [data], snapshot_properties
    )


def table_exists(catalog: Catalog, identifier: tuple[str, str]) -> bool:
    try:
        catalog.load_table(identifier)
    except NoSuchTableError:
        return False
    return True


def dataset_filter(dataset_id: str, years: Sequence[int] | None = None) -> BooleanExpression:
    """Rows of ``dataset_id``; of ``years`` only when given (``None``: every year)."""
    if years is None:
        return EqualTo("dataset_id", dataset_id)
    return And(EqualTo("dataset_id", dataset_id), In("year", {int(y) for y in years}))


def _check_slices(data: pa.Table, dataset_id: str, years: set[int] | None) -> None:
    if not data.num_rows:
        return
    wrong = pc.sum(pc.not_equal(data.column("dataset_id"), dataset_id).cast(pa.int64())).as_py()
    bad_years = set() if years is None else set(pc.unique(data.column("year")).to_pylist()) - years
    if wrong or data.column("year").null_count or bad_years:
        raise ValueError(
            f"rows do not belong to dataset_id={dataset_id}, years={sorted(years or [])}: "
            "refusing to write them into another slice"
        )


def _file_schema(table: Table) -> pa.Schema:
    """The table's Arrow schema for data files: no field ids (files are matched by name, the
    name mapping) and plain ``string`` (pyiceberg's ``large_string`` would copy every string;
    Parquet stores both the same way)."""
    fields = []
    for f in table.schema().as_arrow():
        kind = pa.string() if pa.types.is_large_string(f.type) else f.type
        fields.append(pa.field(f.name, kind, nullable=f.nullable))
    return pa.schema(fields)


@dataclass(frozen=True)
class SlicePart:
    """Rows of one ``year`` of a dataset, streamed: ``batches()`` yields tables or batches."""

    year: int
    batches: Callable[[], Iterable[pa.Table | pa.RecordBatch]]


def write_data_file(
    table: Table, batches: Iterable[pa.Table | pa.RecordBatch], dataset_id: str, year: int
) -> WrittenFile:
    """One Parquet data file of a ``(dataset_id, year)`` slice in the table's own location.

    Written with pyarrow batch by batch, so memory is bounded by a batch (pyiceberg's own writer
    needed ~10× the table for a million rows); statistics and partition values are pyiceberg's,
    from the writer's own footer (:func:`commit_files`). Every row must be of the slice.
    """
    return write_parquet_file(
        table,
        batches,
        f"dataset_id={dataset_id}/year={int(year)}",
        check=lambda part: _check_slices(part, dataset_id, {int(year)}),
    )


@dataclass(frozen=True)
class WrittenFile:
    """A data file written for a commit, with the footer the writer produced and its size, so
    the commit need not read either back (``add_files`` opens every file again)."""

    path: str
    metadata: pq.FileMetaData
    size: int


def write_parquet_file(
    table: Table,
    batches: Iterable[pa.Table | pa.RecordBatch],
    partition_dir: str,
    check: Callable[[pa.Table], None] = lambda _: None,
) -> WrittenFile:
    """One Parquet data file under ``<table location>/data/<partition_dir>/``, for
    :func:`commit_files`: the table's columns without field ids (the name mapping), a row group at
    a time."""
    path = f"{table.location().rstrip('/')}/data/{partition_dir}/{uuid.uuid4().hex}.parquet"
    schema = _file_schema(table)
    with table.io.new_output(path).create(overwrite=False) as stream:
        writer = pq.ParquetWriter(stream, schema, compression="zstd")
        with writer:
            for batch in batches:
                part = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
                check(part)
                for start in range(0, part.num_rows, ROW_GROUP_ROWS):
                    writer.write_table(align(part.slice(start, ROW_GROUP_ROWS), schema))
        size = stream.tell()
    return WrittenFile(path, writer.writer.metadata, size)


def _data_files(metadata: TableMetadata, files: Sequence[WrittenFile]) -> list[DataFile]:
    """The manifest entries of files we wrote: what ``add_files`` computes from their footers
    (pyiceberg's own statistics and partition functions), from the writer's footers instead."""
    schema = metadata.schema()
    stats_columns = compute_statistics_plan(schema, metadata.properties)
    column_mapping = parquet_path_to_id_mapping(schema)
    checked: list[pa.Schema] = []  # the files of a commit share their schema: check it once
    entries = []
    for written in files:
        arrow_schema = written.metadata.schema.to_arrow_schema()
        if not any(arrow_schema.equals(seen) for seen in checked):
            _check_pyarrow_schema_compatible(
                schema, arrow_schema, format_version=metadata.format_version
            )
            checked.append(arrow_schema)
        stats = data_file_statistics_from_parquet_metadata(
            parquet_metadata=written.metadata,
            stats_columns=stats_columns,
            parquet_column_mapping=column_mapping,
        )
        entries.append(
            DataFile.from_args(
                content=DataFileContent.DATA,
                file_path=written.path,
                file_format=FileFormat.PARQUET,
                partition=stats.partition(metadata.spec(), schema),
                file_size_in_bytes=written.size,
                sort_order_id=None,
                spec_id=metadata.default_spec_id,
                equality_ids=None,
                key_metadata=None,
                **stats.to_serialized_dict(),
            )
        )
    return entries


def commit_files(
    catalog: Catalog,
    identifier: tuple[str, str],
    row_filter: BooleanExpression,
    files: Sequence[WrittenFile],
    snapshot_properties: Mapping[str, str] | None = None,
    what: str = "",
) -> Table:
    """Delete the rows matching ``row_filter`` and add the data files ``files`` in ONE commit.

    The files are written beforehand, so a lost race is retried on a fresh table with the same
    files: the last writer wins cleanly and no one's rows are duplicated.
    """
    props = {k: str(v) for k, v in (snapshot_properties or {}).items()}

    def commit(table: Table) -> Table:
        mapping = table.schema().name_mapping.model_dump_json()
        with table.transaction() as tx:
            if table.properties.get(NAME_MAPPING) != mapping:
                tx.set_properties(**{NAME_MAPPING: mapping})
            tx.delete(row_filter, snapshot_properties=props)
            if files:
                entries = _data_files(tx.table_metadata, files)
                with tx.update_snapshot(snapshot_properties=props).fast_append() as append:
                    for entry in entries:
                        append.append_data_file(entry)
        return catalog.load_table(identifier)

    return with_commit_retry(
        lambda _: catalog.load_table(identifier), commit, f"{'.'.join(identifier)} {what}"
    )


def replace_slices(
    catalog: Catalog,
    identifier: tuple[str, str],
    dataset_id: str,
    years: Sequence[int] | None,
    data: Callable[[], Iterable[pa.Table | SlicePart]],
    snapshot_properties: Mapping[str, str] | None = None,
) -> Table:
    """Replace a dataset's slices (``years``, or all of them) with ``data()`` in ONE commit.

    One transaction deletes the slices and adds the new files, so readers see the old release
    of every year or the new one, never a mix, and a crash leaves the old one whole. ``data``
    yields tables (a year each, or parts of one), written to data files one at a time, so memory
    is bounded by one table. Every row must belong to ``dataset_id`` and ``years``. A stale commit
    is retried on a fresh table with the files already written.
    """
    allowed = None if years is None else {int(y) for y in years}
    table = catalog.load_table(identifier)
    written: list[Future[WrittenFile]] = []
    # Year files are written WRITE_THREADS at a time: Parquet decoding and encoding release the
    # GIL, and a long series is many small files. Memory: a batch per thread.
    with ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="iceberg-write") as pool:
        for part in data():
            if isinstance(part, SlicePart):
                if allowed is not None and part.year not in allowed:
                    raise ValueError(f"year {part.year} is not among the years replaced: {allowed}")
                written.append(
                    pool.submit(write_data_file, table, part.batches(), dataset_id, part.year)
                )
                continue
            _check_slices(part, dataset_id, allowed)
            for year in sorted(pc.unique(part.column("year")).to_pylist()) if part.num_rows else []:
                rows = part.filter(pc.equal(part.column("year"), year))
                written.append(pool.submit(write_data_file, table, [rows], dataset_id, year))
        files = [future.result() for future in written]
    return commit_files(
        catalog,
        identifier,
        dataset_filter(dataset_id, years),
        files,
        snapshot_properties,
        what=f"dataset {dataset_id}",
    )


def slice_rows(table: Table, dataset_id: str) -> dict[str, int]:
    """Rows per year of ``dataset_id`` in a table partitioned by (dataset_id, year): from the
    manifests only, never by reading data (copy-on-write deletes keep the counts exact)."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    position = [f.name for f in table.spec().fields].index("year")
    counts: dict[str, int] = {}
    scan = table.scan(
        row_filter=EqualTo("dataset_id", dataset_id), snapshot_id=snapshot.snapshot_id
    )
    for task in scan.plan_files():
        if task.file.record_count:
            year = f"{int(task.file.partition[position]):04d}"
            counts[year] = counts.get(year, 0) + task.file.record_count
    return counts


def held_releases(table: Table, dataset_id: str) -> dict[str, str | None]:
    """The release (UPDATED_DATE) each year of ``dataset_id`` holds: the newest commit of the
    dataset whose ``estat.years`` covers the year (a whole load covers all it wrote). Years whose
    commit was expired fall back to the dataset's last write."""
    out: dict[str, str | None] = {}
    fallback: str | None = None
    snapshot = table.current_snapshot()
    while snapshot is not None:
        props = snapshot.summary.additional_properties if snapshot.summary else {}
        if props.get(PROP_DATASET) == dataset_id and props.get(PROP_YEARS) is not None:
            release = props.get(PROP_UPDATED) or None
            fallback = fallback or release
            for year in props[PROP_YEARS].split(","):
                if year:
                    out.setdefault(year, release)
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    for year in slice_rows(table, dataset_id):
        out.setdefault(year, fallback)
    return out


def last_write(table: Table, dataset_id: str) -> dict[str, str] | None:
    """The summary properties of the newest snapshot that wrote ``dataset_id`` (or ``None``)."""
    snapshot = table.current_snapshot()
    while snapshot is not None:
        props = snapshot.summary.additional_properties if snapshot.summary else {}
        if props.get(PROP_DATASET) == dataset_id:
            return dict(props)
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return None


def fields_schema(fields: tuple[tuple[str, Any, bool], ...]) -> Schema:
    return Schema(
        *(
            NestedField(field_id=i, name=name, field_type=kind, required=required)
            for i, (name, kind, required) in enumerate(fields, start=1)
        )
    )


def ensure_plain_table(catalog: Catalog, identifier: tuple[str, str], schema: Schema) -> Table:
    """Load or create an unpartitioned table (race-safe)."""
    return ensure_created(catalog, identifier, schema)


def replace_rows(
    catalog: Catalog,
    identifier: tuple[str, str],
    rows: Callable[[], list[dict[str, Any]]] | list[dict[str, Any]],
    row_filter: BooleanExpression,
    snapshot_properties: Mapping[str, str] | None = None,
) -> Table:
    """Replace the rows matching ``row_filter`` in one commit; retry when another writer won.

    ``rows`` may be a function, called again on every attempt (so it can recount).
    """
    table = commit_overwrite(
        catalog,
        identifier,
        lambda table: pa.Table.from_pylist(
            rows() if callable(rows) else rows, schema=table.schema().as_arrow()
        ),
        row_filter,
        snapshot_properties,
    )
    return bound_history(catalog, identifier, table)


# Bookkeeping tables (inventory, ingestion runs) take a commit per run; their metadata, which every
# later commit reads and rewrites, would grow without bound. Keep their recent history only.
BOOKKEEPING_MAX_SNAPSHOTS = 60
BOOKKEEPING_KEEP_SNAPSHOTS = 20


def expire_snapshots(
    table: Table, older_than: datetime | None = None, retain_last: int = 5
) -> list[int]:
    """Expire snapshots (older than ``older_than``, if given) except the newest ``retain_last``
    and every branch/tag head; returns their ids. The one expiry policy of the lake."""
    snaps = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.snapshot_id))
    keep = {s.snapshot_id for s in snaps[-retain_last:]} if retain_last > 0 else set()
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    cutoff_ms = int(older_than.timestamp() * 1000) if older_than else None
    expire = [
        s.snapshot_id
        for s in snaps
        if (cutoff_ms is None or s.timestamp_ms < cutoff_ms)
        and s.snapshot_id not in keep | protected
    ]
    if expire:
        table.maintenance.expire_snapshots().by_ids(expire).commit()
    return expire


def bound_history(catalog: Catalog, identifier: tuple[str, str], table: Table) -> Table:
    """Expire all but the newest snapshots once there are too many (best effort, never fails)."""
    if len(table.snapshots()) <= BOOKKEEPING_MAX_SNAPSHOTS:
        return table
    try:
        expire_snapshots(table, retain_last=BOOKKEEPING_KEEP_SNAPSHOTS)
    except RETRYABLE_COMMIT_ERRORS:  # a concurrent writer: the next commit will try again
        return table
    return catalog.load_table(identifier)
