"""The application layer: find, add, describe, load and query e-Stat tables, every answer cited.

One module per capability, called by the CLI (``estat_assets.cli``) and the MCP server
(``estat_assets.mcp_server``) alike; neither re-implements any of it. Signatures use plain
Python types and the dataclasses defined here (no Dagster types); each answer has ``to_dict()``
(what the MCP tools return) and a text form in :mod:`estat_assets.app.text` (what the CLI prints).

- :mod:`~estat_assets.app.context`: :class:`LakeContext`, the lake of the environment
- :mod:`~estat_assets.app.search`: getStatsList hits, and whether each is in the lake
- :mod:`~estat_assets.app.add`: register a table in a domain inferred from its metadata
- :mod:`~estat_assets.app.describe`: what a table is, what the lake holds of it, its checks
- :mod:`~estat_assets.app.load`: Dagster runs, through the daemon or in-process; their status
- :mod:`~estat_assets.app.query`: read-only SQL in the sandbox (Athena on AWS)
- :mod:`~estat_assets.app.series`: a tidy series by axis filters (codes or names, J or E)
- :mod:`~estat_assets.app.verify`: does a claimed figure agree with the official value?
- :mod:`~estat_assets.app.health`: inventory status, failed runs, check warnings
- :mod:`~estat_assets.app.citation`: the citation every answer carries
- :mod:`~estat_assets.app.metadata`: axes, English names (cached in the lake), filters
- :mod:`~estat_assets.app.errors`: :class:`AppError`, structured errors
"""

from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError, app_error

__all__ = ["AppError", "LakeContext", "app_error"]
