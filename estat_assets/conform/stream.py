"""Streaming conform: pages in batches → conformed record batches → one Parquet file.

``conform_pages`` holds every page and the whole table in memory, which is right for one Dagster
partition (the checks need the table anyway) but not for a 10-million-row table. Here pages are
read a few at a time, conformed with the metadata and legend of the first page, aligned to one
schema and written as Parquet row groups, so peak memory is bounded by the batch, not the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from estat_assets.conform.table import ConformInput, align_to, conform_batch


def iter_conformed(
    pages: Iterable[bytes], inp: ConformInput, pages_per_batch: int = 2
) -> Iterator[pa.Table]:
    """Conformed tables, one per batch of pages, all with the schema of the first batch."""
    schema: pa.Schema | None = None
    batch: list[bytes] = []

    def flush() -> pa.Table:
        nonlocal inp, schema
        table, inp = conform_batch(batch, inp)  # later batches reuse its metadata and legend
        if schema is None:
            schema = table.schema
            return table
        return align_to(table, schema, strict=True)

    for page in pages:
        batch.append(page)
        if len(batch) >= pages_per_batch:
            yield flush()
            batch = []
    if batch:
        yield flush()


def conform_to_parquet(
    pages: Iterable[bytes],
    inp: ConformInput,
    path: str | Path,
    pages_per_batch: int = 2,
    compression: str = "snappy",
) -> int:
    """Stream pages to one Parquet file; returns the rows written. An empty input writes nothing."""
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for table in iter_conformed(pages, inp, pages_per_batch):
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema, compression=compression)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows
