"""The Dagster code location. Settings are read when definitions load, never at import.

Only domains with datasets (declared in ``domains.yaml`` or added with ``estat-lake add``) or
watched surveys produce assets and sensors, so the catalog shows what can hold data. Every job
runs its steps in one process (``in_process_executor``): a load is a few light steps, and a
process per step cost seconds each.
"""

from __future__ import annotations

import dagster as dg

from estat_assets.arrow_memory import use_arrow_memory_pool
from estat_assets.defs.assets import build_domain_assets
from estat_assets.defs.audit import build_audit_sensors
from estat_assets.defs.jobs import build_domain_job, job_name
from estat_assets.defs.maintenance import build_maintenance
from estat_assets.defs.notify import build_notifier, build_notify_sensors
from estat_assets.defs.reaper import build_reaper_sensor
from estat_assets.defs.resources import build_resources
from estat_assets.defs.sensors import build_release_sensor
from estat_assets.domains import DomainSpec, load_domains, with_registered
from estat_assets.lake.inventory import read_inventory
from estat_assets.lake.registry import read_registry, registered_by_domain
from estat_assets.settings import Settings


def active_domains(settings: Settings, resources: dict) -> tuple[DomainSpec, ...]:
    """The configured domains with their added datasets and known titles; those with nothing to
    load dropped. Titles come from the lake's registry and inventory (no e-Stat request)."""
    domains = load_domains(settings.domains_file)
    storage = resources["lake"].storage()
    added = registered_by_domain(storage)
    titles = {k: v.get("title") or "" for k, v in read_registry(storage).items()}
    titles.update(known_titles(resources["iceberg"]))
    active = with_registered(domains, added, titles)
    return tuple(d for d in active if d.datasets or d.surveys)


def known_titles(iceberg) -> dict[str, str]:
    """dataset → title from ``estat.dataset_inventory`` (empty before the first load)."""
    try:
        rows = read_inventory(iceberg.catalog(), iceberg.namespace)
    except Exception:  # no catalog yet (or unreachable): titles are a courtesy, never a failure
        return {}
    return {r["dataset_id"]: r.get("title") or "" for r in rows}


def build_definitions(
    settings: Settings | None = None,
    domains: tuple[DomainSpec, ...] | None = None,
    resources: dict | None = None,
) -> dg.Definitions:
    settings = settings or Settings.from_env()
    use_arrow_memory_pool(settings.arrow_memory_pool)  # the process that runs loads builds these
    resources = resources if resources is not None else build_resources(settings)
    domains = domains if domains is not None else active_domains(settings, resources)
    assets = [a for d in domains for a in build_domain_assets(d, settings)]
    jobs = {job_name(d.name): build_domain_job(d) for d in domains}
    sensors = [build_release_sensor(d, jobs[job_name(d.name)], settings) for d in domains]
    if domains:
        sensors.append(analytics_automation(domains))
    maintenance_job, maintenance_schedule = build_maintenance(settings)
    return dg.Definitions(
        assets=assets,
        jobs=[*jobs.values(), maintenance_job],
        sensors=[
            *sensors,
            *build_audit_sensors(settings),
            build_reaper_sensor(settings),
            *build_notify_sensors(settings),
        ],
        schedules=[maintenance_schedule],
        resources={"notifier": build_notifier(settings), **resources},
        executor=dg.in_process_executor,
    )


def analytics_automation(domains: tuple[DomainSpec, ...]) -> dg.AutomationConditionSensorDefinition:
    """On by default: the analytics of a domain are recomputed after any of its datasets loads
    (their ``eager`` condition), without anyone switching Dagster's automation sensor on."""
    return dg.AutomationConditionSensorDefinition(
        "analytics_automation_sensor",
        target=dg.AssetSelection.groups(*(f"{d.name}_analytics" for d in domains)),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Recomputes a domain's analytics after any of its datasets is loaded.",
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
