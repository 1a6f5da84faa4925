"""Describe a table: what e-Stat says it is, what the lake holds of it, how its checks went.

For a loaded dataset everything comes from the lake (the inventory row, the metadata stored with
its raw pages, its class codes, the conformed manifest's check results and ``checks.md``, the
Iceberg snapshots); for a table not loaded yet, from getMetaInfo. English names come from the
cached ``lang=E`` metadata (fetched once when missing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from estat_assets.app.citation import Citation, cite, current_snapshot_id, dataset_write
from estat_assets.app.context import LakeContext
from estat_assets.app.errors import app_error
from estat_assets.app.metadata import Axis, english_info, table_facts, years_of

DEFAULT_MAX_ITEMS = 50


@dataclass
class DescribeAnswer:
    stats_data_id: str
    title: str | None
    statistics_name: str | None
    survey: str | None
    survey_code: str | None
    organisation: str | None
    cycle: str | None
    survey_date: str | None
    open_date: str | None
    updated_date: str | None  # e-Stat's UPDATED_DATE of the release described
    field_code: str | None
    field: str | None
    collect_area: str | None
    description: str | None
    synthetic: bool
    english: dict[str, str]
    domain: str | None
    status: str  # complete | partial | empty | added, not loaded | not in the lake
    rows_in_lake: int | None
    quarantined_rows: int | None
    rows_at_estat: int | None
    years_loaded: list[str]
    years_available: list[str]
    loaded_release: str | None  # UPDATED_DATE of the release in the lake
    last_run_id: str | None
    last_loaded_at: str | None
    axes: list[dict[str, Any]]
    axes_source: str
    english_source: str | None
    checks: dict[str, Any]
    snapshot: dict[str, Any]
    citation: Citation
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["citation"] = self.citation.to_dict()
        return out


def axis_dicts(axes: list[Axis], max_items: int | None) -> list[dict[str, Any]]:
    out = []
    for axis in axes:
        items = axis.items if max_items is None else axis.items[:max_items]
        out.append(
            {
                "id": axis.id,
                "name": axis.name,
                "name_en": axis.name_en,
                "size": len(axis.items),
                "items": [
                    {k: v for k, v in asdict(i).items() if v is not None or k in ("code", "name")}
                    for i in items
                ],
                "items_truncated": len(items) < len(axis.items),
            }
        )
    return out


def read_checks(ctx: LakeContext, domain: str, dataset_id: str) -> dict[str, Any]:
    """The latest check results: the conformed manifest's ``checks`` and ``checks.md``."""
    import orjson

    from estat_assets.lake.layout import MANIFEST, REPORT_FILE, dataset_dir

    storage = ctx.storage()
    base = dataset_dir(domain, "conformed", dataset_id)
    out: dict[str, Any] = {"results": {}, "failed": [], "report_path": None, "report": None}
    manifest_path = storage.path(*base, MANIFEST)
    if storage.exists(manifest_path):
        manifest = orjson.loads(storage.read_bytes(manifest_path))
        results = manifest.get("checks") or {}
        out["results"] = results
        out["failed"] = sorted(k for k, ok in results.items() if not ok)
        out["run_id"] = manifest.get("run_id")
        out["updated_date"] = manifest.get("updated_date")
        out["quarantined"] = manifest.get("quarantined")
    report_path = storage.path(*base, REPORT_FILE)
    if storage.exists(report_path):
        out["report_path"] = storage.uri(*base, REPORT_FILE)
        out["report"] = storage.read_bytes(report_path).decode("utf-8")
    return out


def describe(
    ctx: LakeContext, dataset_id: str, *, max_items: int | None = DEFAULT_MAX_ITEMS
) -> DescribeAnswer:
    from estat_assets.estat.ids import check_dataset_id
    from estat_assets.lake.iceberg import slice_rows
    from estat_assets.lake.quarantine import quarantine_name

    try:
        check_dataset_id(dataset_id)
    except Exception as exc:
        raise app_error(exc) from None
    inventory = ctx.inventory()
    row = inventory.get(dataset_id) or {}
    domain = ctx.domain_of(dataset_id)
    facts = table_facts(ctx, dataset_id, domain)
    info = facts.info
    notes = []
    table = ctx.table(domain) if domain else None
    snapshot_id = current_snapshot_id(table)
    years_loaded = sorted(slice_rows(table, dataset_id)) if table is not None else []
    held = ctx.table(quarantine_name(domain)) if domain else None
    quarantined = sum(slice_rows(held, dataset_id).values()) if held is not None else None
    rows_in_lake = row.get("rows_stored")
    if domain is None:
        status = "not in the lake"
        notes.append(f"add it with `estat-lake add {dataset_id}`, then load it")
    elif not row:
        status = "added, not loaded"
        notes.append(f"load it with `estat-lake load {dataset_id}`")
    else:
        status = row.get("status") or "unknown"
    write = dataset_write(table, dataset_id, snapshot_id) if table is not None else None
    checks = read_checks(ctx, domain, dataset_id) if domain else {}
    if checks.get("failed"):
        notes.append("failed checks: " + ", ".join(checks["failed"]))
    if info.synthetic:
        notes.append("synthetic: generated by the estat-lake emulator, not official values")
    return DescribeAnswer(
        stats_data_id=dataset_id,
        title=info.title,
        statistics_name=info.statistics_name,
        survey=info.stat_name,
        survey_code=info.stat_code,
        organisation=info.gov_org,
        cycle=info.cycle,
        survey_date=info.survey_date,
        open_date=info.open_date,
        updated_date=info.updated_date,
        field_code=info.main_category_code,
        field=info.main_category,
        collect_area=info.collect_area,
        description=info.description,
        synthetic=info.synthetic,
        english=english_info(info, facts.info_en),
        domain=domain,
        status=status,
        rows_in_lake=rows_in_lake,
        quarantined_rows=quarantined,
        rows_at_estat=row.get("overall_total_number") or info.overall_total_number,
        years_loaded=years_loaded,
        years_available=years_of(facts.axes),
        loaded_release=row.get("updated_date"),
        last_run_id=row.get("last_success_run_id"),
        last_loaded_at=str(row["last_success_at"]) if row.get("last_success_at") else None,
        axes=axis_dicts(facts.axes, max_items),
        axes_source=facts.axes_source,
        english_source=facts.english_source,
        checks=checks,
        snapshot={
            "table": f"{ctx.namespace}.{domain}" if domain else None,
            "current_snapshot_id": str(snapshot_id) if snapshot_id is not None else None,
            "dataset_written_in": str(write["snapshot_id"]) if write else None,
            "written_at": write["written_at"] if write else None,
            "run_id": write["run_id"] if write else None,
        },
        citation=cite(
            ctx,
            dataset_id,
            domain=domain,
            table=table,
            snapshot_id=snapshot_id,
            info=info,
            info_en=facts.info_en,
            inventory=inventory,
        ),
        notes=notes,
    )
