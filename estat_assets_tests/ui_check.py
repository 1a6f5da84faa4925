"""UI check (``make ui-check``, not part of ``make test``): the real UI, in a real browser.

Starts the bundled e-Stat emulator and ``dagster dev`` on 127.0.0.1 with a throwaway
ESTAT_LAKE_HOME (``devserver.py``), then does what a user does and photographs it:

1. an asset backfill of the population tables 0000020202 and 9900000007 (one run per table);
2. 9900000007 comes back with cells missing in the same release: its load is refused by the
   shrink guard (a failed run, the lake untouched);
3. e-Stat republishes 0000020202 today with three fiscal years revised; the population release
   sensor, switched on as in the UI, loads the new release (and the declared tables never
   loaded) and ``population/revisions`` records what changed (its ``revision_share`` check
   fails: 30 % of the past values were revised).

Headless Chromium (Debian's ``chromium`` and ``fonts-noto-cjk`` for the Japanese labels) saves
the asset lineage, the checks, the partitions, the runs and the failed run into ``docs/``.

    .venv/bin/python -m estat_assets_tests.ui_check [--out docs] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from estat_assets_tests.devserver import (
    LOCATION,
    ROOT,
    DagsterDev,
    group_asset_keys,
    lake_env,
    launch_asset_backfill,
    prepare_home,
    query_lake,
    register_datasets,
    runs_tagged,
    start_sensor,
    wait_for,
    wait_for_backfill,
)

DOMAIN = "population"
TABLES = ["0000020202", "9900000007"]
JST = timezone(timedelta(hours=9))
DOMAINS = """\
domains:
  population:
    title: 人口・社会 (population and society)
    datasets: ["0000020202", "9900000007"]
    surveys: ["00200502"]
    fields: ["02"]
    cycle: annual
"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(url: str, out: Path, profile: Path, size: str = "1600,1000") -> Path:
    """A headless Chromium screenshot (virtual time, or the PNG is blank)."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("no chromium: apt-get install -y chromium fonts-noto-cjk")
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
            "--lang=ja-JP",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
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


def republish(emulator_url: str, **release) -> None:
    reply = httpx.post(f"{emulator_url}/_emulator/republish", json=release, timeout=30)
    reply.raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary lake home")
    args = parser.parse_args(argv)

    from estat_emulator import EmulatorServer, TableStore

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="estat-ui-check-"))
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {text}", flush=True)

    try:
        with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as emulator:
            domains = home / "domains.yaml"  # the packaged population domain, these tables only
            domains.write_text(DOMAINS, encoding="utf-8")
            env = lake_env(home, emulator.api_base, domains, ESTAT_RELEASE_SENSOR_INTERVAL="5")
            prepare_home(env)
            register_datasets(env, DOMAIN, TABLES)
            with DagsterDev(env, home / "dagster-dev.log") as dev:
                say(f"dagster dev ready on {dev.url}")
                keys = group_asset_keys(dev, DOMAIN)
                backfill = launch_asset_backfill(dev, keys, TABLES)
                runs = wait_for_backfill(dev, backfill, len(TABLES))
                if any(r["status"] != "SUCCESS" for r in runs):
                    print(f"FAILED runs: {runs}\n{dev.tail()}", file=sys.stderr)
                    return 1
                say(f"backfill {backfill}: {len(runs)} runs succeeded")

                current = query_lake(
                    env,
                    "SELECT updated_date FROM estat.dataset_inventory "
                    "WHERE dataset_id = '9900000007'",
                )[0]["updated_date"]
                republish(
                    emulator.url,
                    statsDataId="9900000007",
                    updated_date=current,
                    perturb=False,
                    remove_cells=[{"area": ["13000", "27000"]}],
                )
                refused = launch_asset_backfill(dev, keys, ["9900000007"])
                failed = wait_for_backfill(dev, refused, 1)[0]
                say(f"same-release shrink: run {failed['runId']} {failed['status']}")

                today = datetime.now(JST).date().isoformat()
                republish(
                    emulator.url,
                    statsDataId="0000020202",
                    updated_date=today,
                    revise={"time": ["1983100000", "1985100000", "1987100000"]},
                )
                start_sensor(dev, f"{DOMAIN}_release_sensor")
                release = wait_for(
                    lambda: [
                        r
                        for r in runs_tagged(dev, "estat/release", "revised")
                        if r["status"] in ("SUCCESS", "FAILURE")
                    ],
                    300,
                    "the release sensor's run",
                    every=2.0,
                )[0]
                say(f"release run {release['runId']}: {release['status']}")

                if failed["status"] != "FAILURE" or release["status"] != "SUCCESS":
                    print(dev.tail(), file=sys.stderr)
                    return 1

                profile = home / "chrome"
                group = f"{dev.url}/locations/{LOCATION}/asset-groups/{DOMAIN}/lineage"
                shots = {
                    "ui-asset-graph.png": group,
                    "ui-asset-checks.png": f"{dev.url}/assets/{DOMAIN}/revisions?view=checks",
                    "ui-partitions.png": (
                        f"{dev.url}/assets/{DOMAIN}/table?view=partitions&partition=0000020202"
                    ),
                    "ui-runs.png": f"{dev.url}/runs",
                    "ui-failed-run.png": f"{dev.url}/runs/{failed['runId']}",
                }
                for name, url in shots.items():
                    path = screenshot(url, out_dir / name, profile)
                    say(f"screenshot {path} ({path.stat().st_size:,} bytes) of {url}")
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    say("ui-check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
