"""Shared fixtures: a real e-Stat emulator on loopback and a throwaway lake over it.

Tests that run Dagster jobs, load a lake, or start servers or processes are marked ``slow``
(whole folders by ``pytest_collection_modifyitems`` below): ``make test-fast`` skips them, ``make
test``, which CI runs, runs everything.
"""

from __future__ import annotations

import dagster as dg
import pytest

from estat_assets_tests.harness import make_lake
from estat_emulator import EmulatorServer, TableStore


@pytest.fixture(scope="session")
def emulator_server():
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def emulator(emulator_server):
    """The session's emulator, with no faults and an empty request log for each test, and its
    tables as bundled: a test that republished one (a fault, the admin API) gets a fresh store
    afterwards, so no other test sees its release."""
    emulator_server.faults.clear()
    emulator_server.requests.clear()
    yield emulator_server
    emulator_server.faults.clear()
    if any(table.revision for table in emulator_server.store):
        emulator_server.store = TableStore.default()


@pytest.fixture
def lake_env(tmp_path, emulator) -> dict[str, str]:
    """The environment of a local lake under tmp_path, talking to the emulator."""
    return {
        "ESTAT_LAKE_HOME": str(tmp_path / "home"),
        "ESTAT_API_URL": emulator.api_base,
    }


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def lake(tmp_path, emulator, instance):
    """A population lake (dataset 9900020202) under tmp_path over the emulator."""
    return make_lake(tmp_path / "home", emulator, instance)


# Whole modules that run Dagster jobs or load lakes: slow as well (make test-fast skips them).
SLOW_FOLDERS = ("estat_assets_tests/defs/", "estat_assets_tests/app/")
SLOW_MODULES = (
    "estat_assets_tests/lake/test_releases.py",
    "estat_assets_tests/lake/test_revisions_lake.py",
    "estat_assets_tests/test_mcp_server.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        path = item.nodeid.split("::")[0]
        if path.startswith(SLOW_FOLDERS) or path in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
