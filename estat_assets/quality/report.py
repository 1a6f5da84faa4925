"""The asset-check report of one partition as Markdown: shown in the Dagster UI, kept in the lake.

One table of every check (outcome, severity, failures, what it found), then the quarantine counts
by reason, then a few failing rows per failed check, so an analyst can see what went wrong without
opening a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from estat_assets.quality.checks import HIERARCHY, ROW_LEVEL, CheckOutcome


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def on_failure(name: str) -> str:
    if name in ROW_LEVEL:
        return "rows quarantined (WARN)"
    if name == HIERARCHY:
        return "warning only (WARN)"
    return "blocks the write (ERROR)"


def outcome_label(outcome: CheckOutcome) -> str:
    if outcome.passed:
        return "✅ passed"
    return "⚠️ warning" if outcome.severity == "WARN" else "❌ failed (blocks the write)"


def report_markdown(
    title: str,
    outcomes: Sequence[CheckOutcome],
    facts: Mapping[str, Any] | None = None,
    quarantine_counts: Mapping[str, int] | None = None,
) -> str:
    lines = [f"# Asset checks: {title}", ""]
    for key, value in (facts or {}).items():
        lines.append(f"- **{key}**: {value}")
    blocked = any(not o.passed and o.severity != "WARN" for o in outcomes)
    verdict = "blocked: the Iceberg slice was not replaced" if blocked else "written to Iceberg"
    lines += [f"- **verdict**: {verdict}", ""]
    lines += ["| check | outcome | on failure | failures | detail |", "|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(
            f"| `{o.name}` | {outcome_label(o)} | {on_failure(o.name)} | {o.failures} | "
            f"{_cell(o.description)} |"
        )
    if quarantine_counts:
        lines += ["", "## Quarantine", "", "| reason | rows |", "|---|---|"]
        lines += [f"| `{reason}` | {n} |" for reason, n in quarantine_counts.items()]
    for o in outcomes:
        sample = o.sample_markdown()
        if not o.passed and sample:
            lines += ["", f"## `{o.name}`: failing sample", "", sample]
    return "\n".join(lines) + "\n"
