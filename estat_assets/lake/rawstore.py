"""Raw pages, byte-exact, staged per run and published by one manifest write.

A raw partition is ``manifest.json`` plus the pages of the run it names. Pages of a run that has not
published its manifest are invisible to readers, and are removed when the run fails; a manifest
write replaces the previous one atomically, so a crash mid-fetch leaves the last good raw data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

from estat_assets.lake.layout import page_name, partition_dir, raw_run_dir
from estat_assets.lake.storage import Storage

MANIFEST = "manifest.json"
META_FILE = "meta.json"
PUBLISHED_MARK = ".published"  # in a run folder: its manifest was written once
STALE_RUN_SECONDS = 6 * 3600  # an unpublished run older than this crashed: its pages can go


@dataclass
class RawRunSink:
    """A :class:`~estat_assets.estat.client.PageSink` writing one run's pages to storage."""

    storage: Storage
    domain: str
    dataset_id: str
    year: str
    run_id: str
    pages: dict[int, str] = field(default_factory=dict)

    @property
    def run_parts(self) -> tuple[str, ...]:
        return raw_run_dir(self.domain, self.dataset_id, self.year, self.run_id)

    def write_page(self, page_no: int, raw: bytes) -> None:
        name = page_name(page_no)
        self.storage.write_bytes(self.storage.path(*self.run_parts, name), raw)
        self.pages[page_no] = name

    def write_meta(self, raw: bytes) -> str:
        self.storage.write_bytes(self.storage.path(*self.run_parts, META_FILE), raw)
        return META_FILE

    def reset(self) -> None:
        """Drop the pages of a failed fetch attempt (the client restarts from page 1).

        The run's ``meta.json`` stays: it was fetched once before the pages and is still valid.
        """
        for name in list(self.pages.values()):
            path = self.storage.path(*self.run_parts, name)
            if self.storage.exists(path):
                path.unlink()
        self.pages.clear()

    def discard(self) -> None:
        """Remove everything this run staged (the run failed: nothing of it may be published)."""
        self.storage.remove_tree(self.storage.path(*self.run_parts))
        self.pages.clear()

    def page_files(self) -> list[str]:
        return [self.pages[k] for k in sorted(self.pages)]


def run_dir_of(manifest: dict) -> tuple[str, ...]:
    return raw_run_dir(
        manifest["domain"], manifest["dataset_id"], str(manifest["year"]), manifest["run_id"]
    )


def read_run_file(storage: Storage, manifest: dict, name: str) -> bytes:
    return storage.read_bytes(storage.path(*run_dir_of(manifest), name))


def read_pages(storage: Storage, manifest: dict) -> list[bytes]:
    """The pages a manifest publishes, in order."""
    return [read_run_file(storage, manifest, name) for name in manifest["page_files"]]


def load_manifest(storage: Storage, domain: str, dataset_id: str, year: str) -> dict | None:
    path = storage.path(*partition_dir(domain, "raw", dataset_id, year), MANIFEST)
    if not storage.exists(path):
        return None
    return orjson.loads(storage.read_bytes(path))


def sweep_runs(storage: Storage, domain: str, dataset_id: str, year: str, keep: str | None) -> int:
    """After run ``keep`` published its manifest: remove the runs no manifest names any more.

    ``keep`` is marked as published. Runs marked published that the *current* manifest does not
    name were superseded (e.g. two runs of one partition published at once, each reading "no
    previous manifest"): they go. Unmarked runs may still be fetching or about to publish; only
    when they are older than ``STALE_RUN_SECONDS`` (a crash) do they go. The current run never.
    The marks are listed before the manifest is read, so a run that published after the read
    cannot be taken for a superseded one.
    """
    runs_dir = storage.path(*partition_dir(domain, "raw", dataset_id, year), "runs")
    if keep:
        storage.write_bytes(runs_dir / keep / PUBLISHED_MARK, b"")
    runs = storage.list_dirs(runs_dir)
    published = {run.name for run in runs if storage.exists(run / PUBLISHED_MARK)}
    current = load_manifest(storage, domain, dataset_id, year)
    current_id = current.get("run_id") if current else None
    removed = 0
    now = time.time()
    for run in runs:
        if run.name == current_id or (run.name == keep and current_id is None):
            continue
        if run.name in published:
            storage.remove_tree(run)
            removed += 1
            continue
        try:
            age = now - run.stat().st_mtime
        except (OSError, AttributeError, TypeError):
            continue
        if age > STALE_RUN_SECONDS:
            storage.remove_tree(run)
            removed += 1
    return removed
