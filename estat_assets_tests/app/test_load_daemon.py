"""Loads through the daemon when one is running: ``dagster dev`` (webserver + daemon) on loopback.

The lake's own Dagster home (``ESTAT_LAKE_HOME/dagster``), a domains file with fields and no
dataset, so the code location starts with no domain job at all. ``estat-lake add`` then puts a
table in a domain and ``estat-lake load --dagster-url`` must notice the webserver and its daemon,
reload the code location (the domain's job is new), queue a real run with GraphQL ``launchRun``,
print its id at once and follow it to the end; the MCP server given ``--dagster-url`` returns the
queued run's id from ``load_dataset`` and ``load_status`` follows it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from estat_assets_tests import devserver
from estat_assets_tests.app.conftest import write_domains

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "estat-lake"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_load_goes_through_the_daemon_and_mcp_returns_its_run_ids(tmp_path, emulator) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from estat_assets.app.load import Webserver

    ui = devserver
    home = tmp_path / "home"
    env = ui.lake_env(home, emulator.api_base, write_domains(tmp_path))
    env = {k: v for k, v in env.items() if k not in ("ESTAT_RAW_RETRY_DELAY",)}
    ui.prepare_home(env)
    with ui.DagsterDev(env, tmp_path / "dagster-dev.log") as dev:
        ui.wait_for(lambda: Webserver(dev.url).daemon_ready()[0], 180, "a healthy daemon")
        added = cli("add", "9900000004", env=env)
        assert added.returncode == 0, added.stderr[-3000:]

        done = cli("load", "9900000004", "--dagster-url", dev.url, env=env)
        assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:], dev.tail())
        queued = re.search(r"queued labor 9900000004: run ([0-9a-f-]{36})", done.stdout)
        assert queued, done.stdout
        run_id = queued.group(1)
        assert f"[1/1] labor 9900000004 run {run_id}: 540 rows in the lake" in done.stdout
        assert "1 of 1 dataset(s) loaded, 540 rows in the lake, 0 failed" in done.stdout
        assert "(daemon)" in done.stdout and "Source: e-Stat statsDataId 9900000004" in done.stdout
        assert f"submitting to the daemon through Dagster webserver at {dev.url}" in done.stderr
        runs = dev.graphql(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { status jobName tags"
            " { key value } } } }",
            {"id": run_id},
        )["runOrError"]
        assert (runs["status"], runs["jobName"]) == ("SUCCESS", "labor_job")
        tags = {t["key"]: t["value"] for t in runs["tags"]}
        assert tags["dagster/partition"] == "9900000004" and tags["estat/domain"] == "labor"
        assert "estat/pid" not in tags  # the daemon's worker runs it, not the CLI

        added = cli("add", "9900000006", env=env)  # education: another new domain job
        assert added.returncode == 0, added.stderr[-3000:]
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "estat_assets.cli", "mcp", "--dagster-url", dev.url],
            env={k: v for k, v in env.items() if k != "DAGSTER_HOME"},
            cwd=str(ROOT),
        )

        async def through_mcp() -> dict:
            async with (
                stdio_client(params, errlog=open(os.devnull, "w")) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                result = await session.call_tool("load_dataset", {"stats_data_ids": ["9900000006"]})
                assert not result.is_error, result.content[0].text
                queued = result.structured_content
                assert queued["mode"] == "daemon" and len(queued["run_ids"]) == 1
                for _ in range(240):
                    status = await session.call_tool("load_status", {"run_ids": queued["run_ids"]})
                    body = status.structured_content
                    if body["items"][0]["status"] in ("success", "failure", "canceled"):
                        return body
                    await asyncio.sleep(1)
                raise AssertionError(f"run did not finish: {body}")

        body = asyncio.run(through_mcp())
        [item] = body["items"]
        assert item["status"] == "success", (item, dev.tail())
        assert (item["stats_data_id"], item["domain"], item["rows_in_lake"]) == (
            "9900000006",
            "education",
            600,
        )
        assert item["citation"]["snapshot_id"] and item["citation"]["url"].endswith("9900000006")
        assert json.dumps(body, ensure_ascii=False).count("Traceback") == 0
