"""The local run launcher: a run starts in a process that has already imported its libraries.

Why: Dagster's ``DefaultRunLauncher`` asks the code server to spawn a fresh interpreter per run,
which then imports Dagster, pyarrow, pandas, pyiceberg and pandera (about 2-3 s on the 2-core
machine) before the first step; a 60,000-row table's whole load is about 2 s. This launcher runs
each run in a child forked from a Python *fork server* (the standard library's
``multiprocessing`` ``forkserver``) that imported those libraries once, when the first run was
launched. The child executes the run with ``dagster api execute_run``'s own code, so it runs
exactly as Dagster's worker would; forking takes milliseconds, so back-to-back and parallel runs
start warm and no import competes with a running load for the CPU.

The fork server imports third-party libraries only, never the code location: each run imports
``estat_assets`` fresh, so "Reload definitions" in the UI and edited code apply to the next run as
they do with Dagster's launcher. A run whose libraries changed on disk since the fork server
imported them (an upgrade) executes in a fresh ``dagster api execute_run`` process instead.
Runs whose Python is not this one fall back to Dagster's launcher.

Terminate (the UI's button, from any process): the run is marked canceling and its worker gets
SIGINT, which Dagster's worker turns into a clean cancellation (what the code server's cancel
does inside the worker). Local only: production launches runs as ECS tasks
(``deploy/dagster.yaml``).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess

import psutil
from dagster._core.launcher.base import LaunchRunContext
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClassData, serialize_value

WORKER_PID_TAG = "estat/worker_pid"
SERVER_MARK = "multiprocessing.forkserver"  # in the command line of the server and its children

# What the code location imports and costs the most to import (docs/benchmarks.md); a test checks
# that importing the definitions after these adds no third-party module.
PRELOAD = (
    "dagster",
    "dagster._cli.api",
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.dataset",
    "pyarrow.parquet",
    "pandera.pandas",
    "pandera.backends.pandas.register",  # imported by the first validation, not by the code
    "pandera.backends.pandas.builtin_checks",
    "pyiceberg.catalog.sql",
    "pyiceberg.io.pyarrow",
    "pyiceberg.table",
    "sqlalchemy",
    "sqlglot",
    "fsspec",
    "fsspec.implementations.local",
    "pyarrow.json",
    "duckdb",
    "orjson",
    "upath",
    "upath.core",
    "upath.registry",
    "upath._flavour",
    "upath._chain",
    "httpx",
    "yaml",
    "psutil",
    # what executing a run imports beyond the code location: the instance's storage (with
    # alembic's migration checks and the daemon modules it imports), the in-process executor,
    # the compute log manager, and the HTTP transport the e-Stat client opens
    "dagster._core.instance.factory",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.executor.in_process",
    "dagster._core.execution.plan.active",
    "alembic.runtime.migration",
    "alembic.script",
    "httpcore",
    "h11",
    # what building a run's definitions and plan imports (the probe in the launcher's tests)
    "dagster._core.workspace.autodiscovery",
    "dagster._core.definitions.repository_definition.repository_data_builder",
    "dagster._core.instance.runs.run_domain",
    "dagster._core.system_config.composite_descent",
    "dagster._core.storage.root",
    "dagster._utils.test.definitions",
    "upath.implementations.local",
    "dagster._core.definitions.external_asset",
    "dagster._core.types.transform_typing",
    "dagster._core.types.primitive_mapping",
    "dagster._core.storage.migration.utils",
    # what the steps import on first use
    "pandera.accessors.pandas_accessor",
    "pandera.backends.pandas.builtin_hypotheses",
    "pyarrow.acero",
    "pyiceberg.avro.decoder_fast",
    "pyiceberg.table.update.validate",
)


def _stamp(module: str) -> tuple[int, int] | None:
    path = getattr(sys.modules.get(module), "__file__", None)
    if not path:
        return None
    st = os.stat(path)
    return st.st_mtime_ns, st.st_ino


def changed(stamps: dict[str, tuple[int, int] | None]) -> bool:
    """Whether a module's file changed on disk since ``stamps`` were taken."""
    return any(_stamp(module) != stamp for module, stamp in stamps.items())


# In the fork server this module is imported after PRELOAD: the files its children run with.
STAMPS = {module: _stamp(module) for module in PRELOAD if module in sys.modules}


class WarmRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose runs are forked from a pre-imported server (see the module)."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(inst_data)
        self._context: BaseContext | None = None
        self._workers: dict[str, BaseProcess] = {}
        self._lock = threading.Lock()

    def _server(self) -> BaseContext:
        """The fork server's context; the server itself starts with the first run."""
        if self._context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([*PRELOAD, __name__])
            self._context = context
        return self._context

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = run.job_code_origin
        if origin is None or not _same_python(origin.executable_path):
            super().launch_run(context)
            return
        line = serialize_value(ExecuteRunArgs(origin, run.run_id, self._instance.get_ref()))
        with self._lock:
            self._reap()
            worker = self._server().Process(
                target=execute_run, args=(line,), name=f"estat-run-{run.run_id}"
            )
            worker.start()
            self._instance.add_run_tags(run.run_id, {WORKER_PID_TAG: str(worker.pid)})
            self._workers[run.run_id] = worker

    def _reap(self) -> None:
        """Release the handles of ended workers (the fork server collects their exit)."""
        for run_id, worker in list(self._workers.items()):
            if not worker.is_alive():
                worker.close()
                del self._workers[run_id]

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id) if self.has_instance else None
        if run is None or run.is_finished or WORKER_PID_TAG not in run.tags:
            return super().terminate(run_id)
        pid = int(run.tags[WORKER_PID_TAG])
        if not _is_forked_worker(pid):
            self._instance.report_engine_event(
                f"The run's worker (pid {pid}) is gone: nothing to terminate.", run, cls=type(self)
            )
            return False
        self._instance.report_run_canceling(run)
        os.kill(pid, signal.SIGINT)  # Dagster's worker turns it into a cancellation
        return True


def _same_python(executable: str | None) -> bool:
    return bool(executable) and os.path.realpath(executable) == os.path.realpath(sys.executable)


def _is_forked_worker(pid: int) -> bool:
    try:
        return SERVER_MARK in " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def execute_run(line: str) -> None:
    """A run in a child of the fork server, as ``dagster api execute_run`` executes it."""
    # The inherited heap (~300k objects of the preloaded libraries) is never garbage: keep the
    # cyclic GC off it, or its first full collection walks it all, copying each page it touches
    # (0.1-0.3 s in the middle of a run).
    gc.freeze()
    if changed(STAMPS):  # a library was upgraded since the server imported it
        os.execv(sys.executable, [sys.executable, "-m", "dagster", "api", "execute_run", line])
    from dagster._cli.api import execute_run_command

    build_definitions_once()
    execute_run_command.callback(line, None)  # type: ignore[misc]


def build_definitions_once() -> None:
    """Make this process build each code location's definitions once (call in a run worker).

    Dagster's worker builds them for the run's job, then again for the job's asset subset (a
    new ``ReconstructableJob``, whose cache misses): the whole catalog twice per run, ~0.1 s of
    a small table's load. A worker executes one run, so its definitions cannot change under it.
    """
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    build = ReconstructableRepository.get_definition
    if getattr(build, "built_once", False):
        return
    built: dict[str, object] = {}

    def get_definition(self: ReconstructableRepository):  # type: ignore[no-untyped-def]
        key = serialize_value(self)
        if key not in built:
            built[key] = build(self)
        return built[key]

    get_definition.built_once = True  # type: ignore[attr-defined]
    ReconstructableRepository.get_definition = get_definition  # type: ignore[method-assign]
