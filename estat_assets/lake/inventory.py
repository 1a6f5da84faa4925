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

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table
from pyiceberg.types import (
    BooleanType,
    IntegerType,
    LongType,
    StringType,
    TimestamptzType,
)

from estat_assets.estat.models import TableInfo
from estat_assets.lake.iceberg import (
    PROP_DATASET,
    PROP_RUN,
    PROP_UPDATED,
    ensure_plain_table,
    fields_schema,
    replace_rows,
    slice_rows,
)

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
    ("last_partition", _S, False),  # the partition (dataset id) of that run
    ("table_snapshot_id", _L, False),  # the estat.<domain> snapshot the counts come from
    ("raw_manifest", _S, False),
)


def dataset_counts(table: Table, dataset_id: str) -> tuple[int, list[str], int | None]:
    """Rows and years of ``dataset_id`` in a domain table, from its manifests only."""
    snapshot = table.current_snapshot()
    by_year = slice_rows(table, dataset_id)
    return sum(by_year.values()), sorted(by_year), snapshot.snapshot_id if snapshot else None


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
    at: datetime | None = None,
) -> dict[str, Any]:
    """Replace ``dataset_id``'s inventory row; returns the row written."""
    identifier = (namespace, INVENTORY_TABLE)
    ensure_plain_table(catalog, identifier, fields_schema(INVENTORY_FIELDS))
    domain_id = (namespace, domain)
    info = info or TableInfo(id=dataset_id)
    now = at or datetime.now(UTC)
    written: dict[str, Any] = {}

    def row() -> list[dict[str, Any]]:
        domain_table = catalog.load_table(domain_id)
        rows_stored, years, snapshot_id = dataset_counts(domain_table, dataset_id)
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
            {PROP_DATASET: dataset_id, PROP_RUN: run_id},
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


def loaded_release_lookup(
    catalog: Callable[[], Catalog], namespace: str
) -> Callable[[str], tuple[str | None, int | None] | None]:
    """dataset_id → (UPDATED_DATE, OVERALL_TOTAL_NUMBER) the lake holds; read once, lazily."""
    cache: dict[str, tuple[str | None, int | None]] | None = None

    def lookup(dataset_id: str) -> tuple[str | None, int | None] | None:
        nonlocal cache
        if cache is None:
            try:
                rows = read_inventory(catalog(), namespace)
            except Exception:  # no catalog yet: nothing loaded
                rows = []
            cache = {
                r["dataset_id"]: (r["updated_date"], r["overall_total_number"])
                for r in rows
                if r.get("status") == COMPLETE
            }
        return cache.get(dataset_id)

    return lookup


def _info_of(row: dict[str, Any]) -> TableInfo:
    return TableInfo(
        id=row["dataset_id"],
        title=row.get("title"),
        statistics_name=row.get("statistics_name"),
        stat_code=row.get("survey_code"),
        stat_name=row.get("survey_name"),
        gov_org_code=row.get("organisation_code"),
        gov_org=row.get("organisation"),
        cycle=row.get("cycle"),
        survey_date=row.get("survey_date"),
        open_date=row.get("open_date"),
        updated_date=row.get("updated_date"),
        overall_total_number=row.get("overall_total_number"),
    )


def reconcile_inventory(catalog: Catalog, namespace: str, domain: str) -> list[str]:
    """Recount the inventory rows of ``domain`` that a later write of their dataset made stale.

    A run killed between its Iceberg commit and its inventory update leaves the row counting an
    older snapshot; the domain table's history says which datasets were written since. Returns
    the datasets recounted. Cheap: snapshot summaries and manifests only.
    """
    try:
        table = catalog.load_table((namespace, domain))
    except NoSuchTableError:
        return []
    rows = {r["dataset_id"]: r for r in read_inventory(catalog, namespace) if r["domain"] == domain}
    latest: dict[str, tuple[int, dict[str, str]]] = {}
    snapshot = table.current_snapshot()
    while snapshot is not None:
        props = snapshot.summary.additional_properties if snapshot.summary else {}
        dataset = props.get(PROP_DATASET)
        if dataset and dataset not in latest:
            latest[dataset] = (snapshot.sequence_number or 0, dict(props))
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    healed = []
    for dataset, (sequence, props) in sorted(latest.items()):
        row = rows.get(dataset)
        counted = (
            table.snapshot_by_id(row["table_snapshot_id"])
            if row and row.get("table_snapshot_id") is not None
            else None
        )
        if row is not None and counted is not None and (counted.sequence_number or 0) >= sequence:
            continue
        row = row or {"dataset_id": dataset}
        update_inventory(
            catalog,
            namespace,
            domain,
            dataset,
            _info_of(row),
            run_id=props.get(PROP_RUN) or row.get("last_success_run_id") or "",
            partition=dataset,
            updated_date=props.get(PROP_UPDATED) or row.get("updated_date"),
            synthetic=bool(row.get("synthetic")),
            raw_manifest=row.get("raw_manifest"),
            at=row.get("last_success_at"),
        )
        healed.append(dataset)
    return healed
