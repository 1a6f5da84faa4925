"""``estat.dataset_inventory``: one row per dataset, kept current by the ``<domain>/table`` step.

After a slice is committed, the table step replaces its dataset's row (``overwrite`` with
``overwrite_filter=dataset_id``) with what e-Stat says about the table (title, survey,
organisation, dates, OVERALL_TOTAL_NUMBER) and what the lake holds (rows and years stored, counted
from the domain table's manifests, never by reading data), plus the last successful run.

Safe under concurrent runs: a stale commit is retried on a fresh table, and the row is recounted
until the domain table's snapshot it was counted on is still the current one after the commit,
so the last writer always leaves the counts of the last slice written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    NoSuchTableError,
)
from pyiceberg.expressions import BooleanExpression, EqualTo
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    BooleanType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from estat_assets.estat.models import TableInfo
from estat_assets.lake.iceberg import RETRYABLE_COMMIT_ERRORS, commit_overwrite, ensure_created

INVENTORY_TABLE = "dataset_inventory"
RECOUNTS = 5

COMPLETE, PARTIAL, EMPTY = "complete", "partial", "empty"

_S, _L, _I = StringType(), LongType(), IntegerType()
INVENTORY_FIELDS: tuple[tuple[str, Any, bool], ...] = (
    ("dataset_id", _S, True),
    ("domain", _S, True),
    ("title", _S, False),
    ("statistics_name", _S, False),
    ("survey_code", _S, False),
    ("survey_name", _S, False),
    ("organisation_code", _S, False),
    ("organisation", _S, False),
    ("cycle", _S, False),
    ("survey_date", _S, False),
    ("open_date", _S, False),
    ("updated_date", _S, False),  # e-Stat's UPDATED_DATE of the release last loaded
    ("overall_total_number", _L, False),  # e-Stat's row count for the whole table
    ("rows_stored", _L, False),  # rows of this dataset in estat.<domain>
    ("years_stored", _I, False),
    ("years", _S, False),  # comma-separated years present in estat.<domain>
    ("status", _S, False),  # complete | partial | empty
    ("synthetic", BooleanType(), False),
    ("last_success_run_id", _S, False),
    ("last_success_at", TimestamptzType(), False),
    ("last_partition", _S, False),  # dataset|year of that run
    ("table_snapshot_id", _L, False),  # the estat.<domain> snapshot the counts come from
    ("raw_manifest", _S, False),
)


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


def bound_history(catalog: Catalog, identifier: tuple[str, str], table: Table) -> Table:
    """Expire all but the newest snapshots once there are too many (best effort, never fails)."""
    snaps = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.snapshot_id))
    if len(snaps) <= BOOKKEEPING_MAX_SNAPSHOTS:
        return table
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    expire = [
        s.snapshot_id for s in snaps[:-BOOKKEEPING_KEEP_SNAPSHOTS] if s.snapshot_id not in protected
    ]
    try:
        table.maintenance.expire_snapshots().by_ids(expire).commit()
    except RETRYABLE_COMMIT_ERRORS:  # a concurrent writer: the next commit will try again
        return table
    return catalog.load_table(identifier)


def slice_counts(table: Table, dataset_id: str) -> tuple[int, list[str], int | None]:
    """Rows and years of ``dataset_id`` in a domain table, from its manifests only."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return 0, [], None
    rows = 0
    years: set[str] = set()
    position = [f.name for f in table.spec().fields].index("year")
    scan = table.scan(
        row_filter=EqualTo("dataset_id", dataset_id), snapshot_id=snapshot.snapshot_id
    )
    for task in scan.plan_files():
        rows += task.file.record_count
        if task.file.record_count:
            years.add(f"{int(task.file.partition[position]):04d}")
    return rows, sorted(years), snapshot.snapshot_id


def inventory_status(rows_stored: int, overall_total: int | None) -> str:
    if not rows_stored:
        return EMPTY
    if overall_total is not None and rows_stored >= overall_total:
        return COMPLETE
    return PARTIAL


def update_inventory(
    catalog: Catalog,
    namespace: str,
    domain: str,
    dataset_id: str,
    info: TableInfo | None,
    *,
    run_id: str,
    partition: str,
    updated_date: str | None,
    synthetic: bool = False,
    raw_manifest: str | None = None,
) -> dict[str, Any]:
    """Replace ``dataset_id``'s inventory row; returns the row written."""
    identifier = (namespace, INVENTORY_TABLE)
    ensure_plain_table(catalog, identifier, fields_schema(INVENTORY_FIELDS))
    domain_id = (namespace, domain)
    info = info or TableInfo(id=dataset_id)
    now = datetime.now(UTC)
    written: dict[str, Any] = {}

    def row() -> list[dict[str, Any]]:
        domain_table = catalog.load_table(domain_id)
        rows_stored, years, snapshot_id = slice_counts(domain_table, dataset_id)
        written.clear()
        written.update(
            dataset_id=dataset_id,
            domain=domain,
            title=info.title,
            statistics_name=info.statistics_name,
            survey_code=info.stat_code,
            survey_name=info.stat_name,
            organisation_code=info.gov_org_code,
            organisation=info.gov_org,
            cycle=info.cycle,
            survey_date=info.survey_date,
            open_date=info.open_date,
            updated_date=updated_date or info.updated_date,
            overall_total_number=info.overall_total_number,
            rows_stored=rows_stored,
            years_stored=len(years),
            years=",".join(years),
            status=inventory_status(rows_stored, info.overall_total_number),
            synthetic=bool(synthetic or info.synthetic),
            last_success_run_id=run_id,
            last_success_at=now,
            last_partition=partition,
            table_snapshot_id=snapshot_id,
            raw_manifest=raw_manifest,
        )
        return [dict(written)]

    for _ in range(RECOUNTS):
        replace_rows(
            catalog,
            identifier,
            row,
            EqualTo("dataset_id", dataset_id),
            {"estat.dataset_id": dataset_id, "dagster.run_id": run_id},
        )
        current = catalog.load_table(domain_id).current_snapshot()
        if current is None or current.snapshot_id == written.get("table_snapshot_id"):
            break  # counted on the latest slice write: nothing newer to account for
    return written


def read_inventory(catalog: Catalog, namespace: str) -> list[dict[str, Any]]:
    try:
        table = catalog.load_table((namespace, INVENTORY_TABLE))
    except NoSuchTableError:
        return []
    return table.scan().to_arrow().to_pylist()


def loaded_release_lookup(iceberg: Any) -> Callable[[str], tuple[str | None, int | None] | None]:
    """dataset_id → (UPDATED_DATE, OVERALL_TOTAL_NUMBER) the lake holds; read once, lazily."""
    cache: dict[str, tuple[str | None, int | None]] | None = None

    def lookup(dataset_id: str) -> tuple[str | None, int | None] | None:
        nonlocal cache
        if cache is None:
            try:
                rows = read_inventory(iceberg.catalog(), iceberg.namespace)
            except Exception:  # no catalog yet: nothing loaded
                rows = []
            cache = {
                r["dataset_id"]: (r["updated_date"], r["overall_total_number"])
                for r in rows
                if r.get("status") == COMPLETE
            }
        return cache.get(dataset_id)

    return lookup
