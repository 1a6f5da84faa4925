"""Partitions: one per e-Stat table (statsDataId), a dynamic dimension per domain.

A run loads one dataset: its whole table (one e-Stat release) or, with the ``estat/years`` tag,
some of its years. Why not dataset × year: Dagster's multi-partitions are a full cross product, so
a domain showed every (dataset, year) pair, most of which can never hold data, and one run per
year cost ~20 s of run overhead for a few hundred rows. e-Stat publishes, revises and counts a
table as a whole; the lake still stores and replaces it a year slice at a time inside one commit.

Keys are added by the release sensor, ``estat-lake add``/``register`` and the UI; the assets and
the storage layer refuse any key that is not ten ASCII digits.
"""

from collections.abc import Iterable

import dagster as dg

from estat_assets.estat.ids import check_dataset_id

YEARS_TAG = "estat/years"  # "2011", "2011,2015", "2010-2013": load only these years
ALLOW_SHRINK_TAG = "estat/allow_shrink"  # "true": replace slices with fewer rows (operator)
DOMAIN_TAG = "estat/domain"
DATASET_TAG = "estat/dataset_id"
# The dataset-partitioned assets of a domain (``<domain>/<layer>``): a run of any of them loads
# (part of) a dataset of that domain.
LAYERS = ("raw", "conformed", "table", "class_codes", "revisions")


def dataset_dimension(domain: str) -> str:
    return f"{domain}__dataset"


def domain_partitions(domain: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=dataset_dimension(domain))


def register(instance: dg.DagsterInstance, domain: str, datasets: Iterable[str]) -> list[str]:
    """Add datasets to a domain's partitions (a known key is a no-op); returns the new ones."""
    wanted = sorted({check_dataset_id(d) for d in datasets})
    known = set(instance.get_dynamic_partitions(dataset_dimension(domain)))
    new = [d for d in wanted if d not in known]
    if new:
        instance.add_dynamic_partitions(dataset_dimension(domain), new)
    return new
