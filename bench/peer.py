"""The dlt peer of ``bench/e2e.py``: estat-api-dlt-helper + ``dlt[duckdb]``, in its own venv.

Why its own venv: dlt brings its own pins (sqlglot, duckdb, pendulum, …); installed beside ours
they could move a package the lake depends on, and then the benchmark would measure another
product. The requirements are the ``bench`` extra of ``pyproject.toml`` (one list, read here);
``ensure_venv()`` creates ``<cache>/bench-peer-venv`` with the interpreter running the bench and
installs them from the package index with pip, once (a stamp file holds what was installed).

The peer runs as a separate process (``run_peer``): this file is executed by the peer venv's
Python as a script (``python bench/peer.py --worker …``), so the worker half imports nothing of
the lake, only dlt and the helper. It loads one table with the invocation the helper's README
gives, pointed at the emulator (0.3.2 takes no base URL: ``ESTAT_ENDPOINTS["base_url"]`` is read
when the client is built), into a fresh DuckDB file, and prints one JSON line: rows in DuckDB,
seconds of ``pipeline.run`` and the process's peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_LIMIT = 100_000  # rows per getStatsData request, as the lake's client pages
PEER_APP_ID = "emulator-app-id"


# ---- the driver side (the lake's venv) ---------------------------------------------------------


def requirements() -> list[str]:
    """The ``bench`` extra of pyproject.toml: what the peer venv holds."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["optional-dependencies"]["bench"])


def cache_dir() -> Path:
    """``$BENCH_CACHE``, else ``$ESTAT_LAKE_HOME`` (``make`` sets it), else ``./.estat-lake``."""
    root = os.environ.get("BENCH_CACHE") or os.environ.get("ESTAT_LAKE_HOME")
    return Path(root).resolve() if root else ROOT / ".estat-lake"


def ensure_venv(say=print) -> Path:
    """The peer venv's Python, created and installed on first use (pip, from the index)."""
    venv = cache_dir() / "bench-peer-venv"
    python = venv / "bin" / "python"
    stamp = venv / "bench-requirements.txt"
    wanted = "\n".join(requirements()) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == wanted:
        return python
    say(f"peer: installing {' '.join(requirements())} into {venv} (once)")
    started = time.monotonic()
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *requirements()], check=True)
    stamp.write_text(wanted, encoding="utf-8")
    say(f"peer: installed in {time.monotonic() - started:.0f} s")
    return python


def peer_versions(python: Path) -> str:
    out = subprocess.run(
        [
            str(python),
            "-c",
            "from importlib.metadata import version as v; "
            "print(f\"estat-api-dlt-helper {v('estat-api-dlt-helper')}, dlt {v('dlt')}, "
            "duckdb {v('duckdb')}\")",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def page_limit(rows: int, limit: int = PAGE_LIMIT) -> int:
    """A page size that never leaves a last page of exactly one row (0.3.2 fails on it)."""
    while rows % limit == 1:
        limit -= 1
    return limit


def peer_env(workdir: Path) -> dict[str, str]:
    """No telemetry, no state outside ``workdir``, nothing from the lake's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESTAT_", "DAGSTER_"))}
    env.update(
        {
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "DLT_DATA_DIR": str(workdir / "dlt-data"),
            "HOME": str(workdir),  # ~/.dlt is where dlt looks for global config and secrets
            "TMPDIR": str(workdir),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def run_peer(
    python: Path, base_url: str, table_id: str, rows: int, workdir: Path, timeout: float = 1800
) -> dict:
    """Load ``table_id`` with the peer in a fresh process; its figures (see ``_worker``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(python),
        str(Path(__file__).resolve()),
        "--worker",
        base_url,
        table_id,
        str(workdir),
        str(page_limit(rows)),
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=peer_env(workdir),
        cwd=workdir,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        _kill_group(proc)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"peer {table_id} failed ({proc.returncode}):\n{err[-3000:]}")
    figures = json.loads(out.strip().splitlines()[-1])
    figures["process_wall"] = wall
    return figures


def _kill_group(proc: subprocess.Popen) -> None:
    import contextlib
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(10)


# ---- the worker side (the peer venv) -----------------------------------------------------------


def _peak_rss_mb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, children_kb) / 1024


def _worker(base_url: str, table_id: str, workdir: str, limit: int) -> None:
    started = time.perf_counter()
    import dlt
    import duckdb
    from estat_api_dlt_helper import estat_table
    from estat_api_dlt_helper.api.endpoints import ESTAT_ENDPOINTS

    imported = time.perf_counter()
    ESTAT_ENDPOINTS["base_url"] = base_url.rstrip("/") + "/"
    database = str(Path(workdir) / f"peer_{table_id}.duckdb")
    pipeline = dlt.pipeline(
        pipeline_name=f"peer_{table_id}",
        destination=dlt.destinations.duckdb(database),
        dataset_name="estat",
        pipelines_dir=str(Path(workdir) / "pipelines"),
    )
    run_started = time.perf_counter()
    pipeline.run(estat_table(table_id, app_id=PEER_APP_ID, limit=limit))
    seconds = time.perf_counter() - run_started
    con = duckdb.connect(database, read_only=True)
    rows = con.execute(f"SELECT count(*) FROM estat.estat_{table_id}").fetchone()[0]
    con.close()
    print(
        json.dumps(
            {
                "table": table_id,
                "rows": int(rows),
                "seconds": seconds,
                "imports": imported - started,
                "limit": limit,
                "peak_rss_mb": _peak_rss_mb(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        print("usage: python bench/peer.py --worker URL TABLE_ID WORKDIR LIMIT", file=sys.stderr)
        sys.exit(2)
