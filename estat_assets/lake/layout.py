"""Where each asset's files live: Hive-style partition folders, so Athena/Glue can read them too.

``<root>/<domain>/raw/dataset_id=<id>/year=<year>/manifest.json`` (+ ``runs/<run_id>/page-*.json``)
``<root>/<domain>/conformed/dataset_id=<id>/year=<year>/data.parquet``
"""

from __future__ import annotations

DATASET_DIM = "dataset"
YEAR_DIM = "year"


def partition_dir(domain: str, layer: str, dataset_id: str, year: str) -> tuple[str, ...]:
    return (domain, layer, f"dataset_id={dataset_id}", f"year={year}")


def raw_run_dir(domain: str, dataset_id: str, year: str, run_id: str) -> tuple[str, ...]:
    return (*partition_dir(domain, "raw", dataset_id, year), "runs", run_id)


def page_name(page_no: int) -> str:
    return f"page-{page_no:05d}.json"
