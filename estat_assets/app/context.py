"""The lake as the application layer sees it: settings, resources, e-Stat, catalog, files.

:class:`LakeContext` is built once per CLI command or MCP server from :class:`Settings` (the
environment decides local or AWS, DuckDB or Athena, the emulator or the real e-Stat) and hands
every capability module what it needs. Nothing here is a Dagster type; the Dagster instance is
only opened by ``app.load`` and ``app.add``, inside their functions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from estat_assets.app.errors import AppError
from estat_assets.domains import DomainSpec, load_domains, with_registered
from estat_assets.estat.client import EStatClient, RetryConfig
from estat_assets.settings import Settings

REAL_ESTAT_HOSTS = ("api.e-stat.go.jp",)
# Interactive requests give up sooner than a load's: a person (or an assistant) is waiting.
INTERACTIVE_RETRY = RetryConfig(attempts=3, base_delay=0.5, max_delay=4.0)
INTERACTIVE_TIMEOUT = 30.0


@dataclass
class LakeContext:
    """Everything the capabilities need. ``say`` receives progress lines (the CLI prints them,
    the MCP server logs them). ``dagster_url`` is the webserver ``load`` submits runs to when
    one answers there."""

    settings: Settings
    dagster_url: str | None = None
    say: Callable[[str], None] = field(default=lambda _line: None)
    # Starts the bundled emulator on first use and returns its base URL (the CLI and the MCP
    # server pass one when ESTAT_API_URL is not set); None: settings.estat_url as it is.
    estat_starter: Callable[[], str] | None = field(default=None, repr=False)
    _resources: dict[str, Any] | None = field(default=None, repr=False)
    _catalog: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ---- resources -------------------------------------------------------------------

    @property
    def resources(self) -> dict[str, Any]:
        with self._lock:
            if self._resources is None:
                from estat_assets.defs.resources import build_resources

                self._resources = build_resources(self.settings)
            return self._resources

    @property
    def namespace(self) -> str:
        return self.resources["iceberg"].namespace

    def storage(self):
        """The lake's files (``lake.storage.Storage``): a folder, or ``s3://`` on AWS."""
        return self.resources["lake"].storage()

    def catalog(self):
        """The Iceberg catalog (SQLite locally, Glue on AWS); one per context."""
        iceberg = self.resources["iceberg"]
        with self._lock:
            if self._catalog is None:
                self._catalog = iceberg.catalog()
            return self._catalog

    def query_engine(self):
        """The ``query_engine`` resource of the environment (DuckDB or Athena)."""
        return self.resources["query_engine"]

    # ---- domains ---------------------------------------------------------------------

    def configured_domains(self) -> tuple[DomainSpec, ...]:
        return load_domains(self.settings.domains_file)

    def registry(self) -> dict[str, dict[str, Any]]:
        from estat_assets.lake.registry import read_registry

        return read_registry(self.storage())

    def domains(self) -> tuple[DomainSpec, ...]:
        """The configured domains with the datasets added at run time."""
        from estat_assets.lake.registry import registered_by_domain

        return with_registered(self.configured_domains(), registered_by_domain(self.storage()))

    def domain_of(self, dataset_id: str) -> str | None:
        """The domain a dataset belongs to (declared, added, or found in the inventory)."""
        for spec in self.domains():
            if dataset_id in spec.datasets:
                return spec.name
        row = self.inventory().get(dataset_id)
        return row["domain"] if row else None

    def require_domain(self, dataset_id: str) -> str:
        domain = self.domain_of(dataset_id)
        if domain is None:
            raise AppError(
                "not_in_lake",
                f"{dataset_id} is not in the lake",
                f"add it first: `estat-lake add {dataset_id}` (MCP: add_dataset)",
                context={"stats_data_id": dataset_id},
            )
        return domain

    # ---- lake tables -----------------------------------------------------------------

    def inventory(self) -> dict[str, dict[str, Any]]:
        """``estat.dataset_inventory`` by dataset id (empty before the first load)."""
        from estat_assets.lake.inventory import read_inventory

        try:
            rows = read_inventory(self.catalog(), self.namespace)
        except Exception:  # no catalog yet: nothing loaded
            return {}
        return {r["dataset_id"]: r for r in rows}

    def table(self, name: str):
        """``namespace.name`` as a pyiceberg table, or ``None`` if it does not exist."""
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.catalog().load_table((self.namespace, name))
        except NoSuchTableError:
            return None
        except Exception:  # the namespace or catalog does not exist yet
            return None

    # ---- e-Stat ----------------------------------------------------------------------

    def ensure_estat(self) -> str:
        """The e-Stat base URL, starting the bundled emulator first if that is the plan."""
        with self._lock:
            if self.estat_starter is not None:
                starter, self.estat_starter = self.estat_starter, None
                self.settings = self.settings.with_api_url(starter())
                self._resources = None  # rebuilt with the emulator's URL
            return self.settings.estat_url

    def client(self, retry: RetryConfig | None = None) -> EStatClient:
        """An e-Stat client (use ``with``); refuses the real e-Stat without an appId."""
        from estat_assets.defs.resources import EMULATOR_APP_ID

        url = self.ensure_estat()
        host = urlparse(url).hostname or ""
        app_id = self.settings.secret_value("ESTAT_APP_ID")
        if host in REAL_ESTAT_HOSTS and not app_id:
            raise AppError(
                "missing_app_id",
                f"ESTAT_API_URL points at {host} but ESTAT_APP_ID is not set",
                "register at https://www.e-stat.go.jp/api/ and export ESTAT_APP_ID=<your appId> "
                "(or unset ESTAT_API_URL to use the bundled emulator)",
            )
        return EStatClient(
            app_id or EMULATOR_APP_ID,
            url,
            timeout=INTERACTIVE_TIMEOUT,
            rate_limit=self.settings.rate_limit,
            retry=retry or INTERACTIVE_RETRY,
        )
