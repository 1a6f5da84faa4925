"""``estat-lake mcp`` driven by the official SDK's client over stdio, like Claude Desktop or Kiro.

The server is a real subprocess (``python -m estat_assets.cli mcp``) on a lake under ``tmp_path``
that talks to the test's emulator; its domains file declares fields and no dataset, so the
assistant goes from a search word to a cited answer without YAML. Every tool is called, its
citation checked (the snapshot it names is the one the rows were read from), and its errors
must be structured results (``is_error`` with type, message, what to do, retryable, context),
never a stack trace, on the wire or on the server's stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from estat_assets_tests.app.conftest import app_env, write_domains

ROOT = Path(__file__).resolve().parent.parent
DATASET = "9900000004"
TOOLS = {
    "search_tables",
    "describe_dataset",
    "add_dataset",
    "load_dataset",
    "load_status",
    "run_sql",
    "get_series",
    "verify_figure",
    "lake_health",
    "list_releases",
    "compare_releases",
}
CREDIT = "このサービスは、政府統計総合窓口(e-Stat)のAPI機能を使用していますが"
CREDIT_EN = "This service uses the API of e-Stat"


class Client:
    """One MCP session with the server; ``call`` returns (is_error, structured content)."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.transcript: list[dict[str, Any]] = []

    async def call(self, tool: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
        result = await self.session.call_tool(tool, arguments)
        text = result.content[0].text if result.content else ""
        assert "Traceback" not in text, text
        body = result.structured_content
        if body is None:  # the SDK's own argument validation: a plain text error
            body = {"text": text}
        else:
            assert json.loads(text) == body  # the text block carries the same JSON
        self.transcript.append({"tool": tool, "arguments": arguments, "is_error": result.is_error})
        return bool(result.is_error), body

    async def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        is_error, body = await self.call(tool, **arguments)
        assert not is_error, (tool, arguments, body)
        return body

    async def error(self, tool: str, kind: str, **arguments: Any) -> dict[str, Any]:
        is_error, body = await self.call(tool, **arguments)
        assert is_error, (tool, arguments, body)
        error = body["error"]
        assert error["type"] == kind, (tool, arguments, error)
        assert error["message"] and error["what_to_do"] and isinstance(error["retryable"], bool)
        assert isinstance(error["context"], dict) and error["context"]["tool"] == tool
        return error


def serve(env: dict[str, str], errlog: Path, body: Callable[[Client], Awaitable[None]]) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "estat_assets.cli", "mcp"],
        env={
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("ESTAT_") and k != "DAGSTER_HOME"
            },
            **env,
        },
        cwd=str(ROOT),
    )

    async def main() -> None:
        with open(errlog, "w", encoding="utf-8") as log:
            async with AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(stdio_client(params, errlog=log))
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                await body(Client(session))

    asyncio.run(main())
    assert "Traceback" not in errlog.read_text(encoding="utf-8"), errlog.read_text()[-3000:]


@pytest.fixture
def env(tmp_path, emulator) -> dict[str, str]:
    return app_env(tmp_path / "home", emulator.api_base, write_domains(tmp_path))


def assert_cited(citation: dict[str, Any], snapshot: str | None) -> None:
    assert citation["stats_data_id"] == DATASET
    assert citation["title"].startswith("【合成データ】雇用形態、性、産業大分類別")
    assert citation["title_en"].startswith("【合成データ】Scheduled cash earnings")
    assert (citation["survey"], citation["organisation"]) == ("賃金構造基本統計調査", "厚生労働省")
    assert citation["updated_date"] == "2024-03-27"
    assert citation["url"] == "https://www.e-stat.go.jp/dbview?sid=9900000004"
    assert citation["snapshot_id"] == snapshot
    if snapshot is not None:
        assert citation["table"] == "estat.labor" and citation["loaded_at"] and citation["run_id"]
    assert citation["synthetic"] is True
    assert citation["credit"].startswith(CREDIT) and citation["credit_en"].startswith(CREDIT_EN)


async def wait_for_load(client: Client, ticket: str) -> dict[str, Any]:
    for _ in range(300):
        status = await client.ok("load_status", ticket=ticket)
        if status["done"]:
            return status
        await asyncio.sleep(0.5)
    raise AssertionError(f"load {ticket} did not finish: {status}")


@pytest.mark.slow
def test_a_whole_conversation_from_a_search_word_to_a_cited_answer(env, tmp_path) -> None:
    async def conversation(client: Client) -> None:
        tools = await client.session.list_tools()
        assert {t.name for t in tools.tools} == TOOLS
        assert all(t.description and t.input_schema for t in tools.tools)

        found = await client.ok("search_tables", words="wage")  # English words: lang E
        [hit] = found["hits"]
        assert (hit["stats_data_id"], hit["in_lake"], found["lang"]) == (DATASET, "no", "E")
        assert hit["survey"] == "Basic Survey on Wage Structure" and hit["rows"] == 540
        assert found["citation"]["credit"].startswith(CREDIT)

        added = await client.ok("add_dataset", stats_data_id=hit["stats_data_id"])
        assert (added["domain"], added["rule"], added["field_code"]) == ("labor", "field", "03")
        assert_cited(added["citation"], None)

        queued = await client.ok("load_dataset", stats_data_ids=[DATASET])
        assert queued["mode"] == "in_process_background" and queued["ticket"]
        assert queued["run_ids"], queued  # a real Dagster run id, returned at once
        run_id = queued["run_ids"][0]
        done = await wait_for_load(client, queued["ticket"])
        [item] = done["items"]
        assert (item["status"], item["run_id"], item["rows_in_lake"]) == ("success", run_id, 540)
        assert item["checks_failed"] == 0 and done["failures"] == []
        snapshot = item["citation"]["snapshot_id"]
        assert_cited(item["citation"], snapshot)
        by_run = await client.ok("load_status", run_ids=[run_id])
        assert by_run["items"][0]["status"] == "success"
        assert by_run["items"][0]["citation"]["snapshot_id"] == snapshot

        described = await client.ok("describe_dataset", stats_data_id=DATASET, max_items=2)
        assert (described["status"], described["rows_in_lake"]) == ("complete", 540)
        assert described["snapshot"]["current_snapshot_id"] == snapshot
        sex = next(a for a in described["axes"] if a["id"] == "cat02")
        assert (sex["name"], sex["name_en"], sex["size"], len(sex["items"])) == (
            "性別",
            "Sex",
            3,
            2,
        )
        assert sex["items_truncated"] is True
        assert_cited(described["citation"], snapshot)

        cell = {"Sex": "男", "産業大分類": "Construction", "tab": "01", "雇用形態": "Regular staff"}
        got = await client.ok("get_series", stats_data_id=DATASET, filters=cell)
        assert [r["year"] for r in got["rows"]] == [2019, 2020, 2021, 2022, 2023]
        assert got["fixed"]["cat02"]["name_en"] == "Male" and got["unit"] == "千円"
        assert_cited(got["citation"], snapshot)
        row_2021 = next(r for r in got["rows"] if r["year"] == 2021)

        checked = await client.ok(
            "verify_figure",
            stats_data_id=DATASET,
            claimed_value=row_2021["value_raw"],
            filters={**cell, "time": "2021"},
        )
        assert checked["verdict"] == "agrees" and checked["official_value"] == row_2021["value"]
        assert_cited(checked["citation"], snapshot)
        wrong = await client.ok(
            "verify_figure",
            stats_data_id=DATASET,
            claimed_value=str(row_2021["value"] * 2 + 1),
            filters={**cell, "time": "2021"},
        )
        assert (
            wrong["verdict"] == "disagrees" and wrong["official_value_raw"] == row_2021["value_raw"]
        )

        sql = await client.ok(
            "run_sql",
            sql="SELECT year, value_raw FROM estat.labor WHERE cat02_code = '2' AND "
            "cat03_code = 'D' AND tab_code = '01' AND cat01_code = '02' AND year = 2021",
        )
        assert sql["rows"] == [{"year": 2021, "value_raw": row_2021["value_raw"]}]
        assert sql["tables"] == [{"table": "estat.labor", "snapshot_id": snapshot}]
        assert_cited(sql["citations"][0], snapshot)
        capped = await client.ok("run_sql", sql="SELECT * FROM estat.labor", row_cap=5)
        assert capped["row_count"] == 5 and capped["truncated"] is True

        health = await client.ok("lake_health")
        assert health["ok"] is True and health["status_counts"] == {"complete": 1}

        resources = await client.session.list_resources()
        uris = {str(r.uri) for r in resources.resources}
        assert {"estat://datasets", f"estat://datasets/{DATASET}"} <= uris
        read = await client.session.read_resource(f"estat://datasets/{DATASET}")
        body = json.loads(read.contents[0].text)
        assert body["status"] == "complete" and body["citation"]["snapshot_id"] == snapshot
        listing = json.loads(
            (await client.session.read_resource("estat://datasets")).contents[0].text
        )
        assert [d["stats_data_id"] for d in listing["datasets"]] == [DATASET]

    serve(env, tmp_path / "server.log", conversation)


@pytest.mark.slow
def test_every_tool_answers_errors_as_structured_results(env, tmp_path) -> None:
    async def errors(client: Client) -> None:
        await client.error("search_tables", "bad_years", words="人口", years="last year")
        await client.error("search_tables", "empty_search")
        await client.error("describe_dataset", "invalid_dataset_id", stats_data_id="12345")
        refused = await client.error(
            "describe_dataset", "estat_refused", stats_data_id="1234567890"
        )
        assert "統計表IDが存在しません" in refused["message"]  # e-Stat's own words
        no_domain = await client.error("add_dataset", "no_domain", stats_data_id="9900000007")
        assert "--domain" in no_domain["what_to_do"] and no_domain["retryable"] is True
        await client.error("add_dataset", "unknown_domain", stats_data_id=DATASET, domain="nowhere")
        await client.error("load_dataset", "not_in_lake", stats_data_ids=["9900000005"])
        await client.error("load_status", "nothing_to_report")
        await client.error("load_status", "unknown_ticket", ticket="nope")
        await client.error(
            "load_status", "unknown_run", run_ids=["00000000-0000-0000-0000-000000000000"]
        )
        await client.error("get_series", "not_in_lake", stats_data_id="9900000005")
        await client.error(
            "verify_figure", "not_in_lake", stats_data_id="9900000005", claimed_value="1"
        )
        await client.ok("add_dataset", stats_data_id=DATASET)
        await client.error("get_series", "not_loaded", stats_data_id=DATASET)
        await client.error(
            "load_dataset", "filter_matches_nothing", stats_data_ids=[DATASET], years="1900"
        )
        # the SQL sandbox refuses, each with its kind and a hint
        for sql, kind in (
            ("SELECT * FROM read_text('/etc/passwd')", "sql_file_access"),
            ("COPY (SELECT 1) TO '/tmp/estat-lake-mcp.csv'", "sql_file_access"),
            ("ATTACH '/tmp/other.db' AS other", "sql_file_access"),
            ("INSTALL httpfs", "sql_extension"),
            ("LOAD httpfs", "sql_extension"),
            ("SET enable_external_access = true", "sql_configuration"),
            ("PRAGMA database_list", "sql_configuration"),
            ("CREATE TABLE estat.x AS SELECT 1", "sql_write_statement"),
            ("DELETE FROM estat.labor", "sql_write_statement"),
            ("SELECT 1; SELECT 2", "sql_multiple_statements"),
            ("SELECT * FROM estat.nothing", "sql_unknown_table"),
        ):
            error = await client.error("run_sql", kind, sql=sql)
            assert "Allowed" in error["what_to_do"] or error["what_to_do"], error
        assert not Path("/tmp/estat-lake-mcp.csv").exists()
        # arguments the SDK itself rejects: an error result, no traceback
        is_error, body = await client.call("verify_figure", stats_data_id=DATASET)
        assert is_error and "claimed_value" in body.get("text", json.dumps(body))
        await client.error("verify_figure", "bad_claim", stats_data_id=DATASET, claimed_value="x")
        # the server is still answering
        assert (await client.ok("lake_health"))["not_loaded"] == [
            {"stats_data_id": DATASET, "domain": "labor"}
        ]

    serve(env, tmp_path / "server.log", errors)


@pytest.mark.slow
def test_releases_and_answers_as_published_on_a_day_over_mcp(tmp_path) -> None:
    """An assistant asks what a table said before e-Stat revised it, and what the revision was."""
    from estat_emulator import EmulatorServer, TableStore

    recorded, old, new, day = "0000020202", "2025-06-20", "2026-01-15", "2025-12-31"
    cell = {"time": "1985100000", "area": "01100"}
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as server:
        env = app_env(tmp_path / "home", server.api_base, write_domains(tmp_path))

        async def conversation(client: Client) -> None:
            await client.ok("add_dataset", stats_data_id=recorded, domain="population")
            first = await client.ok("load_dataset", stats_data_ids=[recorded], wait=True)
            assert first["failures"] == [], first
            import httpx

            reply = httpx.post(
                f"{server.url}/_emulator/republish",
                json={
                    "statsDataId": recorded,
                    "updated_date": new,
                    "revise": {"time": ["1985100000"]},
                },
            )
            assert reply.status_code == 200
            second = await client.ok("load_dataset", stats_data_ids=[recorded], wait=True)
            assert second["failures"] == [], second

            listed = await client.ok("list_releases", stats_data_id=recorded)
            assert [r["updated_date"] for r in listed["releases"]] == [old, new]
            assert listed["releases"][-1]["revised"] == 1
            assert listed["citation"]["credit"].startswith(CREDIT)

            diff = await client.ok(
                "compare_releases", stats_data_id=recorded, old_release=old, new_release=new
            )
            [changed] = diff["cells"]
            assert changed["kind"] == "revised" and changed["old_value_raw"] == "111801"
            assert diff["citation_old"]["updated_date"] == old
            assert diff["citation"]["updated_date"] == new

            then = await client.ok("get_series", stats_data_id=recorded, filters=cell, as_of=day)
            now = await client.ok("get_series", stats_data_id=recorded, filters=cell)
            assert [r["value_raw"] for r in then["rows"]] == ["111801"]
            assert [r["value_raw"] for r in now["rows"]] == [changed["new_value_raw"]]
            assert then["citation"]["updated_date"] == old
            assert then["citation"]["snapshot_id"] == diff["citation_old"]["snapshot_id"]

            sql = await client.ok(
                "run_sql",
                sql="SELECT value_raw FROM estat.population "
                f"WHERE dataset_id = '{recorded}' AND year = 1985",
                as_of=day,
            )
            assert sql["rows"] == [{"value_raw": "111801"}]
            assert [c["updated_date"] for c in sql["citations"]] == [old]

            early = await client.error(
                "get_series",
                "no_release_then",
                stats_data_id=recorded,
                filters=cell,
                as_of="2020-01-01",
            )
            assert old in early["what_to_do"]

        serve(env, tmp_path / "server.log", conversation)
