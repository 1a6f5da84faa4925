"""Hypothesis strategies for e-Stat-shaped getStatsData pages with the API's known shape drift.

Every repeatable node (CLASS_OBJ, CLASS, NOTE, VALUE) is independently an object when it holds one
element or a list; pages are compact, pretty-printed or ASCII-escaped like the real wire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import strategies as st

from estat_assets.estat.shape import AXES

TIME_CODES = ["2020000000", "2020100000", "2021000101", "2021001212", "1994000103", "1994010000"]
LEGEND_POOL = [
    ("***", "調査又は集計していないもの"),
    ("-", "データが得られないもの"),
    ("X", "数値が秘匿されているもの"),
    ("…", "該当数値なし"),
    ("0:00", "時刻"),
    ("9:59", "時刻"),
    ("0", "単位未満"),
]


@dataclass
class Generated:
    pages: list[bytes]
    values: list[dict[str, str]]  # every VALUE in page order
    classes: dict[str, list[dict[str, str]]]  # axis → CLASS items
    notes: dict[str, str]
    meta_on_first_page: bool


def _node(items: list[Any], as_object: bool) -> Any:
    return items[0] if as_object and len(items) == 1 else items


def _encode(doc: dict, style: str) -> bytes:
    if style == "pretty":
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    if style == "ascii":
        return json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode()
    return orjson.dumps(doc)


numbers = st.one_of(
    st.integers(-(10**15), 10**15).map(str),
    st.decimals(
        min_value=-(10**9), max_value=10**9, places=3, allow_nan=False, allow_infinity=False
    ).map(lambda d: format(d, "f")),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
)


@st.composite
def responses(draw) -> Generated:
    axes = draw(st.lists(st.sampled_from(AXES), min_size=1, max_size=5, unique=True))
    axes = [a for a in AXES if a in axes]
    classes: dict[str, list[dict[str, str]]] = {}
    for axis in axes:
        if axis == "time":
            codes = draw(st.lists(st.sampled_from(TIME_CODES), min_size=1, max_size=3, unique=True))
        else:
            k = draw(st.integers(1, 3))
            codes = [f"{axis[:1].upper()}{i:02d}" for i in range(k)]
        items = []
        for i, code in enumerate(codes):
            item = {"@code": code, "@name": f"{axis}名{code}", "@level": str(1 + (i > 0))}
            if i > 0 and draw(st.booleans()):
                item["@parentCode"] = codes[0] if draw(st.booleans()) else "MISSING"
            if draw(st.integers(0, 3)) == 0:
                item["@unit"] = "人"
            items.append(item)
        classes[axis] = items
    legend = dict(draw(st.lists(st.sampled_from(LEGEND_POOL), max_size=4, unique=True)))
    value_text = st.one_of(
        numbers,
        st.sampled_from(sorted(legend) or ["***"]),
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6),
    )

    n = draw(st.integers(0, 30))
    values = []
    for _ in range(n):
        v: dict[str, str] = {}
        for axis in axes:
            roll = draw(st.integers(0, 30))
            if roll == 0:
                continue  # attribute missing: a null key
            if roll == 1:
                v[f"@{axis}"] = "NOT_IN_CLASS"
            else:
                v[f"@{axis}"] = draw(st.sampled_from([i["@code"] for i in classes[axis]]))
        if draw(st.integers(0, 4)) == 0:
            v["@unit"] = draw(st.sampled_from(["千人", "ｈａ", "%"]))
        v["$"] = draw(value_text)
        values.append(v)
    if values and draw(st.booleans()):
        values.append(dict(draw(st.sampled_from(values))))  # a duplicate key

    meta_on_first_page = draw(st.booleans())
    sizes = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
    chunks, start = [], 0
    for size in sizes:
        chunks.append(values[start : start + size])
        start += size
    if start < len(values):
        chunks[-1] = chunks[-1] + values[start:]
    chunks = [c for c in chunks if c] or [[]]  # e-Stat sends no empty middle page
    pages = []
    for page_no, chunk in enumerate(chunks):
        data: dict[str, Any] = {
            "RESULT_INF": {"TOTAL_NUMBER": len(values)},
            "TABLE_INF": {"@id": "0000000001", "TITLE": "テスト", "UPDATED_DATE": "2024-01-01"},
        }
        if page_no == 0 and meta_on_first_page:
            objs = [
                {"@id": a, "@name": f"軸{a}", "CLASS": _node(classes[a], draw(st.booleans()))}
                for a in axes
            ]
            data["CLASS_INF"] = {"CLASS_OBJ": _node(objs, draw(st.booleans()))}
        notes = [{"@char": c, "$": m} for c, m in legend.items()]
        if chunk:
            data_inf: dict[str, Any] = {}
            if notes:
                data_inf["NOTE"] = _node(notes, draw(st.booleans()))
            data_inf["VALUE"] = _node(chunk, draw(st.booleans()))
            data["DATA_INF"] = data_inf
        else:
            data["DATA_INF"] = ""
        doc = {"GET_STATS_DATA": {"RESULT": {"STATUS": 0}, "STATISTICAL_DATA": data}}
        pages.append(_encode(doc, draw(st.sampled_from(["compact", "pretty", "ascii"]))))
    return Generated(pages, values, classes, legend, meta_on_first_page)


def meta_info(gen: Generated) -> dict:
    """A getMetaInfo document for the generated table."""
    objs = [{"@id": a, "@name": f"軸{a}", "CLASS": items} for a, items in gen.classes.items()]
    return {
        "GET_META_INFO": {
            "RESULT": {"STATUS": 0},
            "METADATA_INF": {
                "TABLE_INF": {"@id": "0000000001", "TITLE": "テスト"},
                "CLASS_INF": {"CLASS_OBJ": objs},
            },
        }
    }
