"""``estat_assets/arrow_memory.py``: Arrow's allocator, chosen by ``ESTAT_ARROW_MEMORY_POOL``."""

from __future__ import annotations

import pyarrow as pa
import pytest

from estat_assets.arrow_memory import use_arrow_memory_pool
from estat_assets.definitions import build_definitions
from estat_assets.settings import Settings, SettingsError


@pytest.fixture
def restore_pool():
    before = pa.default_memory_pool()
    yield
    pa.set_memory_pool(before)


def test_the_named_pool_becomes_arrows_default(restore_pool) -> None:
    assert use_arrow_memory_pool("system") == "system"
    assert pa.default_memory_pool().backend_name == "system"
    assert pa.array(range(1000)).nbytes > 0  # allocations work from it
    assert use_arrow_memory_pool("mimalloc") == pa.default_memory_pool().backend_name


def test_building_the_definitions_applies_the_setting(tmp_path, restore_pool) -> None:
    env = {"ESTAT_LAKE_HOME": str(tmp_path / "home")}
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    build_definitions(Settings.from_env(env))  # the default: the C library's malloc
    assert pa.default_memory_pool().backend_name == "system"
    build_definitions(Settings.from_env({**env, "ESTAT_ARROW_MEMORY_POOL": "mimalloc"}))
    assert pa.default_memory_pool().backend_name == "mimalloc"


def test_an_unknown_pool_is_refused_with_the_choices() -> None:
    with pytest.raises(SettingsError, match="ESTAT_ARROW_MEMORY_POOL"):
        Settings.from_env({"ESTAT_ARROW_MEMORY_POOL": "tcmalloc"})
