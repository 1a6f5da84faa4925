"""Told, not discovered: a webhook hears of revised releases, failed runs and hung runs.

Three run status sensors (Dagster's own mechanism; the daemon evaluates them) post to
``ESTAT_NOTIFY_WEBHOOK_URL``:

- ``notify_run_success_sensor``: a run whose ``<domain>/revisions`` step found cells of an earlier
  release revised or removed (its ``summary`` metadata) → event ``revision``;
- ``notify_run_failure_sensor``: a failed run → event ``run_failed`` with the first real cause
  (not for an attempt Dagster's run retries will repeat: the last attempt tells);
  or, when Dagster's run monitoring stopped it for exceeding its maximum runtime, ``run_hung``
  (and the revisions it had already written, if any);
- ``notify_run_canceled_sensor``: a run monitoring canceled for the same reason → ``run_hung``
  (a run a person canceled is not news).

How Dagster 1.13 marks a hung run: the daemon's run monitoring (``run_monitoring`` in
``dagster.yaml``: ``max_runtime_seconds`` for every run, or the run tag ``dagster/max_runtime``,
seconds, for one run) reports ``RUN_CANCELING`` with "Canceling due to exceeding maximum runtime
of N seconds.", terminates the run worker and reports ``RUN_FAILURE`` with "Exceeded maximum
runtime of N seconds." (or forcibly marks it failed). The run ends FAILURE, or CANCELED if the
worker's own cancellation lands last; :func:`exceeded_max_runtime` finds either message in the
run's event log, so both sensors recognise it.

A run is told once per event: Dagster may report two end events for one run (the daemon's
``RUN_FAILURE`` after terminating a hung run, then the worker's own), so the events posted are
kept in the run's ``estat/notified`` tag and not posted again.

Payloads are Slack-compatible (``{"text": ...}``, Slack mrkdwn links) with structured fields
beside the text: ``event``, ``citation`` (statsDataId, title, survey, UPDATED_DATE, e-Stat URL,
snapshot, credit), ``run`` (id, job, status, partition, UI link under ``ESTAT_DAGSTER_URL``) and
``revisions``/``error``/``max_runtime_seconds`` by event. A 5xx or unreachable webhook is retried,
then fails the sensor tick so the daemon tries the same run again on the next tick; a 4xx (a
wrong URL) is logged and the notification dropped. Without a webhook the sensors skip.
"""

import re
import time
from collections.abc import Mapping
from typing import Any

import dagster as dg
import httpx

from estat_assets import CREDIT_NOTICE
from estat_assets.defs.audit import failure_cause, launched_as, run_domain
from estat_assets.defs.partitions import DATASET_TAG
from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.lake.inventory import read_inventory
from estat_assets.lake.io_managers import LakeStorage, resolved
from estat_assets.lake.registry import read_registry
from estat_assets.lake.revisions import pct
from estat_assets.settings import Settings

WEBHOOK_VARIABLE = "ESTAT_NOTIFY_WEBHOOK_URL"
REVISIONS_LAYER = "revisions"
MAX_RUNTIME = re.compile(r"(?:exceeding|Exceeded) maximum runtime of (\d+(?:\.\d+)?) seconds")
MAX_ERROR_CHARS = 1500
WILL_RETRY_TAG = "dagster/will_retry"
RETRY_NUMBER_TAG = "dagster/retry_number"
NOTIFIED_TAG = "estat/notified"  # the events posted for a run (told once each)


class NotificationError(RuntimeError):
    """The webhook could not be reached (the sensor tick fails and is retried)."""


class WebhookNotifier(dg.ConfigurableResource):
    """Where notifications go: a webhook (``None``: nowhere) and the UI base for run links."""

    webhook_url: str | None = None
    dagster_url: str = "http://localhost:3000"
    timeout_seconds: float = 10.0
    attempts: int = 3
    retry_delay_seconds: float = 0.5

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url)

    def run_url(self, run_id: str) -> str:
        return f"{self.dagster_url.rstrip('/')}/runs/{run_id}"

    def send(self, payload: Mapping[str, Any], log=None) -> bool:
        """POST ``payload`` as JSON; True once accepted (2xx). Retries 5xx and network errors,
        then raises :class:`NotificationError`; a 4xx is logged and dropped (False)."""
        url = resolved(self.webhook_url)  # outside a run it may still be an EnvVar
        if not url:
            return False
        last = ""
        for attempt in range(max(1, self.attempts)):
            try:
                reply = httpx.post(url, json=dict(payload), timeout=self.timeout_seconds)
            except httpx.HTTPError as exc:
                last = type(exc).__name__  # never the URL: it is a credential
            else:
                if reply.status_code < 300:
                    return True
                if reply.status_code < 500:
                    if log is not None:
                        log.warning(
                            f"webhook refused the {payload.get('event')} notification: HTTP "
                            f"{reply.status_code} {reply.text[:200]!r}; dropped"
                        )
                    return False
                last = f"HTTP {reply.status_code}"
            time.sleep(self.retry_delay_seconds * 2**attempt)
        raise NotificationError(
            f"webhook unreachable for the {payload.get('event')} notification: {last}"
        )


def build_notifier(settings: Settings) -> WebhookNotifier:
    """The notifier of these settings; the webhook URL is read through ``EnvVar`` when it comes
    from the process environment (never shown in the UI), by value for a mapping (tests)."""
    url: Any = None
    if settings.has_secret(WEBHOOK_VARIABLE):
        url = (
            dg.EnvVar(WEBHOOK_VARIABLE)
            if settings.secrets_from_process
            else settings.secret_value(WEBHOOK_VARIABLE)
        )
    return WebhookNotifier(webhook_url=url, dagster_url=settings.dagster_url)


def send_test_notification(settings: Settings) -> bool:
    """Post a test message to the configured webhook (the runbook's check after setting it)."""
    notifier = build_notifier(settings)
    return notifier.send(
        {
            "text": ":white_check_mark: estat-lake can reach this webhook "
            f"(runs at {notifier.dagster_url}).",
            "event": "test",
        }
    )


# ---------------------------------------------------------------------- what a run says


def exceeded_max_runtime(instance: dg.DagsterInstance, run_id: str) -> float | None:
    """The limit (seconds) run monitoring stopped this run for, or ``None`` (it did not)."""
    kinds = {dg.DagsterEventType.RUN_CANCELING, dg.DagsterEventType.RUN_FAILURE}
    for record in instance.get_records_for_run(run_id, of_type=kinds).records:
        event = record.event_log_entry.dagster_event
        message = (event.message if event else None) or record.event_log_entry.user_message or ""
        found = MAX_RUNTIME.search(message)
        if found:
            return float(found.group(1))
    return None


def first_failure(instance: dg.DagsterInstance, run_id: str) -> str:
    """The first real cause of a failed run (a step's typed error, else the run's message)."""
    step = dg.DagsterEventType.STEP_FAILURE
    for record in instance.get_records_for_run(run_id, of_type=step).records:
        event = record.event_log_entry.dagster_event
        if event is not None:
            return failure_cause(event)[:MAX_ERROR_CHARS]
    run_failure = dg.DagsterEventType.RUN_FAILURE
    for record in instance.get_records_for_run(run_id, of_type=run_failure).records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.message:
            return event.message.strip()[:MAX_ERROR_CHARS]
    return "run failed"


def revision_summaries(instance: dg.DagsterInstance, run_id: str) -> list[dict[str, Any]]:
    """The ``summary`` of every ``<domain>/revisions`` materialization of a run, with its domain."""
    out = []
    kind = dg.DagsterEventType.ASSET_MATERIALIZATION
    for record in instance.get_records_for_run(run_id, of_type=kind).records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        mat = event.event_specific_data.materialization
        if mat.asset_key.path[-1] != REVISIONS_LAYER or "summary" not in mat.metadata:
            continue
        summary = dict(mat.metadata["summary"].value or {})
        if summary:
            out.append({**summary, "domain": mat.asset_key.path[0]})
    return out


def revises_past_values(summary: Mapping[str, Any]) -> bool:
    """A release worth telling: it revised or removed cells, and this is the first time it was
    compared (a rerun of the same release is not news)."""
    first = summary.get("first_report", True)
    return bool(first and (summary.get("revised") or summary.get("removed")))


# ---------------------------------------------------------------------- citations and payloads


def estat_url(dataset_id: str) -> str:
    return f"https://www.e-stat.go.jp/dbview?sid={dataset_id}"


def citation(
    iceberg: IcebergCatalogResource,
    lake: LakeStorage | None,
    dataset_id: str | None,
    domain: str | None,
    updated_date: str | None = None,
    snapshot_id: int | str | None = None,
) -> dict[str, Any] | None:
    """The table a notification is about: what the inventory (or the registry) knows of it."""
    if not dataset_id:
        return None
    row: dict[str, Any] = {}
    try:
        row = next(
            (
                r
                for r in read_inventory(iceberg.catalog(), iceberg.namespace)
                if r["dataset_id"] == dataset_id
            ),
            {},
        )
    except Exception:  # a notification must not fail for want of a courtesy
        row = {}
    title = row.get("title")
    if not title and lake is not None:
        try:
            title = (read_registry(lake.storage()).get(dataset_id) or {}).get("title")
        except Exception:
            title = None
    table = f"{iceberg.namespace}.{domain}" if domain else None
    snapshot = snapshot_id if snapshot_id is not None else row.get("table_snapshot_id")
    updated = updated_date or row.get("updated_date")
    return {
        "stats_data_id": dataset_id,
        "title": title,
        "survey": row.get("survey_name"),
        "statistics_name": row.get("statistics_name"),
        "organisation": row.get("organisation"),
        "updated_date": updated,
        "url": estat_url(dataset_id),
        "table": table,
        "snapshot_id": str(snapshot) if snapshot is not None else None,
        "release_tag": f"{dataset_id}@{updated}" if updated else None,
        "credit": CREDIT_NOTICE,
    }


def run_fields(run: dg.DagsterRun, notifier: WebhookNotifier) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "job": launched_as(run),
        "status": run.status.value,
        "partition": run.tags.get("dagster/partition"),
        "url": notifier.run_url(run.run_id),
        "tags": {k: v for k, v in run.tags.items() if k.startswith("estat/")},
        "retry_number": int(run.tags.get(RETRY_NUMBER_TAG) or 0),
        "will_retry": will_retry(run),
    }


def will_retry(run: dg.DagsterRun) -> bool:
    """Dagster's run retries (``run_retries`` in dagster.yaml) will launch this run again."""
    return (run.tags.get(WILL_RETRY_TAG) or "").lower() == "true"


def _cite_text(cite: Mapping[str, Any] | None) -> str:
    if not cite:
        return ""
    title = f" 「{cite['title']}」" if cite.get("title") else ""
    survey = f" ({cite['survey']})" if cite.get("survey") else ""
    return f"<{cite['url']}|{cite['stats_data_id']}>{title}{survey}"


def _run_link(run: Mapping[str, Any]) -> str:
    return f"<{run['url']}|run {run['run_id'][:8]}>"


def _largest_text(summary: Mapping[str, Any], top: int = 3) -> str:
    parts = []
    for r in list(summary.get("largest_relative_revisions") or [])[:top]:
        cell = " ".join(f"{k}={v}" for k, v in r["keys"].items() if k != "time")
        when = r.get("time_name") or r["keys"].get("time") or r.get("year")
        parts.append(
            f"{when} {cell}: {r['old_value_raw']} → {r['new_value_raw']} "
            f"({pct(r['relative_change'])})"
        )
    return "; ".join(parts)


def revision_payload(
    summary: Mapping[str, Any], cite: Mapping[str, Any] | None, run: Mapping[str, Any]
) -> dict[str, Any]:
    share = summary.get("revised_share") or 0.0
    text = (
        f":memo: e-Stat revised {_cite_text(cite)}: release {summary['updated_date']} "
        f"(previous {summary.get('previous_updated_date') or 'none'}) revised "
        f"{summary['revised']} cells ({share:.1%} of past values), added {summary['added']}, "
        f"removed {summary['removed']}."
    )
    largest = _largest_text(summary)
    if largest:
        text += f" Largest: {largest}."
    text += f" Snapshot {summary.get('snapshot_id')}. {_run_link(run)}"
    return {
        "text": text,
        "event": "revision",
        "citation": dict(cite or {}),
        "run": dict(run),
        "revisions": {k: v for k, v in summary.items() if k != "domain"},
    }


def failure_payload(
    error: str, cite: Mapping[str, Any] | None, run: Mapping[str, Any]
) -> dict[str, Any]:
    about = f" loading {_cite_text(cite)}" if cite else ""
    return {
        "text": f":x: Run failed{about} ({run['job']}): {error} {_run_link(run)}",
        "event": "run_failed",
        "citation": dict(cite or {}),
        "run": dict(run),
        "error": error,
    }


def hung_payload(
    limit: float, cite: Mapping[str, Any] | None, run: Mapping[str, Any]
) -> dict[str, Any]:
    about = f" loading {_cite_text(cite)}" if cite else ""
    return {
        "text": (
            f":hourglass: Run{about} ({run['job']}) exceeded its maximum runtime of "
            f"{limit:g} s and was stopped by run monitoring"
            + (" (Dagster retries it)" if run.get("will_retry") else "")
            + f". {_run_link(run)}"
        ),
        "event": "run_hung",
        "citation": dict(cite or {}),
        "run": dict(run),
        "max_runtime_seconds": limit,
    }


# ---------------------------------------------------------------------- the sensors


def notifications_for(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    notifier: WebhookNotifier,
    iceberg: IcebergCatalogResource,
    lake: LakeStorage | None,
) -> list[dict[str, Any]]:
    """Every notification a run that ended deserves, in the order they are sent."""
    out = []
    fields = run_fields(run, notifier)
    domain = run_domain(run)
    dataset_id = run.tags.get(DATASET_TAG) or run.tags.get("dagster/partition")
    for summary in revision_summaries(instance, run.run_id):
        if revises_past_values(summary):
            cite = citation(
                iceberg,
                lake,
                summary["dataset_id"],
                summary.get("domain"),
                summary["updated_date"],
                summary.get("snapshot_id"),
            )
            out.append(revision_payload(summary, cite, fields))
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return out
    limit = exceeded_max_runtime(instance, run.run_id)
    if limit is not None:
        out.append(hung_payload(limit, citation(iceberg, lake, dataset_id, domain), fields))
    elif run.status == dg.DagsterRunStatus.FAILURE and not will_retry(run):
        # a failure Dagster retries is told by the last attempt (a retry that succeeds is quiet)
        error = first_failure(instance, run.run_id)
        out.append(failure_payload(error, citation(iceberg, lake, dataset_id, domain), fields))
    return out


# (run status, sensor name part, what it tells)
NOTIFIED_STATUSES = (
    (dg.DagsterRunStatus.SUCCESS, "success", "releases that revised past values"),
    (
        dg.DagsterRunStatus.FAILURE,
        "failure",
        "failed runs, runs stopped for exceeding their maximum runtime, and revisions they wrote",
    ),
    (dg.DagsterRunStatus.CANCELED, "canceled", "runs canceled for exceeding their maximum runtime"),
)


def notified(run: dg.DagsterRun) -> set[str]:
    """The events already posted for ``run`` (its ``estat/notified`` tag)."""
    return {e for e in run.tags.get(NOTIFIED_TAG, "").split(",") if e}


def build_notify_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    def build(status: dg.DagsterRunStatus, part: str, what: str) -> dg.SensorDefinition:
        @dg.run_status_sensor(
            name=f"notify_run_{part}_sensor",
            run_status=status,
            minimum_interval_seconds=settings.audit_sensor_interval,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=f"Posts {what} to the webhook {WEBHOOK_VARIABLE} (skips without one).",
        )
        def notify(
            context: dg.RunStatusSensorContext,
            notifier: WebhookNotifier,
            iceberg: IcebergCatalogResource,
            lake: LakeStorage,
        ):
            if not notifier.configured:
                return dg.SkipReason(f"{WEBHOOK_VARIABLE} is not set: no notifications")
            run = context.dagster_run
            payloads = notifications_for(context.instance, run, notifier, iceberg, lake)
            current = context.instance.get_run_by_id(run.run_id) or run
            sent = notified(current)
            for payload in payloads:
                if payload["event"] in sent:  # a second end event of the same run
                    context.log.info(f"run {run.run_id}: {payload['event']} already sent")
                elif notifier.send(payload, context.log):
                    sent.add(payload["event"])
                    tag = {NOTIFIED_TAG: ",".join(sorted(sent))}
                    context.instance.add_run_tags(run.run_id, tag)
                    context.log.info(f"run {run.run_id}: sent {payload['event']} notification")
            return None

        return notify

    return [build(*spec) for spec in NOTIFIED_STATUSES]
