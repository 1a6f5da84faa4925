"""One partitioned job per domain: raw → conformed (+ checks) → table for one partition."""

from __future__ import annotations

import dagster as dg

from estat_assets.defs.partitions import domain_partitions
from estat_assets.domains import DomainSpec


def job_name(domain: str) -> str:
    return f"{domain}_job"


def build_domain_job(domain: DomainSpec) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        job_name(domain.name),
        selection=dg.AssetSelection.groups(domain.name),
        partitions_def=domain_partitions(domain.name),
        description=f"Load one (dataset, year) partition of {domain.name} into the lake.",
    )
