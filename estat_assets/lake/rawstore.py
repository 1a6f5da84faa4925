"""Raw pages, byte-exact, staged per run and published by one manifest write.

A raw dataset is ``manifest.json`` plus the files of the run it names (``meta.json`` and the pages
of each request). Pages of a run that has not published its manifest are invisible to readers and
are removed when the run fails; a manifest write replaces the previous one atomically, so a crash
mid-fetch leaves the last good raw data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

from estat_assets.lake.layout import MANIFEST, META_FILE, dataset_dir, page_name, raw_run_dir
from estat_assets.lake.storage import Storage

PUBLISHED_MARK = ".published"  # in a run folder: its manifest was written once
STALE_RUN_SECONDS = 6 * 3600  # an unpublished run older than this crashed: its pages can go


@dataclass
class RawRunSink:
    """Where one run's pages go: a ``RequestSink`` for :func:`estat.download.download`."""

    storage: Storage
    domain: str
    dataset_id: str
    run_id: str
    request_no: int = 1
    pages: dict[int, dict[int, str]] = field(default_factory=dict)  # request → page → file

    @property
    def run_parts(self) -> tuple[str, ...]:
        return raw_run_dir(self.domain, self.dataset_id, self.run_id)

    def begin_request(self, request_no: int) -> None:
        self.request_no = request_no
        self.pages.setdefault(request_no, {})

    def write_page(self, page_no: int, raw: bytes) -> None:
        name = page_name(self.request_no, page_no)
        self.storage.write_bytes(self.storage.path(*self.run_parts, name), raw)
        self.pages.setdefault(self.request_no, {})[page_no] = name

    def write_meta(self, raw: bytes) -> str:
        self.storage.write_bytes(self.storage.path(*self.run_parts, META_FILE), raw)
        return META_FILE

    def reset(self) -> None:
        """Drop the pages of the current request's failed attempt (the client restarts it)."""
        for name in self.pages.get(self.request_no, {}).values():
            self.storage.remove(self.storage.path(*self.run_parts, name))
        self.pages[self.request_no] = {}

    def reset_all(self) -> None:
        """Drop every page of this run (the table was republished: fetch everything again)."""
        for request_no in list(self.pages):
            self.request_no = request_no
            self.reset()
        self.pages.clear()

    def discard(self) -> None:
        """Remove everything this run staged (the run failed: nothing of it may be published)."""
        self.storage.remove_tree(self.storage.path(*self.run_parts))
        self.pages.clear()

    def page_files(self, request_no: int) -> list[str]:
        got = self.pages.get(request_no, {})
        return [got[k] for k in sorted(got)]


def run_dir_of(manifest: dict) -> tuple[str, ...]:
    return raw_run_dir(manifest["domain"], manifest["dataset_id"], manifest["run_id"])


def read_run_file(storage: Storage, manifest: dict, name: str) -> bytes:
    return storage.read_bytes(storage.path(*run_dir_of(manifest), name))


def page_files(manifest: dict) -> list[str]:
    """Every page a manifest publishes, request by request, in order."""
    return [name for request in manifest["requests"] for name in request["page_files"]]


def manifest_path(storage: Storage, domain: str, dataset_id: str):
    return storage.path(*dataset_dir(domain, "raw", dataset_id), MANIFEST)


def load_manifest(storage: Storage, domain: str, dataset_id: str) -> dict | None:
    path = manifest_path(storage, domain, dataset_id)
    if not storage.exists(path):
        return None
    return orjson.loads(storage.read_bytes(path))


def sweep_runs(storage: Storage, domain: str, dataset_id: str, keep: str | None) -> int:
    """After run ``keep`` published its manifest: remove the runs no manifest names any more.

    ``keep`` is marked as published. Runs marked published that the *current* manifest does not
    name were superseded (e.g. two runs of one dataset published at once, each reading "no
    previous manifest"): they go. Unmarked runs may still be fetching or about to publish; only
    when they are older than ``STALE_RUN_SECONDS`` (a crash) do they go. The current run never.
    The marks are listed before the manifest is read, so a run that published after the read
    cannot be taken for a superseded one. Only folders inside this dataset's ``runs/`` are
    touched.
    """
    runs_dir = storage.path(*dataset_dir(domain, "raw", dataset_id), "runs")
    if keep:
        storage.write_bytes(
            storage.path(*raw_run_dir(domain, dataset_id, keep), PUBLISHED_MARK), b""
        )
    runs = storage.list_dirs(runs_dir)
    published = {run.name for run in runs if storage.exists(run / PUBLISHED_MARK)}
    current = load_manifest(storage, domain, dataset_id)
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
