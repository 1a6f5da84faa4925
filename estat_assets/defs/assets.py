"""The asset chain of one domain: ``<domain>/raw`` → ``<domain>/conformed`` → ``<domain>/table``
→ ``<domain>/class_codes`` and ``<domain>/revisions``, each partitioned by dataset, plus the
unpartitioned analytics assets of ``defs/analytics.py`` (group ``<domain>_analytics``). Each layer
lives in its own module.
"""

from pathlib import Path

import dagster as dg

from estat_assets.defs.analytics import build_analytics_assets
from estat_assets.defs.class_codes import build_class_codes_asset
from estat_assets.defs.conformed import build_conformed_asset
from estat_assets.defs.raw import build_raw_asset
from estat_assets.defs.revisions import build_revisions_asset
from estat_assets.defs.table import build_table_asset
from estat_assets.domains import DomainSpec
from estat_assets.settings import Settings


def build_domain_assets(domain: DomainSpec, settings: Settings) -> list[dg.AssetsDefinition]:
    spill: Path | None = settings.home if settings.env == "local" else None
    return [
        build_raw_asset(domain, settings),
        build_conformed_asset(domain, spill),
        build_table_asset(domain),
        build_class_codes_asset(domain),
        build_revisions_asset(domain, settings),
        *build_analytics_assets(domain),  # group <domain>_analytics, not in the partitioned job
    ]
