"""Partitions: dataset × year per domain, both dynamic.

Each domain has its own two dynamic dimensions, ``<domain>__dataset`` and ``<domain>__year``, so a
sensor can add a dataset (or a new year) without a code change, and the UI can backfill a whole
domain, one dataset or one year column. Dagster makes the cross product of the two: a
``(dataset, year)`` pair the table does not cover materializes as an empty slice (0 rows).
"""

from __future__ import annotations

import dagster as dg

from estat_assets.lake.layout import DATASET_DIM, YEAR_DIM


def dataset_dimension(domain: str) -> str:
    return f"{domain}__dataset"


def year_dimension(domain: str) -> str:
    return f"{domain}__year"


def domain_partitions(domain: str) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            DATASET_DIM: dg.DynamicPartitionsDefinition(name=dataset_dimension(domain)),
            YEAR_DIM: dg.DynamicPartitionsDefinition(name=year_dimension(domain)),
        }
    )


def partition_key(dataset_id: str, year: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATASET_DIM: dataset_id, YEAR_DIM: year})


def register(instance: dg.DagsterInstance, domain: str, slices: dict[str, list[str]]) -> None:
    """Add datasets and years to a domain's dimensions (adding a known key is a no-op)."""
    datasets = sorted(slices)
    years = sorted({y for ys in slices.values() for y in ys})
    if datasets:
        instance.add_dynamic_partitions(dataset_dimension(domain), datasets)
    if years:
        instance.add_dynamic_partitions(year_dimension(domain), years)
