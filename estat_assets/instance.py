"""The run coordinator of the lake's Dagster instance: every queued run says what it loads.

Runs of the domain jobs carry ``estat/domain`` already, but asset backfills and materializations
from the UI run the implicit asset job with only Dagster's own tags, so the per-domain queue
limit of ``dagster.yaml`` did not apply to them and the audit could not tell their domain. Before
a run is queued this coordinator adds ``estat/domain`` (from the assets it targets) and
``estat/dataset_id`` (its partition key), then queues it like Dagster's ``QueuedRunCoordinator``.

It also carries the daemon timing Dagster 1.13 does not let ``dagster.yaml`` set: how long the
backfill daemon waits between loops (``backfill_tick_seconds``; see :func:`set_backfill_tick`),
and a queue tick under a second (``dequeue_tick_seconds``: Dagster's ``dequeue_interval_seconds``
is a whole number of seconds). Both may be fractions: a backfill or a queued run of a small table
otherwise waits up to a second for each, as long as the load itself (docs/benchmarks.md).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

from dagster import AssetKey, DagsterRun, Field
from dagster._core.run_coordinator.base import SubmitRunContext
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster._serdes import ConfigurableClassData

from estat_assets.defs.partitions import DATASET_TAG, DOMAIN_TAG, LAYERS

MIN_TICK_SECONDS = 0.1  # a daemon loop costs a few SQLite reads; below this it would spin
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


def set_backfill_tick(seconds: float) -> bool:
    """Make the backfill daemon loop every ``seconds`` instead of Dagster's 30.

    Why: Dagster 1.13's backfill daemon sleeps ``DEFAULT_DAEMON_INTERVAL_SECONDS`` (30) minus its
    loop, a constant of ``dagster._daemon.controller`` that neither ``dagster.yaml`` nor an
    environment variable reaches, so a backfill of one table waited 0-30 s before its run existed
    (docs/benchmarks.md). The daemon loads this coordinator before its threads start, and the
    backfill loop reads the constant when it starts, so setting it here reaches the loop. Returns
    False (and warns) when a Dagster version no longer has the constant: the tick is then Dagster's.
    """
    from dagster._daemon import controller

    if not hasattr(controller, "DEFAULT_DAEMON_INTERVAL_SECONDS"):
        warnings.warn(
            "backfill_tick_seconds has no effect: this Dagster has no "
            "dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS",
            stacklevel=2,
        )
        return False
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = seconds
    return True


class EstatRunCoordinator(QueuedRunCoordinator):
    """``QueuedRunCoordinator`` that tags each run with the domain and dataset it loads."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **super().config_type(),
            "backfill_tick_seconds": Field(
                float,
                is_required=False,
                description="Seconds between the backfill daemon's loops (Dagster's: 30).",
            ),
            "dequeue_tick_seconds": Field(
                float,
                is_required=False,
                description=(
                    "Seconds between the queue daemon's loops, fractions allowed (overrides "
                    "dequeue_interval_seconds; Dagster's loop waits in steps of 0.5 s)."
                ),
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> EstatRunCoordinator:
        config = dict(config_value)
        tick = config.pop("backfill_tick_seconds", None)
        dequeue_tick = config.pop("dequeue_tick_seconds", None)
        for name, value in (("backfill", tick), ("dequeue", dequeue_tick)):
            if value is not None and value < MIN_TICK_SECONDS:
                raise ValueError(
                    f"{name}_tick_seconds must be at least {MIN_TICK_SECONDS}, not {value}"
                )
        if tick is not None:
            set_backfill_tick(tick)
        coordinator = super().from_config_value(inst_data, config)
        coordinator._dequeue_tick = dequeue_tick
        return coordinator

    @property
    def dequeue_interval_seconds(self) -> float:  # type: ignore[override]
        """What the queue daemon waits between loops (read once, when the daemon starts)."""
        tick = getattr(self, "_dequeue_tick", None)
        return super().dequeue_interval_seconds if tick is None else tick

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        extra: Mapping[str, str] = load_tags(run)
        if extra:
            self._instance.add_run_tags(run.run_id, dict(extra))
            updated = self._instance.get_run_by_id(run.run_id) or run
            context = SubmitRunContext(dagster_run=updated, workspace=context.workspace)
        return super().submit_run(context)
