"""Releases of a table and what each changed; reading a table as e-Stat published it on a day.

Every release the lake loaded is kept as an Iceberg tag ``<statsDataId>@<UPDATED_DATE>``
(``lake/releases.py``); ``<domain>/revisions`` compares each with the one before it
(``lake/revisions.py``). This module answers from those for the CLI and the MCP server:

- :func:`list_releases` — every kept release of a dataset (``since`` a day) and what it
  revised, added and removed, with the largest revisions and the changes per year;
- :func:`compare` — two kept releases, cell by cell;
- :func:`release_snapshot` — the snapshot that holds the release e-Stat had published on a day
  (``query --as-of`` and ``series --as-of`` read it, and cite it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from estat_assets.app.citation import Citation, cite
from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError, app_error

MAX_CELLS = 200


def check_day(day: str) -> str:
    """``YYYY-MM-DD`` or a structured error naming the format."""
    try:
        return date.fromisoformat(day).isoformat()
    except (TypeError, ValueError):
        raise AppError(
            "invalid_date",
            f"{day!r} is not a date",
            "give the day as YYYY-MM-DD, e.g. 2025-06-30",
            context={"value": str(day)},
        ) from None


@dataclass
class ReleasesAnswer:
    stats_data_id: str
    domain: str
    releases: list[dict[str, Any]]
    citation: Citation
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stats_data_id": self.stats_data_id,
            "domain": self.domain,
            "releases": [_jsonable(r) for r in self.releases],
            "citation": self.citation.to_dict(),
            "notes": self.notes,
        }


@dataclass
class CompareAnswer:
    stats_data_id: str
    domain: str
    old: str
    new: str
    summary: dict[str, Any]
    cells: list[dict[str, Any]]
    total_cells: int
    citation: Citation  # the newer release
    citation_old: Citation

    def to_dict(self) -> dict[str, Any]:
        return {
            "stats_data_id": self.stats_data_id,
            "domain": self.domain,
            "old_release": self.old,
            "new_release": self.new,
            "summary": _jsonable(self.summary),
            "cells": [_jsonable(c) for c in self.cells],
            "cell_count": len(self.cells),
            "total_cells": self.total_cells,
            "truncated": self.total_cells > len(self.cells),
            "citation": self.citation.to_dict(),
            "citation_old": self.citation_old.to_dict(),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)  # snapshot ids: keep them exact in JSON clients
    if isinstance(value, date):
        return value.isoformat()
    return value


def list_releases(ctx: LakeContext, dataset_id: str, since: str | None = None) -> ReleasesAnswer:
    from estat_assets.lake.revisions import revisions_summary

    domain = ctx.require_domain(dataset_id)
    since = check_day(since) if since else None
    try:
        entries = revisions_summary(ctx.catalog(), ctx.namespace, dataset_id, since, domain)
    except LookupError as exc:
        raise AppError(
            "not_loaded",
            str(exc),
            f"load it first: `estat-lake load {dataset_id}` (MCP: load_dataset)",
            context={"stats_data_id": dataset_id, "domain": domain},
        ) from None
    except Exception as exc:
        raise app_error(exc) from None
    notes = []
    if not entries:
        notes.append("no kept release in that period")
    latest = entries[-1].get("snapshot_id") if entries else None
    return ReleasesAnswer(
        dataset_id,
        domain,
        entries,
        cite(ctx, dataset_id, domain=domain, snapshot_id=_int(latest)),
        notes,
    )


def compare(
    ctx: LakeContext, dataset_id: str, old: str, new: str, limit: int = MAX_CELLS
) -> CompareAnswer:
    """Two kept releases (their UPDATED_DATEs), cell by cell: revised, added, removed."""
    from estat_assets.lake.revisions import compare_releases, summarise

    domain = ctx.require_domain(dataset_id)
    old, new = check_day(old), check_day(new)
    try:
        diff = compare_releases(ctx.catalog(), (ctx.namespace, domain), dataset_id, old, new)
    except LookupError as exc:
        raise AppError(
            "release_not_kept",
            str(exc),
            f"list the kept releases: `estat-lake revisions {dataset_id}` (MCP: list_releases)",
            context={"stats_data_id": dataset_id, "old": old, "new": new},
        ) from None
    except Exception as exc:
        raise app_error(exc) from None
    cells = diff.cells.slice(0, max(0, int(limit))).to_pylist()
    table = ctx.table(domain)
    return CompareAnswer(
        dataset_id,
        domain,
        old,
        new,
        summarise(diff),
        cells,
        diff.cells.num_rows,
        cite(ctx, dataset_id, domain=domain, table=table, snapshot_id=diff.new.snapshot_id),
        cite(ctx, dataset_id, domain=domain, table=table, snapshot_id=diff.old.snapshot_id),
    )


def release_snapshot(ctx: LakeContext, domain: str, dataset_id: str, day: str) -> int:
    """The snapshot of the release of ``dataset_id`` e-Stat had published on ``day``."""
    from estat_assets.lake.releases import release_as_of, releases

    table = ctx.table(domain)
    release = release_as_of(table, dataset_id, check_day(day)) if table is not None else None
    if release is None:
        kept = [r.updated_date for r in releases(table, dataset_id)] if table is not None else []
        raise AppError(
            "no_release_then",
            f"the lake keeps no release of {dataset_id} published on or before {day}",
            "pick a later day" + (f" (kept releases: {', '.join(kept)})" if kept else ""),
            context={"stats_data_id": dataset_id, "as_of": day, "kept": kept},
        )
    return release.snapshot_id


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
