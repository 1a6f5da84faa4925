"""Opening the Iceberg catalog: the one place outside the table modules that names pyiceberg.

The ``iceberg`` resource (``defs/resources.py``) holds the catalog's settings (SQLite locally,
Glue in production) and calls :func:`open_catalog`; Dagster code imports the ``Catalog`` and
``Table`` types from here, so every pyiceberg import stays in ``lake/``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.table import Table

__all__ = ["Catalog", "Table", "open_catalog"]


def open_catalog(name: str, properties: Mapping[str, str]) -> Catalog:
    """The catalog ``name`` with ``properties`` (``type``, ``uri``, ``warehouse``, S3 and Glue
    endpoints and keys: see ``IcebergCatalogResource.properties``)."""
    return load_catalog(name, **dict(properties))
