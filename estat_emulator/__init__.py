"""A local e-Stat API v3 emulator: recorded and generated tables over real HTTP, with faults.

Why: tests, the offline demo and benchmarks need an e-Stat that is fast, deterministic, works
without an appId or network, and can fail on purpose. ``serve()`` is what ``estat-lake emulator``
(and ``python -m estat_emulator``) runs; tests start :class:`EmulatorServer` on port 0.

Modules: ``store`` (tables by id, from sample files), ``recorded``/``generate`` (the two kinds of
table; ``spec``, ``spec_axes``, ``layout`` describe generated ones), ``table_inf`` (complete
TABLE_INF), ``english`` (``lang=E``), ``release`` (republishing), ``responses`` (the documents),
``server``/``faults``/``wire`` (HTTP, failures, e-Stat's JSON escaping).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from .faults import FaultRule, FaultSet
from .generate import GeneratedSpec, GeneratedTable, benchmark_spec, synthetic_spec
from .release import Release
from .server import EmulatorServer
from .store import TableStore

__all__ = [
    "EmulatorServer",
    "FaultRule",
    "FaultSet",
    "GeneratedSpec",
    "GeneratedTable",
    "Release",
    "TableStore",
    "benchmark_spec",
    "serve",
    "synthetic_spec",
]


def serve(
    data_dir: str | None,
    host: str = "127.0.0.1",
    port: int = 8080,
    faults_file: str | None = None,
    required_app_id: str | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT: ``data_dir=None`` serves the package's own samples."""
    store = TableStore.default() if data_dir is None else TableStore.from_directory(Path(data_dir))
    server = EmulatorServer(store, host=host, port=port, required_app_id=required_app_id)
    if faults_file:
        server.faults.load(faults_file)
    stopping = threading.Event()
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stopping.set())
    server.start()
    print(f"e-Stat emulator serving {len(store)} tables on {server.url}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
