"""The keys of the lake, checked strictly: a statsDataId and a partition year.

Both are ASCII digit strings of a fixed length. ``str.isdigit`` and ``\\d`` also accept
full-width digits (``１９８５``), and ``$`` in a regex accepts a trailing newline, so neither is
used: a key that only looks right would name a partition or a request nobody can find again.
"""

from __future__ import annotations

import re

from estat_assets.estat.errors import InvalidDatasetIdError, InvalidYearError

_DATASET_ID = re.compile(r"[0-9]{10}")
_YEAR = re.compile(r"[0-9]{4}")


def _not_a_string(what: str, value: object, example: str) -> str:
    kind = type(value).__name__
    if isinstance(value, int) and not isinstance(value, bool):
        return (
            f"{what} {value!r} is a number ({kind}), not a string: quote it, e.g. '{example}' "
            "(YAML reads an unquoted 0000020202 as the octal number 8322)"
        )
    return f"{what} {value!r} is a {kind}, not a string: quote it, e.g. '{example}'"


def _why(value: str, length: int) -> str:
    """A short reason a string is not ``length`` ASCII digits."""
    if value != value.strip():
        return "surrounding whitespace"
    if any(not c.isascii() for c in value):
        return "non-ASCII characters (full-width digits?)"
    if not value.isdigit():
        return "characters other than digits"
    return f"{len(value)} digits, not {length}"


def check_dataset_id(stats_data_id: object) -> str:
    """The id itself if it is exactly ten ASCII digits; otherwise :class:`InvalidDatasetIdError`.

    Called before spending a request on an id. Not a string (e.g. an int that YAML read from an
    unquoted id) is refused with a message that says to quote it.
    """
    if not isinstance(stats_data_id, str):
        raise InvalidDatasetIdError(_not_a_string("statsDataId", stats_data_id, "0003065345"))
    if not _DATASET_ID.fullmatch(stats_data_id):
        raise InvalidDatasetIdError(
            f"{stats_data_id!r} is not a valid statsDataId ({_why(stats_data_id, 10)})"
        )
    return stats_data_id


def canonical_year(value: str) -> str:
    """The year itself if it is exactly four ASCII digits; otherwise :class:`InvalidYearError`.

    No spaces, no sign, no full-width digits, no fifth digit (``01985``): the year is a partition
    key and is compared as a string.
    """
    if not isinstance(value, str):
        raise InvalidYearError(_not_a_string("year", value, "2020"))
    if not _YEAR.fullmatch(value):
        raise InvalidYearError(f"{value!r} is not a year ({_why(value, 4)})")
    return value


def parse_years(spec: str) -> list[str]:
    """Years from a CLI option or tag: ``2011``, ``2011,2015``, ``2010-2013`` or a mix of them.

    Returns them sorted and unique. Anything else (spaces, an empty item, a reversed range, a year
    that is not four ASCII digits) is refused with one :class:`InvalidYearError`.
    """
    if not isinstance(spec, str):
        raise InvalidYearError(_not_a_string("year list", spec, "2010-2013"))
    years: set[int] = set()
    for item in spec.split(","):
        bounds = item.split("-")
        if len(bounds) > 2 or not all(_YEAR.fullmatch(b) for b in bounds):
            raise InvalidYearError(
                f"{spec!r} is not a year, list or range: {item!r} is not YYYY or YYYY-YYYY"
            )
        first, last = int(bounds[0]), int(bounds[-1])
        if first > last:
            raise InvalidYearError(f"{spec!r}: the range {item!r} runs backwards")
        years.update(range(first, last + 1))
    return [f"{y:04d}" for y in sorted(years)]
