"""A tidy series: the cells of one dataset that match axis filters, one row per cell.

Filters name axes by id or by their Japanese or English name and items by code or by name in
either language (``{"性別": "男", "Industry (major groups)": "Construction", "time": "2020"}``;
see ``app.metadata.resolve_filters``). Rows come from the domain's Iceberg table at one
snapshot (cited), ordered by the unfixed axes in e-Stat's order, then time. Axes pinned to one
item are reported once in ``fixed``; the others are columns (code, name, English name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from estat_assets import CREDIT_NOTICE, CREDIT_NOTICE_EN
from estat_assets.app.citation import Citation, cite, current_snapshot_id
from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError, app_error
from estat_assets.app.metadata import Axis, ResolvedFilter, resolve_filters, table_facts

DEFAULT_LIMIT = 1000


@dataclass
class SeriesAnswer:
    stats_data_id: str
    domain: str
    filters: list[ResolvedFilter]
    fixed: dict[str, dict[str, Any]]  # axis → the one item the filters pinned
    columns: list[str]
    rows: list[dict[str, Any]]
    total_rows: int
    truncated: bool
    unit: str | None
    citation: Citation
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stats_data_id": self.stats_data_id,
            "domain": self.domain,
            "filters": [f.to_dict() for f in self.filters],
            "fixed": self.fixed,
            "columns": self.columns,
            "rows": self.rows,
            "row_count": len(self.rows),
            "total_rows": self.total_rows,
            "truncated": self.truncated,
            "unit": self.unit,
            "citation": self.citation.to_dict(),
            "credit": CREDIT_NOTICE,
            "credit_en": CREDIT_NOTICE_EN,
            "notes": self.notes,
        }


@dataclass
class Cells:
    """The matching cells of a dataset, read at one snapshot (shared with ``verify``)."""

    domain: str
    axes: list[Axis]
    filters: list[ResolvedFilter]
    rows: list[dict[str, Any]]
    snapshot_id: int | None
    table: Any
    info_en: Any


def read_cells(
    ctx: LakeContext,
    dataset_id: str,
    filters: Mapping[str, str | Sequence[str]] | None,
    as_of: str | None = None,
) -> Cells:
    """The dataset's cells the filters pick, from the current snapshot, or with ``as_of`` (a day)
    from the release e-Stat had published on that day."""
    from pyiceberg.expressions import And, EqualTo, In

    from estat_assets.estat.ids import check_dataset_id
    from estat_assets.query.engine import load_arrow

    try:
        check_dataset_id(dataset_id)
    except Exception as exc:
        raise app_error(exc) from None
    domain = ctx.require_domain(dataset_id)
    table = ctx.table(domain)
    snapshot_id = current_snapshot_id(table)
    if as_of is not None and snapshot_id is not None:
        from estat_assets.app.releases import release_snapshot

        snapshot_id = release_snapshot(ctx, domain, dataset_id, as_of)
    if ctx.inventory().get(dataset_id) is None or snapshot_id is None:
        raise AppError(
            "not_loaded",
            f"{dataset_id} is in domain {domain} but has not been loaded",
            f"load it: `estat-lake load {dataset_id}` (MCP: load_dataset)",
            retryable=True,
            context={"stats_data_id": dataset_id, "domain": domain},
        )
    facts = table_facts(ctx, dataset_id, domain)
    resolved = resolve_filters(facts.axes, filters)
    expression: Any = EqualTo("dataset_id", dataset_id)
    for f in resolved:
        expression = And(expression, In(f"{f.axis}_code", set(f.codes)))
    data = load_arrow(
        ctx.catalog(), ctx.namespace, domain, row_filter=expression, snapshot_id=snapshot_id
    )
    return Cells(
        domain=domain,
        axes=facts.axes,
        filters=resolved,
        rows=data.to_pylist(),
        snapshot_id=snapshot_id,
        table=table,
        info_en=facts.info_en,
    )


def _rank(axes: list[Axis]) -> dict[tuple[str, str], int]:
    return {(a.id, item.code): i for a in axes for i, item in enumerate(a.items)}


def tidy(cells: Cells) -> tuple[list[str], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Rows with the unfixed axes as columns, sorted; and the fixed axes."""
    axes = [a for a in cells.axes if any(r.get(f"{a.id}_code") is not None for r in cells.rows)]
    varying = []
    fixed: dict[str, dict[str, Any]] = {}
    for axis in axes:
        codes = {r.get(f"{axis.id}_code") for r in cells.rows}
        if len(codes) == 1 and axis.id != "time":
            code = next(iter(codes))
            item = axis.item(code)
            fixed[axis.id] = {
                "axis_name": axis.name,
                "axis_name_en": axis.name_en,
                "code": code,
                "name": item.name if item else None,
                "name_en": item.name_en if item else None,
            }
        else:
            varying.append(axis)
    rank = _rank(cells.axes)
    order = [a for a in varying if a.id != "time"] + [a for a in varying if a.id == "time"]

    def key(row: dict[str, Any]) -> tuple:
        return tuple(rank.get((a.id, row.get(f"{a.id}_code")), 1 << 30) for a in order)

    columns: list[str] = []
    for axis in order:
        columns += [f"{axis.id}_code", f"{axis.id}_name", f"{axis.id}_name_en"]
    columns += ["year", "value", "value_raw", "unit", "annotation"]
    out = []
    by_axis = {a.id: a for a in cells.axes}
    for row in sorted(cells.rows, key=key):
        tidy_row: dict[str, Any] = {}
        for axis in order:
            code = row.get(f"{axis.id}_code")
            item = by_axis[axis.id].item(code) if code is not None else None
            tidy_row[f"{axis.id}_code"] = code
            tidy_row[f"{axis.id}_name"] = row.get(f"{axis.id}_name")
            tidy_row[f"{axis.id}_name_en"] = item.name_en if item else None
        for name in ("year", "value", "value_raw", "unit", "annotation"):
            tidy_row[name] = row.get(name)
        out.append(tidy_row)
    return columns, out, fixed


def series(
    ctx: LakeContext,
    dataset_id: str,
    filters: Mapping[str, str | Sequence[str]] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    as_of: str | None = None,
) -> SeriesAnswer:
    cells = read_cells(ctx, dataset_id, filters, as_of)
    columns, rows, fixed = tidy(cells)
    notes = []
    if not rows:
        notes.append("no cell matches these filters (the table has no value there)")
    if as_of is not None:
        notes.append(f"as published on {as_of}: the release e-Stat had out that day")
    units = {r["unit"] for r in rows if r.get("unit")}
    limit = max(1, int(limit))
    return SeriesAnswer(
        stats_data_id=dataset_id,
        domain=cells.domain,
        filters=cells.filters,
        fixed=fixed,
        columns=columns,
        rows=rows[:limit],
        total_rows=len(rows),
        truncated=len(rows) > limit,
        unit=next(iter(units)) if len(units) == 1 else None,
        citation=cite(
            ctx,
            dataset_id,
            domain=cells.domain,
            table=cells.table,
            snapshot_id=cells.snapshot_id,
            info_en=cells.info_en,
        ),
        notes=notes,
    )
