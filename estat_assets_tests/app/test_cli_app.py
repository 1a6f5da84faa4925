"""``estat-lake search|add|describe|load|query|series|verify|health`` as users run them.

Real ``estat-lake`` subprocesses, a real emulator (the session's through ``ESTAT_API_URL``, or the
bundled one the CLI starts itself), a lake under ``tmp_path`` whose domains file declares fields
and no dataset. Errors are one line on stderr starting with ``estat-lake: error:``, never a
traceback; exit status 2 for input, 3 for a service that did not answer, 1 for a failed load.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from estat_assets_tests.app.conftest import FIELDS, app_env, write_domains
from estat_assets_tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DATASET = "9900000004"


def clean_environ() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith("ESTAT_") and k != "DAGSTER_HOME"
    }


def cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "estat-lake"), *args],
        cwd=ROOT,
        env={**clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, (done.returncode, done.stdout[-3000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr
    return done


def one_line_error(done: subprocess.CompletedProcess, status: int, *words: str) -> str:
    assert done.returncode == status, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    err = done.stderr.strip()
    assert err.startswith("estat-lake: error:") and "\n" not in err, err
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.fixture
def env(tmp_path, emulator) -> dict[str, str]:
    return app_env(tmp_path / "home", emulator.api_base, write_domains(tmp_path))


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


CITATION = (
    "Source: e-Stat statsDataId 9900000004",
    "賃金構造基本統計調査, 厚生労働省",
    "e-Stat UPDATED_DATE 2024-03-27 — https://www.e-stat.go.jp/dbview?sid=9900000004",
    "このサービスは、政府統計総合窓口(e-Stat)のAPI機能を使用していますが",
    "This service uses the API of e-Stat",
)


def assert_cited(text: str, snapshot: bool = True) -> None:
    for line in CITATION:
        assert line in text, (line, text[-3000:])
    if snapshot:
        assert "read from estat.labor snapshot " in text, text[-3000:]


@pytest.mark.slow
def test_search_add_describe_load_query_series_verify_health(env) -> None:
    found = ok(cli("search", "賃金", env=env))
    assert "1 table(s) match" in found.stdout and DATASET in found.stdout
    assert "| no " in found.stdout  # not in the lake yet
    assert "このサービスは" in found.stdout
    english = ok(cli("search", "wage", "--json", env=env))
    hits = json.loads(english.stdout)["hits"]
    assert hits[0]["survey"] == "Basic Survey on Wage Structure" and hits[0]["lang"] == "E"

    added = ok(cli("add", DATASET, env=env))
    assert added.stdout.startswith(
        "added 9900000004 to domain labor: e-Stat files it under statistical field 03 (労働・賃金)"
    )
    assert "next: estat-lake load 9900000004" in added.stdout
    assert_cited(added.stdout, snapshot=False)

    before = ok(cli("describe", DATASET, env=env))
    assert "added, not loaded" in before.stdout and "性別 / Sex" in before.stdout

    loaded = ok(cli("load", DATASET, env=env))
    lines = loaded.stdout.splitlines()
    assert lines[0] == "[1/1] loading labor 9900000004 …"
    assert lines[1].startswith("[1/1] labor 9900000004 run ") and "540 rows in the lake" in lines[1]
    assert "1 of 1 dataset(s) loaded, 540 rows in the lake, 0 failed, in " in loaded.stdout
    assert_cited(loaded.stdout)

    described = ok(cli("describe", DATASET, env=env))
    out = described.stdout
    assert "status            complete" in out
    assert "rows              540 in the lake / 540 at e-Stat" in out
    assert "years loaded      2019, 2020, 2021, 2022, 2023" in out
    assert "2  男 / Male  [level 2, parent 1]" in out
    assert "passed  row_count_matches_total" in out and "checks.md" in out
    assert "Iceberg snapshot  estat.labor @ " in out
    assert_cited(out)

    queried = ok(
        cli(
            "query",
            "SELECT cat02_name, value_raw FROM estat.labor WHERE value_raw LIKE '%.0' LIMIT 2",
            "--format",
            "json",
            env=env,
        )
    )
    rows = json.loads(queried.stdout)
    assert len(rows) == 2 and all(r["value_raw"].endswith(".0") for r in rows)  # as stored
    assert "2 rows in " in queried.stderr
    assert_cited(queried.stderr)

    again = ok(cli("search", "賃金", env=env))
    assert "loaded (labor)" in again.stdout

    cell = ["-f", "性別=男", "-f", "Industry (major groups)=Construction", "-f", "tab=01"]
    s = ok(cli("series", DATASET, *cell, "-f", "cat01=01", "--format", "json", env=env))
    body = json.loads(s.stdout)
    assert [r["year"] for r in body["rows"]] == [2019, 2020, 2021, 2022, 2023]
    assert body["citation"]["snapshot_id"] and body["citation"]["stats_data_id"] == DATASET
    raw = next(r["value_raw"] for r in body["rows"] if r["year"] == 2020)

    agrees = ok(cli("verify", DATASET, raw, *cell, "-f", "cat01=01", "-f", "time=2020", env=env))
    assert agrees.stdout.startswith(f"AGREES: claimed {raw}")
    assert_cited(agrees.stdout)
    wrong = cli("verify", DATASET, "1", *cell, "-f", "cat01=01", "-f", "time=2020", env=env)
    assert wrong.returncode == 1 and wrong.stdout.startswith("DISAGREES: claimed 1")

    healthy = ok(cli("health", env=env))
    assert healthy.stdout.startswith("OK: 1 complete")


@pytest.mark.slow
def test_add_infers_three_fields_from_the_cli(env) -> None:
    for dataset_id in ("9900000005", "9900000006", "9900000003"):
        field, domain = FIELDS[dataset_id]
        done = ok(cli("add", dataset_id, "--json", env=env))
        answer = json.loads(done.stdout)
        assert (answer["domain"], answer["rule"], answer["field_code"]) == (domain, "field", field)


@pytest.mark.slow
def test_errors_are_one_line_with_what_to_do(env, busy_port, tmp_path) -> None:
    # an id e-Stat does not know: e-Stat's own message
    one_line_error(cli("add", "1234567890", env=env), 2, "統計表IDが存在しません")
    one_line_error(cli("add", "12345", env=env), 2, "10 digits")
    # a filter that matches nothing
    one_line_error(cli("load", "9900000005", env=env), 2, "estat-lake add 9900000005")
    ok(cli("add", DATASET, env=env))
    one_line_error(
        cli("load", DATASET, "--years", "1900", env=env),
        2,
        "9900000004 has no year 1900: nothing to load",
        "2019, 2020, 2021, 2022, 2023",
    )
    one_line_error(cli("load", "--domain", "health", env=env), 2, "domain health has no datasets")
    nothing = ok(cli("search", "存在しない統計の言葉", env=env))
    assert nothing.stdout.startswith("0 table(s) match")
    one_line_error(
        cli("series", DATASET, "-f", "性別=男", env=env), 2, "has not been loaded", "load"
    )
    one_line_error(cli("query", "COPY (SELECT 1) TO '/tmp/x.csv'", env=env), 2, "COPY refused")
    # a busy emulator port (no ESTAT_API_URL: the CLI starts the bundled emulator)
    bundled = {k: v for k, v in env.items() if k != "ESTAT_API_URL"}
    one_line_error(
        cli("search", "人口", "--port", str(busy_port), env=bundled),
        2,
        f"cannot start the e-Stat emulator on 127.0.0.1:{busy_port}",
        "--port",
    )
    # an unreachable e-Stat: a service that did not answer, exit 3
    dead = {**env, "ESTAT_API_URL": f"http://127.0.0.1:{free_port()}/rest/3.0/app/json"}
    one_line_error(cli("search", "人口", env=dead), 3, "connection failed", "ESTAT_API_URL")
    # the real e-Stat without an appId: refused before any request
    real = {**env, "ESTAT_API_URL": "https://api.e-stat.go.jp/rest/3.0/app/json"}
    one_line_error(cli("describe", DATASET, env=real), 2, "ESTAT_APP_ID is not set")


@pytest.mark.slow
def test_the_bundled_emulator_starts_on_demand_and_a_running_one_is_reused(env, tmp_path):
    from estat_emulator import EmulatorServer, TableStore

    bundled = {k: v for k, v in env.items() if k != "ESTAT_API_URL"}
    port = free_port()
    started = ok(cli("search", "賃金", "--port", str(port), env=bundled))
    assert DATASET in started.stdout
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as other:
        reused = ok(cli("search", "賃金", "--port", str(other.port), env=bundled))
    assert f"using the e-Stat emulator already serving 127.0.0.1:{other.port}" in reused.stderr
    assert DATASET in reused.stdout


@pytest.mark.slow
def test_a_failed_load_exits_1_with_one_line_per_failure_and_its_cause(env, emulator) -> None:
    ok(cli("add", DATASET, env=env))
    ok(cli("add", "9900000005", env=env))
    emulator.faults.add(
        {
            "kind": "api_error",
            "status": 103,
            "error_msg": "テスト用の拒否",
            "endpoint": "getStatsData",
            "stats_data_id": "9900000005",
            "times": None,
        }
    )
    done = cli("load", DATASET, "9900000005", env=env)
    assert done.returncode == 1, (done.stdout[-3000:], done.stderr[-3000:])
    assert "Traceback" not in done.stdout + done.stderr
    assert "1 of 2 dataset(s) loaded, 540 rows in the lake, 1 failed" in done.stdout
    failures = [line for line in done.stdout.splitlines() if line.startswith("FAILED ")]
    assert len(failures) == 1, done.stdout
    assert failures[0].startswith("FAILED health 9900000005 (run ")
    assert "STATUS 103" in failures[0] and "テスト用の拒否" in failures[0]
