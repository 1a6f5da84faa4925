"""Lake health: what is loaded and complete, what failed, which checks warned.

From the lake only (no e-Stat request): ``estat.dataset_inventory`` (status per dataset: rows in
the lake vs e-Stat's count), the datasets added but never loaded, the failed runs of
``estat.ingestion_runs`` (with their first real cause, and whether a later run of the dataset
succeeded), and the latest check results of every dataset (its conformed manifest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from estat_assets import CREDIT_NOTICE, CREDIT_NOTICE_EN
from estat_assets.app.citation import Citation, cite
from estat_assets.app.context import LakeContext
from estat_assets.app.describe import read_checks

DEFAULT_FAILED = 20


@dataclass
class HealthAnswer:
    ok: bool
    datasets: list[dict[str, Any]]
    status_counts: dict[str, int]
    not_loaded: list[dict[str, str]]
    failed_runs: list[dict[str, Any]]
    check_warnings: list[dict[str, Any]]
    citations: list[Citation]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status_counts": self.status_counts,
            "datasets": self.datasets,
            "not_loaded": self.not_loaded,
            "failed_runs": self.failed_runs,
            "check_warnings": self.check_warnings,
            "citations": [c.to_dict() for c in self.citations],
            "credit": CREDIT_NOTICE,
            "credit_en": CREDIT_NOTICE_EN,
            "notes": self.notes,
        }


def _iso(value: Any) -> str | None:
    return None if value is None else str(value)


def health(ctx: LakeContext, *, failed_limit: int = DEFAULT_FAILED) -> HealthAnswer:
    from estat_assets.lake.runs import RUNS_TABLE
    from estat_assets.query.engine import load_arrow

    inventory = ctx.inventory()
    datasets = []
    counts: dict[str, int] = {}
    for dataset_id, row in sorted(inventory.items()):
        status = row.get("status") or "unknown"
        counts[status] = counts.get(status, 0) + 1
        datasets.append(
            {
                "stats_data_id": dataset_id,
                "domain": row.get("domain"),
                "title": row.get("title"),
                "status": status,
                "rows_in_lake": row.get("rows_stored"),
                "rows_at_estat": row.get("overall_total_number"),
                "years": row.get("years"),
                "updated_date": row.get("updated_date"),
                "last_loaded_at": _iso(row.get("last_success_at")),
                "last_run_id": row.get("last_success_run_id"),
                "synthetic": bool(row.get("synthetic")),
            }
        )
    not_loaded = [
        {"stats_data_id": d, "domain": spec.name}
        for spec in ctx.domains()
        for d in spec.datasets
        if d not in inventory
    ]
    failed: list[dict[str, Any]] = []
    if ctx.table(RUNS_TABLE) is not None:
        runs = load_arrow(ctx.catalog(), ctx.namespace, RUNS_TABLE).to_pylist()
        runs.sort(key=lambda r: str(r.get("started_at") or ""), reverse=True)
        latest_success: dict[str, str] = {}
        for r in runs:
            if r.get("status") == "SUCCESS" and r.get("dataset_id"):
                latest_success.setdefault(r["dataset_id"], str(r.get("started_at") or ""))
        for r in runs:
            if r.get("status") == "SUCCESS":
                continue
            later = latest_success.get(r.get("dataset_id") or "", "")
            failed.append(
                {
                    "run_id": r["run_id"],
                    "stats_data_id": r.get("dataset_id"),
                    "domain": r.get("domain"),
                    "status": r.get("status"),
                    "started_at": _iso(r.get("started_at")),
                    "failed_step": r.get("failed_step"),
                    "failed_checks": r.get("failed_checks"),
                    "error": r.get("error"),
                    "resolved_by_later_success": bool(later and later > str(r.get("started_at"))),
                }
            )
            if len(failed) >= failed_limit:
                break
    warnings = []
    for item in datasets:
        checks = read_checks(ctx, item["domain"], item["stats_data_id"])
        failing = checks.get("failed") or []
        if failing or checks.get("quarantined"):
            warnings.append(
                {
                    "stats_data_id": item["stats_data_id"],
                    "domain": item["domain"],
                    "failed_checks": failing,
                    "quarantined_rows": checks.get("quarantined") or 0,
                    "report_path": checks.get("report_path"),
                }
            )
    unresolved = [f for f in failed if not f["resolved_by_later_success"]]
    ok = not unresolved and not warnings and set(counts) <= {"complete"}
    notes = []
    if not inventory:
        notes.append("nothing loaded yet: `estat-lake search WORDS`, then add and load a table")
    return HealthAnswer(
        ok=ok,
        datasets=datasets,
        status_counts=counts,
        not_loaded=not_loaded,
        failed_runs=failed,
        check_warnings=warnings,
        citations=[cite(ctx, d, inventory=inventory) for d in sorted(inventory)],
        notes=notes,
    )
