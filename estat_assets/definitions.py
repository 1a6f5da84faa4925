"""The Dagster code location. The environment is chosen when definitions load, not at import."""

from __future__ import annotations

import dagster as dg

from estat_assets.defs.assets import build_domain_assets
from estat_assets.defs.audit import build_audit_sensors
from estat_assets.defs.jobs import build_domain_job, job_name
from estat_assets.defs.maintenance import lake_maintenance_job, lake_maintenance_schedule
from estat_assets.defs.resources import build_resources
from estat_assets.defs.sensors import build_release_sensor
from estat_assets.domains import DomainSpec, load_domains


def build_definitions(
    env_name: str | None = None,
    domains: tuple[DomainSpec, ...] | None = None,
    resources: dict | None = None,
    environ: dict[str, str] | None = None,
) -> dg.Definitions:
    domains = domains if domains is not None else load_domains()
    assets = [a for d in domains for a in build_domain_assets(d)]
    jobs = {job_name(d.name): build_domain_job(d) for d in domains}
    sensors = [build_release_sensor(d, jobs[job_name(d.name)], environ) for d in domains]
    return dg.Definitions(
        assets=assets,
        jobs=[*jobs.values(), lake_maintenance_job],
        sensors=[*sensors, *build_audit_sensors(environ)],
        schedules=[lake_maintenance_schedule],
        resources=resources if resources is not None else build_resources(env_name),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
