"""The shared test harness: a local lake under ``tmp_path`` over a real emulator, and its state.

``make_lake`` builds the definitions of one domain against an emulator over HTTP (fast client
retries, a short step retry delay); ``Lake`` runs the domain job for a dataset the way the CLI
and the daemon do and reads back everything a run can change (files, Iceberg slices, snapshots),
so a test can say "exactly as before".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from estat_assets.definitions import build_definitions
from estat_assets.defs.jobs import job_name
from estat_assets.defs.partitions import ALLOW_SHRINK_TAG, YEARS_TAG, dataset_dimension
from estat_assets.defs.resources import EStatResource, build_resources
from estat_assets.domains import DomainSpec
from estat_assets.estat.client import EStatClient, RetryConfig
from estat_assets.lake.iceberg import slice_rows, table_exists
from estat_assets.lake.quarantine import quarantine_name
from estat_assets.settings import Settings
from estat_emulator import EmulatorServer

DOMAIN = "population"
DATASET = "9900020202"  # real metadata of 0000020202, synthetic values: 9 × 1,913 rows a year
YEAR = "2023"
PAGE_SIZE = 50_000  # 757,548 rows → 16 pages
KEYS = ["dataset_id", "year", "tab_code", "cat01_code", "area_code", "time_code"]
VOLATILE = ("run_id", "written_at", "fetched_at", "requests_made", "restarts")
_DATE = re.compile(rb'"DATE":"[^"]*"')


class FastEStat(EStatResource):
    """The real resource with millisecond client backoff (tests only)."""

    def client(self, retry=None, concurrency=None, timeout=None) -> EStatClient:
        fast = RetryConfig(attempts=self.retry_attempts, base_delay=0.01, max_delay=0.05)
        return super().client(retry=retry or fast, concurrency=concurrency, timeout=timeout)


def test_settings(home: Path, api_base: str, **extra: str) -> Settings:
    """Settings of a test lake: retries fast, one step retry."""
    env = {
        "ESTAT_LAKE_HOME": str(home),
        "ESTAT_API_URL": api_base,
        "ESTAT_RAW_RETRIES": "1",
        "ESTAT_RAW_RETRY_DELAY": "0.05",
        "ESTAT_POOL_WAIT_SECONDS": "5",
        **extra,
    }
    return Settings.from_env(env)


@dataclass
class Lake:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    resources: dict[str, Any]
    settings: Settings
    server: EmulatorServer
    domain: str = DOMAIN

    @property
    def home(self) -> Path:
        return self.settings.home

    def run(
        self,
        dataset: str = DATASET,
        years: str | None = None,
        allow_shrink: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> dg.ExecuteInProcessResult:
        """One run of the domain job for ``dataset``, added as a partition the way the UI adds
        one: without any check (the assets must refuse a bad key themselves)."""
        self.instance.add_dynamic_partitions(dataset_dimension(self.domain), [dataset])
        all_tags = dict(tags or {})
        if years:
            all_tags[YEARS_TAG] = years
        if allow_shrink:
            all_tags[ALLOW_SHRINK_TAG] = "true"
        return self.defs.resolve_job_def(job_name(self.domain)).execute_in_process(
            partition_key=dataset,
            instance=self.instance,
            raise_on_error=False,
            tags=all_tags,
        )

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    def raw_dir(self, dataset: str = DATASET) -> Path:
        return self.lake_dir / f"{self.domain}/raw/dataset_id={dataset}"

    def conformed_dir(self, dataset: str = DATASET) -> Path:
        return self.lake_dir / f"{self.domain}/conformed/dataset_id={dataset}"

    def manifest(self, dataset: str = DATASET, layer: str = "raw") -> dict | None:
        base = self.raw_dir(dataset) if layer == "raw" else self.conformed_dir(dataset)
        path = base / "manifest.json"
        return orjson.loads(path.read_bytes()) if path.exists() else None

    def catalog(self):
        return self.resources["iceberg"].catalog()

    def iceberg(self, table: str | None = None):
        ice = self.resources["iceberg"]
        catalog = ice.catalog()
        identifier = ice.identifier(table or self.domain)
        return catalog.load_table(identifier) if table_exists(catalog, identifier) else None

    def rows(self, dataset: str = DATASET, year: str | None = None, table: str | None = None):
        tbl = self.iceberg(table)
        if tbl is None:
            return pa.table({})
        data = tbl.scan().to_arrow()
        mask = pc.equal(data.column("dataset_id"), dataset)
        if year is not None:
            mask = pc.and_(mask, pc.equal(data.column("year"), int(year)))
        return data.filter(mask)

    def slices(self, dataset: str = DATASET, quarantine: bool = False) -> dict[str, int]:
        """Rows per year the lake holds for ``dataset`` (from the manifests)."""
        tbl = self.iceberg(quarantine_name(self.domain) if quarantine else None)
        return slice_rows(tbl, dataset) if tbl is not None else {}

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
        return {"files": self.files(), **self.tables_state()}

    def tables_state(self) -> dict[str, Any]:
        """The current snapshot of every Iceberg table a load writes (the lake users query)."""
        out: dict[str, Any] = {}
        for name in ("", "_quarantine", "_class_codes"):
            table = self.iceberg(f"{self.domain}{name}")
            snapshot = table.current_snapshot() if table is not None else None
            out[name or "table"] = snapshot.snapshot_id if snapshot else None
        inventory = self.iceberg("dataset_inventory")
        snapshot = inventory.current_snapshot() if inventory is not None else None
        out["inventory"] = snapshot.snapshot_id if snapshot else None
        return out

    def content(self, dataset: str = DATASET) -> dict[str, Any]:
        """What a run produced, without what differs between any two good runs (ids, clocks)."""
        manifest = self.manifest(dataset)
        assert manifest is not None
        run_dir = self.raw_dir(dataset) / "runs" / manifest["run_id"]
        pages = [
            _DATE.sub(b"", (run_dir / name).read_bytes())
            for request in manifest["requests"]
            for name in request["page_files"]
        ]
        rows = self.rows(dataset).drop_columns(["run_id"])
        return {
            "manifest": {k: v for k, v in manifest.items() if k not in VOLATILE},
            "pages": [hashlib.sha256(p).hexdigest() for p in pages],
            "runs": sorted(p.name for p in (self.raw_dir(dataset) / "runs").iterdir()),
            "run_is_published": [manifest["run_id"]],
            "rows": rows.sort_by([(k, "ascending") for k in KEYS]),
        }


def make_lake(
    home: Path,
    server: EmulatorServer,
    instance: dg.DagsterInstance,
    *,
    domain: DomainSpec | None = None,
    page_size: int = PAGE_SIZE,
    attempts: int = 3,
    timeout: float = 10.0,
    app_id: Any = "test-app-id",
    concurrency: int = 4,
    **settings_env: str,
) -> Lake:
    settings = test_settings(home, server.api_base, **settings_env)
    resources = build_resources(settings)
    resources["estat"] = FastEStat(
        app_id=app_id,
        base_url=server.api_base,
        page_size=page_size,
        retry_attempts=attempts,
        timeout_seconds=timeout,
        concurrency=concurrency,
    )
    spec = domain or DomainSpec(DOMAIN, datasets=(DATASET,))
    defs = build_definitions(settings, domains=(spec,), resources=resources)
    return Lake(defs, instance, resources, settings, server, spec.name)


def assert_same_content(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["manifest"] == b["manifest"]
    assert a["pages"] == b["pages"]
    assert len(a["runs"]) == 1 and len(b["runs"]) == 1  # only the published run is kept
    assert a["rows"].num_rows == b["rows"].num_rows == a["manifest"]["total_number"]
    assert a["rows"].equals(b["rows"])


def step_failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    return next(e for e in result.all_events if e.is_step_failure)


def step_retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(
        1 for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    )


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}
