"""Fixtures of the application-layer tests: a lake whose domains declare fields, not datasets.

``add`` has to infer every domain from the table's own metadata: the domains file below lists the
statistical fields (``MAIN_CATEGORY``) of the emulator's generated tables 9900000003 (07),
9900000004 (03), 9900000005 (15) and 9900000006 (12) under four domains and declares none of the
tables. ``population`` watches survey 00200502 (社会・人口統計体系) and declares nothing either.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from estat_assets.app.context import LakeContext
from estat_assets.settings import Settings

INFER_DOMAINS = """\
domains:
  population:
    surveys: ["00200502"]
    fields: ["02"]
  labor:
    fields: ["03"]
  health:
    fields: ["15"]
  education:
    fields: ["12"]
  economy:
    fields: ["05", "06", "07"]
"""

FIELDS = {  # the emulator's generated tables, their field and the domain add must pick
    "9900000003": ("07", "economy"),
    "9900000004": ("03", "labor"),
    "9900000005": ("15", "health"),
    "9900000006": ("12", "education"),
}


def write_domains(folder: Path) -> Path:
    path = folder / "domains.yaml"
    path.write_text(INFER_DOMAINS, encoding="utf-8")
    return path


def app_env(home: Path, api_base: str, domains: Path) -> dict[str, str]:
    return {
        "ESTAT_LAKE_HOME": str(home),
        "ESTAT_API_URL": api_base,
        "ESTAT_DOMAINS_FILE": str(domains),
        "ESTAT_RAW_RETRIES": "1",
        "ESTAT_RAW_RETRY_DELAY": "0.05",
        "ESTAT_POOL_WAIT_SECONDS": "5",
    }


def make_context(home: Path, api_base: str, domains: Path) -> LakeContext:
    lines: list[str] = []
    ctx = LakeContext(Settings.from_env(app_env(home, api_base, domains)), say=lines.append)
    ctx.said = lines  # type: ignore[attr-defined]
    return ctx


@pytest.fixture
def domains_file(tmp_path) -> Path:
    return write_domains(tmp_path)


@pytest.fixture
def ctx(tmp_path, emulator, domains_file) -> LakeContext:
    """An empty lake under tmp_path over the session's emulator."""
    return make_context(tmp_path / "home", emulator.api_base, domains_file)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, emulator_server):
    """One lake for a module: 9900000004 (labor) added and loaded in-process."""
    from estat_assets.app.add import add
    from estat_assets.app.load import load

    folder = tmp_path_factory.mktemp("loaded")
    ctx = make_context(folder / "home", emulator_server.api_base, write_domains(folder))
    add(ctx, "9900000004")
    answer = load(ctx, ["9900000004"])
    assert [i.status for i in answer.items] == ["success"], answer.to_dict()
    return ctx, answer
