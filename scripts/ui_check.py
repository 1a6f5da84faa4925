"""UI smoke check (``make ui-check``, not part of ``make test``).

Starts the bundled e-Stat emulator and ``dagster dev`` (webserver + daemon) on 127.0.0.1 with a
throwaway ESTAT_LAKE_HOME and the project's ``dagster.yaml``, registers the years of one dataset,
launches an asset backfill of the domain through GraphQL ``launchPartitionBackfill``, waits until
every run succeeded and the audit sensor recorded them in ``estat.ingestion_runs``, then saves
headless Chromium screenshots of the asset graph, an asset-check page, the partitions of the
Iceberg table and the runs list into ``docs/``. Everything it started is stopped, by pid.

    .venv/bin/python scripts/ui_check.py [--years 1981 1982 1983] [--out docs] [--keep]

The helpers (``DagsterDev``, ``launch_*_backfill``, ``wait_for_backfill``) are also used by
``estat_assets_tests/defs/test_backfill.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOCATION = "estat_lake"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_dagster_home(home: Path) -> Path:
    """``home`` with the project's dagster.yaml and the UI's first-visit modal dismissed."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    (home / ".nux").mkdir(exist_ok=True)
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n", encoding="utf-8")
    return home


def _reset_signals() -> None:
    # A background process inherits SIGINT=ignored from a non-interactive shell, and Dagster
    # maps TERM onto its INT handler: without this, `dagster dev` ignores both (stack-probe §6).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class DagsterDev:
    """``dagster dev -w workspace.yaml`` on 127.0.0.1:<port>, in its own process group."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = env
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DagsterDev:
        out = open(self.log, "wb")
        self._out = out
        self.proc = subprocess.Popen(
            [
                str(BIN / "dagster"),
                "dev",
                "-w",
                str(ROOT / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_reset_signals,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            pgid = os.getpgid(proc.pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                proc.wait(10)
            # the webserver, daemon and code servers share the group: make sure none is left
            try:
                time.sleep(0.5)
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._out.close()
        self.proc = None

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read())
        if data.get("errors"):
            raise RuntimeError(f"GraphQL errors: {data['errors']}")
        return data["data"]

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited: {self.log.read_text()[-3000:]}")
            try:
                data = self.graphql(
                    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus"
                    " locationOrLoadError { __typename ... on PythonError { message } } } } } }",
                    timeout=10,
                )
                entries = data["workspaceOrError"]["locationEntries"]
                loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
                for e in loaded:
                    if e["locationOrLoadError"]["__typename"] == "PythonError":
                        raise RuntimeError(f"code location failed: {e['locationOrLoadError']}")
                if loaded:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(1)
        raise TimeoutError(f"dagster dev not ready in {timeout} s: {self.log.read_text()[-3000:]}")


_LAUNCHED = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""


def _launch(dev: DagsterDev, params: dict) -> str:
    out = dev.graphql(_LAUNCHED, {"params": params})["launchPartitionBackfill"]
    if out["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {out}")
    return out["backfillId"]


def launch_job_backfill(dev: DagsterDev, job: str, partitions: list[str]) -> str:
    """A backfill of a domain job (the CLI equivalent: ``dagster job backfill -j <job>``)."""
    return _launch(
        dev,
        {
            "selector": {
                "partitionSetName": f"{job}_partition_set",
                "repositorySelector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": "__repository__",
                },
            },
            "partitionNames": partitions,
        },
    )


def launch_asset_backfill(dev: DagsterDev, asset_keys: list[list[str]], partitions: list[str]):
    """An asset backfill, as the UI's "Materialize selected" → partitions dialog launches it."""
    return _launch(
        dev,
        {"assetSelection": [{"path": k} for k in asset_keys], "partitionNames": partitions},
    )


def group_asset_keys(dev: DagsterDev, group: str) -> list[list[str]]:
    data = dev.graphql(
        "query($g: AssetGroupSelector!) { assetNodes(group: $g) { assetKey { path } } }",
        {
            "g": {
                "groupName": group,
                "repositoryName": "__repository__",
                "repositoryLocationName": LOCATION,
            }
        },
    )
    return [n["assetKey"]["path"] for n in data["assetNodes"]]


def backfill_runs(dev: DagsterDev, backfill_id: str) -> list[dict]:
    data = dev.graphql(
        "query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results {"
        " runId status tags { key value } } } } }",
        {"f": {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}},
    )
    return data["runsOrError"]["results"]


def backfill_status(dev: DagsterDev, backfill_id: str) -> str:
    data = dev.graphql(
        "query($id: String!) { partitionBackfillOrError(backfillId: $id) {"
        " ... on PartitionBackfill { status } } }",
        {"id": backfill_id},
    )
    return data["partitionBackfillOrError"]["status"]


def wait_for_backfill(
    dev: DagsterDev, backfill_id: str, expected_runs: int, timeout: float = 600.0
) -> list[dict]:
    """Poll until ``expected_runs`` runs of the backfill are finished; returns them."""
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = backfill_runs(dev, backfill_id)
        done = [r for r in runs if r["status"] in TERMINAL]
        if len(done) >= expected_runs and len(done) == len(runs):
            return runs
        time.sleep(2)
    raise TimeoutError(f"backfill {backfill_id}: {runs} after {timeout} s")


def wait_for(predicate, timeout: float, what: str, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what}: not within {timeout} s")


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(url: str, out: Path, profile: Path, size: str = "1600,1000") -> Path:
    """A headless Chromium screenshot (flags from stack-probe §6: virtual time or blank PNGs)."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("no chromium: apt-get install -y chromium")
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=8000",
            f"--window-size={size}",
            f"--screenshot={out}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    if not out.exists() or out.stat().st_size < 10_000:
        raise RuntimeError(f"{out}: screenshot missing or blank")
    return out


def lake_env(home: Path, api_url: str, domains_file: Path | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "ESTAT_LAKE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "ESTAT_API_URL": api_url,
        "ESTAT_AUDIT_SENSOR_INTERVAL": "5",
        "ESTAT_RAW_RETRY_DELAY": "1",
        "TMPDIR": str(home / "tmp"),
    }
    if domains_file is not None:
        env["ESTAT_DOMAINS_FILE"] = str(domains_file)
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def register_years(dagster_home: Path, domain: str, dataset: str, years: list[str]) -> None:
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from estat_assets.defs.partitions import register

    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))
    try:
        register(instance, domain, {dataset: years})
    finally:
        instance.dispose()


def query_lake(env: dict[str, str], sql: str) -> list[dict]:
    from estat_assets.defs.resources import build_resources
    from estat_assets.query.engine import DuckDBEngine

    iceberg = build_resources("local", env)["iceberg"]
    try:
        return DuckDBEngine(iceberg.catalog(), iceberg.namespace).query(sql).to_pylist()
    except Exception:  # table not there yet
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", default="population")
    parser.add_argument("--dataset", default="0000020202")
    parser.add_argument("--years", nargs="+", default=["1981", "1982", "1983"])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary lake home")
    args = parser.parse_args(argv)

    from estat_emulator import EmulatorServer, TableStore

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="estat-ui-check-"))
    dagster_home = prepare_dagster_home(home / "dagster")
    started = time.monotonic()
    try:
        with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as emulator:
            env = lake_env(home, emulator.api_base)
            os.environ.update({k: env[k] for k in ("ESTAT_LAKE_HOME", "DAGSTER_HOME")})
            register_years(dagster_home, args.domain, args.dataset, args.years)
            with DagsterDev(env, home / "dagster-dev.log") as dev:
                print(f"dagster dev ready on {dev.url} ({time.monotonic() - started:.0f} s)")
                keys = group_asset_keys(dev, args.domain)
                partitions = [f"{args.dataset}|{y}" for y in args.years]
                backfill = launch_asset_backfill(dev, keys, partitions)
                print(f"backfill {backfill}: {len(keys)} assets × {len(partitions)} partitions")
                runs = wait_for_backfill(dev, backfill, len(partitions))
                bad = [r for r in runs if r["status"] != "SUCCESS"]
                if bad:
                    print(f"FAILED runs: {bad}", file=sys.stderr)
                    return 1
                print(f"{len(runs)} runs succeeded ({time.monotonic() - started:.0f} s)")
                wait_for(
                    lambda: backfill_status(dev, backfill) == "COMPLETED_SUCCESS",
                    120,
                    "backfill COMPLETED_SUCCESS",
                )
                recorded = wait_for(
                    lambda: (
                        len(
                            query_lake(
                                env,
                                "SELECT run_id FROM estat.ingestion_runs "
                                f"WHERE backfill_id = '{backfill}' AND status = 'SUCCESS'",
                            )
                        )
                        >= len(partitions)
                    ),
                    120,
                    "ingestion_runs rows",
                )
                print(f"ingestion_runs has the backfill's runs: {recorded}")
                profile = home / "chrome"
                group = f"{dev.url}/locations/{LOCATION}/asset-groups/{args.domain}/lineage"
                shots = {
                    "ui-asset-graph.png": group,
                    "ui-asset-checks.png": f"{dev.url}/assets/{args.domain}/conformed?view=checks",
                    "ui-partitions.png": f"{dev.url}/assets/{args.domain}/table?view=partitions",
                    "ui-runs.png": f"{dev.url}/runs",
                }
                for name, url in shots.items():
                    path = screenshot(url, out_dir / name, profile)
                    print(f"screenshot {path} ({path.stat().st_size:,} bytes) of {url}")
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    print(f"ui-check passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
