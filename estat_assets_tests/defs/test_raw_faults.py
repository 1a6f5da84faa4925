"""Every e-Stat fault, through real Dagster runs against the emulator over HTTP.

The lake already holds a good load of the dataset (2023 of 9900020202: 17,217 rows, 4 pages of
5,000). A run through a transient fault recovers and leaves the lake exactly as a fault-free run
does (raw manifest, pages, Iceberg rows), written by the new run. A run through a permanent fault
fails with a typed error naming the cause, is not retried, and leaves every file, page, manifest
and snapshot of the lake as it was. The first real cause (not Dagster's "Exceeded max_retries")
reaches the step failure and ``estat.ingestion_runs``.

The republish fault is in ``test_raw_republish.py`` (it changes the table: its own emulator).
"""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pytest
from pyiceberg.expressions import EqualTo

from estat_assets.defs.audit import failure_cause, record_run
from estat_assets.lake.runs import RUNS_TABLE
from estat_assets_tests.harness import (
    DATASET,
    assert_same_content,
    make_lake,
    step_failure,
    step_retries,
)

YEAR = "2023"
PAGE_SIZE = 5_000  # 9 × 1,913 = 17,217 rows → 4 pages
ROWS = 9 * 1913
DATA = {"endpoint": "getStatsData", "stats_data_id": DATASET}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, emulator_server):
    """A lake holding a fault-free load of 2023, and that load's content (the reference).

    Shared by the tests of this module: each one runs on a lake that holds a good load, and each
    passing test leaves it so (a recovered run replaces it with equal content, a failed run
    changes nothing).
    """
    emulator_server.faults.clear()
    with dg.instance_for_test() as instance:
        lake = make_lake(
            tmp_path_factory.mktemp("faults") / "home",
            emulator_server,
            instance,
            page_size=PAGE_SIZE,
        )
        result = lake.run(years=YEAR)
        assert result.success
        clean = lake.content()
        assert clean["manifest"]["total_number"] == ROWS
        assert sum(len(r["page_files"]) for r in clean["manifest"]["requests"]) == 4
        yield lake, clean


def _loaded_by(lake, result: dg.ExecuteInProcessResult) -> None:
    """The published raw data and every Iceberg row of the dataset are the new run's."""
    assert lake.manifest()["run_id"] == result.run_id
    assert set(lake.rows().column("run_id").to_pylist()) == {result.run_id}


def _pages_requested(server) -> Counter:
    return Counter(
        e["params"].get("startPosition")
        for e in server.requests.entries()
        if e["endpoint"] == "getStatsData" and e["params"].get("statsDataId") == DATASET
    )


RECOVERS = {
    "http_500": {"kind": "http_error", "status": 500, "times": 2, **DATA},
    "http_503": {"kind": "http_error", "status": 503, "times": 2, **DATA},
    "http_500_meta": {
        "kind": "http_error",
        "status": 500,
        "times": 1,
        "endpoint": "getMetaInfo",
        "stats_data_id": DATASET,
    },
    "rate_limit_429_retry_after": {"kind": "rate_limit", "retry_after": 0.2, "times": 2, **DATA},
    "latency_within_timeout": {"kind": "latency", "seconds": 0.1, "times": None, **DATA},
    "reset_mid_body": {"kind": "reset", "times": 2, **DATA},
    "truncated_json": {"kind": "truncate", "times": 2, **DATA},
    "status_2xx": {
        "kind": "api_error",
        "status": 200,
        "error_msg": "内部エラー",
        "times": 2,
        **DATA,
    },
    "status_2xx_meta": {
        "kind": "api_error",
        "status": 201,
        "error_msg": "内部エラー",
        "times": 1,
        "endpoint": "getMetaInfo",
        "stats_data_id": DATASET,
    },
    "short_page_once": {"kind": "short_page", "times": 1, "skip": 2, **DATA},
}


@pytest.mark.parametrize("rule", RECOVERS.values(), ids=RECOVERS.keys())
def test_transient_fault_recovers_to_the_clean_lake(loaded, emulator, rule) -> None:
    lake, clean = loaded
    emulator.faults.add(rule)
    result = lake.run(years=YEAR)
    assert result.success
    assert all(r.hits >= 1 for r in emulator.faults.rules())  # the fault really happened
    _loaded_by(lake, result)
    assert_same_content(lake.content(), clean)


def test_latency_beyond_the_timeout_is_retried(tmp_path, emulator, instance, loaded) -> None:
    _, clean = loaded
    lake = make_lake(tmp_path / "home", emulator, instance, page_size=PAGE_SIZE, timeout=2.0)
    assert lake.run(years=YEAR).success  # a good load first
    requests = lake.manifest()["requests_made"]  # getMetaInfo and the 4 pages
    rule = emulator.faults.add({"kind": "latency", "seconds": 4.0, "times": 1, "skip": 1, **DATA})
    result = lake.run(years=YEAR)
    assert result.success and rule.hits == 1
    assert step_retries(result) == 0  # the client's own retry got through
    assert lake.manifest()["requests_made"] == requests + 1  # the slow page, asked for again
    _loaded_by(lake, result)
    assert_same_content(lake.content(), clean)


def test_client_gives_up_and_the_step_retry_recovers(tmp_path, emulator, instance, loaded) -> None:
    # one page at a time: page 2 fails all 3 client attempts, the step fails retryably, and its
    # retry (ESTAT_RAW_RETRIES=1 in the harness) fetches everything
    _, clean = loaded
    lake = make_lake(tmp_path / "home", emulator, instance, page_size=PAGE_SIZE, concurrency=1)
    assert lake.run(years=YEAR).success
    emulator.requests.clear()
    rule = emulator.faults.add({"kind": "http_error", "status": 503, "times": 3, "skip": 1, **DATA})
    result = lake.run(years=YEAR)
    assert result.success and step_retries(result) == 1 and rule.hits == 3
    assert _pages_requested(emulator)["5001"] == 4  # 3 client attempts, then the step retry
    _loaded_by(lake, result)
    assert_same_content(lake.content(), clean)


FAILS = {
    "status_100": (
        {"kind": "api_error", "status": 100, "error_msg": "認証に失敗しました。", "times": None},
        "EStatRequestError",
        False,
    ),
    "status_101": (
        {"kind": "api_error", "status": 101, "error_msg": "パラメータが不正です。", "times": None},
        "EStatRequestError",
        False,
    ),
    "status_199": (
        {"kind": "api_error", "status": 199, "error_msg": "その他のエラー", "times": None},
        "EStatRequestError",
        False,
    ),
    "http_400": ({"kind": "http_error", "status": 400, "times": None}, "EStatHttpError", False),
    "http_403": ({"kind": "http_error", "status": 403, "times": None}, "EStatHttpError", False),
    "http_404": ({"kind": "http_error", "status": 404, "times": None}, "EStatHttpError", False),
    "status_2xx_persistent": (
        {"kind": "api_error", "status": 201, "error_msg": "内部エラー", "times": None},
        "EStatServerError",
        True,
    ),
    "http_500_persistent": (
        {"kind": "http_error", "status": 500, "times": None},
        "EStatHttpError",
        True,
    ),
    "truncated_persistent": ({"kind": "truncate", "times": None}, "EStatResponseError", True),
    "short_page_persistent": ({"kind": "short_page", "times": None}, "PageMismatchError", True),
}


@pytest.mark.parametrize(("rule", "error", "retried"), FAILS.values(), ids=FAILS.keys())
def test_permanent_fault_fails_typed_and_leaves_the_lake_as_it_was(
    loaded, emulator, rule, error, retried
) -> None:
    lake, _ = loaded
    before = lake.state()
    manifest = lake.manifest()
    emulator.requests.clear()
    emulator.faults.add({**rule, "skip": 1, **DATA})  # the first page request is fine
    result = lake.run(years=YEAR)
    assert not result.success
    failure = step_failure(result)
    assert failure.step_key == "population__raw"
    data = failure.step_failure_data
    assert data.user_failure_data is not None
    meta = {k: v.value for k, v in data.user_failure_data.metadata.items()}
    description = data.user_failure_data.description or ""
    assert meta["error"] == error and description.startswith(f"{error}: ")
    assert description.count(DATASET) == 1
    assert meta["retryable"] is retried
    if "error_msg" in rule:
        assert rule["error_msg"] in description  # e-Stat's own words
        assert meta["estat_status"] == rule["status"]
    elif rule["kind"] == "http_error":
        assert f"HTTP {rule['status']}" in description
    if retried:
        assert step_retries(result) == 1  # ESTAT_RAW_RETRIES=1 in the harness
    else:
        assert step_retries(result) == 0
        assert error in data.error.message
        # neither the client nor Dagster asked again: no page was requested twice
        assert max(_pages_requested(emulator).values()) == 1
    assert not any(e.step_key == "population__table" for e in result.all_events)
    assert lake.state() == before  # no file, page, manifest or snapshot changed
    assert lake.manifest() == manifest


def test_the_first_real_cause_reaches_the_run_and_ingestion_runs(loaded, emulator) -> None:
    lake, _ = loaded
    before = lake.state()
    emulator.faults.add({"kind": "http_error", "status": 503, "times": None, **DATA})
    result = lake.run(years=YEAR)
    assert not result.success
    assert step_retries(result) == 1  # the step retry was used up too
    failure = step_failure(result)
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("EStatHttpError: ")
    assert "HTTP 503" in description and "after 3 attempts" in description
    assert "Exceeded max_retries" not in description
    assert description.count(DATASET) == 1
    assert failure_cause(failure) == description
    assert lake.state() == before  # the failed run changed nothing

    run = lake.instance.get_run_by_id(result.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    out = record_run(lake.instance, run, lake.resources["lake"], lake.resources["iceberg"])
    assert out is not None and out["manifest"]["errors"][0]["error"] == description
    table = lake.iceberg(RUNS_TABLE)
    rows = table.scan(row_filter=EqualTo("run_id", result.run_id)).to_arrow().to_pylist()
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "FAILURE" and row["failed_step"] == "population__raw"
    assert row["error"] == description  # the same one line, whole


def test_failure_on_a_fresh_lake_leaves_nothing(tmp_path, emulator, instance) -> None:
    lake = make_lake(tmp_path / "home", emulator, instance, page_size=PAGE_SIZE)
    rule = emulator.faults.add({"kind": "http_error", "status": 500, "times": None, **DATA})
    result = lake.run(years=YEAR)
    assert not result.success and rule.hits > 0
    assert lake.manifest() is None and lake.manifest(layer="conformed") is None
    assert not any(lake.raw_dir().rglob("*.json"))
    assert lake.iceberg() is None
