"""``<domain>/revisions``: what each release of a dataset changed, as ``estat.<domain>_revisions``.

It runs after ``<domain>/table`` in the same run (same group, so the domain job, the release
sensor's runs and UI backfills all include it). The table step tagged the snapshot holding the
release it loaded (``<statsDataId>@<UPDATED_DATE>``, ``lake/releases.py``); this step compares that
release with the dataset's previous one, cell by cell (``lake/revisions.py``), and replaces the
rows of (dataset, release) in ``estat.<domain>_revisions`` in one commit, then its row of
``estat.<domain>_releases``. A rerun writes the same rows in place of the old ones.

Its materialization metadata summarises the release (cells revised/added/removed, the largest
relative revisions, per year; ``summary`` holds it all as JSON for the notification sensors), and
the WARN check ``revision_share`` flags a release that revises more than
``ESTAT_REVISION_WARN_SHARE`` (default 10 %) of the values the previous release held.
"""

import warnings
from collections.abc import Iterator
from typing import Any

import dagster as dg

from estat_assets.defs.partitions import domain_partitions
from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.ids import check_dataset_id
from estat_assets.lake.iceberg import RETRYABLE_COMMIT_ERRORS
from estat_assets.lake.releases import Release, expire_releases, releases
from estat_assets.lake.revisions import (
    ReleaseDiff,
    diff_release,
    pct,
    release_rows,
    releases_name,
    revisions_name,
    run_of,
    summarise,
    write_revisions,
)
from estat_assets.settings import Settings

CHECK_NAME = "revision_share"
LAYER = "revisions"


def estat_url(dataset_id: str) -> str:
    return f"https://www.e-stat.go.jp/dbview?sid={dataset_id}"


def loaded_release(table, dataset_id: str, run_id: str) -> Release | None:
    """The release this run's table step tagged; else the dataset's newest release (the step
    materialized on its own, after an earlier load)."""
    found = releases(table, dataset_id)
    mine = [r for r in found if run_of(table, r.snapshot_id) == run_id]
    return (mine or found or [None])[-1]


def _largest_markdown(summary: dict[str, Any]) -> str:
    rows = summary["largest_relative_revisions"]
    if not rows:
        return "No revised numeric cell."
    lines = ["| year | cell | old | new | change |", "|---|---|---|---|---|"]
    for r in rows:
        cell = ", ".join(f"{k}={v}" for k, v in r["keys"].items())
        lines.append(
            f"| {r['year']} | {cell} | {r['old_value_raw']} | {r['new_value_raw']} | "
            f"{pct(r['relative_change'])} |"
        )
    return "\n".join(lines)


def _per_year_markdown(summary: dict[str, Any]) -> str:
    years = summary["per_year"]
    if not years:
        return "No cell changed."
    lines = ["| year | revised | added | removed |", "|---|---|---|---|"]
    lines += [f"| {y} | {c['revised']} | {c['added']} | {c['removed']} |" for y, c in years.items()]
    return "\n".join(lines)


def revision_metadata(
    diff: ReleaseDiff | None, summary: dict[str, Any] | None, namespace: str, domain: str
) -> dict[str, Any]:
    if diff is None or summary is None:
        return {"release": "", "revised": 0, "added": 0, "removed": 0, "summary": {}}
    table = f"{namespace}.{revisions_name(domain)}"
    return {
        "dagster/table_name": table,
        "dataset_id": diff.dataset_id,
        "release": diff.new.updated_date,
        "release_tag": diff.new.tag,
        "previous_release": diff.old.updated_date if diff.old else "none (first release)",
        "snapshot_id": str(diff.new.snapshot_id),
        "previous_snapshot_id": str(diff.old.snapshot_id) if diff.old else "",
        "cells": diff.new_rows,
        "previous_cells": diff.old_rows,
        "revised": summary["revised"],
        "added": summary["added"],
        "removed": summary["removed"],
        "revised_share": summary["revised_share"],
        "largest_relative_revisions": dg.MetadataValue.md(_largest_markdown(summary)),
        "per_year": dg.MetadataValue.md(_per_year_markdown(summary)),
        "summary": dg.MetadataValue.json(summary),
        "loaded_by_run": diff.run_id or "",
        "e-Stat": dg.MetadataValue.url(estat_url(diff.dataset_id)),
        "query": dg.MetadataValue.md(
            f"```sql\nSELECT kind, year, time_code, area_code, old_value_raw, new_value_raw\n"
            f"FROM {table}\nWHERE dataset_id = '{diff.dataset_id}'\n"
            f"  AND new_updated_date = DATE '{diff.new.updated_date}'\n```"
        ),
    }


def share_check(
    diff: ReleaseDiff | None, summary: dict[str, Any] | None, warn_share: float
) -> dg.AssetCheckResult:
    if diff is None or summary is None or diff.old is None:
        return dg.AssetCheckResult(
            check_name=CHECK_NAME,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="No earlier release to compare with.",
            metadata={"threshold": warn_share},
        )
    share = diff.revised_share
    passed = share <= warn_share
    return dg.AssetCheckResult(
        check_name=CHECK_NAME,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"Release {diff.new.updated_date} revised {summary['revised']} of the "
            f"{diff.old_rows} values of release {diff.old.updated_date} ({share:.1%}); "
            f"the threshold is {warn_share:.1%}."
        ),
        metadata={
            "dataset_id": diff.dataset_id,
            "release": diff.new.updated_date,
            "previous_release": diff.old.updated_date,
            "revised": summary["revised"],
            "previous_cells": diff.old_rows,
            "revised_share": round(share, 6),
            "threshold": warn_share,
        },
    )


def check_spec(key: dg.AssetKey, parts: dg.PartitionsDefinition) -> dg.AssetCheckSpec:
    with warnings.catch_warnings():  # partitioned checks are a preview feature of Dagster 1.13
        warnings.simplefilter("ignore")
        return dg.AssetCheckSpec(
            CHECK_NAME,
            asset=key,
            blocking=False,
            partitions_def=parts,
            description=(
                "A release revises at most ESTAT_REVISION_WARN_SHARE (default 10 %) of the values "
                "the previous release held (WARN only: large revisions are news, not errors)."
            ),
        )


def build_revisions_asset(domain: DomainSpec, settings: Settings) -> dg.AssetsDefinition:
    name = domain.name
    key = dg.AssetKey([name, LAYER])
    parts = domain_partitions(name)

    @dg.asset(
        key=key,
        deps=[dg.AssetKey([name, "table"])],
        partitions_def=parts,
        group_name=name,
        kinds={"iceberg"},
        owners=domain.owners,
        tags={"layer": LAYER, "domain": name},
        code_version="1",
        check_specs=[check_spec(key, parts)],
        metadata={"dagster/table_name": f"estat.{revisions_name(name)}"},
        description=(
            f"{domain.title or name}: what each e-Stat release of a dataset changed, cell by cell "
            f"(revised, added, removed; old and new value_raw, value and annotation), as the "
            f"Iceberg table estat.{revisions_name(name)}, and one row per release in "
            f"estat.{releases_name(name)}."
        ),
    )
    def revisions(
        context: dg.AssetExecutionContext, iceberg: IcebergCatalogResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        dataset_id = check_dataset_id(context.partition_key)
        catalog = iceberg.catalog()
        table = catalog.load_table(iceberg.identifier(name))
        new = loaded_release(table, dataset_id, context.run_id)
        diff = summary = None
        if new is None:
            context.log.info(f"{dataset_id}: no release tagged (no UPDATED_DATE): nothing to diff")
        else:
            diff = diff_release(table, dataset_id, new)
            # a rerun of a release already compared is not news (the notifications skip it)
            seen = release_rows(catalog, iceberg.namespace, name, dataset_id)
            summary = {**summarise(diff), "first_report": new.updated_date not in seen}
            write_revisions(catalog, iceberg.namespace, name, diff, context.run_id)
            context.log.info(
                f"{dataset_id}@{new.updated_date} vs "
                f"{diff.old.updated_date if diff.old else 'nothing'}: {summary['revised']} "
                f"revised, {summary['added']} added, {summary['removed']} removed"
            )
            try:
                gone = expire_releases(
                    catalog.load_table(iceberg.identifier(name)),
                    settings.release_retention_days,
                    dataset_id=dataset_id,
                )
            except RETRYABLE_COMMIT_ERRORS as exc:  # a concurrent commit: the next load retries
                context.log.warning(f"release retention skipped: {exc}")
                gone = []
            if gone:
                context.log.info(f"release retention removed {', '.join(gone)}")
        yield dg.MaterializeResult(
            metadata=revision_metadata(diff, summary, iceberg.namespace, name)
        )
        yield share_check(diff, summary, settings.revision_warn_share)

    return revisions
