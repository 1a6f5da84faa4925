"""Conform benchmark: e-Stat-shaped raw pages on disk → conformed Parquet, vs a per-record mapper.

Pages are compact getStatsData JSON of 100,000 VALUEs each (4 axes: tab × cat01 × area × time,
~1 % special symbols from the table's NOTE legend, some decimals), with the CLASS_INF in a
getMetaInfo file beside them, as the raw layer stores them. Every figure is measured in a fresh
subprocess: wall time of the work (read pages → Parquet written) and the process's peak RSS.

    python -m bench conform            # 1M records: in-memory, streaming, per-record baseline;
                                       # then 10M records streamed
    BENCH_CONFORM_QUICK=1 python -m bench conform     # skip the 10M run
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

PAGE_ROWS = 100_000
TABS, CATS, AREAS = 2, 50, 1_000  # 2 × 50 × 1000 = one page per time code
SPECIALS = ("***", "-", "X")
NOTES = [
    {"@char": "***", "$": "調査又は集計していないもの"},
    {"@char": "-", "$": "データが得られないもの"},
    {"@char": "X", "$": "数値が秘匿されているもの"},
]
TIME_PLACEHOLDER = "2999000000"

# Targets on the shared 2-core machine (see docs/benchmarks.md).
REPEAT = 2  # fresh-process runs of each fast path; the baseline (~10 s) runs once
TARGET_WALL_1M = 1.5
TARGET_RSS_1M_MB = 600
TARGET_SPEEDUP = 4.0
TARGET_RSS_10M_MB = 1500


def _codes() -> tuple[list[str], list[str], list[str]]:
    tabs = [f"{i:03d}" for i in range(1, TABS + 1)]
    cats = [f"C{i:04d}" for i in range(1, CATS + 1)]
    areas = [f"{i:05d}" for i in range(1, AREAS + 1)]
    return tabs, cats, areas


def _times(n: int) -> list[str]:
    return [f"{1900 + i}000000" for i in range(n)]


def meta_document(n_times: int) -> dict:
    tabs, cats, areas = _codes()

    def obj(axis: str, name: str, items: list[dict]) -> dict:
        return {"@id": axis, "@name": name, "CLASS": items}

    classes = [
        obj(
            "tab",
            "表章項目",
            [{"@code": c, "@name": f"項目{c}", "@level": "", "@unit": "人"} for c in tabs],
        ),
        obj("cat01", "分類", [{"@code": c, "@name": f"分類{c}", "@level": "1"} for c in cats]),
        obj("area", "地域", [{"@code": c, "@name": f"地域{c}", "@level": "2"} for c in areas]),
        obj(
            "time",
            "時間軸",
            [{"@code": c, "@name": f"{c[:4]}年", "@level": "1"} for c in _times(n_times)],
        ),
    ]
    return {
        "GET_META_INFO": {
            "RESULT": {"STATUS": 0, "ERROR_MSG": "正常に終了しました。", "DATE": "2026-01-01"},
            "METADATA_INF": {
                "TABLE_INF": {"@id": "9999999999", "TITLE": "bench", "UPDATED_DATE": "2026-01-01"},
                "CLASS_INF": {"CLASS_OBJ": classes},
            },
        }
    }


def page_template(seed: int = 0) -> bytes:
    """One compact page of PAGE_ROWS VALUEs with a placeholder time code."""
    rng = random.Random(seed)
    tabs, cats, areas = _codes()
    values = []
    for tab in tabs:
        for cat in cats:
            for area in areas:
                r = rng.random()
                if r < 0.01:
                    v = SPECIALS[rng.randrange(3)]
                elif r < 0.11:
                    v = f"{rng.randrange(100000)}.{rng.randrange(10)}"
                else:
                    v = str(rng.randrange(1_000_000))
                values.append(
                    {
                        "@tab": tab,
                        "@cat01": cat,
                        "@area": area,
                        "@time": TIME_PLACEHOLDER,
                        "@unit": "人",
                        "$": v,
                    }
                )
    doc = {
        "GET_STATS_DATA": {
            "RESULT": {"STATUS": 0, "ERROR_MSG": "正常に終了しました。", "DATE": "2026-01-01"},
            "PARAMETER": {"LANG": "J", "STATS_DATA_ID": "9999999999", "DATA_FORMAT": "J"},
            "STATISTICAL_DATA": {
                "RESULT_INF": {"TOTAL_NUMBER": 0, "FROM_NUMBER": 1, "TO_NUMBER": PAGE_ROWS},
                "TABLE_INF": {"@id": "9999999999", "TITLE": "bench", "UPDATED_DATE": "2026-01-01"},
                "DATA_INF": {"NOTE": NOTES, "VALUE": values},
            },
        }
    }
    return orjson.dumps(doc)


def write_pages(directory: Path, n_pages: int) -> int:
    """n_pages page files (one time code each) + meta.json; returns bytes written."""
    directory.mkdir(parents=True, exist_ok=True)
    template = page_template()
    total = 0
    for i, code in enumerate(_times(n_pages), start=1):
        body = template.replace(TIME_PLACEHOLDER.encode(), code.encode())
        (directory / f"page-{i:05d}.json").write_bytes(body)
        total += len(body)
    (directory / "meta.json").write_bytes(orjson.dumps(meta_document(n_pages)))
    return total


# -- workers (each runs in its own process) ------------------------------------------------------


def _page_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("page-*.json"))


def _conform_input(directory: Path):
    from estat_assets.conform import ConformInput
    from estat_assets.estat.models import parse_meta_info

    meta = parse_meta_info(orjson.loads((directory / "meta.json").read_bytes()))
    return ConformInput(
        dataset_id="9999999999",
        metadata=meta,
        run_id="bench",
        source_updated_date="2026-01-01",
        default_year=0,
    )


def work_arrow(directory: Path, out: Path) -> int:
    """The Dagster path: every page in memory → conform_pages → one Parquet file."""
    import pyarrow.parquet as pq

    from estat_assets.conform import conform_pages

    inp = _conform_input(directory)
    pages = [p.read_bytes() for p in _page_files(directory)]
    table = conform_pages(pages, inp)
    del pages
    pq.write_table(table, out, compression="snappy")
    return table.num_rows


def work_stream(directory: Path, out: Path) -> int:
    """Streaming: pages read two at a time → Parquet row groups."""
    from estat_assets.conform.stream import conform_to_parquet

    inp = _conform_input(directory)
    pages = (p.read_bytes() for p in _page_files(directory))
    return conform_to_parquet(pages, inp, out, pages_per_batch=2)


def work_baseline(directory: Path, out: Path) -> int:
    """A straightforward mapper: a dict per record (names, unit, number, legend) → pandas."""
    import pandas as pd

    meta = orjson.loads((directory / "meta.json").read_bytes())
    objs = meta["GET_META_INFO"]["METADATA_INF"]["CLASS_INF"]["CLASS_OBJ"]
    names = {o["@id"]: {c["@code"]: c["@name"] for c in o["CLASS"]} for o in objs}
    rows = []
    for path in _page_files(directory):
        data = orjson.loads(path.read_bytes())["GET_STATS_DATA"]["STATISTICAL_DATA"]
        notes = {n["@char"]: n["$"] for n in data["DATA_INF"]["NOTE"]}
        for v in data["DATA_INF"]["VALUE"]:
            row = {"dataset_id": "9999999999"}
            for axis in ("tab", "cat01", "area", "time"):
                code = v.get(f"@{axis}")
                row[f"{axis}_code"] = code
                row[f"{axis}_name"] = names[axis].get(code)
            t = v["@time"]
            row["year"] = int(t[:4])
            row["unit"] = v.get("@unit")
            raw = v["$"]
            row["value_raw"] = raw
            try:
                row["value"] = float(raw)
            except ValueError:
                row["value"] = None
            row["annotation"] = notes.get(raw)
            rows.append(row)
    df = pd.DataFrame(rows)
    df.to_parquet(out, compression="snappy")
    return len(df)


WORKERS = {"arrow": work_arrow, "stream": work_stream, "baseline": work_baseline}


def _worker(mode: str, directory: str, out: str) -> None:
    # Imports are start-up, not work: load them before the clock starts (the process figure
    # printed beside includes them).
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import estat_assets.conform.stream
    import estat_assets.estat.models  # noqa: F401

    started = time.perf_counter()
    rows = WORKERS[mode](Path(directory), Path(out))
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "wall": wall, "rss_mb": peak_kb / 1024}))


def measure(mode: str, directory: Path, out: Path) -> dict:
    """Run one worker in a fresh interpreter; its own figures plus the whole process's wall."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.conform", "--worker", mode, str(directory), str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode:
        raise RuntimeError(f"bench worker {mode} failed:\n{proc.stderr[-2000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["process_wall"] = time.perf_counter() - started
    return figures


def best_of(runs: int, mode: str, directory: Path, out: Path) -> dict:
    """The fastest of a few fresh-process runs (the machine is shared; noise only adds time)."""
    results = [measure(mode, directory, out) for _ in range(runs)]
    best = min(results, key=lambda f: f["wall"])
    best["rss_mb"] = max(f["rss_mb"] for f in results)  # memory: the worst run
    best["runs"] = runs
    return best


def _line(label: str, f: dict) -> str:
    return (
        f"conform {label}: {f['rows']:,} rows in {f['wall']:.2f} s "
        f"({f['rows'] / f['wall'] / 1e6:.2f} M rows/s), peak RSS {f['rss_mb']:.0f} MB "
        f"(process incl. start-up {f['process_wall']:.2f} s"
        + (f"; best of {f['runs']} runs" if f.get("runs", 1) > 1 else "")
        + ")"
    )


def main() -> int:
    quick = bool(os.environ.get("BENCH_CONFORM_QUICK"))
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-conform-") as tmp:
        root = Path(tmp)
        size = write_pages(root / "1m", 10)
        print(
            f"input: 10 pages × {PAGE_ROWS:,} VALUEs, 4 axes, {size / 1e6:.0f} MB of JSON",
            flush=True,
        )
        arrow = best_of(REPEAT, "arrow", root / "1m", root / "arrow.parquet")
        print(_line("1M in-memory (Dagster path)", arrow), flush=True)
        stream = best_of(REPEAT, "stream", root / "1m", root / "stream.parquet")
        print(_line("1M streaming", stream), flush=True)
        base = measure("baseline", root / "1m", root / "baseline.parquet")
        print(_line("1M per-record baseline", base), flush=True)
        speedup = base["wall"] / arrow["wall"]
        print(
            f"conform speed-up vs baseline: {speedup:.1f}× (in-memory), "
            f"{base['wall'] / stream['wall']:.1f}× (streaming)",
            flush=True,
        )
        ok &= arrow["wall"] <= TARGET_WALL_1M and arrow["rss_mb"] <= TARGET_RSS_1M_MB
        ok &= speedup >= TARGET_SPEEDUP
        summary = (
            f"1M {arrow['wall']:.2f} s / {arrow['rss_mb']:.0f} MB (target ≤ {TARGET_WALL_1M} s, "
            f"≤ {TARGET_RSS_1M_MB} MB), {speedup:.1f}× baseline (target ≥ {TARGET_SPEEDUP}×)"
        )
        if not quick:
            for p in (root / "1m").iterdir():
                p.unlink()
            size = write_pages(root / "10m", 100)
            print(
                f"input: 100 pages × {PAGE_ROWS:,} VALUEs, {size / 1e6:.0f} MB of JSON", flush=True
            )
            big = measure("stream", root / "10m", root / "big.parquet")
            print(_line("10M streaming", big), flush=True)
            ok &= big["rss_mb"] <= TARGET_RSS_10M_MB and big["rows"] == 100 * PAGE_ROWS
            summary += (
                f"; 10M streamed {big['wall']:.1f} s / {big['rss_mb']:.0f} MB "
                f"(target < {TARGET_RSS_10M_MB} MB)"
            )
    print(f"summary conform: {'PASS' if ok else 'MISS'}: {summary}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(main())
