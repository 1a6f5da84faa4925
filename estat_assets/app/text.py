"""The answers of the application layer as text for a terminal (what the CLI prints).

Tables go through ``query.output.format_table`` (values as stored, aligned by display width);
every answer ends with its citation lines.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from estat_assets.app.citation import Citation
from estat_assets.query.output import display_width, format_table

TITLE_WIDTH = 60


def clip(text: str | None, width: int = TITLE_WIDTH) -> str:
    """``text`` cut to ``width`` terminal columns with an ellipsis (for listings only)."""
    if not text:
        return ""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def table_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(no rows)"
    data = {c: [r.get(c) for r in rows] for c in columns}
    arrays = {}
    for c, values in data.items():
        try:
            arrays[c] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[c] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return format_table(pa.table(arrays), "table")


def citations_text(citations: list[Citation]) -> str:
    if not citations:
        return ""
    blocks = ["\n".join(c.lines()) for c in citations]
    return "\n".join(blocks)


def search_text(answer: Any) -> str:
    d = answer
    lines = [
        f'{d.total:,} table(s) match "{d.words}" (lang {d.lang}'
        + "".join(f", {k}={v}" for k, v in d.filters.items() if k != "searchWord")
        + f"); showing {len(d.hits)}:"
    ]
    rows = [
        {
            "statsDataId": h.stats_data_id,
            "title": clip(h.title),
            "survey": clip(h.survey, 24),
            "organisation": clip(h.organisation, 16),
            "cycle": h.cycle,
            "updated": h.updated_date,
            "rows": h.rows,
            "in lake": h.in_lake + (f" ({h.domain})" if h.domain else ""),
        }
        for h in d.hits
    ]
    if rows:
        lines.append(table_text(rows, list(rows[0])))
        lines.append("e-Stat pages: https://www.e-stat.go.jp/dbview?sid=<statsDataId>")
        lines.append("next: estat-lake add <statsDataId>")
    if d.truncated:
        lines.append(f"({d.total - len(d.hits):,} more: narrow the words or raise --limit)")
    lines += [d.credit, d.credit_en]
    return "\n".join(lines)


def add_text(a: Any) -> str:
    title_en = a.english.get("title_en")
    years = a.years
    span = f"{years[0]}–{years[-1]} ({len(years)} years)" if len(years) > 1 else ", ".join(years)
    lines = [
        f"added {a.stats_data_id} to domain {a.domain}: {a.reason}",
        f"  {a.title}" + (f"\n  ({title_en})" if title_en else ""),
        f"  {a.survey}, {a.organisation}; field {a.field_code} {a.field}; "
        f"UPDATED_DATE {a.updated_date}; {a.rows_at_estat or 0:,} rows at e-Stat; "
        f"years {span or 'none'}",
        f"  partition {a.domain}__dataset/{a.stats_data_id} "
        + ("added" if a.new_partition else "already there")
        + ("; saved in the lake's registry" if a.registered else "; declared in domains.yaml"),
        f"  next: estat-lake load {a.stats_data_id}",
        "",
        citations_text([a.citation]),
    ]
    return "\n".join(lines)


def describe_text(d: Any, max_items: int | None = 20) -> str:
    en = d.english
    lines = [f"{d.stats_data_id}  {d.title}"]
    if en.get("title_en"):
        lines.append(f"            {en['title_en']}")
    facts = [
        ("statistics", d.statistics_name),
        (
            "survey",
            f"{d.survey} ({d.survey_code})"
            + (f" / {en['survey_en']}" if en.get("survey_en") else ""),
        ),
        (
            "organisation",
            d.organisation + (f" / {en['organisation_en']}" if en.get("organisation_en") else "")
            if d.organisation
            else None,
        ),
        ("field", f"{d.field_code} {d.field}" if d.field_code else None),
        ("cycle", d.cycle),
        ("collect area", d.collect_area),
        ("updated (e-Stat)", d.updated_date),
        ("domain", d.domain or "— (not in the lake)"),
        ("status", d.status),
        (
            "rows",
            f"{d.rows_in_lake or 0:,} in the lake"
            + (f" (+{d.quarantined_rows:,} quarantined)" if d.quarantined_rows else "")
            + f" / {d.rows_at_estat or 0:,} at e-Stat",
        ),
        ("years loaded", ", ".join(d.years_loaded) or "none"),
        ("years in table", _years(d.years_available)),
        ("loaded release", d.loaded_release),
        ("last loaded", f"{d.last_loaded_at} (run {d.last_run_id})" if d.last_run_id else None),
        (
            "Iceberg snapshot",
            f"{d.snapshot['table']} @ {d.snapshot['current_snapshot_id']}"
            + (
                f" (dataset written in {d.snapshot['dataset_written_in']} at "
                f"{d.snapshot['written_at']})"
                if d.snapshot.get("dataset_written_in")
                else ""
            )
            if d.snapshot.get("current_snapshot_id")
            else None,
        ),
    ]
    width = max(len(k) for k, _ in facts)
    lines += [f"  {k.ljust(width)}  {v}" for k, v in facts if v]
    if d.description:
        lines.append(f"  {'description'.ljust(width)}  {clip(d.description, 200)}")
    lines.append(
        f"\naxes ({d.axes_source}"
        + (f"; English from {d.english_source}" if d.english_source else "")
        + "):"
    )
    for axis in d.axes:
        head = f"  {axis['id']}  {axis['name']}" + (
            f" / {axis['name_en']}" if axis.get("name_en") else ""
        )
        lines.append(f"{head}  ({axis['size']} items)")
        items = axis["items"] if max_items is None else axis["items"][:max_items]
        for item in items:
            extra = []
            if item.get("level"):
                extra.append(f"level {item['level']}")
            if item.get("parent_code"):
                extra.append(f"parent {item['parent_code']}")
            if item.get("unit"):
                extra.append(f"unit {item['unit']}")
            name = item["name"] + (f" / {item['name_en']}" if item.get("name_en") else "")
            lines.append(
                f"      {item['code']}  {name}" + (f"  [{', '.join(extra)}]" if extra else "")
            )
        hidden = axis["size"] - len(items)
        if hidden > 0:
            lines.append(f"      … {hidden} more (--all shows every item)")
    checks = d.checks or {}
    if checks.get("results"):
        lines.append(
            "\nlatest checks"
            + (f" (run {checks.get('run_id')})" if checks.get("run_id") else "")
            + ":"
        )
        for name, ok in checks["results"].items():
            lines.append(f"  {'passed' if ok else 'FAILED'}  {name}")
        if checks.get("report_path"):
            lines.append(f"  report: {checks['report_path']}")
    for note in d.notes:
        lines.append(f"note: {note}")
    lines += ["", citations_text([d.citation])]
    return "\n".join(lines)


def _years(years: list[str]) -> str:
    if not years:
        return "none"
    if len(years) > 8:
        return f"{years[0]}–{years[-1]} ({len(years)} years)"
    return ", ".join(years)


def load_item_line(i: int, n: int, item: Any) -> str:
    rows = "-" if item.rows_in_lake is None else f"{item.rows_in_lake:,}"
    years = f" [{','.join(item.years)}]" if item.years else ""
    if item.status == "success":
        checks = (
            f", checks {item.checks_passed} passed / {item.checks_warned or 0} warned / "
            f"{item.checks_failed or 0} failed"
            if item.checks_passed is not None
            else ""
        )
        outcome = f"{rows} rows in the lake{checks} — ok"
    elif item.status in ("failure", "canceled"):
        outcome = f"{item.status.upper()}: {item.error}"
    else:
        outcome = item.status
    took = (
        f", {item.seconds:.1f} s" if item.seconds is not None and item.status == "success" else ""
    )
    return (
        f"[{i}/{n}] {item.domain} {item.stats_data_id}{years} run {item.run_id or '-'}: "
        f"{outcome}{took}"
    )


def load_summary(answer: Any) -> str:
    n = len(answer.items)
    ok = sum(1 for i in answer.items if i.status == "success")
    lines = [
        f"{ok} of {n} dataset(s) loaded, {answer.total_rows:,} rows in the lake, "
        f"{len(answer.failures)} failed, in {answer.elapsed_seconds:.1f} s ({answer.mode})"
    ]
    for item in answer.failures:
        lines.append(f"FAILED {item.domain} {item.stats_data_id} (run {item.run_id}): {item.error}")
    return "\n".join(lines)


def rows_footer(count: int, total: int | None, elapsed: float | None, truncated: bool) -> str:
    noun = "row" if count == 1 else "rows"
    more = f" of {total:,}" if total is not None and total != count else ""
    cap = " (truncated)" if truncated else ""
    took = f" in {elapsed:.2f} s" if elapsed is not None else ""
    return f"{count:,}{more} {noun}{cap}{took}"


def series_text(s: Any) -> str:
    lines = [f"{s.stats_data_id} ({s.domain})"]
    for axis, item in s.fixed.items():
        name = item["name"] + (f" / {item['name_en']}" if item.get("name_en") else "")
        lines.append(f"  {axis} {item['axis_name']}: {item['code']} {name}")
    columns = [
        c
        for c in s.columns
        if not (c.endswith("_name_en") and all(r.get(c) is None for r in s.rows))
    ]
    lines.append(table_text(s.rows, columns))
    for note in s.notes:
        lines.append(f"note: {note}")
    lines += ["", citations_text([s.citation])]
    return "\n".join(lines)


def verify_text(v: Any) -> str:
    lines = [f"{v.verdict.upper()}: claimed {v.claimed} — {v.explanation}"]
    for axis, item in v.fixed.items():
        name = item["name"] + (f" / {item['name_en']}" if item.get("name_en") else "")
        lines.append(f"  {axis} {item['axis_name']}: {item['code']} {name}")
    if v.cells and (v.verdict != "agrees" or len(v.cells) > 1):
        cols = [c for c in v.cells[0] if not c.endswith("_name_en") and c not in ("annotation",)]
        lines.append(table_text(v.cells, cols))
    for note in v.notes:
        lines.append(f"note: {note}")
    lines += ["", citations_text([v.citation])]
    return "\n".join(lines)


def health_text(h: Any) -> str:
    lines = [
        ("OK" if h.ok else "ATTENTION")
        + ": "
        + (
            ", ".join(f"{n} {k}" for k, n in sorted(h.status_counts.items()))
            or "no datasets loaded"
        )
    ]
    if h.datasets:
        rows = [
            {
                "statsDataId": d["stats_data_id"],
                "domain": d["domain"],
                "status": d["status"],
                "rows in lake": d["rows_in_lake"],
                "rows at e-Stat": d["rows_at_estat"],
                "updated": d["updated_date"],
                "title": clip(d["title"], 40),
            }
            for d in h.datasets
        ]
        lines.append(table_text(rows, list(rows[0])))
    if h.not_loaded:
        lines.append(
            "added, not loaded: "
            + ", ".join(f"{d['stats_data_id']} ({d['domain']})" for d in h.not_loaded)
        )
    for f in h.failed_runs:
        fixed = " (a later run succeeded)" if f["resolved_by_later_success"] else ""
        lines.append(
            f"failed run {f['run_id']} {f['domain']} {f['stats_data_id']} at {f['started_at']}"
            f"{fixed}: {f['error']}"
        )
    for w in h.check_warnings:
        lines.append(
            f"checks {w['domain']} {w['stats_data_id']}: "
            f"failed {', '.join(w['failed_checks']) or 'none'}"
            f", {w['quarantined_rows']} quarantined rows"
        )
    for note in h.notes:
        lines.append(f"note: {note}")
    from estat_assets import CREDIT_NOTICE, CREDIT_NOTICE_EN

    lines += [CREDIT_NOTICE, CREDIT_NOTICE_EN]
    return "\n".join(lines)


def _share(value: Any) -> str:
    """A share or relative change as a percentage, small ones with their digits (0.0009%)."""
    if value is None:
        return "-"
    pct = float(value) * 100
    return f"{pct:.1f}%" if abs(pct) >= 0.1 or pct == 0 else f"{pct:.2g}%"


def releases_text(r: Any) -> str:
    """Every kept release of a dataset and what it changed (``estat-lake revisions ID``)."""
    lines = [f"{r.stats_data_id} ({r.domain}): {len(r.releases)} kept release(s)"]
    rows = [
        {
            "release (UPDATED_DATE)": e.get("updated_date"),
            "previous": e.get("previous_updated_date") or "",
            "rows": e.get("rows"),
            "revised": e.get("revised") if e.get("diffed", True) else "?",
            "added": e.get("added") if e.get("diffed", True) else "?",
            "removed": e.get("removed") if e.get("diffed", True) else "?",
            "revised share": _share(e.get("revised_share")),
            "snapshot": e.get("snapshot_id"),
        }
        for e in r.releases
    ]
    if rows:
        lines.append(table_text(rows, list(rows[0])))
    for e in r.releases:
        top = e.get("largest_relative_revisions") or []
        if not top:
            continue
        lines.append(f"largest revisions of {e['updated_date']}:")
        for cell in top[:5]:
            keys = ", ".join(f"{k}={v}" for k, v in cell["keys"].items())
            lines.append(
                f"  {cell.get('time_name') or cell['year']} {keys}: {cell['old_value_raw']} → "
                f"{cell['new_value_raw']} ({_share(cell['relative_change'])})"
            )
    for note in r.notes:
        lines.append(f"note: {note}")
    lines += ["", citations_text([r.citation])]
    return "\n".join(lines)


def compare_text(c: Any) -> str:
    """Two releases cell by cell (``estat-lake revisions ID --compare OLD NEW``)."""
    s = c.summary
    lines = [
        f"{c.stats_data_id} ({c.domain}): {c.old} → {c.new}: {s.get('revised', 0)} revised, "
        f"{s.get('added', 0)} added, {s.get('removed', 0)} removed "
        f"({_share(s.get('revised_share'))} of the old values revised)"
    ]
    if c.cells:
        columns = [
            k
            for k in (
                "kind",
                "year",
                "time_code",
                "tab_code",
                "cat01_code",
                "area_code",
                "old_value_raw",
                "new_value_raw",
                "old_annotation",
                "new_annotation",
            )
            if any(cell.get(k) is not None for cell in c.cells)
        ]
        lines.append(table_text(c.cells, columns))
    if c.total_cells > len(c.cells):
        lines.append(f"… {c.total_cells - len(c.cells):,} more cells (--limit, or --json)")
    lines += ["", "new release:", citations_text([c.citation]), "old release:"]
    lines.append(citations_text([c.citation_old]))
    return "\n".join(lines)
