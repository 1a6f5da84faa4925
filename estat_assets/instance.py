"""The run coordinator of the lake's Dagster instance: every queued run says what it loads.

Runs of the domain jobs carry ``estat/domain`` already, but asset backfills and materializations
from the UI run the implicit asset job with only Dagster's own tags, so the per-domain queue
limit of ``dagster.yaml`` did not apply to them and the audit could not tell their domain. Before
a run is queued this coordinator adds ``estat/domain`` (from the assets it targets) and
``estat/dataset_id`` (its partition key), then queues it like Dagster's ``QueuedRunCoordinator``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dagster import AssetKey, DagsterRun
from dagster._core.run_coordinator.base import SubmitRunContext
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator

from estat_assets.defs.partitions import DATASET_TAG, DOMAIN_TAG, LAYERS

_DATASET_ID = re.compile(r"[0-9]{10}")  # a statsDataId (estat/ids.py): ten ASCII digits


def load_tags(run: DagsterRun) -> dict[str, str]:
    """The ``estat/`` tags a run should carry and lacks (pure: from its assets and partition)."""
    tags: dict[str, str] = {}
    keys: list[AssetKey] = sorted(run.asset_selection or (), key=lambda k: k.to_user_string())
    domains = {k.path[0] for k in keys if len(k.path) == 2 and k.path[1] in LAYERS}
    if DOMAIN_TAG not in run.tags and len(domains) == 1:
        tags[DOMAIN_TAG] = domains.pop()
    partition = run.tags.get("dagster/partition")
    if DATASET_TAG not in run.tags and partition and _DATASET_ID.fullmatch(partition):
        tags[DATASET_TAG] = partition
    return tags


class EstatRunCoordinator(QueuedRunCoordinator):
    """``QueuedRunCoordinator`` that tags each run with the domain and dataset it loads."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        extra: Mapping[str, str] = load_tags(run)
        if extra:
            self._instance.add_run_tags(run.run_id, dict(extra))
            updated = self._instance.get_run_by_id(run.run_id) or run
            context = SubmitRunContext(dagster_run=updated, workspace=context.workspace)
        return super().submit_run(context)
