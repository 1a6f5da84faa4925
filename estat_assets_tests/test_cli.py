"""The command line as users run it: real subprocesses, real emulator, real files."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from estat_assets_tests.factories import SAMPLES

ROOT = Path(__file__).resolve().parent.parent
SECRET = "RECOGNIZABLE-APPID-5f3c9e1d"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "estat_assets.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def small_domains(tmp_path) -> Path:
    path = tmp_path / "domains.yaml"
    path.write_text(
        "domains:\n"
        "  population:\n    datasets: ['0000020202']\n"
        "  education:\n    datasets: ['0003065345']\n",
        encoding="utf-8",
    )
    return path


def _summary(stdout: str) -> dict[str, tuple[int, ...]]:
    """The demo's summary rows: datasets, partitions, rows, quarantined, rows e-Stat serves."""
    out = {}
    pattern = r"\| (estat\.\w+)\s+" + r"\|\s+(\d+) " * 5 + r"\|"
    for m in re.finditer(pattern, stdout):
        out[m.group(1)] = tuple(int(m.group(i)) for i in range(2, 7))
    return out


def test_demo_runs_offline_is_repeatable_and_keeps_the_app_id_secret(tmp_path, small_domains):
    home = tmp_path / "home"
    env = {
        "ESTAT_LAKE_HOME": str(home),
        "ESTAT_DOMAINS_FILE": str(small_domains),
        "ESTAT_APP_ID": SECRET,
        "DAGSTER_HOME": "",
    }
    env.pop("DAGSTER_HOME")
    port = str(free_port())
    first = cli("demo", "--port", port, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    summary = _summary(first.stdout)
    # rows in the lake equal the rows the emulator serves: 10 and 3 recorded rows
    assert summary == {
        "estat.education": (1, 1, 3, 0, 3),
        "estat.population": (1, 10, 10, 0, 10),
    }
    assert "このサービスは、政府統計総合窓口(e-Stat)のAPI機能を使用していますが" in first.stdout
    second = cli("demo", "--port", port, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert _summary(second.stdout) == summary  # a rerun changes no count
    # The appId reaches e-Stat only: not the lake, not the Dagster home, not the output.
    for path in home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in first.stdout + first.stderr + second.stdout + second.stderr


def test_conform_command_writes_parquet(tmp_path):
    page = next(SAMPLES.glob("v3/getStatsData_0000020202_limit10.json"))
    out = tmp_path / "out.parquet"
    result = cli("conform", str(page), "--out", str(out), env={})
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.num_rows == 10 and table.column("dataset_id")[0].as_py() == "0000020202"


def test_query_command_reports_unknown_tables(tmp_path):
    result = cli(
        "query", "SELECT count(*) FROM estat.nothing", env={"ESTAT_LAKE_HOME": str(tmp_path)}
    )
    assert result.returncode == 2 and "no table estat.nothing" in result.stderr


def test_definitions_validate_cleanly(tmp_path):
    home = tmp_path / "dh"
    home.mkdir()
    (home / "dagster.yaml").write_bytes((ROOT / "dagster.yaml").read_bytes())
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-m",
            "estat_assets.definitions",
        ],
        cwd=ROOT,
        env={**os.environ, "DAGSTER_HOME": str(home), "ESTAT_LAKE_HOME": str(tmp_path / "lake")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All code locations passed validation" in result.stderr + result.stdout
