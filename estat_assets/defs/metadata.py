"""Dagster's standard metadata for the lake's assets: column schema, table name, freshness.

Definition-time metadata only (nothing here calls e-Stat or reads data): the column schema of the
conformed/Iceberg tables with what each column means, the Iceberg table name, the datasets of a
domain with their titles, and a freshness policy from the domain's publication cycle.
"""

from datetime import timedelta

import dagster as dg

from estat_assets.conform.columns import documented
from estat_assets.conform.table import conformed_schema
from estat_assets.domains import DomainSpec
from estat_assets.quality.quarantine import quarantine_schema

# How long a domain table may go without a load before it is late, by e-Stat cycle (a release
# sensor loads a table when e-Stat publishes it, so a late table means a missed release).
FRESHNESS = {
    "monthly": (timedelta(days=35), timedelta(days=45)),
    "quarterly": (timedelta(days=100), timedelta(days=120)),
    "annual": (timedelta(days=380), timedelta(days=400)),
}


def column_schema(quarantine: bool = False) -> dg.TableSchema:
    schema = quarantine_schema() if quarantine else conformed_schema()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, kind, description=text) for name, kind, text in documented(schema)
        ]
    )


def freshness(domain: DomainSpec) -> dg.FreshnessPolicy | None:
    window = FRESHNESS.get(domain.cycle or "")
    if window is None:
        return None
    warn, fail = window
    return dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn)


def datasets_markdown(domain: DomainSpec, titles: dict[str, str]) -> str:
    """The domain's datasets with their titles (the partition keys are bare statsDataIds)."""
    if not domain.datasets:
        return ""
    lines = ["", "", "| dataset (partition) | title |", "|---|---|"]
    lines += [
        f"| [`{ds}`](https://www.e-stat.go.jp/dbview?sid={ds}) | {titles.get(ds, '')} |"
        for ds in domain.datasets
    ]
    return "\n".join(lines)
