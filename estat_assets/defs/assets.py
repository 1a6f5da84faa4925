"""The asset chain of one domain: ``<domain>/raw`` → ``<domain>/conformed`` → ``<domain>/table``.

One Dagster partition ``(dataset, year)`` is one e-Stat request narrowed to that year's time codes,
one Parquet file, and one Iceberg slice replaced in one commit. Each layer lives in its own module.
"""

import dagster as dg

from estat_assets.defs.conformed import CHECK_NAMES, build_conformed_asset
from estat_assets.defs.raw import build_raw_asset
from estat_assets.defs.table import build_table_asset
from estat_assets.domains import DomainSpec

__all__ = ["CHECK_NAMES", "build_domain_assets"]


def build_domain_assets(domain: DomainSpec) -> list[dg.AssetsDefinition]:
    return [build_raw_asset(domain), build_conformed_asset(domain), build_table_asset(domain)]
