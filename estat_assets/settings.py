"""Every setting of the lake, read from the environment once: the one place that decides.

``Settings.from_env()`` reads the variables of :data:`VARIABLES` (and nothing else reads the
environment); the CLI and ``build_definitions`` pass the result down. Everything local sits under
``ESTAT_LAKE_HOME`` (default ``./.estat-lake``): the Dagster home, raw and conformed files, the
Iceberg warehouse and its SQLite catalog. ``ESTAT_LAKE_ENV`` picks ``local`` (default) or ``aws``.
The README's configuration table is tested against :data:`VARIABLES`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENVIRONMENTS = ("local", "aws")
TABLE_WRITERS = ("pyiceberg", "athena")
MEMORY_POOLS = ("system", "mimalloc", "jemalloc")  # estat_assets/arrow_memory.py
QUERY_ENGINES = ("duckdb", "athena")
DEFAULT_EMULATOR_PORT = 18800
DEFAULT_REGION = "ap-northeast-1"


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "ESTAT_LAKE_HOME",
        "./.estat-lake",
        "all local state: `dagster/` (DAGSTER_HOME), "
        "`lake/` (raw + conformed), `warehouse/`, `catalog.db`",
    ),
    Variable(
        "ESTAT_LAKE_ENV",
        "local",
        "`local` (folder, SQLite catalog, DuckDB) or `aws` (S3, Glue, Athena; see `deploy/`)",
    ),
    Variable(
        "ESTAT_APP_ID",
        "—",
        "e-Stat appId (secret, read through Dagster's `EnvVar`); not needed for the emulator",
    ),
    Variable(
        "ESTAT_API_URL",
        "the emulator on `127.0.0.1`",
        "e-Stat base URL, e.g. `https://api.e-stat.go.jp/rest/3.0/app/json`",
    ),
    Variable(
        "ESTAT_EMULATOR_PORT",
        str(DEFAULT_EMULATOR_PORT),
        "port of the bundled emulator (`make dev`, the CLI) when `ESTAT_API_URL` is not set",
    ),
    Variable(
        "ESTAT_DOMAINS_FILE",
        "the packaged `domains.yaml`",
        "domain → datasets, surveys, statistical fields, rules",
    ),
    Variable(
        "ESTAT_RATE_LIMIT",
        "none locally, `2` on aws",
        "e-Stat requests per second, across all threads of a run",
    ),
    Variable(
        "ESTAT_RAW_RETRIES",
        "3",
        "Dagster step retries of `<domain>/raw` after the client's own retries",
    ),
    Variable(
        "ESTAT_RAW_RETRY_DELAY", "10", "seconds before the first step retry (exponential, jitter)"
    ),
    Variable(
        "ESTAT_POOL_WAIT_SECONDS",
        "300",
        "how long the CLI waits for a free `estat_api` pool slot before giving up",
    ),
    Variable("ESTAT_RELEASE_SENSOR_INTERVAL", "3600", "seconds between release sensor ticks"),
    Variable(
        "ESTAT_RELEASE_WINDOW_DAYS",
        "7",
        "how far back the release sensor's `updatedDate` window reaches",
    ),
    Variable(
        "ESTAT_AUDIT_SENSOR_INTERVAL",
        "15",
        "seconds between ticks of the run audit, run reaper and notification sensors",
    ),
    Variable(
        "ESTAT_NOTIFY_WEBHOOK_URL",
        "—",
        "webhook for notifications (secret; Slack-compatible): revised releases, failed and "
        "hung runs; unset: none sent",
    ),
    Variable(
        "ESTAT_DAGSTER_URL",
        "http://localhost:3000",
        "base URL of the Dagster UI, for the run links in notifications",
    ),
    Variable(
        "ESTAT_REVISION_WARN_SHARE",
        "0.1",
        "share of a table's past values a release may revise before `revision_share` warns",
    ),
    Variable(
        "ESTAT_RELEASE_RETENTION_DAYS",
        "forever",
        "days a superseded release stays readable (`--as-of`), from the next release's date",
    ),
    Variable(
        "ESTAT_LAKE_S3_ROOT", "—", "aws: `s3://bucket/prefix` for raw, conformed and the warehouse"
    ),
    Variable("ESTAT_LAKE_S3_ENDPOINT", "—", "aws: an S3-compatible endpoint (tests: SeaweedFS)"),
    Variable(
        "ESTAT_LAKE_S3_ACCESS_KEY_ID",
        "—",
        "aws: keys for that endpoint (secret); ECS uses its task role instead",
    ),
    Variable("ESTAT_LAKE_S3_SECRET_ACCESS_KEY", "—", "aws: see above (secret)"),
    Variable(
        "AWS_REGION",
        DEFAULT_REGION,
        "aws: region of S3, Glue and Athena (`AWS_DEFAULT_REGION` also read)",
    ),
    Variable("ESTAT_GLUE_DATABASE", "estat", "aws: the Glue database (Iceberg namespace)"),
    Variable("ESTAT_GLUE_ENDPOINT", "—", "aws: a Glue endpoint (tests: moto)"),
    Variable("ESTAT_ATHENA_WORKGROUP", "estat-lake", "aws: the Athena workgroup"),
    Variable("ESTAT_ATHENA_OUTPUT", "`<S3 root>/athena-results/`", "aws: Athena's result location"),
    Variable("ESTAT_ATHENA_ENDPOINT", "—", "aws: an Athena endpoint (tests: moto)"),
    Variable("ESTAT_QUERY_ENGINE", "`duckdb` locally, `athena` on aws", "`duckdb` or `athena`"),
    Variable(
        "ESTAT_TABLE_WRITER",
        "pyiceberg",
        "aws: `pyiceberg` (one commit per load) or `athena` (DELETE + INSERT through Athena)",
    ),
    Variable(
        "ESTAT_ARROW_MEMORY_POOL",
        "system",
        "Arrow's allocator in loads: `system` (the C library's), `mimalloc` or `jemalloc`",
    ),
)
SECRETS = (
    "ESTAT_APP_ID",
    "ESTAT_LAKE_S3_ACCESS_KEY_ID",
    "ESTAT_LAKE_S3_SECRET_ACCESS_KEY",
    "ESTAT_NOTIFY_WEBHOOK_URL",  # a Slack webhook URL is a credential
)


class SettingsError(ValueError):
    """A variable has a value the lake cannot use; the message names it and what to set."""


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


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r}: expected at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r}: expected a positive number")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _opt(env: Mapping[str, str], name: str) -> str | None:
    return (env.get(name) or "").strip() or None


def _url(env: Mapping[str, str], name: str) -> str | None:
    """An http(s) base URL, checked now: a malformed one fails here, not inside a run."""
    value = _opt(env, name)
    if value is None:
        return None
    from estat_assets.estat.errors import EStatConfigError
    from estat_assets.estat.http import check_base_url

    try:
        check_base_url(value, env.get("ESTAT_APP_ID"))
    except EStatConfigError as exc:
        raise SettingsError(str(exc)) from None
    return value


def _web_url(env: Mapping[str, str], name: str) -> str | None:
    """An http(s) URL (a webhook, the Dagster UI), checked now."""
    value = _opt(env, name)
    if value is not None and not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name}: expected an http:// or https:// URL")  # never echo it
    return value.rstrip("/") if value else None


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    assert value is not None
    if value > 1:
        raise SettingsError(f"{name}={value!r}: expected a share between 0 and 1")
    return value


def _retention(env: Mapping[str, str], name: str) -> float | None:
    """Days, or ``forever`` (also the default)."""
    if (env.get(name) or "").strip().lower() in ("", "forever", "none"):
        return None
    return _float(env, name, None)


@dataclass(frozen=True)
class Settings:
    """The lake's configuration. Secrets are not copied here: see :meth:`secret`."""

    env: str = "local"
    home: Path = field(default_factory=lambda: Path(".estat-lake").resolve())
    api_url: str | None = None  # None: the bundled emulator on emulator_port
    emulator_port: int = DEFAULT_EMULATOR_PORT
    domains_file: Path | None = None
    rate_limit: float | None = None
    raw_retries: int = 3
    raw_retry_delay: float = 10.0
    pool_wait_seconds: float = 300.0
    release_sensor_interval: int = 3600
    release_window_days: int = 7
    audit_sensor_interval: int = 15
    dagster_url: str = "http://localhost:3000"
    revision_warn_share: float = 0.1
    release_retention_days: float | None = None  # None: every release kept forever
    s3_root: str | None = None
    s3_endpoint: str | None = None
    region: str = DEFAULT_REGION
    glue_database: str = "estat"
    glue_endpoint: str | None = None
    athena_workgroup: str = "estat-lake"
    athena_output: str | None = None
    athena_endpoint: str | None = None
    query_engine: str = "duckdb"
    table_writer: str = "pyiceberg"
    arrow_memory_pool: str = "system"
    # The secret variables that are set (never printed), and whether they came from this
    # process's environment (then resources read them through Dagster's EnvVar, never by value).
    _environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    secrets_from_process: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        name = _choice(env, "ESTAT_LAKE_ENV", "local", ENVIRONMENTS)
        aws = name == "aws"
        region = _opt(env, "AWS_REGION") or _opt(env, "AWS_DEFAULT_REGION") or DEFAULT_REGION
        domains = _opt(env, "ESTAT_DOMAINS_FILE")
        _web_url(env, "ESTAT_NOTIFY_WEBHOOK_URL")  # checked here, kept as a secret
        settings = cls(
            env=name,
            home=Path(_opt(env, "ESTAT_LAKE_HOME") or ".estat-lake").resolve(),
            api_url=_url(env, "ESTAT_API_URL"),
            emulator_port=_int(env, "ESTAT_EMULATOR_PORT", DEFAULT_EMULATOR_PORT, 1),
            domains_file=Path(domains) if domains else None,
            rate_limit=_float(env, "ESTAT_RATE_LIMIT", 2.0 if aws else None),
            raw_retries=_int(env, "ESTAT_RAW_RETRIES", 3),
            raw_retry_delay=_float(env, "ESTAT_RAW_RETRY_DELAY", 10.0) or 0.0,
            pool_wait_seconds=_float(env, "ESTAT_POOL_WAIT_SECONDS", 300.0) or 0.0,
            release_sensor_interval=_int(env, "ESTAT_RELEASE_SENSOR_INTERVAL", 3600, 1),
            release_window_days=_int(env, "ESTAT_RELEASE_WINDOW_DAYS", 7),
            audit_sensor_interval=_int(env, "ESTAT_AUDIT_SENSOR_INTERVAL", 15, 1),
            dagster_url=_web_url(env, "ESTAT_DAGSTER_URL") or "http://localhost:3000",
            revision_warn_share=_share(env, "ESTAT_REVISION_WARN_SHARE", 0.1),
            release_retention_days=_retention(env, "ESTAT_RELEASE_RETENTION_DAYS"),
            s3_root=(_opt(env, "ESTAT_LAKE_S3_ROOT") or "").rstrip("/") or None,
            s3_endpoint=_opt(env, "ESTAT_LAKE_S3_ENDPOINT"),
            region=region,
            glue_database=_opt(env, "ESTAT_GLUE_DATABASE") or "estat",
            glue_endpoint=_opt(env, "ESTAT_GLUE_ENDPOINT"),
            athena_workgroup=_opt(env, "ESTAT_ATHENA_WORKGROUP") or "estat-lake",
            athena_output=_opt(env, "ESTAT_ATHENA_OUTPUT"),
            athena_endpoint=_opt(env, "ESTAT_ATHENA_ENDPOINT"),
            query_engine=_choice(
                env, "ESTAT_QUERY_ENGINE", "athena" if aws else "duckdb", QUERY_ENGINES
            ),
            table_writer=_choice(env, "ESTAT_TABLE_WRITER", "pyiceberg", TABLE_WRITERS),
            arrow_memory_pool=_choice(env, "ESTAT_ARROW_MEMORY_POOL", "system", MEMORY_POOLS),
            _environ={k: env[k] for k in SECRETS if env.get(k)},
            secrets_from_process=env is os.environ,
        )
        if aws:
            settings.check_aws()
        return settings

    def check_aws(self) -> None:
        missing = [
            n
            for n, ok in (
                ("ESTAT_APP_ID", self.has_secret("ESTAT_APP_ID")),
                ("ESTAT_LAKE_S3_ROOT", self.s3_root),
            )
            if not ok
        ]
        if missing:
            raise SettingsError(f"ESTAT_LAKE_ENV=aws needs {', '.join(missing)} in the environment")
        if not (self.s3_root or "").startswith("s3://"):
            raise SettingsError(f"ESTAT_LAKE_S3_ROOT={self.s3_root!r}: expected s3://bucket/prefix")

    def has_secret(self, name: str) -> bool:
        return bool(self._environ.get(name))

    def secret_value(self, name: str) -> str | None:
        """The secret itself, for code that must hand it to a client. Never log it."""
        return self._environ.get(name)

    def with_api_url(self, url: str) -> Settings:
        """The same settings pointed at another e-Stat (the CLI's bundled emulator)."""
        return dataclasses.replace(self, api_url=url)

    @property
    def paths(self) -> LocalPaths:
        return LocalPaths(self.home)

    @property
    def estat_url(self) -> str:
        """The e-Stat base URL: ``ESTAT_API_URL``, else the bundled emulator on loopback."""
        return self.api_url or emulator_base_url(self.emulator_port)

    @property
    def uses_emulator(self) -> bool:
        return self.api_url is None


def emulator_base_url(port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}/rest/3.0/app/json"


def config_table_markdown() -> str:
    """The README's configuration table, generated from :data:`VARIABLES`."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{v.name}` | {_default_cell(v.default)} | {v.meaning} |" for v in VARIABLES]
    return "\n".join(lines)


def _default_cell(default: str) -> str:
    """A literal default as code (`3`); prose or already formatted text as written."""
    if default == "—" or "`" in default or " " in default:
        return default
    return f"`{default}`"
