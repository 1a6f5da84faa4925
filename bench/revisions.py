"""Revisions benchmark: the diff of a 1,000,000-row dataset between two releases, and what keeping
releases costs in storage.

A local lake (SQLite catalog, a temporary ``ESTAT_LAKE_HOME``) loads the generated 1M-row table
9900000001 from an in-process emulator through the real domain job, then e-Stat (the emulator)
republishes it three times and each release is loaded again (the ``<domain>/revisions`` step runs
in each load):

1. every cell perturbed (the worst case for the diff: ~1M revised cells);
2. one year revised;
3. nothing but a new UPDATED_DATE.

Figures (one line each), then a summary line:

* seconds of ``diff_release`` (read both tagged releases + the columnar diff), median of 3, and
  of ``write_revisions`` for the perturbed release; the ``<domain>/revisions`` step's duration;
* bytes of data files referenced only by release tags after each release (``release_storage``),
  against the current snapshot's bytes, and the size of ``estat.<domain>_revisions``.

``python -m bench revisions`` (or ``python -m bench.revisions``).
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from pathlib import Path

DATASET = "9900000001"
DOMAIN = "population"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _step_seconds(result, step: str) -> float | None:
    start = end = None
    for event in result.all_events:
        if event.step_key != step:
            continue
        if event.event_type_value == "STEP_START":
            start = event.timestamp if hasattr(event, "timestamp") else None
        if event.event_type_value == "STEP_SUCCESS":
            data = event.event_specific_data
            return round(data.duration_ms / 1000, 2) if data and data.duration_ms else end
    return start


def _table_bytes(table) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None:
        return 0
    return sum(t.file.file_size_in_bytes for t in table.scan().plan_files())


def main() -> int:
    import dagster as dg

    from estat_assets.definitions import build_definitions
    from estat_assets.defs.jobs import job_name
    from estat_assets.defs.partitions import dataset_dimension
    from estat_assets.defs.resources import build_resources
    from estat_assets.domains import DomainSpec
    from estat_assets.lake.releases import release_storage, releases
    from estat_assets.lake.revisions import diff_release, revisions_name, write_revisions
    from estat_assets.settings import Settings
    from estat_emulator import EmulatorServer, TableStore

    with (
        tempfile.TemporaryDirectory(prefix="bench-revisions-") as tmp,
        EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as server,
        dg.instance_for_test() as instance,
    ):
        settings = Settings.from_env(
            {"ESTAT_LAKE_HOME": str(Path(tmp) / "home"), "ESTAT_API_URL": server.api_base}
        )
        resources = build_resources(settings)
        spec = DomainSpec(DOMAIN, datasets=(DATASET,))
        defs = build_definitions(settings, domains=(spec,), resources=resources)
        job = defs.resolve_job_def(job_name(DOMAIN))
        instance.add_dynamic_partitions(dataset_dimension(DOMAIN), [DATASET])
        iceberg = resources["iceberg"]
        catalog = iceberg.catalog()

        def load(label: str) -> None:
            started = time.perf_counter()
            result = job.execute_in_process(partition_key=DATASET, instance=instance)
            assert result.success, label
            step = _step_seconds(result, f"{DOMAIN}__revisions")
            print(
                f"load {label}: {time.perf_counter() - started:.1f} s (revisions step {step} s)",
                flush=True,
            )

        load("first release")
        base = release_storage(catalog.load_table(iceberg.identifier(DOMAIN)))
        print(f"first release: current data files {_mb(base['current_bytes'])}", flush=True)

        server.store.republish(DATASET, "2030-01-01", perturb=True)
        load("every cell perturbed")
        table = catalog.load_table(iceberg.identifier(DOMAIN))
        new = releases(table, DATASET)[-1]
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            diff = diff_release(table, DATASET, new)
            timings.append(time.perf_counter() - started)
        counts = diff.counts()
        started = time.perf_counter()
        write_revisions(catalog, iceberg.namespace, DOMAIN, diff, "bench")
        write_seconds = time.perf_counter() - started
        print(
            f"diff of {diff.old_rows:,} vs {diff.new_rows:,} rows: "
            f"{statistics.median(timings):.2f} s median of 3 "
            f"({', '.join(f'{t:.2f}' for t in timings)}); {counts['revised']:,} revised, "
            f"{counts['added']:,} added, {counts['removed']:,} removed; "
            f"write_revisions {write_seconds:.2f} s",
            flush=True,
        )
        after = [("perturbed", release_storage(table))]

        period = table.scan(selected_fields=("time_code",), limit=1).to_arrow()["time_code"][0]
        server.store.republish(
            DATASET, "2030-02-01", perturb=False, revise={"time": [period.as_py()]}
        )
        load("one period revised")
        after.append(
            ("one period", release_storage(catalog.load_table(iceberg.identifier(DOMAIN))))
        )
        server.store.republish(DATASET, "2030-03-01", perturb=False)
        load("a new date only")
        table = catalog.load_table(iceberg.identifier(DOMAIN))
        after.append(("new date only", release_storage(table)))
        for label, cost in after:
            print(
                f"after the {label} release: {cost['releases']} releases kept, current "
                f"{_mb(cost['current_bytes'])} in {cost['current_files']} files, kept only for "
                f"releases {_mb(cost['release_only_bytes'])} in {cost['release_only_files']} "
                "files",
                flush=True,
            )
        revisions = catalog.load_table((iceberg.namespace, revisions_name(DOMAIN)))
        print(
            f"estat.{revisions_name(DOMAIN)}: {_mb(_table_bytes(revisions))} for "
            f"{sum(t.file.record_count for t in revisions.scan().plan_files()):,} rows",
            flush=True,
        )
        final = after[-1][1]
        per_release = final["release_only_bytes"] / max(1, final["releases"] - 1)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"summary: 1M-row diff {statistics.median(timings):.2f} s; each kept release costs "
            f"{_mb(int(per_release))} (current {_mb(final['current_bytes'])}); peak RSS "
            f"{rss:.0f} MB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
