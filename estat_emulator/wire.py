"""JSON on the wire, the way e-Stat writes it.

e-Stat sends compact JSON with every non-ASCII character (and ``<>&='``) escaped as ``\\uXXXX`` in
upper-case hex. Clients must cope with that, so the emulator does the same by default. Large VALUE
arrays are serialised separately (see :class:`Raw`) so that escaping never rescans megabytes.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson

_ESCAPE = re.compile(r"[^\x00-\x7f]+|[<>&=']")
_SENTINEL = "\x00estat-raw-{}\x00"


class Raw:
    """Already serialised JSON spliced into a document as is (used for big VALUE arrays)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


@lru_cache(maxsize=65536)
def _escape_run(run: str) -> str:
    """``\\uXXXX`` escapes (UTF-16 code units, upper case) for a run of characters."""
    units = run.encode("utf-16-be")
    return "".join(f"\\u{units[i]:02X}{units[i + 1]:02X}" for i in range(0, len(units), 2))


def escape_text(text: str) -> str:
    """A string with e-Stat's escapes applied (its JSON string content, without quotes)."""
    return _ESCAPE.sub(lambda m: _escape_run(m.group()), text)


def ascii_escape(data: bytes) -> bytes:
    """Escape non-ASCII and ``<>&='`` inside JSON text; valid because they only occur in strings."""
    text = data.decode("utf-8")
    if text.isascii() and not any(c in text for c in "<>&='"):
        return data
    return escape_text(text).encode("ascii")


def escape_known(data: bytes, vocabulary: tuple[str, ...]) -> bytes:
    """Escape a known small set of non-ASCII strings with ``bytes.replace`` (fast on big pages)."""
    for word in vocabulary:
        plain = orjson.dumps(word)[1:-1]
        data = data.replace(plain, escape_text(plain.decode()).encode("ascii"))
    return data


def dumps(document: Any, *, ascii_only: bool = True) -> bytes:
    """Serialise a response document compactly; :class:`Raw` nodes are spliced in unchanged."""
    raws: list[bytes] = []

    def default(obj: Any) -> str:
        if isinstance(obj, Raw):
            raws.append(obj.data)
            return _SENTINEL.format(len(raws) - 1)
        raise TypeError(f"cannot serialise {type(obj).__name__}")

    body = orjson.dumps(document, default=default)
    if ascii_only:
        body = ascii_escape(body)
    for i, raw in enumerate(raws):
        marker = orjson.dumps(_SENTINEL.format(i))
        body = body.replace(marker, raw, 1)
    return body


def one_or_many(items: list[Any]) -> Any:
    """XML→JSON rendering of a repeated element: one element is an object, several a list."""
    if len(items) == 1:
        return items[0]
    return items
