"""``estat-lake mcp``: the lake as an MCP server (official ``mcp`` SDK, stdio by default).

An assistant (Claude Desktop, Kiro, any MCP client) searches e-Stat, adds a table, loads it
(real Dagster runs: through the daemon when ``--dagster-url`` answers, else in this process,
in the background), follows the runs, describes the table, runs read-only SQL, gets a tidy
series and verifies a figure, every answer with its citation. The tools are thin: each calls
one function of :mod:`estat_assets.app` and returns its ``to_dict()`` as structured content
(and the same JSON as text). A failure is a result with ``is_error`` and
``{"error": {type, message, what_to_do, retryable, context}}``, never a stack trace.

Datasets are resources too: ``estat://datasets`` lists them, ``estat://datasets/{id}`` is a
dataset's description (with its citation).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from mcp.server import MCPServer
from mcp.types import CallToolResult, Resource, TextContent, ToolAnnotations

from estat_assets import CREDIT_NOTICE, CREDIT_NOTICE_EN
from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError, app_error

log = logging.getLogger("estat_lake.mcp")

INSTRUCTIONS = f"""\
estat-lake: Japan's official statistics (e-Stat) in a checked, versioned Iceberg lake.
Typical path: search_tables (Japanese or English words) → add_dataset (its statsDataId) →
load_dataset (returns Dagster run ids; poll load_status until done) → describe_dataset (axes with
codes and names, J and E) → get_series or run_sql → verify_figure for a claimed number.
Axes and items may be named by code or by Japanese or English name. Every answer carries a
citation (statsDataId, title, survey, organisation, e-Stat UPDATED_DATE, URL, the Iceberg
snapshot read, when it was loaded): quote it with any number you report, with e-Stat's credit:
{CREDIT_NOTICE} / {CREDIT_NOTICE_EN}
Tables whose id starts with 99 are synthetic (generated offline), never official figures."""

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)
LAKE_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def result(ctx: LakeContext, tool: str, call: Callable[[], Any]) -> CallToolResult:
    """Run one capability; its answer, or its failure as a structured error."""
    try:
        answer = call()
        body = answer.to_dict() if hasattr(answer, "to_dict") else answer
        body = json.loads(_dumps(body))  # plain JSON values (dates, Decimals as text)
        return CallToolResult(
            content=[TextContent(type="text", text=_dumps(body))], structured_content=body
        )
    except Exception as exc:  # every failure becomes a structured error, never a traceback
        error = app_error(exc, tool=tool)
        if error.type == "internal_error":
            log.warning("%s failed: %s", tool, error.message)
        body = error.to_dict()
        return CallToolResult(
            content=[TextContent(type="text", text=_dumps(body))],
            structured_content=body,
            is_error=True,
        )


class LakeMCPServer(MCPServer):
    """MCPServer whose resource list names every dataset of the lake, as it is now."""

    lake: LakeContext

    async def list_resources(self):  # type: ignore[override]
        import anyio

        static = await super().list_resources()
        try:
            dynamic = await anyio.to_thread.run_sync(self._dataset_resources)
        except Exception as exc:  # the list is a courtesy: never fail it
            log.warning("cannot list datasets: %s", exc)
            dynamic = []
        return [*static, *dynamic]

    def _dataset_resources(self) -> list[Resource]:
        inventory = self.lake.inventory()
        out = []
        for spec in self.lake.domains():
            for dataset_id in spec.datasets:
                row = inventory.get(dataset_id) or {}
                title = row.get("title") or spec.titles.get(dataset_id) or ""
                status = row.get("status") or "not loaded"
                out.append(
                    Resource(
                        uri=f"estat://datasets/{dataset_id}",
                        name=f"{dataset_id} {title}".strip(),
                        description=f"domain {spec.name}, {status}: describe_dataset as JSON",
                        mime_type="application/json",
                    )
                )
        return out


def build_server(ctx: LakeContext) -> LakeMCPServer:
    from estat_assets.app import add as app_add
    from estat_assets.app import describe as app_describe
    from estat_assets.app import health as app_health
    from estat_assets.app import load as app_load
    from estat_assets.app import query as app_query
    from estat_assets.app import releases as app_releases
    from estat_assets.app import search as app_search
    from estat_assets.app import series as app_series
    from estat_assets.app import verify as app_verify

    server = LakeMCPServer("estat-lake", instructions=INSTRUCTIONS, log_level="WARNING")
    server.lake = ctx

    @server.tool(annotations=READ_ONLY)
    def search_tables(
        words: str = "",
        survey: str | None = None,
        years: str | None = None,
        field: str | None = None,
        lang: str | None = None,
        limit: int = 20,
    ) -> CallToolResult:
        """Search e-Stat's statistics tables (getStatsList). `words`: Japanese or English search
        words (English words search e-Stat's English texts); `survey`: an 8-digit survey code or
        5-digit organisation code; `years`: survey years like 2020 or 2010-2013; `field`: e-Stat's
        statistical field (02 人口・世帯, 03 労働・賃金, 12 教育…); `lang`: J or E to force the
        language. Each hit has its statsDataId, title, survey, organisation, cycle, UPDATED_DATE,
        rows (OVERALL_TOTAL_NUMBER) and whether it is in the lake already."""
        return result(
            ctx,
            "search_tables",
            lambda: app_search.search(
                ctx, words, survey=survey, years=years, field_code=field, lang=lang, limit=limit
            ),
        )

    @server.tool(annotations=READ_ONLY)
    def describe_dataset(stats_data_id: str, max_items: int = 50) -> CallToolResult:
        """Describe a table: title, survey, organisation, e-Stat UPDATED_DATE, statistical field,
        axes with codes, Japanese and English names, levels and parents (at most `max_items`
        items per axis), years in the table and loaded, rows in the lake vs e-Stat, status, the
        latest check results and the Iceberg snapshot. Works for tables not added yet too."""
        return result(
            ctx,
            "describe_dataset",
            lambda: app_describe.describe(ctx, stats_data_id, max_items=max(1, max_items)),
        )

    @server.tool(annotations=WRITES)
    def add_dataset(stats_data_id: str, domain: str | None = None) -> CallToolResult:
        """Add an e-Stat table to the lake (persisted; no YAML to edit). The domain (Iceberg
        table) is inferred from the table's statistical field (MAIN_CATEGORY) or survey unless
        `domain` is given; the answer says which and why. Then call load_dataset."""
        return result(ctx, "add_dataset", lambda: app_add.add(ctx, stats_data_id, domain))

    @server.tool(annotations=WRITES)
    def load_dataset(
        stats_data_ids: list[str],
        years: str | None = None,
        wait: bool = False,
    ) -> CallToolResult:
        """Load added datasets as real Dagster runs (the whole table, or `years` like 2020 or
        2010-2013). Through the Dagster daemon when the server was given one, else in the
        server's process. Returns the run ids (and a ticket for in-process background loads)
        at once unless `wait` is true; follow them with load_status."""
        return result(
            ctx,
            "load_dataset",
            lambda: app_load.load(ctx, stats_data_ids, years=years, wait=wait, follow=wait),
        )

    @server.tool(annotations=LAKE_READ)
    def load_status(
        run_ids: list[str] | None = None,
        stats_data_ids: list[str] | None = None,
        ticket: str | None = None,
    ) -> CallToolResult:
        """Status of loads: by the `run_ids` load_dataset returned, by `stats_data_ids` (their
        latest run), or by the `ticket` of a background load. Each run: status (queued,
        started, success, failure), rows, checks, the first real cause of a failure, and the
        citation of what it loaded."""
        return result(
            ctx,
            "load_status",
            lambda: app_load.load_status(
                ctx, run_ids or [], dataset_ids=stats_data_ids or [], ticket=ticket
            ),
        )

    @server.tool(annotations=LAKE_READ)
    def run_sql(sql: str, row_cap: int = 200, as_of: str | None = None) -> CallToolResult:
        """Read-only Trino-dialect SQL on the lake's tables (SELECT, WITH, DESCRIBE <table>,
        SHOW TABLES, SHOW COLUMNS FROM <table>); `SHOW TABLES` lists them. Sandboxed: no files,
        no extensions, no settings, at most `row_cap` rows and a time limit. Values come back
        exactly as stored (value_raw is e-Stat's text; value the number). `as_of` (YYYY-MM-DD)
        reads the domain tables as e-Stat had published them on that day."""
        return result(
            ctx,
            "run_sql",
            lambda: app_query.run_sql(ctx, sql, row_cap=max(1, min(row_cap, 10_000)), as_of=as_of),
        )

    @server.tool(annotations=LAKE_READ)
    def get_series(
        stats_data_id: str,
        filters: dict[str, str | list[str]] | None = None,
        limit: int = 500,
        as_of: str | None = None,
    ) -> CallToolResult:
        """A tidy series of a loaded dataset: the cells matching `filters`, one row per cell.
        `filters` maps an axis (its id like cat01, or its Japanese or English name) to an item
        (its code, or Japanese or English name; time: a year like 2020) or a list of items,
        e.g. {"性別": "男", "time": ["2020", "2021"]} or {"Sex": "Male"}. `as_of` (YYYY-MM-DD)
        gives the series as e-Stat had published it on that day (see list_releases)."""
        return result(
            ctx,
            "get_series",
            lambda: app_series.series(
                ctx, stats_data_id, filters or {}, limit=max(1, limit), as_of=as_of
            ),
        )

    @server.tool(annotations=LAKE_READ)
    def verify_figure(
        stats_data_id: str,
        claimed_value: str,
        filters: dict[str, str | list[str]] | None = None,
        tolerance: float | None = None,
        relative_tolerance: float | None = None,
        as_of: str | None = None,
    ) -> CallToolResult:
        """Check a claimed figure against the official value in the lake. `claimed_value` as
        written (364.9, 1,234); `filters` say which cell (as in get_series). Verdict: agrees
        (equal after rounding to the claim's decimals, or within `tolerance` / the
        `relative_tolerance` fraction), disagrees, ambiguous (pin the axes listed),
        no_official_value or not_found; with the official value and its citation. `as_of`
        (YYYY-MM-DD) checks against what e-Stat had published on that day (a report's date)."""
        return result(
            ctx,
            "verify_figure",
            lambda: app_verify.verify(
                ctx,
                stats_data_id,
                claimed_value,
                filters or {},
                tolerance=tolerance,
                relative_tolerance=relative_tolerance,
                as_of=as_of,
            ),
        )

    @server.tool(annotations=LAKE_READ)
    def list_releases(stats_data_id: str, since: str | None = None) -> CallToolResult:
        """The releases of a table the lake keeps (every e-Stat UPDATED_DATE it loaded, on or
        after `since`), and what each revised, added and removed compared with the one before:
        counts, share of past values revised, largest relative revisions, changes per year."""
        return result(
            ctx,
            "list_releases",
            lambda: app_releases.list_releases(ctx, stats_data_id, since),
        )

    @server.tool(annotations=LAKE_READ)
    def compare_releases(
        stats_data_id: str, old_release: str, new_release: str, limit: int = 100
    ) -> CallToolResult:
        """What changed between two kept releases of a table (their UPDATED_DATEs,
        YYYY-MM-DD, from list_releases), cell by cell: kind (revised, added, removed), the axis
        codes, old and new value_raw, value and annotation; both releases cited."""
        return result(
            ctx,
            "compare_releases",
            lambda: app_releases.compare(
                ctx, stats_data_id, old_release, new_release, max(0, min(limit, 5_000))
            ),
        )

    @server.tool(annotations=LAKE_READ)
    def lake_health() -> CallToolResult:
        """The lake's health: each dataset's status (rows in the lake vs e-Stat), datasets added
        but not loaded, failed runs with their cause, and check warnings."""
        return result(ctx, "lake_health", lambda: app_health.health(ctx))

    @server.resource(
        "estat://datasets",
        name="datasets",
        description="Every dataset of the lake: domain, title, status, rows (JSON)",
        mime_type="application/json",
    )
    def datasets() -> str:
        try:
            body = app_health.health(ctx).to_dict()
            body = {
                "datasets": body["datasets"],
                "not_loaded": body["not_loaded"],
                "citations": body["citations"],
            }
        except Exception as exc:
            body = app_error(exc).to_dict()
        return _dumps(body)

    @server.resource(
        "estat://datasets/{stats_data_id}",
        name="dataset",
        description="A dataset's description with its citation (describe_dataset as JSON)",
        mime_type="application/json",
    )
    def dataset(stats_data_id: str) -> str:
        try:
            body = app_describe.describe(ctx, stats_data_id).to_dict()
        except Exception as exc:
            body = app_error(exc, stats_data_id=stats_data_id).to_dict()
        return _dumps(body)

    return server


def _emulator_starter(settings, port: int | None) -> tuple[Callable[[], str], contextlib.ExitStack]:
    """Start the bundled emulator on first use: on ``port``, or reuse an emulator answering
    there, or, when something else holds the port, on a free one (a server should not die)."""
    stack = contextlib.ExitStack()

    def start() -> str:
        from estat_assets.cli.common import emulator_on

        wanted = port or settings.emulator_port
        try:
            return stack.enter_context(emulator_on(wanted))
        except AppError as exc:
            log.warning("%s; using a free port instead", exc.message)
            return stack.enter_context(emulator_on(0))

    return start, stack


def serve(dagster_url: str | None = None, port: int | None = None) -> int:
    """Run the server on stdio until the client closes it."""
    from estat_assets.settings import Settings

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    settings = Settings.from_env()
    stack = contextlib.ExitStack()
    starter = None
    if settings.uses_emulator:
        starter, stack = _emulator_starter(settings, port)
    ctx = LakeContext(
        settings,
        dagster_url=dagster_url,
        say=lambda line: log.info("%s", line),
        estat_starter=starter,
    )
    with stack:
        build_server(ctx).run()
    return 0


__all__ = ["LakeMCPServer", "build_server", "serve"]
