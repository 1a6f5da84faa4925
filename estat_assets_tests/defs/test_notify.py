"""Notifications reach a real webhook on loopback: a revised release, a failed run, a hung run.

The sink is a tiny ``http.server`` started by each test. The run status sensors are evaluated on
the run's end event the way the daemon does (``build_run_status_sensor_context``); the hung run is
stopped by Dagster's own run monitoring: once by the daemon's ``check_run_timeout`` on a run
record (fast), once end to end by ``dagster-daemon run`` with ``run_monitoring`` and the run tag
``dagster/max_runtime`` (slow).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import httpx
import pytest
from dagster._core.test_utils import create_run_for_test
from dagster._daemon.monitoring.run_monitoring import check_run_timeout

from estat_assets.defs.notify import (
    NotificationError,
    WebhookNotifier,
    exceeded_max_runtime,
)
from estat_assets.domains import DomainSpec
from estat_assets_tests.harness import Lake, make_lake
from estat_assets_tests.servers import free_port
from estat_emulator import EmulatorServer, TableStore

RECORDED = "0000020202"  # 10 rows, UPDATED_DATE 2025-06-20
TITLE_PART = "自然環境"  # the TITLE of 0000020202: Ｂ　自然環境
DAGSTER_URL = "http://dagster.example:3000"
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Sink:
    """An HTTP server on loopback that records every JSON body POSTed to it and answers with
    the queued status codes (then 200)."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.received: list[dict] = []
        self.statuses = list(statuses)
        self.attempts = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.attempts += 1
                status = sink.statuses.pop(0) if sink.statuses else 200
                if status < 300:
                    sink.received.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"no")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/estat"

    def __enter__(self) -> Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[str]:
        return [p["event"] for p in self.received]


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


@pytest.fixture
def server():
    """An emulator of our own: these tests republish tables and inject faults."""
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as s:
        yield s


def lake_with(tmp_path, server, instance, sink: Sink | None) -> Lake:
    env = {"ESTAT_DAGSTER_URL": DAGSTER_URL}
    if sink is not None:
        env["ESTAT_NOTIFY_WEBHOOK_URL"] = sink.url
    spec = DomainSpec("population", datasets=(RECORDED,))
    return make_lake(tmp_path / "home", server, instance, domain=spec, **env)


def republish(server: EmulatorServer, **release) -> None:
    reply = httpx.post(
        f"{server.url}/_emulator/republish", json={"statsDataId": RECORDED, **release}, timeout=10
    )
    assert reply.status_code == 200, reply.text


END_EVENTS = {
    dg.DagsterRunStatus.SUCCESS: dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterRunStatus.FAILURE: dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterRunStatus.CANCELED: dg.DagsterEventType.RUN_CANCELED,
}
SENSORS = {
    dg.DagsterRunStatus.SUCCESS: "notify_run_success_sensor",
    dg.DagsterRunStatus.FAILURE: "notify_run_failure_sensor",
    dg.DagsterRunStatus.CANCELED: "notify_run_canceled_sensor",
}


def notify(lake: Lake, run_id: str):
    """What the daemon does once a run ended: the notify sensor of its end state."""
    instance = lake.instance
    run = instance.get_run_by_id(run_id)
    kind = END_EVENTS[run.status]
    end = instance.get_records_for_run(run_id, of_type=kind).records[-1]
    name = SENSORS[run.status]
    ctx = dg.build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=end.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={
            "lake": lake.resources["lake"],
            "iceberg": lake.resources["iceberg"],
            "notifier": lake.defs.resources["notifier"],
        },
    )
    return lake.defs.resolve_sensor_def(name)(ctx)


def test_a_revised_release_is_posted_with_its_citation_and_run_link(
    tmp_path, server, instance, sink
) -> None:
    lake = lake_with(tmp_path, server, instance, sink)
    first = lake.run(RECORDED)
    assert first.success
    notify(lake, first.run_id)
    assert sink.received == []  # a first release revises nothing

    republish(server, updated_date="2030-01-01", perturb=False)  # a new date, nothing else
    same = lake.run(RECORDED)
    assert same.success
    notify(lake, same.run_id)
    assert sink.received == []

    republish(server, updated_date="2030-02-01", revise={"time": ["1985100000"]})
    result = lake.run(RECORDED)
    assert result.success
    notify(lake, result.run_id)
    (payload,) = sink.received
    assert payload["event"] == "revision"
    text = payload["text"]
    assert "e-Stat revised <https://www.e-stat.go.jp/dbview?sid=0000020202|0000020202>" in text
    assert "release 2030-02-01 (previous 2030-01-01) revised 1 cells" in text
    assert f"<{DAGSTER_URL}/runs/{result.run_id}|run {result.run_id[:8]}>" in text
    cite = payload["citation"]
    assert cite["stats_data_id"] == RECORDED and TITLE_PART in (cite["title"] or "")
    assert cite["survey"] and cite["survey"] in text
    assert cite["updated_date"] == "2030-02-01"
    assert cite["url"] == "https://www.e-stat.go.jp/dbview?sid=0000020202"
    assert cite["release_tag"] == f"{RECORDED}@2030-02-01"
    tag = lake.iceberg().metadata.refs[f"{RECORDED}@2030-02-01"]
    assert cite["snapshot_id"] == str(tag.snapshot_id)
    assert "e-Stat" in cite["credit"]
    run = payload["run"]
    assert run["run_id"] == result.run_id and run["status"] == "SUCCESS"
    assert run["url"] == f"{DAGSTER_URL}/runs/{result.run_id}"
    assert run["partition"] == RECORDED and run["job"] == "population_job"
    revisions = payload["revisions"]
    assert (revisions["revised"], revisions["added"], revisions["removed"]) == (1, 0, 0)
    assert revisions["per_year"] == {"1985": {"revised": 1, "added": 0, "removed": 0}}
    (largest,) = revisions["largest_relative_revisions"]
    assert largest["keys"]["time"] == "1985100000"
    assert f"{largest['old_value_raw']} → {largest['new_value_raw']}" in text

    rerun = lake.run(RECORDED)  # the same release loaded again: not news
    assert rerun.success
    notify(lake, rerun.run_id)
    assert len(sink.received) == 1


def test_a_failed_run_is_posted_with_its_first_real_cause(tmp_path, server, instance, sink):
    lake = lake_with(tmp_path, server, instance, sink)
    assert lake.run(RECORDED).success
    server.faults.add(
        {"kind": "http_error", "status": 503, "endpoint": "getStatsData", "times": None}
    )
    result = lake.run(RECORDED)
    assert not result.success
    notify(lake, result.run_id)
    (payload,) = sink.received
    assert payload["event"] == "run_failed"
    assert "503" in payload["error"] and "Exceeded max_retries" not in payload["error"]
    assert payload["text"].startswith(":x: Run failed loading <https://www.e-stat.go.jp/")
    assert payload["run"]["status"] == "FAILURE"
    assert payload["run"]["url"] == f"{DAGSTER_URL}/runs/{result.run_id}"
    assert payload["citation"]["updated_date"] == "2025-06-20"  # the release the lake holds
    assert TITLE_PART in payload["citation"]["title"]
    assert (payload["run"]["retry_number"], payload["run"]["will_retry"]) == (0, False)
    # an attempt Dagster's run retries will repeat is not told: its last attempt is
    instance.add_run_tags(result.run_id, {"dagster/will_retry": "true"})
    notify(lake, result.run_id)
    assert len(sink.received) == 1


def test_a_run_stopped_by_run_monitoring_is_posted_as_hung(tmp_path, server, instance, sink):
    """The daemon's own ``check_run_timeout`` stops a started run older than its limit (the
    ``dagster/max_runtime`` tag); the failure and canceled sensors both recognise it."""
    lake = lake_with(tmp_path, server, instance, sink)
    assert lake.run(RECORDED).success
    tags = {
        "dagster/partition": RECORDED,
        "estat/dataset_id": RECORDED,
        "estat/domain": "population",
        "dagster/max_runtime": "1",
    }
    run = create_run_for_test(instance, job_name="population_job", tags=tags)
    instance.handle_new_event(
        dg.EventLogEntry(
            error_info=None,
            level=logging.DEBUG,
            user_message="",
            run_id=run.run_id,
            timestamp=time.time() - 5,
            dagster_event=dg.DagsterEvent(
                event_type_value=dg.DagsterEventType.RUN_START.value, job_name="population_job"
            ),
        )
    )
    record = instance.get_run_record_by_id(run.run_id)
    assert record.dagster_run.status == dg.DagsterRunStatus.STARTED
    check_run_timeout(instance, record, logging.getLogger("test"), 21600.0)
    ended = instance.get_run_by_id(run.run_id)
    assert ended.status == dg.DagsterRunStatus.FAILURE
    assert exceeded_max_runtime(instance, run.run_id) == 1.0
    notify(lake, run.run_id)
    (payload,) = sink.received
    assert payload["event"] == "run_hung" and payload["max_runtime_seconds"] == 1.0
    assert "exceeded its maximum runtime of 1 s" in payload["text"]
    assert payload["citation"]["stats_data_id"] == RECORDED
    assert payload["run"]["url"] == f"{DAGSTER_URL}/runs/{run.run_id}"
    # The worker's own end event after the daemon's (a second RUN_FAILURE): told once
    instance.report_run_failed(instance.get_run_by_id(run.run_id), "the worker's own failure")
    assert (
        len(instance.get_records_for_run(run.run_id, of_type=END_EVENTS[ended.status]).records) == 2
    )
    notify(lake, run.run_id)
    assert [p["event"] for p in sink.received] == ["run_hung"]
    assert instance.get_run_by_id(run.run_id).tags["estat/notified"] == "run_hung"
    # An ordinary failure is not a hung run.
    assert exceeded_max_runtime(instance, lake.run("0000020202", years="abc").run_id) is None


def test_a_flaky_webhook_is_retried_a_wrong_one_dropped_a_dead_one_raises() -> None:
    payload = {"text": "hello", "event": "revision"}
    with Sink(statuses=(503, 502)) as flaky:
        notifier = WebhookNotifier(webhook_url=flaky.url, retry_delay_seconds=0.01)
        assert notifier.send(payload) is True
        assert flaky.attempts == 3 and flaky.received == [payload]
    with Sink(statuses=(404,)) as wrong:
        notifier = WebhookNotifier(webhook_url=wrong.url, retry_delay_seconds=0.01)
        assert notifier.send(payload) is False
        assert wrong.attempts == 1 and wrong.received == []
    dead = WebhookNotifier(
        webhook_url=f"http://127.0.0.1:{free_port()}/x", retry_delay_seconds=0.01, attempts=2
    )
    with pytest.raises(NotificationError, match="unreachable") as err:
        dead.send(payload)
    assert "127.0.0.1" not in str(err.value)  # the URL is a credential: never in a message


def test_without_a_webhook_the_sensors_skip(tmp_path, server, instance) -> None:
    lake = lake_with(tmp_path, server, instance, None)
    result = lake.run(RECORDED)
    assert result.success
    skipped = notify(lake, result.run_id)
    assert isinstance(skipped, dg.SkipReason) and "ESTAT_NOTIFY_WEBHOOK_URL" in str(skipped)


def test_the_webhook_url_is_a_secret_read_through_envvar(monkeypatch, sink) -> None:
    """From the process environment the resource holds ``EnvVar``: Dagster resolves it at run
    time and the UI shows the variable's name, never the URL (a Slack URL is a credential)."""
    from estat_assets.defs.notify import build_notifier, send_test_notification
    from estat_assets.settings import Settings

    monkeypatch.setenv("ESTAT_NOTIFY_WEBHOOK_URL", f"{sink.url}?token=xyzzy")
    settings = Settings.from_env()
    assert "xyzzy" not in repr(settings)
    notifier = build_notifier(settings)
    assert isinstance(notifier.webhook_url, dg.EnvVar)
    assert notifier.webhook_url == "ESTAT_NOTIFY_WEBHOOK_URL"
    assert notifier.dagster_url == "http://localhost:3000"
    assert send_test_notification(settings)  # the runbook's check: resolved outside a run too
    assert sink.events() == ["test"]


# ---------------------------------------------------------------------- the real daemon


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _wait(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


@pytest.mark.slow
def test_a_run_that_hangs_past_its_max_runtime_is_stopped_by_the_daemon_and_posted(
    tmp_path, server, sink
) -> None:
    """``dagster-daemon run`` with run monitoring: a run tagged ``dagster/max_runtime: 4`` hangs
    on an e-Stat answer that takes a minute; the daemon stops it and the notify sensor posts."""
    from estat_assets.defs.partitions import register
    from estat_assets.runner import open_instance
    from estat_assets.settings import Settings

    home = tmp_path / "home"
    domains = tmp_path / "domains.yaml"
    domains.write_text(f"domains:\n  population:\n    datasets: ['{RECORDED}']\n", "utf-8")
    env = {
        **os.environ,
        "ESTAT_LAKE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "ESTAT_API_URL": server.api_base,
        "ESTAT_DOMAINS_FILE": str(domains),
        "ESTAT_AUDIT_SENSOR_INTERVAL": "1",
        "ESTAT_NOTIFY_WEBHOOK_URL": sink.url,
        "ESTAT_DAGSTER_URL": DAGSTER_URL,
        "TMPDIR": str(tmp_path),
    }
    settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("ESTAT_")})
    with open_instance(settings) as instance:  # the packaged dagster.yaml, then a faster poll
        register(instance, "population", [RECORDED])
    yaml_path = home / "dagster" / "dagster.yaml"
    text = yaml_path.read_text("utf-8")
    assert "max_runtime_seconds: 21600" in text and "poll_interval_seconds: 30" in text
    yaml_path.write_text(text.replace("poll_interval_seconds: 30", "poll_interval_seconds: 1"))
    server.faults.add({"kind": "latency", "seconds": 60, "endpoint": "getMetaInfo", "times": None})

    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
    try:
        launched = subprocess.run(
            [
                str(BIN / "dagster"),
                "job",
                "launch",
                "-w",
                str(ROOT / "workspace.yaml"),
                "-j",
                "population_job",
                "--tags",
                json.dumps({"dagster/partition": RECORDED, "dagster/max_runtime": "4"}),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert launched.returncode == 0, launched.stdout[-2000:] + launched.stderr[-2000:]
        payload = _wait(
            lambda: next((p for p in sink.received if p["event"] == "run_hung"), None),
            240,
            "the run_hung notification",
            log,
        )
    finally:
        _stop_group(daemon)
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = {r.run_id: r for r in instance.get_runs()}
        run = runs[payload["run"]["run_id"]]
        assert run.tags["dagster/max_runtime"] == "4"
        assert run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
        assert exceeded_max_runtime(instance, run.run_id) == 4.0
        # run_retries (dagster.yaml) launches it again, with the same limit: it hangs too
        retried = [r for r in runs.values() if r.tags.get("dagster/parent_run_id")]
        assert all(r.tags["dagster/max_runtime"] == "4" for r in retried)
    assert payload["max_runtime_seconds"] == 4.0
    assert payload["citation"]["stats_data_id"] == RECORDED
    assert payload["run"]["url"] == f"{DAGSTER_URL}/runs/{run.run_id}"
    assert "exceeded its maximum runtime of 4 s" in payload["text"]
    hung = [p["run"]["run_id"] for p in sink.received if p["event"] == "run_hung"]
    assert len(hung) == len(set(hung))  # once per run, whichever end state it reached
    assert "run_failed" not in sink.events()  # a hung run is told as hung, not also as failed
