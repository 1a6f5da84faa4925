"""Fetch benchmark: the e-Stat client against the emulator over HTTP, in separate processes.

The emulator runs in its own process (it must not share the client's GIL) and serves generated
tables in 100,000-row pages. Every measurement runs the client in a fresh process, so its peak RSS
is its own. Figures (one line each), then a summary line:

* records/s and peak RSS of the streaming client (concurrency 4, pages to a file sink as they
  arrive) on a 1,000,000-row table with zero latency, and of a naive baseline in the same run
  (one page at a time, every page parsed and kept in memory);
* wall time with 1 s latency per page at concurrency 4, against the ideal ``pages / 4`` seconds
  (the emulator replays pages it rendered in a warm-up fetch, see ``serve``);
* peak RSS of the streaming client on 1M and 5M rows (should stay flat).

``python -m bench fetch`` (or ``python -m bench.fetch``). ``BENCH_FETCH_BIG=0`` skips the 5M table.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
PAGE = 100_000
TABLES = {  # id → rows (the emulator's benchmark_spec: tab × cat01 × area × time)
    "9990000001": 1_000_000,
    "9990000002": 1_000_000,  # the same size, served with 1 s latency per getStatsData page
    "9990000005": 5_000_000,
    "9990000006": 5_000_000,  # 5M with 1 s latency per page (50 pages)
}
LATENCY_TABLES = ("9990000002", "9990000006")
LATENCY_TABLE = "9990000002"
LATENCY = 1.0
APP_ID = "bench"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


# ---- the emulator process ----------------------------------------------------------------------


def serve() -> None:
    """The emulator, serving the benchmark tables; the latency table from pre-rendered pages.

    The emulator renders a 100,000-row page in ~0.2 s of CPU under one GIL, so four concurrent
    pages cost ~0.8 s of server time: for the latency figure it replays the pages it rendered
    during a warm-up fetch, so that the figure measures the client's overlap of the 1 s waits.
    """
    import time as _time

    from estat_emulator import EmulatorServer, TableStore, benchmark_spec

    class ReplayingEmulator(EmulatorServer):
        cache: ClassVar[dict] = {}

        def _api(self, endpoint, path, params, handler):  # type: ignore[override]
            if endpoint != "getStatsData" or params.get("statsDataId") not in LATENCY_TABLES:
                return super()._api(endpoint, path, params, handler)
            key = tuple(sorted((k, v) for k, v in params.items() if k != "appId"))
            reply = self.cache.get(key)
            if reply is None:  # the warm-up fetch: render, remember, answer at once
                reply = self.cache[key] = super()._api(endpoint, path, params, handler)
                return reply
            _time.sleep(LATENCY)
            return reply

    store = TableStore()
    for table_id, rows in TABLES.items():
        store.add_generated(benchmark_spec(table_id, rows))
    server = ReplayingEmulator(store, host="127.0.0.1", port=0)
    print(server.api_base, flush=True)
    server.serve_forever()


# ---- the client process ------------------------------------------------------------------------


class FileSink:
    """Pages to files as they arrive (what the raw asset does), counting bytes."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.bytes = 0

    def write_page(self, page_no: int, raw: bytes) -> None:
        (self.folder / f"page-{page_no:05d}.json").write_bytes(raw)
        self.bytes += len(raw)

    def reset(self) -> None:
        for p in self.folder.glob("page-*.json"):
            p.unlink()


def client(mode: str, base: str, table_id: str, concurrency: int) -> dict:
    import httpx
    import orjson

    from estat_assets.estat.client import EStatClient

    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    if mode == "stream":
        with (
            EStatClient(APP_ID, base, concurrency=concurrency) as c,
            tempfile.TemporaryDirectory(prefix="bench-fetch-") as folder,
        ):
            meta, _ = c.get_meta_info(table_id)
            started = time.perf_counter()  # the fetch itself, after getMetaInfo
            result = c.fetch_table(
                table_id, FileSink(folder), rows_hint=meta.table.overall_total_number
            )
            rows, pages = result.rows, result.pages
            elapsed = time.perf_counter() - started
    else:  # the naive way: one page after another, each parsed whole and kept
        docs = []
        with httpx.Client(timeout=120) as http:
            start, total = 1, None
            while total is None or start <= total:
                resp = http.get(
                    f"{base}/getStatsData",
                    params={
                        "appId": APP_ID,
                        "statsDataId": table_id,
                        "startPosition": start,
                        "limit": PAGE,
                        "metaGetFlg": "N",
                    },
                )
                doc = orjson.loads(resp.content)
                docs.append(doc)
                data = doc["GET_STATS_DATA"]["STATISTICAL_DATA"]
                total = int(data["RESULT_INF"]["TOTAL_NUMBER"])
                start += PAGE
        rows = sum(len(d["GET_STATS_DATA"]["STATISTICAL_DATA"]["DATA_INF"]["VALUE"]) for d in docs)
        pages = len(docs)
        elapsed = time.perf_counter() - started
    return {
        "mode": mode,
        "table": table_id,
        "concurrency": concurrency,
        "rows": rows,
        "pages": pages,
        "seconds": elapsed,
        "rss_start_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


# ---- the driver --------------------------------------------------------------------------------


def _measure(base: str, mode: str, table_id: str, concurrency: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.fetch", "client", mode, base, table_id, str(concurrency)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"client {mode} {table_id} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    big = os.environ.get("BENCH_FETCH_BIG", "1") != "0"
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.fetch", "serve"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    status = 0
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        if not base.startswith("http"):
            print("fetch: the emulator did not start", flush=True)
            return 1
        print(f"fetch: emulator in pid {server.pid} at {base}; pages of {PAGE:,} rows", flush=True)

        fast = _measure(base, "stream", "9990000001", 4)
        rate = fast["rows"] / fast["seconds"]
        print(
            f"fetch 1M zero-latency concurrency 4 (streaming): {rate:,.0f} records/s, "
            f"{fast['seconds']:.2f} s, peak RSS {fast['peak_rss_mb']:.0f} MB "
            f"(after imports {fast['rss_start_mb']:.0f} MB)",
            flush=True,
        )
        naive = _measure(base, "naive", "9990000001", 1)
        naive_rate = naive["rows"] / naive["seconds"]
        print(
            f"fetch 1M zero-latency baseline (sequential, every page parsed and kept): "
            f"{naive_rate:,.0f} records/s, {naive['seconds']:.2f} s, "
            f"peak RSS {naive['peak_rss_mb']:.0f} MB",
            flush=True,
        )
        _measure(base, "stream", LATENCY_TABLE, 4)  # warm-up: the emulator renders the pages
        slow = _measure(base, "stream", LATENCY_TABLE, 4)
        ideal = slow["pages"] * LATENCY / 4
        rounds = math.ceil(slow["pages"] / 4) * LATENCY
        over = slow["seconds"] / ideal - 1
        print(
            f"fetch 1M with {LATENCY:.0f} s latency/page, concurrency 4: {slow['seconds']:.2f} s "
            f"for {slow['pages']} pages; ideal pages/4 = {ideal:.2f} s ({over:+.0%}), "
            f"whole rounds ceil(pages/4) = {rounds:.2f} s",
            flush=True,
        )
        rss = {"1M": fast["peak_rss_mb"]}
        if big:
            five = _measure(base, "stream", "9990000005", 4)
            rss["5M"] = five["peak_rss_mb"]
            print(
                f"fetch 5M zero-latency concurrency 4 (streaming): "
                f"{five['rows'] / five['seconds']:,.0f} records/s, {five['seconds']:.2f} s, "
                f"peak RSS {five['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            _measure(base, "stream", "9990000006", 4)  # warm-up
            slow5 = _measure(base, "stream", "9990000006", 4)
            ideal5 = slow5["pages"] * LATENCY / 4
            print(
                f"fetch 5M with {LATENCY:.0f} s latency/page, concurrency 4: "
                f"{slow5['seconds']:.2f} s for {slow5['pages']} pages; ideal pages/4 = "
                f"{ideal5:.2f} s ({slow5['seconds'] / ideal5 - 1:+.0%}), whole rounds "
                f"ceil(pages/4) = {math.ceil(slow5['pages'] / 4) * LATENCY:.2f} s",
                flush=True,
            )
        growth = rss.get("5M", rss["1M"]) / rss["1M"] - 1
        print(
            "fetch summary: "
            f"{rate:,.0f} records/s streaming vs {naive_rate:,.0f} naive "
            f"(aim >= 300,000: {'met' if rate >= 300_000 else 'NOT met'}); "
            f"latency {slow['seconds']:.2f} s vs ideal {ideal:.2f} s ({over:+.0%}); "
            f"peak RSS {', '.join(f'{k} {v:.0f} MB' for k, v in rss.items())} "
            f"({growth:+.0%} from 1M to 5M) vs naive {naive['peak_rss_mb']:.0f} MB at 1M",
            flush=True,
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    return status


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve()
    elif len(sys.argv) > 1 and sys.argv[1] == "client":
        _, _, mode, base, table_id, conc = sys.argv
        print(json.dumps(client(mode, base, table_id, int(conc))), flush=True)
    else:
        sys.exit(main())
