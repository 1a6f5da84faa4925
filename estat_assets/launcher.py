"""The local run launcher: a run starts in a Python process that has already imported its libraries.

Why: Dagster's ``DefaultRunLauncher`` asks the code server to spawn a fresh interpreter per run,
which then imports Dagster, pyarrow, pandas, pyiceberg and pandera (about 2 s on the 2-core
machine) before the first step; a 60,000-row table's whole load is about 2 s. This launcher keeps
one *spare* process that has imported those libraries and waits; a launched run is handed to it
(``dagster api execute_run``'s own code, so the run executes exactly as Dagster's worker would);
once that run's worker has ended, a new spare is started for the next run (not at once: its
imports would compete with the run for the CPU). Runs launched while no spare waits (the first
after start-up, a second run in parallel) start in a new process, as with Dagster's launcher.

The spare imports third-party libraries only, never ``estat_assets``: the run imports the code
location fresh, so "Reload definitions" in the UI and edited code apply to the next run as they
do with Dagster's launcher. A spare whose libraries changed on disk since it imported them (an
upgrade) runs its run in a fresh ``dagster api execute_run`` instead. Runs whose Python is not
this one fall back to Dagster's launcher.

Terminate (the UI's button, from any process): the run is marked canceling and its worker gets
SIGINT, which Dagster's worker turns into a clean cancellation (what the code server's cancel
does inside the worker). Local only: production launches runs as ECS tasks
(``deploy/dagster.yaml``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import threading

import psutil
from dagster._core.launcher.base import LaunchRunContext
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClassData, serialize_value

WORKER_PID_TAG = "estat/worker_pid"

# What the code location imports and costs the most to import (docs/benchmarks.md); a test checks
# that importing the definitions after these adds no third-party package.
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
)

SPARE_MODULE = "estat_assets.launcher"


class WarmRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose runs start in a pre-imported spare process (see the module)."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(inst_data)
        self._spare: subprocess.Popen | None = None
        self._workers: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._disposed = False

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = run.job_code_origin
        if origin is None or not _same_python(origin.executable_path):
            super().launch_run(context)
            return
        args = ExecuteRunArgs(origin, run.run_id, self._instance.get_ref())
        line = serialize_value(args)
        with self._lock:
            self._reap()
            worker = self._hand_over(line)
            self._instance.add_run_tags(run.run_id, {WORKER_PID_TAG: str(worker.pid)})
            self._workers[run.run_id] = worker
        threading.Thread(
            target=self._spare_after, args=(worker,), name="estat-spare", daemon=True
        ).start()

    def _spare_after(self, worker: subprocess.Popen) -> None:
        """The next run's spare, started once this run's worker has ended: its imports (two
        seconds of a core) must not slow the run down on a small machine."""
        worker.wait()
        with self._lock:
            self._reap()
            if self._spare is None and not self._disposed:
                self._spare = _start_spare()

    def _hand_over(self, line: str) -> subprocess.Popen:
        """The run's line to the waiting spare if it is alive, else to a new process."""
        spare, self._spare = self._spare, None
        if spare is not None:
            with contextlib.suppress(BrokenPipeError, OSError, ValueError):
                _send(spare, line)
                return spare
            _retire(spare)
        process = _start_spare()
        _send(process, line)
        return process

    def _reap(self) -> None:
        """Collect the exit status of finished workers (no zombies in a long-lived daemon)."""
        for run_id, process in list(self._workers.items()):
            if process.poll() is not None:
                del self._workers[run_id]

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id) if self.has_instance else None
        if run is None or run.is_finished or WORKER_PID_TAG not in run.tags:
            return super().terminate(run_id)
        pid = int(run.tags[WORKER_PID_TAG])
        if not _is_spare_process(pid):
            self._instance.report_engine_event(
                f"The run's worker (pid {pid}) is gone: nothing to terminate.", run, cls=type(self)
            )
            return False
        self._instance.report_run_canceling(run)
        os.kill(pid, signal.SIGINT)  # Dagster's worker turns it into a cancellation
        return True

    def dispose(self) -> None:
        with self._lock:
            self._disposed = True
            if self._spare is not None:
                _retire(self._spare)
                self._spare = None
        super().dispose()


def _same_python(executable: str | None) -> bool:
    return bool(executable) and os.path.realpath(executable) == os.path.realpath(sys.executable)


def _start_spare() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", SPARE_MODULE],
        stdin=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )


def _send(process: subprocess.Popen, line: str) -> None:
    if process.poll() is not None:
        raise BrokenPipeError("the spare exited")
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.close()


def _retire(process: subprocess.Popen) -> None:
    """A spare with no run: closing its input ends it."""
    with contextlib.suppress(OSError, ValueError):
        if process.stdin is not None:
            process.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
        return
    process.kill()


def _is_spare_process(pid: int) -> bool:
    try:
        return SPARE_MODULE in " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _stamp(module: str) -> tuple[int, int] | None:
    path = getattr(sys.modules[module], "__file__", None)
    if not path:
        return None
    st = os.stat(path)
    return st.st_mtime_ns, st.st_ino


def changed(stamps: dict[str, tuple[int, int] | None]) -> bool:
    """Whether a module's file changed on disk since ``stamps`` were taken."""
    return any(_stamp(module) != stamp for module, stamp in stamps.items())


def spare_main() -> int:
    """The spare: import the libraries, wait for one run, execute it as ``dagster api
    execute_run`` does; exit quietly if the launcher goes away first."""
    try:
        for module in PRELOAD:
            importlib.import_module(module)
        stamps = {module: _stamp(module) for module in PRELOAD}
        line = sys.stdin.readline().strip()
    except KeyboardInterrupt:  # Ctrl-C in `dagster dev` before a run came: nothing to do
        return 0
    if not line:
        return 0
    if changed(stamps):  # a library was upgraded since it was imported: run what is installed now
        os.execv(sys.executable, [sys.executable, "-m", "dagster", "api", "execute_run", line])
    from dagster._cli.api import execute_run_command

    execute_run_command.callback(line, None)  # type: ignore[misc]
    return 0


if __name__ == "__main__":
    sys.exit(spare_main())
