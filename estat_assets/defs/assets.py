"""The asset chain of one domain: ``<domain>/raw`` → ``<domain>/conformed`` → ``<domain>/table``,
plus ``<domain>/class_codes`` (the datasets' CLASS_INF beside the data) and the unpartitioned
analytics assets of ``defs/analytics.py`` (group ``<domain>_analytics``).

One Dagster partition ``(dataset, year)`` is one e-Stat request narrowed to that year's time codes,
one Parquet file, and one Iceberg slice replaced in one commit. Each layer lives in its own module.
"""

import dagster as dg

from estat_assets.defs.analytics import build_analytics_assets
from estat_assets.defs.class_codes import build_class_codes_asset
from estat_assets.defs.conformed import CHECK_NAMES, build_conformed_asset
from estat_assets.defs.raw import build_raw_asset
from estat_assets.defs.table import build_table_asset
from estat_assets.domains import DomainSpec

__all__ = ["CHECK_NAMES", "build_domain_assets"]


def build_domain_assets(domain: DomainSpec) -> list[dg.AssetsDefinition]:
    return [
        build_raw_asset(domain),
        build_conformed_asset(domain),
        build_table_asset(domain),
        build_class_codes_asset(domain),
        *build_analytics_assets(domain),  # group <domain>_analytics, not in the partitioned job
    ]
