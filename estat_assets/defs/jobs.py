"""One partitioned job per domain: raw → conformed (+ checks) → table → class codes of a dataset.

Release sensors and ``estat-lake load`` target these jobs; ``dagster job backfill -j
<domain>_job`` backfills them, and the UI backfills the assets the same way (every run carries
``estat/domain`` and ``estat/dataset_id``, see ``instance/coordinator.py``).
"""

import dagster as dg

from estat_assets.defs.partitions import DOMAIN_TAG, domain_partitions
from estat_assets.domains import DomainSpec


def job_name(domain: str) -> str:
    return f"{domain}_job"


def build_domain_job(domain: DomainSpec) -> "dg.UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        job_name(domain.name),
        selection=dg.AssetSelection.groups(domain.name),
        partitions_def=domain_partitions(domain.name),
        tags={DOMAIN_TAG: domain.name},
        description=f"Load one e-Stat table (a dataset partition) of {domain.name} into the lake.",
    )
