"""Conformed rows grouped by year, in memory up to a budget and spilled to local Parquet beyond it.

e-Stat pages are ordered by axis codes with time varying fastest, so every page holds rows of
every year: a year is complete only after the last page. The checks and the lake work a year at
a time (a key, and so every duplicate and every parent/child family, lies within one year), so the
batches are bucketed by year as they are conformed. Small tables stay in memory; beyond
``memory_bytes`` every bucket goes to its own Parquet file under ``spill_dir`` and later batches
are appended there, so memory is bounded by one batch plus the largest year, not by the table.

Each row carries ``__row``, its 1-based position among the download's VALUEs, so a quarantined
row can be traced to the page it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW = "__row"
DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024


class YearBuckets:
    def __init__(self, spill_dir: Path, memory_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        self.spill_dir = spill_dir
        self.memory_bytes = memory_bytes
        self._mem: dict[int, list[pa.Table]] = {}
        self._writers: dict[int, pq.ParquetWriter] = {}
        self._schema: pa.Schema | None = None
        self._bytes = 0
        self._rows = 0
        self.rows_by_year: dict[int, int] = {}

    @property
    def spilled(self) -> bool:
        return bool(self._writers)

    @property
    def rows(self) -> int:
        return self._rows

    def add(self, table: pa.Table) -> None:
        """Append a conformed batch (in download order); rows with a null year go to 0000."""
        n = table.num_rows
        if not n:
            if self._schema is None:
                self._schema = table.schema.append(pa.field(ROW, pa.int64()))
            return
        rows = pa.array(np.arange(self._rows + 1, self._rows + n + 1, dtype=np.int64))
        table = table.append_column(ROW, rows)
        self._rows += n
        if self._schema is None:
            self._schema = table.schema
        years = pc.fill_null(table.column("year"), 0)
        if years.null_count or table.column("year").null_count:
            table = table.set_column(table.schema.get_field_index("year"), "year", years)
        distinct = pc.unique(years).to_pylist()
        if len(distinct) == 1:
            self._put(distinct[0], table)
            return
        # A stable sort keeps download order within each year.
        order = pc.sort_indices(years, sort_keys=[("", "ascending")])
        ordered = table.take(order)
        counts = pc.value_counts(years)
        sizes = dict(
            zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
        )
        start = 0
        for year in sorted(sizes):
            self._put(year, ordered.slice(start, sizes[year]))
            start += sizes[year]

    def _put(self, year: int, part: pa.Table) -> None:
        self.rows_by_year[year] = self.rows_by_year.get(year, 0) + part.num_rows
        if self.spilled:
            self._write(year, part)
            return
        self._mem.setdefault(year, []).append(part)
        self._bytes += part.nbytes
        if self._bytes > self.memory_bytes:
            self._spill()

    def _write(self, year: int, part: pa.Table) -> None:
        writer = self._writers.get(year)
        if writer is None:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(str(self._path(year)), self._schema, compression="lz4")
            self._writers[year] = writer
        writer.write_table(part.cast(self._schema) if part.schema != self._schema else part)

    def _spill(self) -> None:
        years = list(self._mem)
        for year in years:
            for part in self._mem.pop(year):
                self._write(year, part)
        self._bytes = 0

    def _path(self, year: int) -> Path:
        return self.spill_dir / f"year={year:04d}.parquet"

    def years(self) -> list[int]:
        return sorted(self.rows_by_year)

    def finish(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def table(self, year: int) -> pa.Table:
        """Every row of ``year`` in download order (with ``__row``)."""
        if year in self._mem:
            parts = self._mem[year]
            return parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        path = self._path(year)
        if path.exists():
            return pq.read_table(str(path))
        return self._schema.empty_table() if self._schema else pa.table({})

    def iter_years(self) -> Iterator[tuple[int, pa.Table]]:
        """Each year's rows, freeing the in-memory ones as they are handed out."""
        self.finish()
        for year in self.years():
            table = self.table(year)
            self._mem.pop(year, None)
            yield year, table

    @property
    def schema(self) -> pa.Schema | None:
        return self._schema
