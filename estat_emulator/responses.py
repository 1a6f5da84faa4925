"""Response documents for the four JSON endpoints, shaped like the recorded e-Stat responses.

Pure functions of (store, request parameters): no HTTP here, so the shapes can be tested directly
and the server stays a thin transport. Application errors are documents too (HTTP 200, STATUS ≥ 100,
no payload), as on the real API. ``lang=E`` swaps in English texts (``english.py``) for
getStatsList, getMetaInfo and getStatsData (getDataCatalog entries stay as recorded); any other
``lang`` (``J``, none) serves the documents as they are.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from estat_assets.estat.shape import as_dict, as_list, text

from .narrow import NarrowingError, parse_narrowing
from .store import TableStore
from .table import Table
from .wire import one_or_many

JST = timezone(timedelta(hours=9))
MAX_LIMIT = 100_000
CATALOG_DEFAULT_LIMIT = 100

ENDPOINTS: dict[str, str] = {
    "getStatsList": "GET_STATS_LIST",
    "getMetaInfo": "GET_META_INFO",
    "getStatsData": "GET_STATS_DATA",
    "getDataCatalog": "GET_DATA_CATALOG",
}

MSG_OK = "正常に終了しました。"
MSG_NO_DATA = "正常に終了しましたが、該当データはありませんでした。"
MSG_AUTH = "認証に失敗しました。"
MSG_SERVER = "サーバ内部でエラーが発生しました。"
DEFAULT_MESSAGES: dict[int, str] = {0: MSG_OK, 1: MSG_NO_DATA, 100: MSG_AUTH}


def default_message(status: int) -> str:
    """The ERROR_MSG used when a fault rule gives a STATUS without a message."""
    if status in DEFAULT_MESSAGES:
        return DEFAULT_MESSAGES[status]
    if 200 <= status < 300:
        return MSG_SERVER
    return "エラーが発生しました。"


class ApiError(Exception):
    """An application-level error: rendered as a STATUS ≥ 100 document with HTTP 200."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"STATUS {status}: {message}")
        self.status = status
        self.message = message


def unknown_table(table_id: str) -> ApiError:
    return ApiError(102, f"統計表IDが存在しません。(statsDataId={table_id})")


def invalid_value(name: str, value: str) -> ApiError:
    return ApiError(102, f"パラメータの値が不正です。({name}={value})")


def jst_now() -> str:
    """RESULT.DATE: ISO-8601 in JST with milliseconds, e.g. ``2025-07-16T11:39:54.831+09:00``."""
    return datetime.now(JST).isoformat(timespec="milliseconds")


def envelope(
    root: str,
    status: int,
    message: str,
    parameter: dict[str, Any],
    payload: dict[str, Any] | None = None,
    *,
    date: str | None = None,
) -> dict[str, Any]:
    """``{ROOT: {RESULT, PARAMETER, payload…}}``."""
    body: dict[str, Any] = {
        "RESULT": {"STATUS": status, "ERROR_MSG": message, "DATE": date or jst_now()},
        "PARAMETER": parameter,
    }
    if payload:
        body.update(payload)
    return {root: body}


# -- parameter helpers ---------------------------------------------------------------------


def _number_echo(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _positive(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise invalid_value(name, raw)
    return int(raw)


def _flag(params: dict[str, str], name: str, default: str) -> str:
    raw = params.get(name, "")
    if raw == "":
        return default
    if raw not in ("Y", "N"):
        raise invalid_value(name, raw)
    return raw


def _paging_echo(echo: dict[str, Any], params: dict[str, str]) -> None:
    if params.get("startPosition"):
        echo["START_POSITION"] = _number_echo(params["startPosition"])
    if params.get("limit"):
        echo["LIMIT"] = _number_echo(params["limit"])


def _page(total: int, start: int, limit: int) -> tuple[int, dict[str, int]]:
    """Rows on this page and RESULT_INF's FROM/TO/NEXT_KEY (NEXT_KEY only if rows remain)."""
    n = max(0, min(limit, total - start + 1))
    to = start + n - 1
    info = {"FROM_NUMBER": start, "TO_NUMBER": to}
    if to < total:
        info["NEXT_KEY"] = to + 1
    return n, info


# -- getStatsData / getMetaInfo ------------------------------------------------------------


def _echo_stats_data(params: dict[str, str], narrowing: dict[str, str]) -> dict[str, Any]:
    echo: dict[str, Any] = {"LANG": params.get("lang") or "J"}
    if params.get("statsDataId"):
        echo["STATS_DATA_ID"] = params["statsDataId"]
    if params.get("dataSetId"):
        echo["DATASET_ID"] = params["dataSetId"]
    if narrowing:
        echo["NARROWING_COND"] = narrowing
    echo["DATA_FORMAT"] = "J"
    _paging_echo(echo, params)
    for name, key in (
        ("metaGetFlg", "METAGET_FLG"),
        ("cntGetFlg", "CNT_GET_FLG"),
        ("explanationGetFlg", "EXPLANATION_GET_FLG"),
        ("annotationGetFlg", "ANNOTATION_GET_FLG"),
        ("replaceSpChars", "REPLACE_SP_CHARS"),
    ):
        if params.get(name):
            echo[key] = params[name]
    return echo


def _echo_meta_info(params: dict[str, str]) -> dict[str, Any]:
    echo: dict[str, Any] = {"LANG": params.get("lang") or "J"}
    if params.get("statsDataId"):
        echo["STATS_DATA_ID"] = params["statsDataId"]
    if params.get("explanationGetFlg"):
        echo["EXPLANATION_GET_FLG"] = params["explanationGetFlg"]
    echo["DATA_FORMAT"] = "J"
    return echo


def _english(params: dict[str, str]) -> bool:
    return params.get("lang") == "E"


def _table_for(store: TableStore, params: dict[str, str]) -> Table:
    table_id = params.get("statsDataId", "")
    if not table_id:
        if params.get("dataSetId"):
            raise ApiError(102, f"データセットが存在しません。(dataSetId={params['dataSetId']})")
        raise ApiError(101, "statsDataIdを指定して下さい。")
    table = store.get(table_id)
    if table is None or not table.has_metadata:
        raise unknown_table(table_id)
    return table


def stats_data(
    store: TableStore,
    params: dict[str, str],
    *,
    short_by: int = 0,
    ascii_only: bool = True,
    date: str | None = None,
) -> dict[str, Any]:
    """getStatsData. ``short_by`` drops rows from the page while RESULT_INF still claims them."""
    root = ENDPOINTS["getStatsData"]
    _, narrowing_echo = parse_narrowing(params, [])
    echo = _echo_stats_data(params, narrowing_echo)
    try:
        table = _table_for(store, params)
        start = _positive(params, "startPosition", 1)
        limit = min(_positive(params, "limit", MAX_LIMIT), MAX_LIMIT)
        meta = _flag(params, "metaGetFlg", "Y") == "Y"
        count_only = _flag(params, "cntGetFlg", "N") == "Y"
        try:
            selection, _ = parse_narrowing(params, table.axes)
        except NarrowingError as exc:
            raise invalid_value(exc.name, exc.value) from None
    except ApiError as exc:
        return envelope(root, exc.status, exc.message, echo, date=date)

    english = _english(params)
    total = table.count(selection)
    table_inf = store.english.table_inf(table) if english else table.table_inf
    body: dict[str, Any] = {"RESULT_INF": {"TOTAL_NUMBER": total}, "TABLE_INF": table_inf}
    if meta:
        if english:
            body["CLASS_INF"] = store.english.class_inf(table, selection)
        else:
            body["CLASS_INF"] = table.class_inf(selection)
    if count_only:
        body["DATA_INF"] = ""
        status = 0 if total else 1
        payload = {"STATISTICAL_DATA": body}
        return envelope(root, status, DEFAULT_MESSAGES[status], echo, payload, date=date)
    n, page_info = _page(total, start, limit)
    if n == 0:
        body.pop("CLASS_INF", None)
        return envelope(root, 1, MSG_NO_DATA, echo, {"STATISTICAL_DATA": body}, date=date)
    body["RESULT_INF"].update(page_info)
    data_inf: dict[str, Any] = {}
    if table.notes:
        data_inf["NOTE"] = one_or_many(store.english.notes(table) if english else table.notes)
    shown = n - max(0, short_by)
    if shown > 0:
        rows = table.values(selection, start - 1, shown, ascii_only=ascii_only)
        data_inf["VALUE"] = one_or_many(rows) if isinstance(rows, list) else rows
    body["DATA_INF"] = data_inf
    return envelope(root, 0, MSG_OK, echo, {"STATISTICAL_DATA": body}, date=date)


def meta_info(store: TableStore, params: dict[str, str], *, date: str | None = None) -> dict:
    """getMetaInfo: TABLE_INF and the full CLASS_INF."""
    root = ENDPOINTS["getMetaInfo"]
    echo = _echo_meta_info(params)
    try:
        table = _table_for(store, params)
    except ApiError as exc:
        return envelope(root, exc.status, exc.message, echo, date=date)
    if _english(params):
        meta = {
            "TABLE_INF": store.english.table_inf(table),
            "CLASS_INF": store.english.class_inf(table),
        }
    else:
        meta = {"TABLE_INF": table.table_inf, "CLASS_INF": table.class_inf()}
    payload = {"METADATA_INF": meta}
    return envelope(root, 0, MSG_OK, echo, payload, date=date)


# -- getStatsList --------------------------------------------------------------------------


def _normalise(value: str) -> str:
    return unicodedata.normalize("NFKC", value).casefold()


def search_predicate(expression: str) -> Callable[[str], bool]:
    """searchWord: terms joined by AND (or spaces), OR, and NOT; matched as substrings."""
    groups: list[tuple[list[str], list[str]]] = []
    for group in re.split(r"\s+OR\s+", expression.strip()):
        include: list[str] = []
        exclude: list[str] = []
        negate = False
        for token in group.split():
            if token == "AND":
                continue
            if token == "NOT":
                negate = True
                continue
            (exclude if negate else include).append(_normalise(token))
            negate = False
        if include or exclude:
            groups.append((include, exclude))

    def matches(haystack: str) -> bool:
        return any(
            all(t in haystack for t in inc) and not any(t in haystack for t in exc)
            for inc, exc in groups
        )

    return matches


_DAY_RANGE = re.compile(r"(\d{4}|\d{6}|\d{8})(?:-(\d{4}|\d{6}|\d{8}))?")
_MONTH_RANGE = re.compile(r"(\d{4}|\d{6})(?:-(\d{4}|\d{6}))?")


def _span(value: str, width: int) -> tuple[str, str]:
    """A yyyy / yyyymm / yyyymmdd prefix as the inclusive range of ``width``-digit values."""
    return value.ljust(width, "0"), value.ljust(width, "9")


def date_range(value: str, name: str) -> tuple[str, str]:
    """updatedDate ``yyyy`` | ``yyyymm`` | ``yyyymmdd`` | ``yyyymmdd-yyyymmdd`` → yyyymmdd range."""
    match = _DAY_RANGE.fullmatch(value.strip())
    if not match:
        raise invalid_value(name, value)
    low = _span(match.group(1), 8)[0]
    high = _span(match.group(2) or match.group(1), 8)[1]
    return low, high


def month_range(value: str, name: str) -> tuple[str, str]:
    """surveyYears/openYears ``yyyy`` | ``yyyymm`` | ``yyyymm-yyyymm`` → yyyymm range."""
    match = _MONTH_RANGE.fullmatch(value.strip())
    if not match:
        raise invalid_value(name, value)
    return _span(match.group(1), 6)[0], _span(match.group(2) or match.group(1), 6)[1]


def _survey_span(value: Any) -> tuple[str, str] | None:
    """SURVEY_DATE (int 0, int 201510, "201601-201612") as a yyyymm range; 0 → unknown."""
    raw = str(value if value is not None else "").strip()
    if not raw or raw == "0":
        return None
    match = _MONTH_RANGE.fullmatch(raw)
    if not match:
        return None
    return _span(match.group(1), 6)[0], _span(match.group(2) or match.group(1), 6)[1]


_COLLECT_AREAS = {"1": "全国", "2": "都道府県", "3": "市区町村"}


def _list_filter(store: TableStore, params: dict[str, str]) -> Callable[[Table], bool]:
    """All getStatsList filters as one predicate (raises ApiError on a malformed value)."""
    checks: list[Callable[[Table], bool]] = []
    code = params.get("statsCode", "")
    if code:
        if not re.fullmatch(r"\d{5}|\d{8}", code):
            raise invalid_value("statsCode", code)
        node = "GOV_ORG" if len(code) == 5 else "STAT_NAME"
        checks.append(lambda t: str(as_dict(t.table_inf.get(node)).get("@code", "")) == code)
    word = params.get("searchWord", "")
    if word:
        matches = search_predicate(word)
        if _english(params):
            checks.append(lambda t: matches(store.english.search_text(t)))
        else:
            checks.append(lambda t: matches(t.search_text()))
    if params.get("updatedDate"):
        low, high = date_range(params["updatedDate"], "updatedDate")
        checks.append(
            lambda t: low <= str(t.table_inf.get("UPDATED_DATE", "")).replace("-", "") <= high
        )
    if params.get("openYears"):
        o_low, o_high = month_range(params["openYears"], "openYears")
        checks.append(
            lambda t: o_low <= str(t.table_inf.get("OPEN_DATE", "")).replace("-", "")[:6] <= o_high
        )
    if params.get("surveyYears"):
        s_low, s_high = month_range(params["surveyYears"], "surveyYears")

        def survey(t: Table) -> bool:
            span = _survey_span(t.table_inf.get("SURVEY_DATE"))
            return span is not None and span[0] <= s_high and s_low <= span[1]

        checks.append(survey)
    field = params.get("statsField", "")
    if field:
        if not re.fullmatch(r"\d{2}|\d{4}", field):
            raise invalid_value("statsField", field)

        def in_field(t: Table) -> bool:
            main = str(as_dict(t.table_inf.get("MAIN_CATEGORY")).get("@code", ""))
            sub = str(as_dict(t.table_inf.get("SUB_CATEGORY")).get("@code", ""))
            return (main + sub).startswith(field) if len(field) == 4 else main == field

        checks.append(in_field)
    area = params.get("collectArea", "")
    if area:
        if area not in _COLLECT_AREAS:
            raise invalid_value("collectArea", area)
        checks.append(lambda t: t.table_inf.get("COLLECT_AREA") == _COLLECT_AREAS[area])
    if params.get("searchKind") == "2":
        checks.append(lambda t: str(t.table_inf.get("SMALL_AREA", "0")) == "1")
    return lambda t: all(check(t) for check in checks)


_LIST_ECHO = (
    ("surveyYears", "SURVEY_YEARS", True),
    ("openYears", "OPEN_YEARS", True),
    ("statsField", "STATS_FIELD", False),
    ("statsCode", "STATS_CODE", False),
    ("searchWord", "SEARCH_WORD", False),
    ("searchKind", "SEARCH_KIND", False),
    ("collectArea", "COLLECT_AREA", False),
    ("explanationGetFlg", "EXPLANATION_GET_FLG", False),
    ("statsNameList", "STATS_NAME_LIST", False),
)


def _echo_stats_list(params: dict[str, str]) -> dict[str, Any]:
    echo: dict[str, Any] = {"LANG": params.get("lang") or "J"}
    for name, key, numeric in _LIST_ECHO:
        if params.get(name):
            echo[key] = _number_echo(params[name]) if numeric else params[name]
    echo["DATA_FORMAT"] = "J"
    _paging_echo(echo, params)
    if params.get("updatedDate"):
        echo["UPDATED_DATE"] = params["updatedDate"]
    return echo


def stats_list(store: TableStore, params: dict[str, str], *, date: str | None = None) -> dict:
    """getStatsList over every table the store knows (recorded, generated, listed-only)."""
    root = ENDPOINTS["getStatsList"]
    echo = _echo_stats_list(params)
    try:
        keep = _list_filter(store, params)
        start = _positive(params, "startPosition", 1)
        limit = min(_positive(params, "limit", MAX_LIMIT), MAX_LIMIT)
    except ApiError as exc:
        return envelope(root, exc.status, exc.message, echo, date=date)
    hits = [t for t in store.tables() if keep(t)]
    n, page_info = _page(len(hits), start, limit)
    if n == 0:
        payload = {"DATALIST_INF": {"NUMBER": len(hits)}}
        return envelope(root, 1, MSG_NO_DATA, echo, payload, date=date)
    page = hits[start - 1 : start - 1 + n]
    if _english(params):
        infs = [store.english.table_inf(t) for t in page]
    else:
        infs = [t.table_inf for t in page]
    datalist = {"NUMBER": len(hits), "RESULT_INF": page_info, "TABLE_INF": one_or_many(infs)}
    return envelope(root, 0, MSG_OK, echo, {"DATALIST_INF": datalist}, date=date)


# -- getDataCatalog ------------------------------------------------------------------------


def _catalog_text(entry: dict[str, Any]) -> str:
    dataset = as_dict(entry.get("DATASET"))
    parts = [text(dataset.get("STAT_NAME")) or "", text(dataset.get("ORGANIZATION")) or ""]
    parts.extend(str(v) for v in as_dict(dataset.get("TITLE")).values())
    for resource in as_list(as_dict(entry.get("RESOURCES")).get("RESOURCE")):
        parts.extend(str(v) for v in as_dict(as_dict(resource).get("TITLE")).values())
    return _normalise("\n".join(parts))


def _catalog_formats(entry: dict[str, Any]) -> set[str]:
    resources = as_list(as_dict(entry.get("RESOURCES")).get("RESOURCE"))
    return {str(as_dict(r).get("FORMAT", "")) for r in resources}


def _echo_catalog(params: dict[str, str]) -> dict[str, Any]:
    echo: dict[str, Any] = {"LANG": params.get("lang") or "J"}
    for name, key in (
        ("surveyYears", "SURVEY_YEARS"),
        ("statsCode", "STATS_CODE"),
        ("searchWord", "SEARCH_WORD"),
        ("dataType", "DATA_TYPE"),
        ("catalogId", "CATALOG_ID"),
    ):
        if params.get(name):
            echo[key] = params[name]
    echo["DATA_FORMAT"] = "J"
    _paging_echo(echo, params)
    return echo


def data_catalog(store: TableStore, params: dict[str, str], *, date: str | None = None) -> dict:
    """getDataCatalog over the recorded catalogue entries (default page size 100)."""
    root = ENDPOINTS["getDataCatalog"]
    echo = _echo_catalog(params)
    try:
        start = _positive(params, "startPosition", 1)
        limit = min(_positive(params, "limit", CATALOG_DEFAULT_LIMIT), MAX_LIMIT)
    except ApiError as exc:
        return envelope(root, exc.status, exc.message, echo, date=date)
    entries = store.catalog_entries()
    if params.get("searchWord"):
        matches = search_predicate(params["searchWord"])
        entries = [e for e in entries if matches(_catalog_text(e))]
    if params.get("dataType"):
        wanted = {t.strip() for t in params["dataType"].split(",") if t.strip()}
        entries = [e for e in entries if _catalog_formats(e) & wanted]
    if params.get("catalogId"):
        entries = [e for e in entries if str(e.get("@id")) == params["catalogId"]]
    if params.get("statsCode"):
        code = params["statsCode"]

        def owner(entry: dict[str, Any]) -> set[str]:
            dataset = as_dict(entry.get("DATASET"))
            return {
                str(as_dict(dataset.get("STAT_NAME")).get("@code", "")),
                str(as_dict(dataset.get("ORGANIZATION")).get("@code", "")),
            }

        entries = [e for e in entries if code in owner(e)]
    n, page_info = _page(len(entries), start, limit)
    if n == 0:
        payload = {"DATA_CATALOG_LIST_INF": {"NUMBER": len(entries)}}
        return envelope(root, 1, MSG_NO_DATA, echo, payload, date=date)
    listing = {
        "NUMBER": len(entries),
        "RESULT_INF": page_info,
        "DATA_CATALOG_INF": one_or_many(entries[start - 1 : start - 1 + n]),
    }
    return envelope(root, 0, MSG_OK, echo, {"DATA_CATALOG_LIST_INF": listing}, date=date)


# -- dispatch ------------------------------------------------------------------------------


def echo_for(endpoint: str, params: dict[str, str]) -> dict[str, Any]:
    """The PARAMETER echo an endpoint would send (also used for injected error documents)."""
    if endpoint == "getStatsData":
        return _echo_stats_data(params, parse_narrowing(params, [])[1])
    if endpoint == "getMetaInfo":
        return _echo_meta_info(params)
    if endpoint == "getStatsList":
        return _echo_stats_list(params)
    return _echo_catalog(params)


def error_document(
    endpoint: str, status: int, params: dict[str, str], message: str | None = None
) -> dict[str, Any]:
    """An error response (no payload) for ``endpoint``, e.g. STATUS 100 or an injected 2xx."""
    msg = default_message(status) if message is None else message
    return envelope(ENDPOINTS[endpoint], status, msg, echo_for(endpoint, params))


def respond(
    endpoint: str,
    store: TableStore,
    params: dict[str, str],
    *,
    required_app_id: str | None = None,
    short_by: int = 0,
    ascii_only: bool = True,
) -> dict[str, Any]:
    """The document for one API request (``endpoint`` is a key of :data:`ENDPOINTS`)."""
    app_id = params.get("appId", "")
    if not app_id or (required_app_id is not None and app_id != required_app_id):
        return error_document(endpoint, 100, params)
    if endpoint == "getStatsData":
        return stats_data(store, params, short_by=short_by, ascii_only=ascii_only)
    if endpoint == "getMetaInfo":
        return meta_info(store, params)
    if endpoint == "getStatsList":
        return stats_list(store, params)
    if endpoint == "getDataCatalog":
        return data_catalog(store, params)
    raise KeyError(endpoint)
