"""Release sensors: one per domain, polling e-Stat for new and revised tables.

Each tick asks ``getStatsList`` for the tables of the domain's surveys (``statsCode``, plus the
survey of every declared dataset) updated in a rolling ``updatedDate`` window, and compares each
table's ``(UPDATED_DATE, OVERALL_TOTAL_NUMBER)`` with the JSON cursor:

- a table never seen (a new statsDataId of a watched survey, or a dataset just added to
  ``domains.yaml``) adds its ``dataset`` partition and its ``year`` partitions (from getMetaInfo's
  time codes, those with data) and requests one run per (dataset, year);
- a table whose UPDATED_DATE or OVERALL_TOTAL_NUMBER changed requests runs for all its years (new
  years are added first);
- a table already loaded before the sensor ever ran is taken as the baseline when
  ``estat.dataset_inventory`` says the lake holds that very release.

Run keys are ``<dataset>|<year>|<UPDATED_DATE>|<OVERALL_TOTAL_NUMBER>``: each release of a slice
runs once, whatever the number of ticks that see it. If e-Stat cannot be reached the tick is
skipped with the reason and the cursor is kept, so nothing is lost.

Settings (read when the definitions load): ``ESTAT_RELEASE_SENSOR_INTERVAL`` (seconds between
ticks, default 3600) and ``ESTAT_RELEASE_WINDOW_DAYS`` (how far back ``updatedDate`` looks,
default 7; the window always reaches back to the day before the last successful poll, at most
``MAX_WINDOW_DAYS``).
"""

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import dagster as dg
import httpx

from estat_assets.defs.partitions import dataset_dimension, partition_key, year_dimension
from estat_assets.defs.resources import EStatResource, IcebergCatalogResource
from estat_assets.domains import DomainSpec
from estat_assets.estat.client import EStatClient, RetryConfig
from estat_assets.estat.errors import EStatError
from estat_assets.estat.models import TableInfo
from estat_assets.estat.slicing import time_filter, year_slices

INTERVAL_ENV = "ESTAT_RELEASE_SENSOR_INTERVAL"
WINDOW_ENV = "ESTAT_RELEASE_WINDOW_DAYS"
DEFAULT_INTERVAL_SECONDS = 3600
DEFAULT_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = 366
CURSOR_VERSION = 1
JST = timezone(timedelta(hours=9))  # e-Stat's dates are Japanese dates

# The sensor should give up quickly when e-Stat is down: the next tick tries again.
SENSOR_RETRY = RetryConfig(attempts=2, base_delay=0.5, max_delay=2.0)
SENSOR_TIMEOUT_SECONDS = 20.0


def sensor_name(domain: str) -> str:
    return f"{domain}_release_sensor"


def release_run_key(dataset_id: str, year: str, updated_date: str | None, total: int | None) -> str:
    return f"{dataset_id}|{year}|{updated_date or ''}|{total if total is not None else ''}"


def today_jst() -> date:
    return datetime.now(JST).date()


def update_window(today: date, window_days: int, last_poll: str | None) -> str:
    """``updatedDate=yyyymmdd-yyyymmdd``: the last ``window_days`` days, and since the last poll."""
    start = today - timedelta(days=max(0, window_days))
    if last_poll:
        with contextlib.suppress(ValueError):
            start = min(start, date.fromisoformat(last_poll) - timedelta(days=1))
    start = max(start, today - timedelta(days=MAX_WINDOW_DAYS))
    return f"{start:%Y%m%d}-{today:%Y%m%d}"


def load_cursor(raw: str | None) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        data = {}
    if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
        data = {}
    data.setdefault("version", CURSOR_VERSION)
    data.setdefault("tables", {})
    data.setdefault("last_poll", None)
    return data


def dump_cursor(cursor: dict[str, Any]) -> str:
    return json.dumps(cursor, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass
class ReleaseDecision:
    """What one tick decided, before it becomes a ``SensorResult``."""

    cursor: dict[str, Any]
    new_datasets: list[str] = field(default_factory=list)
    new_years: list[str] = field(default_factory=list)
    runs: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)  # ds, yr, key
    notes: list[str] = field(default_factory=list)


def _state(info: TableInfo) -> dict[str, Any]:
    return {
        "updated_date": info.updated_date,
        "overall_total_number": info.overall_total_number,
        "survey": info.stat_code,
    }


def evaluate_releases(
    domain: DomainSpec,
    client: EStatClient,
    cursor: dict[str, Any],
    known_datasets: Iterable[str],
    known_years: Iterable[str],
    loaded_release: Callable[[str], tuple[str | None, int | None] | None] = lambda _: None,
    today: date | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> ReleaseDecision:
    """Poll e-Stat and compare with ``cursor``. Raises EStatError/httpx errors if e-Stat is down."""
    today = today or today_jst()
    tables: dict[str, Any] = dict(cursor["tables"])
    known = set(known_datasets)
    years_known = set(known_years)
    decision = ReleaseDecision(cursor={**cursor, "tables": tables})
    window = update_window(today, window_days, cursor.get("last_poll"))

    surveys = list(dict.fromkeys([*domain.surveys, *_cursor_surveys(domain, tables)]))
    listed: dict[str, TableInfo] = {}
    for code in surveys:
        for info in client.iter_stats_list(statsCode=code, updatedDate=window):
            if info.id:
                listed.setdefault(info.id, info)
    # Declared datasets the lake has never registered: load them even if not recently updated.
    for dataset_id in domain.datasets:
        if dataset_id not in known and dataset_id not in tables and dataset_id not in listed:
            listed[dataset_id] = TableInfo(id=dataset_id)

    for dataset_id in sorted(listed):
        info = listed[dataset_id]
        previous = tables.get(dataset_id)
        if previous is None and dataset_id in known and info.updated_date:
            loaded = loaded_release(dataset_id)
            if loaded == (info.updated_date, info.overall_total_number):
                tables[dataset_id] = _state(info)
                decision.notes.append(f"{dataset_id}: already loaded ({info.updated_date})")
                continue
        elif previous is not None:
            same = (
                previous.get("updated_date") == info.updated_date
                and previous.get("overall_total_number") == info.overall_total_number
            )
            if same:
                continue
        reason = "new" if dataset_id not in known else "revised"
        try:
            meta, _ = client.get_meta_info(dataset_id)
        except EStatError as exc:
            if exc.retryable:
                raise
            # e.g. a listed table without data: remember this release, do not retry every tick
            tables[dataset_id] = {**_state(info), "error": f"{type(exc).__name__}: {exc}"[:300]}
            decision.notes.append(f"{dataset_id}: skipped, {type(exc).__name__}: {exc}")
            continue
        table = meta.table
        updated = table.updated_date or info.updated_date
        total = (
            table.overall_total_number
            if table.overall_total_number is not None
            else info.overall_total_number
        )
        # Only the years with data (one cntGetFlg request each), as `estat-lake register` does:
        # e-Stat's CLASS_INF often lists time codes the table has no value for.
        years = [
            y
            for y, codes in sorted(year_slices(meta).items())
            if client.count(dataset_id, time_filter(meta, codes)) > 0
        ]
        if dataset_id not in known:
            decision.new_datasets.append(dataset_id)
            known.add(dataset_id)
        fresh = [y for y in years if y not in years_known]
        decision.new_years.extend(fresh)
        years_known.update(fresh)
        for year in years:
            tags = {
                "estat/dataset_id": dataset_id,
                "estat/year": year,
                "estat/updated_date": str(updated or ""),
                "estat/overall_total_number": str(total if total is not None else ""),
                "estat/release": reason,
            }
            decision.runs.append(
                (dataset_id, year, release_run_key(dataset_id, year, updated, total), tags)
            )
        tables[dataset_id] = {
            "updated_date": updated,
            "overall_total_number": total,
            "survey": table.stat_code or info.stat_code,
        }
        decision.notes.append(f"{dataset_id}: {reason} release {updated}, {len(years)} years")
    decision.cursor["last_poll"] = today.isoformat()
    return decision


def _cursor_surveys(domain: DomainSpec, tables: dict[str, Any]) -> list[str]:
    return [
        str(tables[d]["survey"]) for d in domain.datasets if d in tables and tables[d].get("survey")
    ]


def sensor_client(estat: EStatResource) -> EStatClient:
    """The resource's client with a short retry budget (a tick must finish well within 60 s)."""
    app_id = estat.app_id.get_value() if isinstance(estat.app_id, dg.EnvVar) else estat.app_id
    return EStatClient(
        app_id or "",
        estat.base_url,
        timeout=min(estat.timeout_seconds, SENSOR_TIMEOUT_SECONDS),
        concurrency=1,
        rate_limit=estat.rate_limit_per_second,
        retry=SENSOR_RETRY,
        page_size=estat.page_size,
    )


def _env_int(name: str, default: int, environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    try:
        return int(env.get(name) or default)
    except ValueError:
        return default


def build_release_sensor(
    domain: DomainSpec,
    job: Any,
    environ: dict[str, str] | None = None,
) -> dg.SensorDefinition:
    interval = _env_int(INTERVAL_ENV, DEFAULT_INTERVAL_SECONDS, environ)
    window_days = _env_int(WINDOW_ENV, DEFAULT_WINDOW_DAYS, environ)
    name = domain.name

    @dg.sensor(
        name=sensor_name(name),
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Polls e-Stat getStatsList (updatedDate window {window_days} days) for the surveys "
            f"and datasets of {name}; adds new datasets/years and runs each new release once."
        ),
    )
    def release_sensor(
        context: dg.SensorEvaluationContext,
        estat: EStatResource,
        iceberg: IcebergCatalogResource,
    ):
        cursor = load_cursor(context.cursor)
        instance = context.instance
        known = instance.get_dynamic_partitions(dataset_dimension(name))
        years = instance.get_dynamic_partitions(year_dimension(name))
        from estat_assets.defs.inventory import loaded_release_lookup

        try:
            with sensor_client(estat) as client:
                decision = evaluate_releases(
                    domain,
                    client,
                    cursor,
                    known,
                    years,
                    loaded_release=loaded_release_lookup(iceberg),
                    window_days=window_days,
                )
        except (EStatError, httpx.HTTPError) as exc:
            reason = f"e-Stat unavailable, cursor kept: {type(exc).__name__}: {exc}"
            context.log.warning(reason)
            return dg.SkipReason(reason[:1000])
        for note in decision.notes:
            context.log.info(note)
        requests = []
        if decision.new_datasets:
            requests.append(
                dg.DynamicPartitionsDefinition(name=dataset_dimension(name)).build_add_request(
                    decision.new_datasets
                )
            )
        if decision.new_years:
            requests.append(
                dg.DynamicPartitionsDefinition(name=year_dimension(name)).build_add_request(
                    sorted(set(decision.new_years))
                )
            )
        run_requests = [
            dg.RunRequest(
                run_key=key,
                partition_key=str(partition_key(dataset_id, year)),
                tags=tags,
            )
            for dataset_id, year, key, tags in decision.runs
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
