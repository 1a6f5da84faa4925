"""Which e-Stat tables are new or revised since the last look: the release sensor's logic.

One ``getStatsList`` per watched survey (``statsCode``) with a rolling ``updatedDate`` window
lists the tables updated lately; each table's ``(UPDATED_DATE, OVERALL_TOTAL_NUMBER)`` is compared
with the cursor. A table never seen (a new statsDataId of a watched survey, a declared or added
dataset never loaded) or one whose release changed asks for one load of the whole table; a table
the lake already holds in that very release (``loaded_release``) becomes the baseline. No
getMetaInfo or count requests: a load finds its years itself.

Run keys are ``<dataset>|<UPDATED_DATE>|<OVERALL_TOTAL_NUMBER>``: each release of a table loads
once, whatever the number of ticks that see it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from estat_assets.estat.client import EStatClient
from estat_assets.estat.models import TableInfo

MAX_WINDOW_DAYS = 366
CURSOR_VERSION = 2
JST = timezone(timedelta(hours=9))  # e-Stat's dates are Japanese dates


def release_run_key(dataset_id: str, updated_date: str | None, total: int | None) -> str:
    return f"{dataset_id}|{updated_date or ''}|{total if total is not None else ''}"


def today_jst() -> date:
    return datetime.now(JST).date()


def update_window(today: date, window_days: int, last_poll: str | None) -> str:
    """``updatedDate=yyyymmdd-yyyymmdd``: the last ``window_days`` days, and since the last poll."""
    start = today - timedelta(days=max(0, window_days))
    if last_poll:
        with contextlib.suppress(ValueError):
            start = min(start, date.fromisoformat(last_poll) - timedelta(days=1))
    start = max(start, today - timedelta(days=MAX_WINDOW_DAYS))
    return f"{start:%Y%m%d}-{today:%Y%m%d}"


def load_cursor(raw: str | None) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        data = {}
    if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
        data = {}
    data.setdefault("version", CURSOR_VERSION)
    data.setdefault("tables", {})
    data.setdefault("last_poll", None)
    return data


def dump_cursor(cursor: dict[str, Any]) -> str:
    return json.dumps(cursor, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class ReleaseRun:
    dataset_id: str
    run_key: str
    tags: dict[str, str]


@dataclass
class ReleaseDecision:
    """What one poll decided: new dataset partitions, loads to run, notes, the next cursor."""

    cursor: dict[str, Any]
    new_datasets: list[str] = field(default_factory=list)
    runs: list[ReleaseRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _state(info: TableInfo) -> dict[str, Any]:
    return {
        "updated_date": info.updated_date,
        "overall_total_number": info.overall_total_number,
        "survey": info.stat_code,
    }


def evaluate_releases(
    surveys: Iterable[str],
    datasets: Iterable[str],
    client: EStatClient,
    cursor: dict[str, Any],
    known_datasets: Iterable[str],
    loaded_release: Callable[[str], tuple[str | None, int | None] | None] = lambda _: None,
    today: date | None = None,
    window_days: int = 7,
) -> ReleaseDecision:
    """Poll e-Stat and compare with ``cursor``. Raises EStatError/httpx errors if e-Stat is down.

    ``surveys`` are the domain's watched survey codes; ``datasets`` the datasets it declares (or
    had added); ``known_datasets`` the dataset partitions that already exist.
    """
    today = today or today_jst()
    tables: dict[str, Any] = dict(cursor["tables"])
    known = set(known_datasets)
    declared = list(dict.fromkeys(datasets))
    decision = ReleaseDecision(cursor={**cursor, "tables": tables})
    window = update_window(today, window_days, cursor.get("last_poll"))
    watched = [str(tables[d]["survey"]) for d in declared if tables.get(d, {}).get("survey")]
    listed: dict[str, TableInfo] = {}
    for code in dict.fromkeys([*surveys, *watched]):
        for info in client.iter_stats_list(statsCode=code, updatedDate=window):
            if info.id:
                listed.setdefault(info.id, info)
    # Declared datasets the lake has never seen: load them even if not updated lately.
    for dataset_id in declared:
        if (
            dataset_id not in tables
            and dataset_id not in listed
            and (dataset_id not in known or loaded_release(dataset_id) is None)
        ):
            listed[dataset_id] = TableInfo(id=dataset_id)

    for dataset_id in sorted(listed):
        info = listed[dataset_id]
        previous = tables.get(dataset_id)
        release = (info.updated_date, info.overall_total_number)
        if previous is None and info.updated_date and loaded_release(dataset_id) == release:
            tables[dataset_id] = _state(info)
            decision.notes.append(f"{dataset_id}: already loaded ({info.updated_date})")
            continue
        if (
            previous is not None
            and (
                previous.get("updated_date"),
                previous.get("overall_total_number"),
            )
            == release
        ):
            continue
        if info.overall_total_number == 0:
            tables[dataset_id] = _state(info)
            decision.notes.append(f"{dataset_id}: listed with no rows; not loaded")
            continue
        reason = "new" if dataset_id not in known else "revised"
        if dataset_id not in known:
            decision.new_datasets.append(dataset_id)
            known.add(dataset_id)
        total = info.overall_total_number
        decision.runs.append(
            ReleaseRun(
                dataset_id,
                release_run_key(dataset_id, info.updated_date, total),
                {
                    "estat/dataset_id": dataset_id,
                    "estat/updated_date": str(info.updated_date or ""),
                    "estat/overall_total_number": str(total if total is not None else ""),
                    "estat/release": reason,
                },
            )
        )
        tables[dataset_id] = _state(info)
        decision.notes.append(f"{dataset_id}: {reason} release {info.updated_date or '?'}")
    decision.cursor["last_poll"] = today.isoformat()
    return decision
