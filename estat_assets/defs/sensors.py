"""Release sensors: one per domain, polling e-Stat for new and revised tables.

The logic is ``estat/releases.py``; here it meets Dagster: new tables become dataset partitions
and every new release one run of the domain job, with the release in its tags and run key. If
e-Stat cannot be reached the tick is skipped with the reason and the cursor is kept, so nothing
is lost. Interval and window come from the settings (``ESTAT_RELEASE_SENSOR_INTERVAL``,
``ESTAT_RELEASE_WINDOW_DAYS``). The sensor also adds the datasets a domain declares (or had
added with ``estat-lake add``) as partitions, so the registry and the instance never drift.
"""

import dagster as dg
import httpx

from estat_assets.defs.partitions import dataset_dimension, domain_partitions
from estat_assets.defs.resources import EStatResource, IcebergCatalogResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.client import RetryConfig
from estat_assets.estat.errors import EStatError
from estat_assets.estat.releases import dump_cursor, evaluate_releases, load_cursor
from estat_assets.lake.inventory import loaded_release_lookup
from estat_assets.settings import Settings

# The sensor should give up quickly when e-Stat is down: the next tick tries again.
SENSOR_RETRY = RetryConfig(attempts=2, base_delay=0.5, max_delay=2.0)
SENSOR_TIMEOUT_SECONDS = 20.0


def sensor_name(domain: str) -> str:
    return f"{domain}_release_sensor"


def build_release_sensor(
    domain: DomainSpec, job: dg.JobDefinition, settings: Settings
) -> dg.SensorDefinition:
    name = domain.name
    window_days = settings.release_window_days

    @dg.sensor(
        name=sensor_name(name),
        job=job,
        minimum_interval_seconds=settings.release_sensor_interval,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Polls e-Stat getStatsList (updatedDate window {window_days} days) for the surveys "
            f"and datasets of {name}; adds new tables as partitions and loads each new release "
            "once."
        ),
    )
    def release_sensor(
        context: dg.SensorEvaluationContext,
        estat: EStatResource,
        iceberg: IcebergCatalogResource,
    ):
        cursor = load_cursor(context.cursor)
        known = context.instance.get_dynamic_partitions(dataset_dimension(name))
        try:
            client = estat.client(retry=SENSOR_RETRY, concurrency=1, timeout=SENSOR_TIMEOUT_SECONDS)
            with client:
                decision = evaluate_releases(
                    domain.surveys,
                    domain.datasets,
                    client,
                    cursor,
                    known,
                    loaded_release=loaded_release_lookup(iceberg.catalog, iceberg.namespace),
                    window_days=window_days,
                )
        except (EStatError, httpx.HTTPError) as exc:
            reason = f"e-Stat unavailable, cursor kept: {type(exc).__name__}: {exc}"
            context.log.warning(reason)
            return dg.SkipReason(reason[:1000])
        for note in decision.notes:
            context.log.info(note)
        missing = sorted(set(domain.datasets) - set(known) - set(decision.new_datasets))
        new = [*decision.new_datasets, *missing]
        requests = [domain_partitions(name).build_add_request(new)] if new else []
        run_requests = [
            dg.RunRequest(run_key=run.run_key, partition_key=run.dataset_id, tags=run.tags)
            for run in decision.runs
        ]
        skip = None
        if not run_requests and not requests:
            skip = f"no new or revised tables for {name} ({len(decision.cursor['tables'])} known)"
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=requests,
            cursor=dump_cursor(decision.cursor),
            skip_reason=skip,
        )

    return release_sensor
