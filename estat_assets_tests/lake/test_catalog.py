"""The catalog opener: the properties the iceberg resource builds open a working catalog."""

from __future__ import annotations

from estat_assets.defs.resources import build_resources
from estat_assets.lake.catalog import Catalog, open_catalog
from estat_assets_tests.harness import test_settings as lake_settings


def test_the_resources_properties_open_the_local_sqlite_catalog(tmp_path) -> None:
    iceberg = build_resources(lake_settings(tmp_path / "home", "http://127.0.0.1:9"))["iceberg"]
    props = iceberg.properties()
    assert props["type"] == "sql" and props["uri"].startswith("sqlite:///")
    catalog = open_catalog(iceberg.name, props)
    assert isinstance(catalog, Catalog)
    catalog.create_namespace("estat")
    # a second opening sees what the first wrote: the catalog lives in the home, not in memory
    assert ("estat",) in open_catalog(iceberg.name, props).list_namespaces()
    assert (tmp_path / "home" / "catalog.db").is_file()
