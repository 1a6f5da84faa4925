"""``<domain>/raw`` in real Dagster runs: final counts, progress lines, the step retry policy from
Settings, and the bound on requests in flight (and on their rate).

Tests never time: progress rate limiting runs on a fake clock, the request bound is counted where
requests are served, and the rate limiter's spacing is read from the start times it hands out.
"""

from __future__ import annotations

import contextlib
import threading

import dagster as dg
import pytest

from estat_assets.defs.raw import progress_logger, raw_retry_policy
from estat_assets.estat.client import EStatClient, FetchProgress, MemorySink
from estat_assets.estat.http import RateLimiter
from estat_assets.settings import Settings, SettingsError
from estat_assets_tests.harness import DATASET, make_lake

YEAR = "2023"
ROWS = 9 * 1913  # 17,217 rows in 2023
PAGE_SIZE = 5_000  # → 4 pages


@pytest.fixture
def paged(tmp_path, emulator, instance):
    """The population lake, 5,000 rows a page."""
    return make_lake(tmp_path / "home", emulator, instance, page_size=PAGE_SIZE)


def test_final_metadata_states_expected_and_stored_rows(paged) -> None:
    result = paged.run(years=YEAR)
    assert result.success
    mat = next(
        m
        for m in result.asset_materializations_for_node("population__raw")
        if m.asset_key == dg.AssetKey(["population", "raw"])
    )
    md = {k: v.value for k, v in mat.metadata.items()}
    assert md["expected_rows"] == md["stored_rows"] == md["dagster/row_count"] == ROWS
    assert md["complete"] is True and md["whole_table"] is False
    assert md["pages"] == 4 and md["requests"] == 1 and md["restarts"] == 0
    assert md["years"] == YEAR and md["synthetic"] is True
    manifest = paged.manifest()
    assert manifest["total_number"] == manifest["rows"] == ROWS
    assert [len(r["page_files"]) for r in manifest["requests"]] == [4]


def test_progress_is_logged_page_by_page_with_rows_and_total(paged) -> None:
    result = paged.run(years=YEAR)
    assert result.success
    lines = [
        e.message
        for e in paged.instance.all_logs(result.run_id)
        if e.step_key == "population__raw" and " pages, " in (e.message or "")
    ]
    assert len(lines) == 4, lines  # a small table: one line per page
    assert [line.split(": ", 1)[1].split(" pages")[0] for line in lines] == [
        "1/4",
        "2/4",
        "3/4",
        "4/4",
    ]
    assert all(line.startswith(f"{DATASET} ({YEAR}): ") for line in lines)
    assert "rows/s" in lines[0] and "/17,217 rows stored (" in lines[0]
    assert "4/4 pages, 17,217/17,217 rows stored (100%)" in lines[-1]
    assert lines[-1].endswith("— complete")


def test_progress_of_a_large_table_is_rate_limited() -> None:
    lines: list[str] = []
    ticks = iter(i / 100 for i in range(10_000))  # 10 ms a page: a fast fetch
    report = progress_logger(lines.append, "x", clock=lambda: next(ticks))
    for n in range(1, 201):  # 200 pages of 100 rows
        report(FetchProgress("9900000001", 200, n, n * 100, 20_000))
    # every 5 % of the rows (1,000 rows = 10 pages), the last one marked complete
    assert [line.split(": ", 1)[1].split(" pages")[0] for line in lines] == [
        f"{n}/200" for n in range(10, 201, 10)
    ]
    assert lines[-1].endswith("— complete") and not any("complete" in x for x in lines[:-1])


def test_progress_of_a_slow_large_table_is_logged_every_ten_seconds() -> None:
    lines: list[str] = []
    ticks = iter(i * 11.0 for i in range(1_000))  # 11 s a page: a slow fetch
    report = progress_logger(lines.append, "x", clock=lambda: next(ticks))
    for n in range(1, 51):  # 50 pages of 10 rows: 5 % is 5 pages, but 10 s pass every page
        report(FetchProgress("9900000001", 50, n, n * 10, 500))
    assert len(lines) == 50


def test_retry_policy_comes_from_settings() -> None:
    default = raw_retry_policy(Settings.from_env({}))
    assert default.max_retries == 3 and default.delay == 10
    assert default.backoff == dg.Backoff.EXPONENTIAL and default.jitter == dg.Jitter.PLUS_MINUS
    fast = raw_retry_policy(
        Settings.from_env({"ESTAT_RAW_RETRIES": "2", "ESTAT_RAW_RETRY_DELAY": "0.5"})
    )
    assert fast.max_retries == 2 and fast.delay == 0.5
    none = raw_retry_policy(Settings.from_env({"ESTAT_RAW_RETRIES": "0"}))
    assert none.max_retries == 0
    with pytest.raises(SettingsError, match="ESTAT_RAW_RETRIES"):
        Settings.from_env({"ESTAT_RAW_RETRIES": "-1"})
    with pytest.raises(SettingsError, match="ESTAT_RAW_RETRY_DELAY"):
        Settings.from_env({"ESTAT_RAW_RETRY_DELAY": "soon"})


def test_the_raw_asset_uses_the_policy_of_its_settings(tmp_path, emulator, instance) -> None:
    lake = make_lake(
        tmp_path / "home",
        emulator,
        instance,
        ESTAT_RAW_RETRIES="4",
        ESTAT_RAW_RETRY_DELAY="0.25",
    )
    policy = lake.defs.resolve_assets_def(dg.AssetKey(["population", "raw"])).op.retry_policy
    assert policy == raw_retry_policy(lake.settings)
    assert policy.max_retries == 4 and policy.delay == 0.25


@contextlib.contextmanager
def _in_flight(server):
    """Count the API requests the emulator is serving at once; yields [peak]."""
    real = server._api
    active, peak = [0], [0]
    lock = threading.Lock()

    def counting(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    server._api = counting
    try:
        yield peak
    finally:
        del server._api  # back to the class's method


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_run_never_has_more_requests_in_flight_than_its_concurrency(
    tmp_path, emulator, instance, concurrency
) -> None:
    lake = make_lake(
        tmp_path / "home", emulator, instance, page_size=2_000, concurrency=concurrency
    )
    # every page is slow, so that the workers' requests overlap if they can
    emulator.faults.add(
        {"kind": "latency", "seconds": 0.15, "endpoint": "getStatsData", "times": None}
    )
    with _in_flight(emulator) as peak:
        result = lake.run(years=YEAR)
    assert result.success
    assert sum(r["pages"] for r in lake.manifest()["requests"]) == 9  # 17,217 rows / 2,000
    if concurrency == 1:
        assert peak[0] == 1
    else:
        assert 1 < peak[0] <= concurrency  # parallel, never beyond the bound


@pytest.mark.parametrize(("concurrency", "rate"), [(2, None), (4, 10.0)])
def test_client_concurrency_and_rate_limit_bound_the_requests(emulator, concurrency, rate) -> None:
    """At most ``concurrency`` requests at once, with and without a rate limit; with one, every
    request starts through the shared limiter, 1/rate apart (its clock is fake: no timing)."""
    emulator.faults.add(
        {"kind": "latency", "seconds": 0.2, "endpoint": "getStatsData", "times": None}
    )
    starts: list[float] = []
    with EStatClient(
        "k", emulator.api_base, page_size=1000, concurrency=concurrency, rate_limit=rate
    ) as c:
        if rate:
            limiter = RateLimiter(rate, clock=lambda: 0.0, sleep=lambda _: None)
            real_wait = limiter.wait

            def wait() -> float:
                starts.append(real_wait())
                return starts[-1]

            limiter.wait = wait
            c._api._limiter = limiter
        with _in_flight(emulator) as peak:
            result = c.fetch_table(DATASET, MemorySink(), {"cdTime": "2023100000"}, rows_hint=ROWS)
        assert result.rows == ROWS and result.pages == 18
        assert 1 < peak[0] <= concurrency  # parallel, never beyond the bound
        if rate:
            assert len(starts) == c.requests_made == 18  # every request passed the limiter
            assert sorted(starts) == pytest.approx([n / rate for n in range(18)])
