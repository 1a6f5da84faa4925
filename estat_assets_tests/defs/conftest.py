"""Fixtures for the Dagster layer: one population domain over the emulator, a test instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from estat_assets.definitions import build_definitions
from estat_assets.defs.partitions import register
from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec

POPULATION = DomainSpec("population", datasets=("0000020202",))


@pytest.fixture
def lake(lake_env):
    """(defs, instance, resources, home): 0000020202 for 1981/1982 and an unknown id registered."""
    resources = build_resources("local", lake_env)
    defs = build_definitions("local", domains=(POPULATION,), resources=resources)
    with dg.instance_for_test() as instance:
        register(instance, "population", {"0000020202": ["1981", "1982"], "0000099999": ["1981"]})
        yield defs, instance, resources, Path(lake_env["ESTAT_LAKE_HOME"])
