"""The Dagster code location. The environment is chosen when definitions load, not at import."""

from __future__ import annotations

import dagster as dg

from estat_assets.defs.assets import build_domain_assets
from estat_assets.defs.jobs import build_domain_job
from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec, load_domains


def build_definitions(
    env_name: str | None = None,
    domains: tuple[DomainSpec, ...] | None = None,
    resources: dict | None = None,
) -> dg.Definitions:
    domains = domains if domains is not None else load_domains()
    assets = [a for d in domains for a in build_domain_assets(d)]
    jobs = [build_domain_job(d) for d in domains]
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        resources=resources if resources is not None else build_resources(env_name),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
