"""Helpers for the XML-shaped JSON e-Stat returns.

e-Stat converts XML to JSON: a repeated element becomes a list, a single one an object, an empty
container may be ``""``, and an element with attributes carries its text in ``"$"``. Every reader in
this project goes through these helpers instead of indexing the JSON directly.
"""

from __future__ import annotations

from typing import Any

ROOTS = ("GET_STATS_LIST", "GET_META_INFO", "GET_STATS_DATA", "GET_DATA_CATALOG")

# Axis ids in the order e-Stat uses them in CLASS_INF and in VALUE attributes.
AXES: tuple[str, ...] = ("tab", *(f"cat{i:02d}" for i in range(1, 16)), "area", "time")


def as_list(node: Any) -> list[Any]:
    """A repeatable node as a list: ``None``/``""`` → [], an object → [object], a list as is."""
    if node is None or node == "":
        return []
    if isinstance(node, list):
        return node
    return [node]


def as_dict(node: Any) -> dict[str, Any]:
    """A container node as a dict: ``None``/``""`` → {}."""
    if isinstance(node, dict):
        return node
    return {}


def text(node: Any) -> str | None:
    """The text of an element that may be a plain value or ``{"@attr": ..., "$": text}``."""
    if node is None or node == "":
        return None
    if isinstance(node, dict):
        value = node.get("$")
        return None if value is None else str(value)
    return str(node)


def root_of(document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The root element name and body of a response (``GET_STATS_DATA`` and so on)."""
    for name in ROOTS:
        if name in document:
            return name, as_dict(document[name])
    raise ValueError(f"not an e-Stat response: root keys {sorted(document)[:5]}")
