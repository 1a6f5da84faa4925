"""Every e-Stat fault, through real Dagster runs against the emulator over HTTP.

Each run either recovers and leaves the lake identical to a fault-free run (raw manifest, pages,
Iceberg rows), or fails with a typed error naming the cause and leaves the lake byte-for-byte as it
was (no manifest change, no staged pages, Iceberg untouched).
"""

from __future__ import annotations

import dagster as dg
import pytest

from estat_assets.defs.raw import RETRIES_ENV, RETRY_DELAY_ENV
from estat_assets_tests.defs.test_raw_lake import (
    DATASET,
    assert_same_content,
    lake,  # noqa: F401  (fixture)
    make_lake,
    raw_failure,
    server,  # noqa: F401  (fixture)
    step_retries,
)

DATA = {"endpoint": "getStatsData", "stats_data_id": DATASET}


@pytest.fixture(autouse=True)
def fast_step_retries(monkeypatch):
    monkeypatch.setenv(RETRY_DELAY_ENV, "0.05")
    monkeypatch.setenv(RETRIES_ENV, "1")


@pytest.fixture(scope="module")
def clean(tmp_path_factory, server):  # noqa: F811
    """The content of a fault-free run, the reference every recovered run must equal."""
    server.faults.clear()
    with dg.instance_for_test() as instance:
        ref = make_lake(tmp_path_factory.mktemp("clean") / "home", server, instance)
        assert ref.run().success
        return ref.content()


RECOVERS = {
    "http_500": {"kind": "http_error", "status": 500, "times": 2, **DATA},
    "http_503": {"kind": "http_error", "status": 503, "times": 2, **DATA},
    "http_500_meta": {"kind": "http_error", "status": 500, "times": 1, "endpoint": "getMetaInfo"},
    "rate_limit_429_retry_after": {"kind": "rate_limit", "retry_after": 0.2, "times": 2, **DATA},
    "latency": {"kind": "latency", "seconds": 0.3, "times": None, **DATA},
    "reset_mid_body": {"kind": "reset", "times": 2, **DATA},
    "truncated_json": {"kind": "truncate", "times": 2, **DATA},
    "status_2xx": {
        "kind": "api_error",
        "status": 200,
        "error_msg": "内部エラー",
        "times": 2,
        **DATA,
    },
    "short_page_once": {"kind": "short_page", "times": 1, "skip": 2, **DATA},
}


@pytest.mark.parametrize("rule", RECOVERS.values(), ids=RECOVERS.keys())
def test_transient_fault_recovers_to_the_clean_lake(lake, clean, rule) -> None:  # noqa: F811
    lake.server.faults.add(rule)
    result = lake.run()
    assert result.success
    assert all(r.hits >= 1 for r in lake.server.faults.rules())  # the fault really happened
    assert_same_content(lake.content(), clean)


def test_latency_beyond_the_timeout_is_retried(tmp_path, server, clean) -> None:  # noqa: F811
    server.faults.clear()
    server.faults.add({"kind": "latency", "seconds": 1.5, "times": 1, "skip": 1, **DATA})
    with dg.instance_for_test() as instance:
        slow = make_lake(tmp_path / "home", server, instance, timeout=0.5)
        assert slow.run().success
        assert_same_content(slow.content(), clean)
    server.faults.clear()


def test_client_gives_up_and_the_step_retry_recovers(tmp_path, server, clean) -> None:  # noqa: F811
    # one page at a time: page 2 fails all 3 client attempts, the step fails retryably and its
    # retry (ESTAT_RAW_RETRIES=1, delay 0.05 s in these tests) fetches everything
    server.faults.clear()
    server.faults.add({"kind": "http_error", "status": 503, "times": 3, "skip": 1, **DATA})
    with dg.instance_for_test() as instance:
        one = make_lake(tmp_path / "home", server, instance, concurrency=1)
        result = one.run()
        assert result.success and step_retries(result) == 1
        assert_same_content(one.content(), clean)
    server.faults.clear()


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
    lake,  # noqa: F811
    rule,
    error,
    retried,
) -> None:
    assert lake.run().success
    before = lake.state()
    manifest = lake.manifest()
    lake.server.faults.add({**rule, "skip": 1, **DATA})  # page 1 fine, later pages fail
    result = lake.run()
    assert not result.success
    failure = raw_failure(result)
    assert failure.step_key == "population__raw"
    data = failure.step_failure_data
    assert data.user_failure_data is not None
    meta = {k: v.value for k, v in data.user_failure_data.metadata.items()}
    # the message names the cause (after retries Dagster says "Exceeded max_retries": the
    # failure's description and metadata still carry the typed error)
    description = data.user_failure_data.description or ""
    assert meta["error"] == error and error in description
    assert meta["retryable"] is retried
    if not retried:
        assert error in data.error.message
    if "error_msg" in rule:
        assert rule["error_msg"] in description  # e-Stat's own words
        assert meta["estat_status"] == rule["status"]
    assert step_retries(result) == (1 if retried else 0)  # ESTAT_RAW_RETRIES=1 in these tests
    assert not any(e.step_key == "population__table" for e in result.all_events)
    assert lake.state() == before  # no file, page, manifest or snapshot changed
    assert lake.manifest() == manifest


def test_failure_on_a_fresh_lake_leaves_nothing(lake) -> None:  # noqa: F811
    lake.server.faults.add({"kind": "http_error", "status": 500, "times": None, "skip": 2, **DATA})
    result = lake.run()
    assert not result.success
    assert lake.manifest() is None
    assert not any(lake.raw_dir().rglob("page-*.json"))
    assert lake.iceberg() is None or lake.rows().num_rows == 0
