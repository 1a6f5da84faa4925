"""Conformed Parquet: one file per (dataset, year), plus the rows quarantine held back.

``<domain>/conformed/dataset_id=X/year=Y/data.parquet`` is the year's clean rows (Hive layout, so
Athena can read it as an external table) and ``quarantine.parquet`` beside it the rows a
row-level check held back, with their reason. Each file is written all-or-nothing; the dataset's
``manifest.json`` (written last, by the IO manager) names the run and every year's files and
counts, and is what the table step reads.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from estat_assets.lake.layout import DATA_FILE, QUARANTINE_FILE, REPORT_FILE, dataset_dir, year_dir
from estat_assets.lake.storage import Storage

COMPRESSION = "snappy"
BATCH_ROWS = 131_072


def _write(storage: Storage, parts: tuple[str, ...], table: pa.Table) -> str:
    path = storage.path(*parts)
    storage.write_with(path, lambda fh: pq.write_table(table, fh, compression=COMPRESSION))
    return storage.uri(*parts)


def write_year(
    storage: Storage,
    domain: str,
    dataset_id: str,
    year: str,
    clean: pa.Table,
    quarantined: pa.Table | None,
) -> dict[str, object]:
    """Write a year's clean rows (and its quarantine, or remove a stale one); its manifest entry."""
    base = year_dir(domain, dataset_id, year)
    entry: dict[str, object] = {
        "rows": clean.num_rows,
        "file": _write(storage, (*base, DATA_FILE), clean),
        "quarantined": 0,
    }
    if quarantined is not None and quarantined.num_rows:
        entry["quarantined"] = quarantined.num_rows
        entry["quarantine_file"] = _write(storage, (*base, QUARANTINE_FILE), quarantined)
    else:
        storage.remove(storage.path(*base, QUARANTINE_FILE))
    return entry


def _read(storage: Storage, parts: tuple[str, ...]) -> pa.Table:
    path = storage.path(*parts)
    if storage.is_local:
        return pq.read_table(str(path))
    return pq.read_table(io.BytesIO(storage.read_bytes(path)))


def read_year(storage: Storage, domain: str, dataset_id: str, year: str) -> pa.Table:
    return _read(storage, (*year_dir(domain, dataset_id, year), DATA_FILE))


def iter_year(
    storage: Storage, domain: str, dataset_id: str, year: str, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """A year's clean rows batch by batch (memory bounded by a batch, not the year)."""
    path = storage.path(*year_dir(domain, dataset_id, year), DATA_FILE)
    with path.open("rb") as fh:
        yield from pq.ParquetFile(fh).iter_batches(batch_size=batch_rows)


def read_quarantine(
    storage: Storage, domain: str, dataset_id: str, year: str, entry: dict
) -> pa.Table | None:
    if not entry.get("quarantined"):
        return None
    return _read(storage, (*year_dir(domain, dataset_id, year), QUARANTINE_FILE))


def write_report(storage: Storage, domain: str, dataset_id: str, markdown: str) -> str:
    parts = (*dataset_dir(domain, "conformed", dataset_id), REPORT_FILE)
    storage.write_bytes(storage.path(*parts), markdown.encode("utf-8"))
    return storage.uri(*parts)
