"""Optional: load a slice into the Iceberg table *through Athena* instead of pyiceberg.

The default writer (``lake/iceberg.replace_partition``) replaces a ``(dataset_id, year)`` slice
with pyiceberg in **one** Iceberg commit: readers see the old slice or the new one. This module
does the same job with SQL, for teams that want the write to happen inside Athena (no table data
through the Dagster task, Lake Formation-governed writes):

1. ``CREATE EXTERNAL TABLE IF NOT EXISTS <db>.<domain>_conformed`` over the conformed Parquet
   folders ``<root>/<domain>/conformed/dataset_id=X/year=Y/data.parquet`` (Hive-style);
2. ``ALTER TABLE … ADD IF NOT EXISTS PARTITION (dataset_id='X', year=Y)``;
3. ``DELETE FROM <db>.<domain> WHERE dataset_id = 'X' AND year = Y`` (Iceberg commit 1);
4. ``INSERT INTO <db>.<domain> SELECT … FROM <db>.<domain>_conformed WHERE …`` (commit 2).

**Trade-off:** steps 3 and 4 are two commits. Between them (seconds) readers see the slice
missing, and if step 4 fails the slice stays empty until the partition is re-run (which is
safe: the four steps are idempotent). Use it when that window is acceptable; keep the default
otherwise. See ``deploy/README.md``.
"""

from __future__ import annotations

import re

import pyarrow as pa

from estat_assets.conform.table import conformed_schema
from estat_assets.query.athena import AthenaEngine, AthenaResult

_HIVE_TYPES = {
    pa.string(): "string",
    pa.int8(): "tinyint",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.date32(): "date",
}
_SAFE = re.compile(r"^[A-Za-z0-9_]+$")
PARTITION_COLUMNS = ("dataset_id", "year")


def staging_table(domain: str) -> str:
    return f"{domain}_conformed"


def _check(name: str, value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(f"{name} {value!r}: only letters, digits and _ may go into SQL")
    return value


def load_statements(
    database: str, domain: str, conformed_root: str, dataset_id: str, year: int
) -> list[str]:
    """The four statements that replace one slice through Athena (see the module doc)."""
    db, dom, ds = (
        _check(n, v)
        for n, v in (("database", database), ("domain", domain), ("dataset_id", dataset_id))
    )
    year = int(year)
    schema = conformed_schema()
    data_columns = [f for f in schema if f.name not in PARTITION_COLUMNS]
    location = f"{conformed_root.rstrip('/')}/{dom}/conformed/"
    columns_ddl = ",\n  ".join(f"`{f.name}` {_HIVE_TYPES[f.type]}" for f in data_columns)
    staging = f"{db}.{staging_table(dom)}"
    target = f"{db}.{dom}"
    where = f"dataset_id = '{ds}' AND year = {year}"
    names = ", ".join(f.name for f in schema)
    return [
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{db}`.`{staging_table(dom)}` (\n  {columns_ddl}\n)\n"
        f"PARTITIONED BY (`dataset_id` string, `year` int)\n"
        f"STORED AS PARQUET\nLOCATION '{location}'",
        f"ALTER TABLE `{db}`.`{staging_table(dom)}` ADD IF NOT EXISTS PARTITION "
        f"(dataset_id = '{ds}', year = {year}) "
        f"LOCATION '{location}dataset_id={ds}/year={year}/'",
        f"DELETE FROM {target} WHERE {where}",
        f"INSERT INTO {target} ({names})\nSELECT {names}\nFROM {staging}\nWHERE {where}",
    ]


def drop_other_years_statement(
    database: str, domain: str, dataset_id: str, keep_years: list[int] | list[str]
) -> str:
    """After a whole-table load: delete the dataset's years the new release no longer has (the
    pyiceberg writer's one commit drops them too). No years kept: the dataset's every row."""
    db, dom, ds = (
        _check(n, v)
        for n, v in (("database", database), ("domain", domain), ("dataset_id", dataset_id))
    )
    keep = sorted({int(y) for y in keep_years})
    where = f"dataset_id = '{ds}'"
    if keep:
        where += f" AND year NOT IN ({', '.join(str(y) for y in keep)})"
    return f"DELETE FROM {db}.{dom} WHERE {where}"


def load_slice_via_athena(
    engine: AthenaEngine, domain: str, conformed_root: str, dataset_id: str, year: int
) -> list[AthenaResult]:
    """Run the four statements in order; stop at the first failure (rerunning is safe)."""
    return [
        engine.execute(sql)
        for sql in load_statements(engine.database, domain, conformed_root, dataset_id, year)
    ]
