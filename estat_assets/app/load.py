"""Load datasets: real Dagster runs, through the daemon when one is running, in-process otherwise.

A load is one run of ``<domain>_job`` per dataset (the whole table, or some years with the
``estat/years`` tag). When a Dagster webserver answers at ``LakeContext.dagster_url`` and its
daemon is healthy, the runs are submitted with GraphQL ``launchRun`` (the daemon's queue, pools
and audit sensors handle them; the code location is reloaded first when the domain's job is new)
and their ids come back at once. Otherwise each run executes in this process
(``runner.run_load``), one after the other, with progress. Every item says its run id, its
outcome and, for a failure, the first real cause.

``load_status`` answers for run ids (or the latest runs of datasets) from the lake's Dagster
instance and ``estat.ingestion_runs``, whoever launched them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from estat_assets.app.citation import Citation, cite
from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError, app_error

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
GRAPHQL_TIMEOUT = 20.0


@dataclass
class LoadItem:
    stats_data_id: str
    domain: str
    years: list[str] | None  # None: the whole table
    via: str  # in_process | daemon
    status: str = "pending"  # pending | queued | started | success | failure | canceled
    run_id: str | None = None
    rows_in_lake: int | None = None
    rows_loaded: int | None = None
    quarantined: int | None = None
    checks_passed: int | None = None
    checks_warned: int | None = None
    checks_failed: int | None = None
    error: str | None = None
    seconds: float | None = None
    citation: Citation | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["citation"] = self.citation.to_dict() if self.citation else None
        return out


@dataclass
class LoadAnswer:
    mode: str  # in_process | daemon | in_process_background
    items: list[LoadItem]
    elapsed_seconds: float = 0.0
    ticket: str | None = None
    dagster_url: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[LoadItem]:
        return [i for i in self.items if i.status in ("failure", "canceled")]

    @property
    def done(self) -> bool:
        return all(i.status in ("success", "failure", "canceled") for i in self.items)

    @property
    def total_rows(self) -> int:
        return sum(i.rows_in_lake or 0 for i in self.items if i.status == "success")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "ticket": self.ticket,
            "dagster_url": self.dagster_url,
            "done": self.done,
            "run_ids": [i.run_id for i in self.items if i.run_id],
            "items": [i.to_dict() for i in self.items],
            "failures": [f"{i.domain} {i.stats_data_id}: {i.error}" for i in self.failures],
            "total_rows_in_lake": self.total_rows,
            "elapsed_seconds": round(self.elapsed_seconds, 2),
            "notes": self.notes,
            "citations": [i.citation.to_dict() for i in self.items if i.citation],
        }


# -------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Planned:
    domain: str
    dataset_id: str
    years: tuple[str, ...] | None
    allow_shrink: bool = False


def plan(
    ctx: LakeContext,
    dataset_ids: Sequence[str] = (),
    *,
    domain: str | None = None,
    years: str | None = None,
    allow_shrink: bool = False,
) -> tuple[list[Planned], list[str]]:
    """The loads a request names, and notes; a request that names nothing is an error."""
    from estat_assets.app.metadata import table_facts, years_of
    from estat_assets.estat.ids import check_dataset_id, parse_years

    try:
        wanted_years = parse_years(years) if years else None
        ids = [check_dataset_id(d) for d in dataset_ids]
    except Exception as exc:
        raise app_error(exc) from None
    specs = ctx.domains()
    if domain is not None and domain not in {s.name for s in specs}:
        raise AppError(
            "unknown_domain",
            f"no domain {domain!r}",
            "use one of: " + ", ".join(s.name for s in specs),
            retryable=True,
        )
    chosen: list[tuple[str, str]] = []
    if ids:
        for dataset_id in ids:
            owner = next((s.name for s in specs if dataset_id in s.datasets), None)
            if owner is None:
                raise AppError(
                    "not_in_lake",
                    f"no dataset {dataset_id} in the lake: nothing to load",
                    f"add it first: `estat-lake add {dataset_id}` (MCP: add_dataset)",
                    retryable=True,
                    context={"stats_data_id": dataset_id},
                )
            if domain is not None and owner != domain:
                raise AppError(
                    "filter_matches_nothing",
                    f"{dataset_id} is in domain {owner}, not {domain}",
                    f"drop --domain or use --domain {owner}",
                    retryable=True,
                )
            chosen.append((owner, dataset_id))
    elif domain is not None:
        chosen = [(domain, d) for s in specs if s.name == domain for d in s.datasets]
        if not chosen:
            raise AppError(
                "filter_matches_nothing",
                f"domain {domain} has no datasets",
                f"add one: `estat-lake add ID --domain {domain}`",
                retryable=True,
            )
    else:
        raise AppError(
            "nothing_to_load",
            "no dataset named",
            "name statsDataIds (or --domain D for all of a domain's datasets)",
            retryable=True,
        )
    notes: list[str] = []
    planned: list[Planned] = []
    for owner, dataset_id in chosen:
        if wanted_years is None:
            planned.append(Planned(owner, dataset_id, None, allow_shrink))
            continue
        available = years_of(table_facts(ctx, dataset_id, owner, english=False).axes)
        present = [y for y in wanted_years if y in available] if available else list(wanted_years)
        missing = [y for y in wanted_years if y not in present]
        if not present:
            raise AppError(
                "filter_matches_nothing",
                f"{dataset_id} has no year {', '.join(wanted_years)}: nothing to load "
                f"(its years: {_span(available)})",
                "pick years from the table's time axis (`estat-lake describe ID` lists them)",
                retryable=True,
                context={"stats_data_id": dataset_id, "years": available},
            )
        if missing:
            notes.append(f"{dataset_id}: no year {', '.join(missing)} in the table; skipped")
        planned.append(Planned(owner, dataset_id, tuple(present), allow_shrink))
    return planned, notes


def _span(years: list[str]) -> str:
    if not years:
        return "none"
    if len(years) > 6:
        return f"{years[0]}–{years[-1]} ({len(years)} years)"
    return ", ".join(years)


# ----------------------------------------------------------------------------- the daemon


class Webserver:
    """The Dagster webserver's GraphQL API (only what ``load`` needs)."""

    def __init__(self, url: str, timeout: float = GRAPHQL_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            resp = httpx.post(
                f"{self.url}/graphql",
                json={"query": query, "variables": variables or {}},
                timeout=self.timeout,
            )
            resp.raise_for_status()
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AppError(
                "dagster_unreachable",
                f"the Dagster webserver at {self.url} did not answer: {type(exc).__name__}",
                "start it (`make dev`) or drop --dagster-url to load in this process",
                retryable=True,
            ) from None
        if body.get("errors"):
            message = "; ".join(str(e.get("message")) for e in body["errors"])[:300]
            raise AppError("dagster_graphql", f"Dagster GraphQL error: {message}", "see the UI")
        return body["data"]

    def daemon_ready(self) -> tuple[bool, str]:
        """Does the webserver answer, and is the daemon that dequeues runs alive?"""
        try:
            data = self.gql(
                "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } }"
                " }"
            )
        except AppError as exc:
            return False, exc.message
        statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
        queue = [s for s in statuses if s["daemonType"] == "QUEUED_RUN_COORDINATOR"]
        if queue and not queue[0]["healthy"]:
            return False, f"the Dagster daemon behind {self.url} is not running"
        return True, f"Dagster webserver at {self.url}"

    def job_location(self, job: str) -> tuple[str, str] | None:
        data = self.gql(
            "{ repositoriesOrError { __typename ... on RepositoryConnection { nodes {"
            " name location { name } jobs { name } } } } }"
        )
        for repo in (data.get("repositoriesOrError") or {}).get("nodes") or []:
            if any(j["name"] == job for j in repo["jobs"]):
                return repo["location"]["name"], repo["name"]
        return None

    def reload_all(self) -> None:
        data = self.gql("{ workspaceOrError { ... on Workspace { locationEntries { name } } } }")
        for entry in (data.get("workspaceOrError") or {}).get("locationEntries") or []:
            self.gql(
                "mutation($n: String!) { reloadRepositoryLocation(repositoryLocationName: $n)"
                " { __typename } }",
                {"n": entry["name"]},
            )

    def launch(self, job: str, location: str, repository: str, tags: dict[str, str]) -> str:
        data = self.gql(
            """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
                __typename
                ... on LaunchRunSuccess { run { runId } }
                ... on RunConfigValidationInvalid { errors { message } }
                ... on PythonError { message }
                ... on Error { message }
            } }""",
            {
                "p": {
                    "selector": {
                        "repositoryLocationName": location,
                        "repositoryName": repository,
                        "jobName": job,
                    },
                    "runConfigData": {},
                    "executionMetadata": {
                        "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())]
                    },
                }
            },
        )
        out = data["launchRun"]
        if out["__typename"] != "LaunchRunSuccess":
            why = out.get("message") or "; ".join(e["message"] for e in out.get("errors") or [])
            raise AppError(
                "dagster_launch",
                f"Dagster did not launch {job}: {out['__typename']} {why}".strip(),
                "see the Dagster UI; the code location may need a reload",
            )
        return out["run"]["runId"]


def daemon_for(ctx: LakeContext) -> tuple[Webserver | None, str]:
    if not ctx.dagster_url:
        return None, "no --dagster-url given: loading in this process"
    web = Webserver(ctx.dagster_url)
    ok, why = web.daemon_ready()
    if not ok:
        return None, f"{why}: loading in this process"
    return web, f"submitting to the daemon through {why}"


def run_tags(p: Planned) -> dict[str, str]:
    """The tags of a daemon-launched run (no pid/host: the daemon's worker runs it)."""
    from estat_assets.defs.partitions import ALLOW_SHRINK_TAG, DATASET_TAG, DOMAIN_TAG, YEARS_TAG

    tags = {"dagster/partition": p.dataset_id, DOMAIN_TAG: p.domain, DATASET_TAG: p.dataset_id}
    if p.years:
        tags[YEARS_TAG] = ",".join(p.years)
    if p.allow_shrink:
        tags[ALLOW_SHRINK_TAG] = "true"
    return tags


def submit(ctx: LakeContext, web: Webserver, planned: list[Planned]) -> list[LoadItem]:
    from estat_assets.app.add import register_partition
    from estat_assets.defs.jobs import job_name

    items = []
    for p in planned:
        register_partition(ctx, p.domain, p.dataset_id)
        job = job_name(p.domain)
        where = web.job_location(job)
        if where is None:  # a domain that had no datasets when the code location loaded
            web.reload_all()
            where = web.job_location(job)
        if where is None:
            raise AppError(
                "dagster_job_missing",
                f"the webserver at {web.url} has no job {job}",
                "reload the code location in the UI (Deployment → Reload) and retry",
                retryable=True,
            )
        run_id = web.launch(job, where[0], where[1], run_tags(p))
        items.append(
            LoadItem(
                p.dataset_id,
                p.domain,
                list(p.years) if p.years else None,
                "daemon",
                status="queued",
                run_id=run_id,
            )
        )
        ctx.say(f"queued {p.domain} {p.dataset_id}: run {run_id}")
    return items


# --------------------------------------------------------------------------- in-process


def _outcome_item(ctx: LakeContext, p: Planned, outcome: Any, instance: Any = None) -> LoadItem:
    item = LoadItem(p.dataset_id, p.domain, list(p.years) if p.years else None, "in_process")
    item.run_id = outcome.run_id
    item.status = "success" if outcome.success else "failure"
    item.rows_in_lake = outcome.rows_written
    item.rows_loaded = outcome.rows_loaded
    item.quarantined = outcome.quarantined
    item.checks_passed = outcome.checks_passed
    item.checks_warned = outcome.checks_warned
    item.checks_failed = outcome.checks_failed
    item.error = outcome.error
    if not outcome.success and instance is not None:
        # the innermost real cause, not Dagster's "Error occurred while executing op"; if the
        # event log cannot say, the runner's line stands
        with contextlib.suppress(Exception):
            item.error = _failure_cause(instance, outcome.run_id)
    item.seconds = round(outcome.seconds, 2)
    if outcome.success:
        item.citation = _citation(ctx, p.domain, p.dataset_id)
    return item


def _citation(ctx: LakeContext, domain: str, dataset_id: str) -> Citation | None:
    from estat_assets.app.citation import current_snapshot_id

    table = ctx.table(domain)
    return cite(ctx, dataset_id, domain=domain, table=table, snapshot_id=current_snapshot_id(table))


def run_in_process(
    ctx: LakeContext,
    planned: list[Planned],
    on_item: Callable[[int, int, LoadItem], None] | None = None,
    on_start: Callable[[int, int, Planned], None] | None = None,
) -> list[LoadItem]:
    from estat_assets.definitions import build_definitions
    from estat_assets.runner import Load, open_instance, run_load

    ctx.ensure_estat()  # in-process runs fetch from e-Stat (or the bundled emulator)
    defs = build_definitions(ctx.settings)
    instance = open_instance(ctx.settings)
    items = []
    try:
        for i, p in enumerate(planned, start=1):
            if on_start:
                on_start(i, len(planned), p)
            try:
                outcome = run_load(
                    defs,
                    instance,
                    Load(p.domain, p.dataset_id, p.years, p.allow_shrink),
                    ctx.settings,
                    say=ctx.say,
                )
            except Exception as exc:
                error = app_error(exc)
                item = LoadItem(
                    p.dataset_id,
                    p.domain,
                    list(p.years) if p.years else None,
                    "in_process",
                    status="failure",
                    error=error.one_line(),
                )
            else:
                item = _outcome_item(ctx, p, outcome, instance)
            items.append(item)
            if on_item:
                on_item(i, len(planned), item)
    finally:
        instance.dispose()
    return items


# ---------------------------------------------------------------------------- entry point

_BACKGROUND: dict[str, LoadAnswer] = {}
_BACKGROUND_LOCK = threading.Lock()


def load(
    ctx: LakeContext,
    dataset_ids: Sequence[str] = (),
    *,
    domain: str | None = None,
    years: str | None = None,
    allow_shrink: bool = False,
    wait: bool = True,
    on_item: Callable[[int, int, LoadItem], None] | None = None,
    on_start: Callable[[int, int, Planned], None] | None = None,
    first_run_wait: float = 20.0,
    follow: bool = False,
) -> LoadAnswer:
    """Load the named datasets; see the module docstring for daemon vs in-process.

    ``wait=False`` returns as soon as the runs are queued (daemon) or, in-process, once the first
    run has an id (the rest continue in a background thread; ``load_status(ticket=…)`` follows
    them). With ``wait=True`` an in-process load returns when every run has finished; a daemon
    load returns once its runs are queued, unless ``follow`` (then it polls ``wait_for``).
    """
    started = time.monotonic()
    planned, notes = plan(ctx, dataset_ids, domain=domain, years=years, allow_shrink=allow_shrink)
    web, why = daemon_for(ctx)
    notes.append(why)
    for note in notes:
        ctx.say(note)
    if web is not None:
        items = submit(ctx, web, planned)
        answer = LoadAnswer("daemon", items, time.monotonic() - started, None, web.url, notes)
        if follow:
            wait_for(ctx, answer)
            answer.elapsed_seconds = time.monotonic() - started
        return answer
    if wait:
        items = run_in_process(ctx, planned, on_item, on_start)
        return LoadAnswer("in_process", items, time.monotonic() - started, None, None, notes)
    ticket = uuid.uuid4().hex[:12]
    answer = LoadAnswer(
        "in_process_background",
        [
            LoadItem(p.dataset_id, p.domain, list(p.years) if p.years else None, "in_process")
            for p in planned
        ],
        0.0,
        ticket,
        None,
        notes,
    )
    with _BACKGROUND_LOCK:
        _BACKGROUND[ticket] = answer
    since = time.time()

    def work() -> None:
        def mark_started(i: int, n: int, p: Planned) -> None:
            answer.items[i - 1].status = "started"

        def finished(i: int, n: int, item: LoadItem) -> None:
            answer.items[i - 1] = item
            answer.elapsed_seconds = time.monotonic() - started

        run_in_process(ctx, planned, finished, mark_started)
        answer.elapsed_seconds = time.monotonic() - started

    threading.Thread(target=work, name=f"estat-load-{ticket}", daemon=True).start()
    deadline = time.monotonic() + first_run_wait
    while time.monotonic() < deadline:
        _fill_running_ids(ctx, answer, since)
        if answer.items[0].run_id or answer.items[0].status in ("success", "failure"):
            break
        time.sleep(0.5)
    return answer


def _fill_running_ids(ctx: LakeContext, answer: LoadAnswer, since: float) -> None:
    """Run ids of this process's in-process runs that started but have not finished."""
    pending = [i for i in answer.items if i.run_id is None and i.status == "started"]
    if not pending:
        return
    import dagster as dg

    from estat_assets.defs.partitions import DATASET_TAG
    from estat_assets.defs.reaper import PID_TAG
    from estat_assets.runner import open_instance

    instance = open_instance(ctx.settings)
    try:
        for item in pending:
            runs = instance.get_runs(
                filters=dg.RunsFilter(
                    tags={DATASET_TAG: item.stats_data_id, PID_TAG: str(os.getpid())},
                    created_after=_utc(since),
                ),
                limit=1,
            )
            if runs:
                item.run_id = runs[0].run_id
    finally:
        instance.dispose()


def _utc(seconds: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)


# --------------------------------------------------------------------------------- status


def _status_of_run(ctx: LakeContext, instance: Any, run_id: str) -> LoadItem:
    from estat_assets.defs.partitions import DATASET_TAG, DOMAIN_TAG, YEARS_TAG

    run = instance.get_run_by_id(run_id)
    if run is None:
        raise AppError(
            "unknown_run",
            f"no run {run_id} in the lake's Dagster instance",
            "use a run id returned by load (or see the Dagster UI)",
            context={"run_id": run_id},
        )
    dataset = run.tags.get(DATASET_TAG) or run.tags.get("dagster/partition") or ""
    domain = run.tags.get(DOMAIN_TAG) or ""
    years = run.tags.get(YEARS_TAG)
    item = LoadItem(dataset, domain, years.split(",") if years else None, "dagster")
    item.run_id = run_id
    item.status = run.status.value.lower()
    if item.status in ("not_started", "managed", "starting"):
        item.status = "queued" if item.status != "starting" else "started"
    record = instance.get_run_record_by_id(run_id)
    if record and record.start_time and record.end_time:
        item.seconds = round(record.end_time - record.start_time, 2)
    if item.status == "failure":
        item.error = _failure_cause(instance, run_id)
    if item.status == "success" and domain and dataset:
        row = ctx.inventory().get(dataset) or {}
        item.rows_in_lake = row.get("rows_stored")
        item.citation = _citation(ctx, domain, dataset)
    runs_row = _ingestion_row(ctx, run_id)
    if runs_row:
        item.rows_loaded = runs_row.get("table_rows")
        item.quarantined = runs_row.get("quarantined_rows")
        item.checks_passed = runs_row.get("checks_passed")
        item.checks_failed = runs_row.get("checks_failed")
        item.error = item.error or runs_row.get("error")
    return item


def _failure_cause(instance: Any, run_id: str) -> str:
    import dagster as dg

    from estat_assets.defs.audit import failure_cause

    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.STEP_FAILURE, limit=1
    ).records
    if records and records[0].event_log_entry.dagster_event is not None:
        return failure_cause(records[0].event_log_entry.dagster_event)
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_FAILURE, limit=1
    ).records
    if records:
        entry = records[0].event_log_entry
        message = (entry.dagster_event.message if entry.dagster_event else None) or entry.message
        return (message or "run failed").strip().splitlines()[0]
    return "run failed"


def _ingestion_row(ctx: LakeContext, run_id: str) -> dict[str, Any] | None:
    from pyiceberg.expressions import EqualTo

    from estat_assets.lake.runs import RUNS_TABLE
    from estat_assets.query.engine import load_arrow

    if ctx.table(RUNS_TABLE) is None:
        return None
    rows = load_arrow(
        ctx.catalog(), ctx.namespace, RUNS_TABLE, row_filter=EqualTo("run_id", run_id)
    ).to_pylist()
    return rows[0] if rows else None


def load_status(
    ctx: LakeContext,
    run_ids: Sequence[str] = (),
    *,
    dataset_ids: Sequence[str] = (),
    ticket: str | None = None,
    latest: int = 1,
) -> LoadAnswer:
    """Where runs are: by run id, by dataset (its ``latest`` runs) or by background ticket."""
    import dagster as dg

    from estat_assets.defs.partitions import DATASET_TAG
    from estat_assets.runner import open_instance

    started = time.monotonic()
    items: list[LoadItem] = []
    notes: list[str] = []
    mode = "status"
    if ticket is not None:
        with _BACKGROUND_LOCK:
            answer = _BACKGROUND.get(ticket)
        if answer is None:
            raise AppError(
                "unknown_ticket",
                f"no background load {ticket} in this server",
                "pass the run ids (or dataset ids) instead: tickets live as long as the server",
            )
        _fill_running_ids(ctx, answer, time.time() - 24 * 3600)
        return answer
    if not run_ids and not dataset_ids:
        raise AppError(
            "nothing_to_report",
            "no run id, dataset id or ticket given",
            "pass the run ids load returned, or dataset ids",
            retryable=True,
        )
    instance = open_instance(ctx.settings)
    try:
        ids = list(run_ids)
        for dataset_id in dataset_ids:
            runs = instance.get_runs(
                filters=dg.RunsFilter(tags={DATASET_TAG: dataset_id}), limit=max(1, latest)
            )
            if not runs:
                notes.append(f"{dataset_id}: no runs yet")
            ids += [r.run_id for r in runs if r.run_id not in ids]
        for run_id in ids:
            items.append(_status_of_run(ctx, instance, run_id))
    finally:
        instance.dispose()
    return LoadAnswer(mode, items, time.monotonic() - started, None, ctx.dagster_url, notes)


def wait_for(
    ctx: LakeContext,
    answer: LoadAnswer,
    on_change: Callable[[LoadItem], None] | None = None,
    every: float = 2.0,
    timeout: float | None = None,
) -> LoadAnswer:
    """Poll the runs of ``answer`` until every one has finished (daemon loads)."""
    started = time.monotonic()
    seen: dict[str, str] = {}
    while True:
        ids = [i.run_id for i in answer.items if i.run_id]
        status = load_status(ctx, ids)
        by_id = {i.run_id: i for i in status.items}
        answer.items = [by_id.get(i.run_id, i) for i in answer.items]
        for item in answer.items:
            if item.run_id and seen.get(item.run_id) != item.status:
                seen[item.run_id] = item.status
                if on_change:
                    on_change(item)
        if answer.done:
            return answer
        if timeout is not None and time.monotonic() - started > timeout:
            answer.notes.append(f"still running after {timeout:.0f} s: see load_status")
            return answer
        time.sleep(every)
