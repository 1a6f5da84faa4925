"""getStatsData pages: read cheaply, and checked against the request and the first page.

A page is stored as received, so it must be exactly the rows that were asked for, of the same
table version as every other page of the fetch; anything else is a :class:`PageMismatchError`
(or :class:`TableRepublishedError`) and the fetch starts again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from estat_assets.estat.errors import PageMismatchError, TableRepublishedError
from estat_assets.estat.models import TableInfo
from estat_assets.estat.shape import as_dict, as_list, root_of

if TYPE_CHECKING:
    from estat_assets.estat.http import Response


@dataclass(frozen=True)
class PageInfo:
    """What a getStatsData page says about itself."""

    total: int
    from_number: int | None
    to_number: int | None
    next_key: int | None
    rows: int
    updated_date: str | None
    overall_total: int | None


_DATA_INF = b'"DATA_INF":'
_VALUE = b'"VALUE":'
_NOTE = b'"NOTE":'
_CELL = b'"$":'


def scan_page(raw: bytes) -> tuple[dict[str, Any], int] | None:
    """Parse a getStatsData page cheaply: everything before ``DATA_INF``, and count its VALUEs.

    A page is ``{"GET_STATS_DATA":{"RESULT":…,"PARAMETER":…,"STATISTICAL_DATA":{"RESULT_INF":…,
    "TABLE_INF":…,"DATA_INF":{"NOTE":[…],"VALUE":[…]}}}}``. Only the head is parsed (a few kB);
    the VALUEs are counted by their ``"$":`` keys (a key cannot occur inside a JSON string, where
    ``"`` is escaped), and the body must end where a complete page ends, so a truncated body is
    caught. ``None`` when the page does not have this exact shape: the caller parses it fully.
    Pages are stored as received and fully parsed by the conform step.
    """
    at = raw.find(_DATA_INF)
    if at < 0:
        return None
    head_bytes = raw[:at].rstrip()
    if not head_bytes.endswith(b","):
        return None
    try:
        document = orjson.loads(head_bytes[:-1] + b"}}}")
    except orjson.JSONDecodeError:
        return None
    values = raw.find(_VALUE, at)
    tail = raw[-8:].rstrip()
    if values < 0 or raw.find(_NOTE, values) >= 0:
        return None
    if not (tail.endswith(b"]}}}}") or tail.endswith(b"}}}}}")):
        return None  # cut short (or a shape we do not know): let the full parse decide
    return document, raw.count(_CELL, values)


def page_info(response: Response) -> PageInfo:
    """Read RESULT_INF, TABLE_INF and the VALUE count of a getStatsData page."""
    data = as_dict(response.body.get("STATISTICAL_DATA"))
    result = as_dict(data.get("RESULT_INF"))
    table = TableInfo.parse(data.get("TABLE_INF"))

    def num(key: str) -> int | None:
        v = result.get(key)
        return None if v in (None, "") else int(v)

    if response.rows is not None:
        rows = response.rows
    else:
        rows = len(as_list(as_dict(data.get("DATA_INF")).get("VALUE")))
    return PageInfo(
        total=num("TOTAL_NUMBER") or 0,
        from_number=num("FROM_NUMBER"),
        to_number=num("TO_NUMBER"),
        next_key=num("NEXT_KEY"),
        rows=rows,
        updated_date=table.updated_date,
        overall_total=table.overall_total_number,
    )


def recount(resp: Response, expected: int) -> PageInfo:
    """Page info; a fast VALUE count that disagrees with what we expect is confirmed by a parse."""
    info = page_info(resp)
    if resp.rows is not None and info.rows != expected:
        full = orjson.loads(resp.raw)
        _, body = root_of(full)
        data = as_dict(body.get("STATISTICAL_DATA"))
        rows = len(as_list(as_dict(data.get("DATA_INF")).get("VALUE")))
        info = dataclasses.replace(info, rows=rows)
    return info


def verify_page(dataset: str, start: int, end: int, info: PageInfo, head: PageInfo) -> None:
    """A page must be the rows we asked for, of the same table version as the first page."""
    if info.total != head.total or info.updated_date != head.updated_date:
        raise TableRepublishedError(
            f"page at {start} has TOTAL_NUMBER {info.total} / UPDATED_DATE "
            f"{info.updated_date}, first page had {head.total} / {head.updated_date}",
            stats_data_id=dataset,
        )
    if info.overall_total != head.overall_total:
        raise TableRepublishedError(
            f"OVERALL_TOTAL_NUMBER changed from {head.overall_total} to "
            f"{info.overall_total} during the fetch",
            stats_data_id=dataset,
        )
    if info.from_number != start or info.to_number != end:
        raise PageMismatchError(
            f"asked for rows {start}-{end}, got {info.from_number}-{info.to_number}",
            stats_data_id=dataset,
        )
    if info.rows != end - start + 1:
        raise PageMismatchError(
            f"page {start}-{end} claims {end - start + 1} rows but has {info.rows}",
            stats_data_id=dataset,
        )
