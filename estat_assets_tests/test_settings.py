"""``estat_assets/settings.py``: every variable of ``VARIABLES`` read, checked and documented.

``Settings.from_env`` is the only reader of the environment: each variable has a value here that
differs from its default and the attribute it must land in; a new variable without a row here
fails the first test. Bad values raise ``SettingsError`` naming the variable. The README's
configuration table (between ``<!-- config-table -->`` and ``<!-- /config-table -->``) must be
exactly ``config_table_markdown()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from estat_assets.settings import (
    DEFAULT_EMULATOR_PORT,
    DEFAULT_REGION,
    SECRETS,
    VARIABLES,
    Settings,
    SettingsError,
    config_table_markdown,
    emulator_base_url,
)

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "estat_assets"
NAMES = [v.name for v in VARIABLES]
AWS = {
    "ESTAT_LAKE_ENV": "aws",
    "ESTAT_APP_ID": "app-id",
    "ESTAT_LAKE_S3_ROOT": "s3://bucket/prefix",
}

# variable → (a value that is not the default, extra variables it needs, attribute, expected)
PARSED: dict[str, tuple[str, dict[str, str], str, Any]] = {
    "ESTAT_LAKE_HOME": ("/srv/lake", {}, "home", Path("/srv/lake")),
    "ESTAT_LAKE_ENV": (
        "AWS",
        {k: v for k, v in AWS.items() if k != "ESTAT_LAKE_ENV"},
        "env",
        "aws",
    ),
    "ESTAT_APP_ID": ("secret-app-id", {}, "secret_value('ESTAT_APP_ID')", "secret-app-id"),
    "ESTAT_API_URL": (
        "https://api.e-stat.go.jp/rest/3.0/app/json",
        {},
        "estat_url",
        "https://api.e-stat.go.jp/rest/3.0/app/json",
    ),
    "ESTAT_EMULATOR_PORT": ("28800", {}, "estat_url", "http://127.0.0.1:28800/rest/3.0/app/json"),
    "ESTAT_DOMAINS_FILE": (
        "/etc/estat/domains.yaml",
        {},
        "domains_file",
        Path("/etc/estat/domains.yaml"),
    ),
    "ESTAT_RATE_LIMIT": ("0.5", {}, "rate_limit", 0.5),
    "ESTAT_RAW_RETRIES": ("0", {}, "raw_retries", 0),
    "ESTAT_RAW_RETRY_DELAY": ("2.5", {}, "raw_retry_delay", 2.5),
    "ESTAT_POOL_WAIT_SECONDS": ("12", {}, "pool_wait_seconds", 12.0),
    "ESTAT_RELEASE_SENSOR_INTERVAL": ("600", {}, "release_sensor_interval", 600),
    "ESTAT_RELEASE_WINDOW_DAYS": ("30", {}, "release_window_days", 30),
    "ESTAT_AUDIT_SENSOR_INTERVAL": ("5", {}, "audit_sensor_interval", 5),
    "ESTAT_NOTIFY_WEBHOOK_URL": (
        "https://hooks.example/T0/B0/x",
        {},
        "secret_value('ESTAT_NOTIFY_WEBHOOK_URL')",
        "https://hooks.example/T0/B0/x",
    ),
    "ESTAT_DAGSTER_URL": ("https://dagster.example/", {}, "dagster_url", "https://dagster.example"),
    "ESTAT_REVISION_WARN_SHARE": ("0.25", {}, "revision_warn_share", 0.25),
    "ESTAT_RELEASE_RETENTION_DAYS": ("365", {}, "release_retention_days", 365.0),
    "ESTAT_LAKE_S3_ROOT": ("s3://other/lake/", AWS, "s3_root", "s3://other/lake"),
    "ESTAT_LAKE_S3_ENDPOINT": ("http://127.0.0.1:8333", {}, "s3_endpoint", "http://127.0.0.1:8333"),
    "ESTAT_LAKE_S3_ACCESS_KEY_ID": (
        "key-id",
        {},
        "secret_value('ESTAT_LAKE_S3_ACCESS_KEY_ID')",
        "key-id",
    ),
    "ESTAT_LAKE_S3_SECRET_ACCESS_KEY": (
        "key-secret",
        {},
        "secret_value('ESTAT_LAKE_S3_SECRET_ACCESS_KEY')",
        "key-secret",
    ),
    "AWS_REGION": ("eu-west-1", {}, "region", "eu-west-1"),
    "ESTAT_GLUE_DATABASE": ("estat_test", {}, "glue_database", "estat_test"),
    "ESTAT_GLUE_ENDPOINT": ("http://127.0.0.1:5000", {}, "glue_endpoint", "http://127.0.0.1:5000"),
    "ESTAT_ATHENA_WORKGROUP": ("analysts", {}, "athena_workgroup", "analysts"),
    "ESTAT_ATHENA_OUTPUT": ("s3://results/", {}, "athena_output", "s3://results/"),
    "ESTAT_ATHENA_ENDPOINT": (
        "http://127.0.0.1:5001",
        {},
        "athena_endpoint",
        "http://127.0.0.1:5001",
    ),
    "ESTAT_QUERY_ENGINE": ("athena", {}, "query_engine", "athena"),
    "ESTAT_TABLE_WRITER": ("athena", {}, "table_writer", "athena"),
    "ESTAT_ARROW_MEMORY_POOL": ("mimalloc", {}, "arrow_memory_pool", "mimalloc"),
}


def _get(settings: Settings, attribute: str) -> Any:
    if attribute.startswith("secret_value("):
        return settings.secret_value(attribute.split("'")[1])
    return getattr(settings, attribute)


def test_every_variable_has_a_parsing_case() -> None:
    assert sorted(PARSED) == sorted(NAMES)
    assert len(NAMES) == len(set(NAMES))


@pytest.mark.parametrize("name", NAMES)
def test_each_variable_is_parsed(name: str) -> None:
    value, extra, attribute, expected = PARSED[name]
    default = _get(Settings.from_env(extra), attribute)
    got = _get(Settings.from_env({**extra, name: value}), attribute)
    assert got == expected
    assert got != default  # the variable, not a default, made the difference


def test_defaults_of_an_empty_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.env == "local" and s.home == (tmp_path / ".estat-lake").resolve()
    assert s.uses_emulator and s.estat_url == emulator_base_url(DEFAULT_EMULATOR_PORT)
    assert (s.rate_limit, s.raw_retries, s.raw_retry_delay) == (None, 3, 10.0)
    assert (s.query_engine, s.table_writer, s.region) == ("duckdb", "pyiceberg", DEFAULT_REGION)
    assert not any(s.has_secret(n) for n in SECRETS)


def test_aws_defaults_and_region_fallback() -> None:
    s = Settings.from_env(AWS)
    assert (s.query_engine, s.rate_limit, s.s3_root) == ("athena", 2.0, "s3://bucket/prefix")
    assert Settings.from_env({**AWS, "AWS_DEFAULT_REGION": "us-west-2"}).region == "us-west-2"
    both = {**AWS, "AWS_DEFAULT_REGION": "us-west-2", "AWS_REGION": "eu-central-1"}
    assert Settings.from_env(both).region == "eu-central-1"


def test_secrets_are_not_in_the_repr_and_only_set_ones_count() -> None:
    s = Settings.from_env({"ESTAT_APP_ID": "top-secret-id", "ESTAT_LAKE_S3_ACCESS_KEY_ID": ""})
    assert s.has_secret("ESTAT_APP_ID") and not s.has_secret("ESTAT_LAKE_S3_ACCESS_KEY_ID")
    assert "top-secret-id" not in repr(s) and "top-secret-id" not in str(s)
    assert not s.secrets_from_process  # a mapping: resources get values, not EnvVars


class Recording(Mapping[str, str]):
    """An environment that remembers which variables were asked for."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self.data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("Settings must not scan the whole environment")

    def __len__(self) -> int:
        return len(self.data)


@pytest.mark.parametrize("env", [{}, AWS], ids=["local", "aws"])
def test_only_the_documented_variables_are_read(env) -> None:
    recording = Recording(dict(env))
    Settings.from_env(recording)
    assert recording.asked <= {*NAMES, "AWS_DEFAULT_REGION"}, recording.asked - set(NAMES)
    assert set(NAMES) <= recording.asked, set(NAMES) - recording.asked


def test_nothing_else_in_the_package_reads_the_environment() -> None:
    readers = re.compile(r"\bos\.environ\b|\bos\.getenv\b|\bos\.putenv\b")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "settings.py" and path.parent == PACKAGE:
            continue
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if readers.search(line):
                found.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert found == []
    # Dagster's EnvVar reads the process environment at run time: only for the secrets.
    env_vars = set()
    for path in PACKAGE.rglob("*.py"):
        env_vars |= set(re.findall(r"EnvVar\((\"[A-Z_]+\")\)", path.read_text(encoding="utf-8")))
    assert {v.strip('"') for v in env_vars} <= set(SECRETS)


BAD = [
    ("ESTAT_LAKE_ENV", "gcp", "expected one of local, aws"),
    ("ESTAT_EMULATOR_PORT", "eighteen", "whole number"),
    ("ESTAT_EMULATOR_PORT", "0", "at least 1"),
    ("ESTAT_RATE_LIMIT", "fast", "expected a number"),
    ("ESTAT_RATE_LIMIT", "-1", "positive"),
    ("ESTAT_RAW_RETRIES", "3.5", "whole number"),
    ("ESTAT_RAW_RETRIES", "-1", "at least 0"),
    ("ESTAT_RAW_RETRY_DELAY", "ten", "expected a number"),
    ("ESTAT_POOL_WAIT_SECONDS", "-5", "positive"),
    ("ESTAT_RELEASE_SENSOR_INTERVAL", "0", "at least 1"),
    ("ESTAT_RELEASE_WINDOW_DAYS", "a week", "whole number"),
    ("ESTAT_AUDIT_SENSOR_INTERVAL", "0", "at least 1"),
    ("ESTAT_QUERY_ENGINE", "spark", "expected one of duckdb, athena"),
    ("ESTAT_TABLE_WRITER", "spark", "expected one of pyiceberg, athena"),
    ("ESTAT_API_URL", "http://[::1", "not a usable e-Stat base URL"),
    ("ESTAT_API_URL", "ftp://example.org/", "http or https"),
    ("ESTAT_API_URL", "api.e-stat.go.jp/rest/3.0/app/json", "http or https"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(name) and message in str(caught.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ESTAT_LAKE_ENV": "aws"}, "ESTAT_LAKE_ENV=aws needs ESTAT_APP_ID, ESTAT_LAKE_S3_ROOT"),
        ({**AWS, "ESTAT_APP_ID": ""}, "needs ESTAT_APP_ID"),
        ({**AWS, "ESTAT_LAKE_S3_ROOT": "/local/dir"}, "ESTAT_LAKE_S3_ROOT='/local/dir'"),
    ],
)
def test_aws_needs_its_variables(env, message) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(env)


def test_an_api_url_does_not_leak_the_app_id_in_its_error() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {"ESTAT_APP_ID": "sekret-123", "ESTAT_API_URL": "http://host:sekret-123/"}
        )
    assert "sekret-123" not in str(caught.value)


def test_local_paths_are_under_the_home(tmp_path) -> None:
    paths = Settings.from_env({"ESTAT_LAKE_HOME": str(tmp_path)}).paths.ensure()
    assert paths.dagster_home == tmp_path / "dagster" and paths.dagster_home.is_dir()
    assert (paths.lake, paths.warehouse) == (tmp_path / "lake", tmp_path / "warehouse")
    assert paths.catalog_db == tmp_path / "catalog.db"


def test_with_api_url_points_elsewhere_and_keeps_the_rest() -> None:
    s = Settings.from_env({"ESTAT_RAW_RETRIES": "7"})
    other = s.with_api_url("http://127.0.0.1:9/rest/3.0/app/json")
    assert not other.uses_emulator and other.estat_url.endswith(":9/rest/3.0/app/json")
    assert other.raw_retries == 7 and s.uses_emulator


def test_config_table_lists_every_variable_once_in_order() -> None:
    lines = config_table_markdown().splitlines()
    assert lines[:2] == ["| variable | default | meaning |", "|---|---|---|"]
    names = [re.match(r"\| `([A-Z0-9_]+)` \|", line).group(1) for line in lines[2:]]
    assert names == NAMES


def test_readme_configuration_table_is_the_generated_one() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- config-table -->\s*?\n(.*?)\s*<!-- /config-table -->", text, re.S)
    assert block, (
        "README.md needs the table between <!-- config-table --> and <!-- /config-table -->"
    )
    assert block.group(1).strip() == config_table_markdown()


def test_default_athena_workgroup_is_the_one_setup_workgroup_creates() -> None:
    from estat_assets.query.athena import DEFAULT_WORKGROUP

    assert Settings.from_env(AWS).athena_workgroup == DEFAULT_WORKGROUP == "estat-lake"
    assert next(v for v in VARIABLES if v.name == "ESTAT_ATHENA_WORKGROUP").default == (
        DEFAULT_WORKGROUP
    )
