"""The appId reaches e-Stat and nothing else: not logs (even at DEBUG), not Dagster's event log,
run config or serialized errors, not exceptions (with their chains), not a file of the lake.

The emulator here requires the key, so every successful request proves it was sent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from estat_assets.defs.raw import RETRIES_ENV, RETRY_DELAY_ENV
from estat_assets.estat.client import EStatClient, MemorySink, RetryConfig
from estat_assets.estat.errors import EStatError
from estat_assets_tests.defs.test_raw_lake import DATASET, make_lake
from estat_emulator import EmulatorServer, TableStore

SECRET = "RECOGNIZABLE-APPID-7d41c0aa93"
DATA = {"endpoint": "getStatsData", "stats_data_id": DATASET}
FAULTS = [
    {"kind": "http_error", "status": 500, "times": 1, **DATA},
    {"kind": "rate_limit", "retry_after": 0.05, "times": 1, **DATA},
    {"kind": "reset", "times": 1, **DATA},
    {"kind": "truncate", "times": 1, **DATA},
    {"kind": "api_error", "status": 200, "times": 1, **DATA},
    {"kind": "short_page", "times": 1, **DATA},
]


@pytest.fixture(scope="module")
def keyed_server():
    with EmulatorServer(TableStore.default(), required_app_id=SECRET) as s:
        yield s


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_no_secret_in_a_real_run_logs_events_config_or_files(
    tmp_path, keyed_server, monkeypatch, caplog, capfd
) -> None:
    monkeypatch.setenv("ESTAT_APP_ID", SECRET)
    monkeypatch.setenv(RETRY_DELAY_ENV, "0.05")
    monkeypatch.setenv(RETRIES_ENV, "1")
    caplog.set_level(logging.DEBUG)  # the root logger at DEBUG: httpx would log URLs here
    keyed_server.faults.clear()
    keyed_server.faults.extend(FAULTS)
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        lake = make_lake(home, keyed_server, instance, app_id=dg.EnvVar("ESTAT_APP_ID"))
        good = lake.run()
        assert good.success  # through every fault: so the key was sent, and accepted
        assert all(r.hits == 1 for r in keyed_server.faults.rules())
        keyed_server.faults.clear()
        keyed_server.faults.add({"kind": "http_error", "status": 502, "times": None, **DATA})
        bad = lake.run()  # fails after retries: error events, Failure metadata, retry events
        assert not bad.success
        missing = lake.run("0000099999", "1981")  # STATUS error from e-Stat
        assert not missing.success
        keyed_server.faults.clear()
        for result in (good, bad, missing):
            run = instance.get_run_by_id(result.run_id)
            assert SECRET not in serialize_value(run)  # run config, tags, as the UI gets them
            for entry in instance.all_logs(result.run_id):
                assert SECRET not in serialize_value(entry)  # incl. serialized error info
        records = instance.get_event_records(
            dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        )
        assert records and all(SECRET not in serialize_value(r) for r in records)
        for root in (home, Path(instance.root_directory)):
            for path in root.rglob("*"):
                if path.is_file():
                    assert SECRET.encode() not in path.read_bytes(), path
    out, err = capfd.readouterr()
    assert SECRET not in out + err
    assert caplog.records and SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)
    # the emulator's own request log masks it too
    assert all(SECRET not in str(e) for e in keyed_server.requests.entries())


@pytest.mark.parametrize(
    "rule",
    [
        *FAULTS,
        {"kind": "api_error", "status": 100, "error_msg": f"appId {SECRET} は無効です", **DATA},
    ],
)
def test_no_secret_in_client_exceptions_or_their_chains(keyed_server, rule) -> None:
    keyed_server.faults.clear()
    keyed_server.faults.add({**rule, "times": None})
    retry = RetryConfig(attempts=2, base_delay=0.001, max_delay=0.001, restarts=0)
    with (
        EStatClient(SECRET, keyed_server.api_base, retry=retry, page_size=5000) as c,
        pytest.raises(EStatError) as info,
    ):
        c.fetch_table(DATASET, MemorySink(), {"cdTime": "2023100000"})
    keyed_server.faults.clear()
    chain = list(_chain(info.value))
    assert len(chain) == 1  # raised outside the handler: no httpx exception (with its URL) kept
    for exc in chain:
        assert SECRET not in str(exc) and SECRET not in repr(exc) and SECRET not in str(exc.args)
        assert SECRET not in str(vars(exc))


def test_no_secret_when_the_server_is_unreachable() -> None:
    with EmulatorServer(TableStore.default()) as s:
        base = s.api_base
    retry = RetryConfig(attempts=1)
    with EStatClient(SECRET, base, retry=retry) as c, pytest.raises(EStatError) as info:
        c.get_meta_info(DATASET)
    assert info.value.retryable and "connection failed" in str(info.value)
    assert all(SECRET not in repr(e) for e in _chain(info.value))
