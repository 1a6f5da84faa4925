"""The appId reaches e-Stat and nothing else: not logs (even at DEBUG), not Dagster's event log,
run config or serialized errors, not exceptions (with their chains), not a file of the lake (raw
pages, manifests, conformed Parquet, Iceberg data and metadata, run manifests, the catalog).

The emulator here requires the key, so every successful request proves it was sent.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from estat_assets.defs.audit import record_run
from estat_assets.defs.resources import build_resources
from estat_assets.estat.client import EStatClient, MemorySink, RetryConfig
from estat_assets.estat.errors import EStatError
from estat_assets.settings import Settings
from estat_assets_tests.harness import DATASET, make_lake
from estat_emulator import EmulatorServer, TableStore

SECRET = "RECOGNIZABLE-APPID-7d41c0aa93"
YEAR = "2023"
MISSING = "0000099999"  # no such table: e-Stat answers STATUS 100-199
DATA = {"endpoint": "getStatsData", "stats_data_id": DATASET}
# one fault per request, on getStatsData requests 1..6 of the run, each a different failure
FAULTS = [
    {"kind": "http_error", "status": 500},
    {"kind": "rate_limit", "retry_after": 0.05},
    {"kind": "reset"},
    {"kind": "truncate"},
    {"kind": "api_error", "status": 200},
    {"kind": "short_page"},
]


@pytest.fixture(scope="module")
def keyed_server():
    with EmulatorServer(TableStore.default(), required_app_id=SECRET) as s:
        yield s


@pytest.fixture
def keyed(keyed_server):
    keyed_server.faults.clear()
    keyed_server.requests.clear()
    yield keyed_server
    keyed_server.faults.clear()


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_the_resources_read_the_key_through_envvar(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ESTAT_APP_ID", SECRET)
    monkeypatch.setenv("ESTAT_LAKE_HOME", str(tmp_path))
    estat = build_resources(Settings.from_env())["estat"]
    assert isinstance(estat.app_id, dg.EnvVar)  # the run config shows the name, not the key
    assert SECRET not in repr(estat)


@pytest.mark.slow  # its own emulator
def test_no_secret_in_real_runs_logs_events_errors_or_files(
    tmp_path, keyed, instance, monkeypatch, caplog, capfd
) -> None:
    monkeypatch.setenv("ESTAT_APP_ID", SECRET)
    caplog.set_level(logging.DEBUG)  # the root logger at DEBUG: httpx would log URLs here
    rules = keyed.faults.extend(
        [{**fault, **DATA, "skip": n, "times": 1} for n, fault in enumerate(FAULTS)]
    )
    home = tmp_path / "home"
    lake = make_lake(
        home, keyed, instance, app_id=dg.EnvVar("ESTAT_APP_ID"), page_size=5_000, attempts=5
    )
    good = lake.run(years=YEAR)
    assert good.success  # through every fault: so the key was sent, and accepted
    assert [r.hits for r in rules] == [1] * len(FAULTS)  # each fault happened, once
    keyed.faults.clear()
    keyed.faults.add({"kind": "http_error", "status": 502, "times": None, **DATA})
    bad = lake.run(years=YEAR)  # fails after retries: error events, Failure metadata, retries
    assert not bad.success
    keyed.faults.clear()
    missing = lake.run(MISSING)  # STATUS error from e-Stat
    assert not missing.success
    # e-Stat's error message echoes the key: it is redacted before anyone sees it
    keyed.faults.add(
        {"kind": "api_error", "status": 100, "error_msg": f"appId {SECRET} は無効です", **DATA}
    )
    echoed = lake.run(years=YEAR)
    assert not echoed.success
    keyed.faults.clear()
    results = (good, bad, missing, echoed)
    for result in results:  # the run manifests and estat.ingestion_runs rows, errors included
        run = instance.get_run_by_id(result.run_id)
        assert record_run(instance, run, lake.resources["lake"], lake.resources["iceberg"])
    assert lake.iceberg("ingestion_runs").scan().to_arrow().num_rows == len(results)

    for result in results:
        run = instance.get_run_by_id(result.run_id)
        assert SECRET not in serialize_value(run)  # run config, tags, as the UI gets them
        logs = instance.all_logs(result.run_id)
        assert logs
        for entry in logs:
            assert SECRET not in serialize_value(entry)  # incl. serialized error info
    assert any(
        e.dagster_event and e.dagster_event.is_step_failure
        for e in instance.all_logs(echoed.run_id)
    )
    for layer in ("raw", "conformed", "table", "class_codes"):
        records = instance.fetch_materializations(dg.AssetKey(["population", layer]), limit=100)
        assert records.records  # the good run materialized every layer
        assert all(SECRET not in serialize_value(r) for r in records.records)

    files = [p for root in (home, Path(instance.root_directory)) for p in root.rglob("*")]
    kinds = {p.suffix for p in files if p.is_file()}
    assert {".json", ".parquet", ".avro", ".db"} <= kinds  # pages, Parquet, Iceberg, catalog
    for path in files:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    out, err = capfd.readouterr()
    assert SECRET not in out + err
    assert caplog.records and SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)
    # the emulator's own request log masks it too
    assert all(SECRET not in str(e) for e in keyed.requests.entries())
    assert os.environ["ESTAT_APP_ID"] == SECRET  # (still set: the runs above really used it)


@pytest.mark.slow  # its own emulator
@pytest.mark.parametrize(
    "rule",
    [
        *FAULTS,
        {"kind": "api_error", "status": 100, "error_msg": f"appId {SECRET} は無効です"},
    ],
    ids=[f["kind"] for f in FAULTS] + ["status_100_echoing_the_key"],
)
def test_no_secret_in_client_exceptions_or_their_chains(keyed, rule) -> None:
    keyed.faults.add({**rule, **DATA, "times": None})
    retry = RetryConfig(attempts=2, base_delay=0.001, max_delay=0.001, restarts=0)
    with (
        EStatClient(SECRET, keyed.api_base, retry=retry, page_size=5_000) as c,
        pytest.raises(EStatError) as info,
    ):
        c.fetch_table(DATASET, MemorySink(), {"cdTime": "2023100000"})
    chain = list(_chain(info.value))
    assert len(chain) == 1  # raised outside the handler: no httpx exception (with its URL) kept
    for exc in chain:
        assert SECRET not in str(exc) and SECRET not in repr(exc) and SECRET not in str(exc.args)
        assert SECRET not in str(vars(exc))


@pytest.mark.slow  # its own emulator
def test_no_secret_when_the_server_is_unreachable() -> None:
    with EmulatorServer(TableStore.default()) as s:
        base = s.api_base
    retry = RetryConfig(attempts=1)
    with EStatClient(SECRET, base, retry=retry) as c, pytest.raises(EStatError) as info:
        c.get_meta_info(DATASET)
    assert info.value.retryable and "connection failed" in str(info.value)
    assert all(SECRET not in repr(e) for e in _chain(info.value))
