"""e-Stat time codes (``@time``) parsed structurally.

A time code is ten digits, ``YYYY`` + six: ``YYYY000000`` a calendar year, ``YYYY100000`` a fiscal
year (年度), ``YYYY00MMMM`` a month, ``YYYY00SSEE`` (SS≠EE) a quarter. Anything else keeps its code
and label but gets period kind ``other``: we never guess a month or a quarter.
"""

from __future__ import annotations

from dataclasses import dataclass

YEAR, FISCAL_YEAR, MONTH, QUARTER, OTHER = "year", "fiscal_year", "month", "quarter", "other"
_QUARTER_STARTS = {1: 1, 4: 2, 7: 3, 10: 4}


@dataclass(frozen=True)
class Period:
    year: int | None
    kind: str
    month: int | None = None
    quarter: int | None = None


def parse_time_code(code: str | None) -> Period:
    """One code → its period. Pure and total: unknown shapes give kind ``other``."""
    if code is None or len(code) != 10 or not code.isdigit():
        return Period(None, OTHER)
    year, rest = int(code[:4]), code[4:]
    if rest == "000000":
        return Period(year, YEAR)
    if rest == "100000":
        return Period(year, FISCAL_YEAR)
    if rest.startswith("00"):
        start, end = int(rest[2:4]), int(rest[4:6])
        if 1 <= start <= 12 and start == end:
            return Period(year, MONTH, month=start)
        if start in _QUARTER_STARTS and end == start + 2:
            return Period(year, QUARTER, quarter=_QUARTER_STARTS[start])
    return Period(year, OTHER)


def year_of(code: str) -> int | None:
    """The year a time code belongs to (used to group codes into year partitions)."""
    return parse_time_code(code).year
