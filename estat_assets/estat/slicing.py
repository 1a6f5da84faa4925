"""How a table is cut into year partitions, from its own metadata.

A year partition of a table is the set of its time codes whose year is that year (a year, its
fiscal year, its months and quarters). A table without a time axis is one partition: the year of
its survey date (or of its open date), fetched whole. Time codes with no readable year go to
the partition ``0000`` rather than being dropped.
"""

from __future__ import annotations

from estat_assets.conform.timecodes import year_of
from estat_assets.estat.models import TableMetadata

MAX_CODES_PER_REQUEST = 100  # e-Stat's limit for cdXxx lists


def survey_year(meta: TableMetadata) -> str | None:
    for value in (meta.table.survey_date, meta.table.open_date):
        if value and value[:4].isdigit() and value[:4] != "0000" and int(value[:4]) > 0:
            return value[:4]
    return None


def year_slices(meta: TableMetadata) -> dict[str, list[str]]:
    """year → the time codes of that year, in CLASS order. ``[]`` means "the whole table"."""
    time_axis = meta.axis("time")
    if time_axis is None:
        year = survey_year(meta)
        return {year: []} if year else {}
    slices: dict[str, list[str]] = {}
    for code in time_axis.codes():
        year = year_of(code)
        # A code whose year cannot be read is kept, never dropped: it goes to year 0000.
        slices.setdefault(f"{year or 0:04d}", []).append(code)
    return slices


def time_filter(meta: TableMetadata, codes: list[str]) -> dict[str, str]:
    """The getStatsData narrowing for one year slice (``cdTime``, or a From/To range if long)."""
    if not codes:
        return {}
    if len(codes) <= MAX_CODES_PER_REQUEST:
        return {"cdTime": ",".join(codes)}
    return {"cdTimeFrom": codes[0], "cdTimeTo": codes[-1]}
