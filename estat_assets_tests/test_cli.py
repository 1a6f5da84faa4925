"""The command line as users run it: ``estat-lake`` subprocesses, a real emulator, real files.

Loads talk to the test's emulator through ``ESTAT_API_URL`` (so no second emulator is started)
and keep everything under ``ESTAT_LAKE_HOME`` in ``tmp_path``. Bad input or configuration is one
line on stderr that starts with ``estat-lake: error:``, exit status 2, never a traceback.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from estat_assets.instance import DATASET_TAG, DOMAIN_TAG
from estat_assets.runner import instance_yaml, open_instance
from estat_assets.settings import Settings
from estat_assets_tests.factories import SAMPLES
from estat_assets_tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "RECOGNIZABLE-APPID-5f3c9e1d"
SMALL = (
    "domains:\n"
    "  population:\n    datasets: ['0000020202']\n"
    "  education:\n    datasets: ['0003065345']\n"
)


def clean_environ() -> dict[str, str]:
    """This process's environment without any lake or Dagster setting of the developer's."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("ESTAT_") and k != "DAGSTER_HOME"
    }


def cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "estat-lake"), *args],
        cwd=env.get("CWD", str(ROOT)),
        env={**clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def small_domains(tmp_path) -> Path:
    path = tmp_path / "domains.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


@pytest.fixture
def env(tmp_path, emulator, small_domains) -> dict[str, str]:
    """A lake under tmp_path loading from the test's emulator."""
    return {
        "ESTAT_LAKE_HOME": str(tmp_path / "home"),
        "ESTAT_API_URL": emulator.api_base,
        "ESTAT_DOMAINS_FILE": str(small_domains),
        "ESTAT_POOL_WAIT_SECONDS": "30",
    }


def _settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def _requested(emulator) -> set[str]:
    return {
        e["params"].get("statsDataId")
        for e in emulator.requests.entries()
        if e["endpoint"] == "getStatsData"
    }


@pytest.mark.slow
def test_materialize_loads_a_dataset_from_the_emulator_as_a_dagster_run(env, emulator) -> None:
    done = cli("materialize", "--dataset", "0000020202", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[1/1] population 0000020202: 10 rows" in done.stdout
    assert "— ok" in done.stdout and "Traceback" not in done.stderr
    assert _requested(emulator) == {"0000020202"}  # ESTAT_API_URL: the test's emulator
    years = cli("materialize", "--dataset", "0000020202", "--years", "1985", env=env)
    assert years.returncode == 0, years.stderr[-3000:]
    assert "[1/1] population 0000020202 [1985…]: 1 rows (1985)" in years.stdout
    query = cli(
        "query",
        "SELECT year, count(*) AS n FROM estat.population GROUP BY year ORDER BY year",
        "--format",
        "csv",
        env=env,
    )
    assert query.returncode == 0, query.stderr
    assert query.stdout.splitlines() == ["year,n", *(f"{y},1" for y in range(1981, 1991))]
    with open_instance(_settings(env)) as instance:
        runs = instance.get_runs()
    assert len(runs) == 2 and all(r.is_success for r in runs)
    for run in runs:
        assert run.job_name == "population_job"
        assert run.tags[DOMAIN_TAG] == "population" and run.tags[DATASET_TAG] == "0000020202"
    assert {r.tags.get("estat/years") for r in runs} == {None, "1985"}


# (argv, environment changes (None: remove), files to write, what the message must say)
ERRORS = {
    "dataset-in-no-domain": (
        ["materialize", "--dataset", "1234567890"],
        {},
        {},
        "no dataset 1234567890",
    ),
    "empty-dataset": (["materialize", "--dataset", ""], {}, {}, "'' is not a valid statsDataId"),
    "bad-years": (["materialize", "--years", "abc"], {}, {}, "'abc' is not a year"),
    "domain-without-datasets": (
        ["materialize", "--domain", "economy"],
        {"ESTAT_DOMAINS_FILE": "{tmp}/rules-only.yaml"},
        {
            "rules-only.yaml": "domains:\n  population:\n    datasets: ['0000020202']\n"
            "  economy:\n    title: rules, no datasets yet\n"
        },
        "no domain 'economy' with datasets",
    ),
    "malformed-api-url": (
        ["materialize", "--dataset", "0000020202"],
        {"ESTAT_API_URL": "http://[::1"},
        {},
        "ESTAT_API_URL 'http://[::1' is not a usable e-Stat base URL",
    ),
    "bad-dataset-id-in-domains": (
        ["materialize"],
        {"ESTAT_DOMAINS_FILE": "{tmp}/bad.yaml"},
        {"bad.yaml": "domains:\n  population:\n    datasets: ['12345']\n"},
        "'12345' is not a valid statsDataId",
    ),
    "unquoted-dataset-id-in-domains": (
        ["materialize"],
        {"ESTAT_DOMAINS_FILE": "{tmp}/octal.yaml"},
        {"octal.yaml": "domains:\n  population:\n    datasets: [0000020202]\n"},
        "quote it",
    ),
    "conform-invalid-json": (
        ["conform", "{tmp}/page.json", "--out", "{tmp}/out.parquet"],
        {},
        {"page.json": '{"GET_STATS_DATA": '},
        "page.json is not JSON",
    ),
    "conform-empty-file": (
        ["conform", "{tmp}/page.json", "--out", "{tmp}/out.parquet"],
        {},
        {"page.json": ""},
        "page.json is not JSON",
    ),
    "conform-json-list": (
        ["conform", "{tmp}/page.json", "--out", "{tmp}/out.parquet"],
        {},
        {"page.json": "[1, 2]"},
        "page.json is not a getStatsData response",
    ),
    "query-unknown-table": (
        ["query", "SELECT count(*) FROM estat.nothing"],
        {},
        {},
        "no table estat.nothing",
    ),
}


def _one_line_error(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    assert done.stderr.startswith("estat-lake: error:"), done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr  # one line
    assert message in done.stderr, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_is_one_line_error_with_status_2(case, tmp_path, env) -> None:
    argv, changes, files, message = ERRORS[case]
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    run_env = dict(env)
    for key, value in changes.items():
        if value is None:
            run_env.pop(key, None)
        else:
            run_env[key] = value.format(tmp=tmp_path)
    done = cli(*(a.format(tmp=tmp_path) for a in argv), env=run_env)
    _one_line_error(done, message)
    assert not (tmp_path / "out.parquet").exists()
    if case == "unquoted-dataset-id-in-domains":
        assert "8322" in done.stderr  # what YAML made of 0000020202


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.slow
def test_busy_emulator_port_is_one_line_error(busy_port, env) -> None:
    demo_env = {k: v for k, v in env.items() if k != "ESTAT_API_URL"}  # the bundled emulator
    done = cli("demo", "--port", str(busy_port), env=demo_env)
    _one_line_error(done, f"cannot start the e-Stat emulator on 127.0.0.1:{busy_port}")


@pytest.mark.slow
def test_conform_command_writes_parquet(tmp_path) -> None:
    page = SAMPLES / "v3" / "getStatsData_0000020202_limit10.json"
    out = tmp_path / "out.parquet"
    done = cli("conform", str(page), "--out", str(out), env={})
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    assert table.num_rows == 10 and set(table.column("dataset_id").to_pylist()) == {"0000020202"}


@pytest.mark.slow
def test_definitions_validate_cleanly(tmp_path, small_domains) -> None:
    """``dagster definitions validate`` loads the code location with no warning of ours."""
    lake_env = {
        "ESTAT_LAKE_HOME": str(tmp_path / "home"),
        "ESTAT_DOMAINS_FILE": str(small_domains),
    }
    open_instance(Settings.from_env(lake_env)).dispose()
    done = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-m", "estat_assets.definitions"],
        cwd=tmp_path,
        env={
            **clean_environ(),
            **lake_env,
            "DAGSTER_HOME": str(tmp_path / "home" / "dagster"),
            "PYTHONWARNINGS": "default",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "All code locations passed validation" in output
    warnings = [
        line
        for line in output.splitlines()
        if re.search(r"\w+Warning\b", line)
        # Dagster's own CLI says `dg check defs` supersedes this command: not about our code
        and "definitions_validate_command" not in line
    ]
    assert warnings == [], output[-3000:]


def _summary(stdout: str) -> dict[str, tuple[int, ...]]:
    """The demo's summary rows: datasets, years, rows, quarantined, rows e-Stat serves."""
    out = {}
    pattern = r"\| (estat\.\w+)\s+" + r"\|\s+([\d,]+) " * 5 + r"\|"
    for m in re.finditer(pattern, stdout):
        out[m.group(1)] = tuple(int(m.group(i).replace(",", "")) for i in range(2, 7))
    return out


@pytest.mark.slow
def test_demo_twice_gives_identical_counts_and_keeps_the_app_id_secret(
    tmp_path, small_domains
) -> None:
    home = tmp_path / "home"
    env = {
        "ESTAT_LAKE_HOME": str(home),
        "ESTAT_DOMAINS_FILE": str(small_domains),
        "ESTAT_APP_ID": SECRET,
    }
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
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert _summary(second.stdout) == summary  # a rerun changes no count
    assert "runs: 2 (0 failed)" in first.stdout and "runs: 2 (0 failed)" in second.stdout
    # The appId reaches e-Stat only: not the lake, not the Dagster home, not the output.
    for path in home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in first.stdout + first.stderr + second.stdout + second.stderr


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode} first")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_stops_a_running_materialize(tmp_path, env, signum) -> None:
    """SIGTERM (``docker stop``, systemd, ``kill``) and Ctrl-C stop a load: exit 130, one line,
    and the next command is not blocked by the interrupted run."""
    domains = tmp_path / "big.yaml"
    domains.write_text(
        "domains:\n  population:\n    datasets: ['0000020202', '9900020202']\n", encoding="utf-8"
    )
    run_env = {**clean_environ(), **env, "ESTAT_DOMAINS_FILE": str(domains)}
    home = Path(env["ESTAT_LAKE_HOME"])
    runs = home / "lake/population/raw/dataset_id=9900020202/runs"
    proc = subprocess.Popen(
        [str(BIN / "estat-lake"), "materialize", "--dataset", "9900020202"],
        cwd=ROOT,
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_signals,  # as in a terminal, even if pytest runs in the background
    )
    try:
        # 757,548 rows in 8 pages: the run is fetching once its first page is staged
        _wait_for(lambda: any(runs.glob("*/page-*.json")), 120, "first page staged", proc)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, out[-2000:], err[-3000:])
    assert "estat-lake: interrupted" in err and "Traceback" not in err, err[-3000:]
    assert "— ok" not in out  # the load did not run to the end
    # The interrupted run holds nothing: the next load runs at once (pool wait 30 s at most).
    nxt = cli(
        "materialize", "--dataset", "0000020202", env={**env, "ESTAT_DOMAINS_FILE": str(domains)}
    )
    assert nxt.returncode == 0, nxt.stdout[-2000:] + nxt.stderr[-3000:]
    with open_instance(_settings(env)) as instance:
        alive = [r for r in instance.get_runs() if not r.is_finished]
    assert alive == []


@pytest.mark.slow
def test_make_dev_serves_the_ui_without_calling_estat_and_ctrl_c_stops_everything(
    tmp_path, emulator, small_domains
) -> None:
    """``scripts/dev.sh``: the lake's Dagster home with the packaged instance config, the UI up,
    no e-Stat request at start; Ctrl-C (SIGINT to the script's process group, as a terminal
    sends it) leaves no process behind."""
    home = tmp_path / "home"
    port = free_port()
    env = {
        **clean_environ(),
        "ESTAT_LAKE_HOME": str(home),
        "ESTAT_API_URL": emulator.api_base,
        "ESTAT_DOMAINS_FILE": str(small_domains),
        "DEV_PORT": str(port),
        "BIN": str(BIN),
    }
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "dev.sh")],
            cwd=tmp_path,  # the script finds the repository itself
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, like a shell's foreground job
        )
    family: dict[int, psutil.Process] = {}

    def collect() -> None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            family.setdefault(child.pid, child)

    def left() -> list[psutil.Process]:
        # is_running() compares creation times: a reused pid is not ours
        return [p for p in family.values() if p.is_running() and not _zombie(p)]

    try:

        def ui_up() -> bool:
            collect()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                    return True
            except OSError:
                return False

        _wait_for(ui_up, 240, f"dagster dev on {port}: {log}", proc)
        collect()
        dagster_home = home / "dagster"
        # the packaged dagster.yaml, its storage path written out
        assert (dagster_home / "dagster.yaml").read_bytes() == instance_yaml(dagster_home)
        with open_instance(Settings.from_env({"ESTAT_LAKE_HOME": str(home)})) as instance:
            assert instance.get_dynamic_partitions("population__dataset") == ["0000020202"]
        assert emulator.requests.entries() == []  # nothing asked e-Stat
        assert len(family) >= 3, family  # dagster dev, its webserver and daemon at least
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        assert proc.wait(120) == 130, log.read_text()[-3000:]
        _wait_for(lambda: not left(), 60, "every process of make dev gone")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for p in left():
            p.kill()


def _zombie(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
