"""The raw asset in real Dagster runs: progress, final counts, and the lake helpers other tests use.

Helpers here build a local lake under ``tmp_path`` against an emulator over HTTP, with fast client
retries and a short step retry delay, and take snapshots of everything a run can change.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from estat_assets.definitions import build_definitions
from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import partition_key, register
from estat_assets.defs.raw import RETRIES_ENV, RETRY_DELAY_ENV, progress_logger, raw_retry_policy
from estat_assets.defs.resources import EStatResource, build_resources
from estat_assets.domains import DomainSpec
from estat_assets.estat.client import EStatClient, FetchProgress, MemorySink, RetryConfig
from estat_emulator import EmulatorServer, TableStore

DOMAIN = "population"
DATASET = "9900020202"  # real metadata of 0000020202, synthetic values: 9 × 1,913 rows a year
YEAR = "2023"
PAGE_SIZE = 5000  # 17,217 rows → 4 pages
KEYS = ["dataset_id", "year", "tab_code", "cat01_code", "area_code", "time_code"]
VOLATILE = ("run_id", "written_at", "fetched_at", "requests", "restarts")
_DATE = re.compile(rb'"DATE":"[^"]*"')


class FastEStat(EStatResource):
    """The real resource with millisecond client backoff (tests only)."""

    def client(self) -> EStatClient:
        c = super().client()
        c.retry = RetryConfig(attempts=self.retry_attempts, base_delay=0.01, max_delay=0.05)
        return c


@dataclass
class Lake:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    resources: dict[str, Any]
    home: Path
    server: EmulatorServer

    def run(self, dataset: str = DATASET, year: str = YEAR) -> dg.ExecuteInProcessResult:
        return self.defs.resolve_job_def(job_name(DOMAIN)).execute_in_process(
            partition_key=str(partition_key(dataset, year)),
            instance=self.instance,
            raise_on_error=False,
        )

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    def raw_dir(self, dataset: str = DATASET, year: str = YEAR) -> Path:
        return self.lake_dir / f"{DOMAIN}/raw/dataset_id={dataset}/year={year}"

    def manifest(self, dataset: str = DATASET, year: str = YEAR) -> dict | None:
        path = self.raw_dir(dataset, year) / "manifest.json"
        return orjson.loads(path.read_bytes()) if path.exists() else None

    def iceberg(self):
        ice = self.resources["iceberg"]
        catalog = ice.catalog()
        if not catalog.table_exists(ice.identifier(DOMAIN)):
            return None
        return catalog.load_table(ice.identifier(DOMAIN))

    def rows(self, dataset: str = DATASET, year: str = YEAR) -> pa.Table:
        table = self.iceberg()
        if table is None:
            return pa.table({})
        data = table.scan().to_arrow()
        mask = pc.and_(
            pc.equal(data.column("dataset_id"), dataset), pc.equal(data.column("year"), int(year))
        )
        return data.filter(mask)

    def files(self) -> dict[str, str]:
        """Every file of the lake and the warehouse with its hash: 'exactly as before'."""
        out = {}
        for root in (self.lake_dir, self.home / "warehouse"):
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    out[str(path.relative_to(self.home))] = hashlib.sha256(
                        path.read_bytes()
                    ).hexdigest()
        return out

    def state(self) -> dict[str, Any]:
        """Everything a run may change, byte for byte (for failed runs: nothing may change)."""
        table = self.iceberg()
        snapshot = table.current_snapshot() if table is not None else None
        return {
            "files": self.files(),
            "snapshot": snapshot.snapshot_id if snapshot else None,
            "metadata": table.metadata_location if table is not None else None,
        }

    def content(self, dataset: str = DATASET, year: str = YEAR) -> dict[str, Any]:
        """What a run produced, without what differs between any two good runs (ids, clocks)."""
        manifest = self.manifest(dataset, year)
        assert manifest is not None
        run_dir = self.raw_dir(dataset, year) / "runs" / manifest["run_id"]
        pages = [_DATE.sub(b"", (run_dir / n).read_bytes()) for n in manifest["page_files"]]
        rows = self.rows(dataset, year).drop_columns(["run_id"])
        return {
            "manifest": {k: v for k, v in manifest.items() if k not in VOLATILE},
            "pages": [hashlib.sha256(p).hexdigest() for p in pages],
            "runs": sorted(p.name for p in (self.raw_dir(dataset, year) / "runs").iterdir()),
            "run_is_published": [manifest["run_id"]],
            "rows": rows.sort_by([(k, "ascending") for k in KEYS]),
        }


def make_lake(
    home: Path,
    server: EmulatorServer,
    instance: dg.DagsterInstance,
    *,
    page_size: int = PAGE_SIZE,
    attempts: int = 3,
    timeout: float = 10.0,
    app_id: Any = "test-app-id",
    concurrency: int = 4,
) -> Lake:
    env = {"ESTAT_LAKE_HOME": str(home), "ESTAT_API_URL": server.api_base}
    resources = build_resources("local", env)
    resources["estat"] = FastEStat(
        app_id=app_id,
        base_url=server.api_base,
        page_size=page_size,
        retry_attempts=attempts,
        timeout_seconds=timeout,
        concurrency=concurrency,
    )
    defs = build_definitions(
        "local", domains=(DomainSpec(DOMAIN, datasets=(DATASET,)),), resources=resources
    )
    register(instance, DOMAIN, {DATASET: ["2022", YEAR], "0000099999": ["1981"]})
    return Lake(defs, instance, resources, home, server)


def assert_same_content(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["manifest"] == b["manifest"]
    assert a["pages"] == b["pages"]
    assert len(a["runs"]) == 1 and len(b["runs"]) == 1  # only the published run is kept
    assert a["rows"].num_rows == b["rows"].num_rows == a["manifest"]["total_number"]
    assert a["rows"].equals(b["rows"])


def raw_failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    return next(e for e in result.all_events if e.is_step_failure)


def step_retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(
        1 for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    )


@pytest.fixture(scope="module")
def server():
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as s:
        yield s


@pytest.fixture
def lake(tmp_path, server, monkeypatch):
    monkeypatch.setenv(RETRY_DELAY_ENV, "0.05")
    monkeypatch.setenv(RETRIES_ENV, "1")
    server.faults.clear()
    with dg.instance_for_test() as instance:
        yield make_lake(tmp_path / "home", server, instance)
    server.faults.clear()


# ---- tests -----------------------------------------------------------------------------------


def test_final_metadata_states_expected_and_stored_rows(lake) -> None:
    result = lake.run()
    assert result.success
    mat = next(
        m
        for m in result.asset_materializations_for_node("population__raw")
        if m.asset_key == dg.AssetKey([DOMAIN, "raw"])
    )
    md = {k: v.value for k, v in mat.metadata.items()}
    assert md["expected_rows"] == md["stored_rows"] == md["dagster/row_count"] == 9 * 1913
    assert md["missing_rows"] == 0 and md["complete"] is True
    assert md["pages"] == 4 and md["restarts"] == 0
    manifest = lake.manifest()
    assert manifest["total_number"] == manifest["rows"] == 9 * 1913
    assert len(manifest["page_files"]) == manifest["pages"] == 4


def test_progress_is_logged_page_by_page_with_rows_and_total(lake) -> None:
    result = lake.run()
    assert result.success
    lines = [
        e.message
        for e in lake.instance.all_logs(result.run_id)
        if e.step_key == "population__raw" and "pages," in (e.message or "")
    ]
    assert len(lines) == 4, lines  # a small table: one line per page
    assert lines[0].endswith("rows/s") and "1/4 pages" in lines[0]
    assert "4/4 pages, 17,217/17,217 rows stored (100%)" in lines[-1]
    assert lines[-1].endswith("complete")


def test_progress_of_a_large_table_is_rate_limited() -> None:
    lines: list[str] = []
    clock = iter(float(i) / 100 for i in range(10_000))
    report = progress_logger(lines.append, "x", clock=lambda: next(clock))
    for n in range(1, 201):  # 200 pages of 100 rows, fast
        report(FetchProgress("9900000001", 200, n, n * 100, 20_000))
    assert 15 <= len(lines) <= 21 and "200/200 pages" in lines[-1]


def test_retry_policy_defaults_and_override() -> None:
    default = raw_retry_policy({})
    assert default.max_retries == 3 and default.delay == 10
    fast = raw_retry_policy({RETRIES_ENV: "2", RETRY_DELAY_ENV: "0.5"})
    assert fast.max_retries == 2 and fast.delay == 0.5


def test_concurrency_and_rate_limit_bound_the_requests(server) -> None:
    """At most ``concurrency`` requests at once, with and without a rate limit.

    The limiter's spacing itself is tested on a fake clock (test_client_scan.py): tests never time.
    """
    import threading

    server.faults.clear()
    server.faults.add(
        {"kind": "latency", "seconds": 0.2, "endpoint": "getStatsData", "times": None}
    )
    active, peak = [0], [0]
    lock = threading.Lock()
    try:
        for concurrency, rate in ((2, None), (4, 10.0)):
            with EStatClient(
                "k", server.api_base, page_size=1000, concurrency=concurrency, rate_limit=rate
            ) as c:
                real = c._http.stream

                @contextlib.contextmanager
                def counting(*a, _real=real, **kw):
                    with lock:
                        active[0] += 1
                        peak[0] = max(peak[0], active[0])
                    try:
                        with _real(*a, **kw) as response:
                            yield response
                    finally:
                        with lock:
                            active[0] -= 1

                c._http.stream = counting
                peak[0] = 0
                result = c.fetch_table(
                    DATASET, MemorySink(), {"cdTime": "2023100000"}, rows_hint=17_217
                )
                assert result.rows == 17_217 and result.pages == 18
                assert 1 < peak[0] <= concurrency  # parallel, never beyond the bound
    finally:
        server.faults.clear()
