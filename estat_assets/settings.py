"""Where local state lives, and which environment we run in: the one place that decides.

Everything local sits under ``ESTAT_LAKE_HOME`` (default ``./.estat-lake``): the Dagster home, raw
and conformed files, the Iceberg warehouse and its SQLite catalog. ``ESTAT_LAKE_ENV`` picks
``local`` (default) or ``aws``; it is read when definitions are built, never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENTS = ("local", "aws")
DEFAULT_EMULATOR_PORT = 18800


@dataclass(frozen=True)
class LocalPaths:
    """The layout of ``ESTAT_LAKE_HOME``."""

    home: Path

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def catalog_db(self) -> Path:
        return self.home / "catalog.db"

    def ensure(self) -> LocalPaths:
        for p in (self.dagster_home, self.lake, self.warehouse):
            p.mkdir(parents=True, exist_ok=True)
        return self


def lake_home(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("ESTAT_LAKE_HOME") or ".estat-lake").resolve()


def local_paths(environ: dict[str, str] | None = None) -> LocalPaths:
    return LocalPaths(lake_home(environ))


def environment(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    name = (env.get("ESTAT_LAKE_ENV") or "local").strip().lower()
    if name not in ENVIRONMENTS:
        raise ValueError(f"ESTAT_LAKE_ENV={name!r}: expected one of {', '.join(ENVIRONMENTS)}")
    return name


def emulator_url(environ: dict[str, str] | None = None) -> str:
    """The e-Stat base URL for local runs: the bundled emulator unless ESTAT_API_URL says else."""
    env = os.environ if environ is None else environ
    if env.get("ESTAT_API_URL"):
        return env["ESTAT_API_URL"]
    port = env.get("ESTAT_EMULATOR_PORT") or str(DEFAULT_EMULATOR_PORT)
    return f"http://127.0.0.1:{port}/rest/3.0/app/json"
