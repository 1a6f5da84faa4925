"""One partitioned job per domain: raw → conformed (+ checks) → table for one partition.

Release sensors target these jobs; ``dagster job backfill -j <domain>_job`` backfills them. Runs
carry the tag ``estat/domain`` so ``dagster.yaml`` can limit queued runs per domain.
"""

from __future__ import annotations

import dagster as dg

from estat_assets.defs.partitions import domain_partitions
from estat_assets.domains import DomainSpec

DOMAIN_TAG = "estat/domain"


def job_name(domain: str) -> str:
    return f"{domain}_job"


def build_domain_job(domain: DomainSpec) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        job_name(domain.name),
        selection=dg.AssetSelection.groups(domain.name),
        partitions_def=domain_partitions(domain.name),
        tags={DOMAIN_TAG: domain.name},
        description=f"Load one (dataset, year) partition of {domain.name} into the lake.",
    )
