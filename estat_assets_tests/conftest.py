"""Shared fixtures: a real e-Stat emulator on loopback and a throwaway ESTAT_LAKE_HOME."""

from __future__ import annotations

import pytest

from estat_emulator import EmulatorServer, TableStore


@pytest.fixture(scope="session")
def emulator_server():
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def emulator(emulator_server):
    """The session's emulator, with no faults and an empty request log for each test."""
    emulator_server.faults.clear()
    emulator_server.requests.clear()
    yield emulator_server
    emulator_server.faults.clear()


@pytest.fixture
def lake_env(tmp_path, emulator) -> dict[str, str]:
    """The environment of a local lake under tmp_path, talking to the emulator."""
    return {
        "ESTAT_LAKE_HOME": str(tmp_path / "home"),
        "ESTAT_API_URL": emulator.api_base,
    }
