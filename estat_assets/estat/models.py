"""Typed views of e-Stat metadata: ``TABLE_INF``, ``CLASS_INF`` and the ``NOTE`` legend.

Parsing tolerates every shape drift the API is known for: object-or-list nodes, ``""`` for empty
containers, ``TITLE`` as a string or ``{"@no", "$"}``, ``SURVEY_DATE`` as an int or a string range,
``@level`` empty, and ``@parentCode`` pointing at a code that is not in the list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from estat_assets.estat.shape import AXES, as_dict, as_list, text


def _code(node: Any) -> str | None:
    code = as_dict(node).get("@code")
    return None if code in (None, "") else str(code)


def _description(node: Any) -> str | None:
    """DESCRIPTION: a string, or parts (``{"TABULATION_CATEGORY_EXPLANATION": …}``) joined."""
    if isinstance(node, dict):
        parts = [text(v) for k, v in node.items() if not k.startswith("@")]
        joined = "\n".join(p for p in parts if p)
        return joined or text(node)
    return text(node)


@dataclass(frozen=True)
class TableInfo:
    """One statistics table as e-Stat describes it."""

    id: str
    title: str | None = None
    stat_code: str | None = None
    stat_name: str | None = None
    gov_org_code: str | None = None
    gov_org: str | None = None
    statistics_name: str | None = None
    cycle: str | None = None
    survey_date: str | None = None
    open_date: str | None = None
    updated_date: str | None = None
    overall_total_number: int | None = None
    synthetic: bool = False
    # e-Stat's statistical field (MAIN_CATEGORY, e.g. 02 人口・世帯) and sub-field, the area the
    # survey covers, and the table's explanation: what ``estat-lake add`` and ``describe`` show.
    main_category_code: str | None = None
    main_category: str | None = None
    sub_category_code: str | None = None
    sub_category: str | None = None
    collect_area: str | None = None
    small_area: str | None = None
    description: str | None = None

    @classmethod
    def parse(cls, node: Any) -> TableInfo:
        d = as_dict(node)
        stat = d.get("STAT_NAME")
        org = d.get("GOV_ORG")
        total = d.get("OVERALL_TOTAL_NUMBER")
        survey = d.get("SURVEY_DATE")
        return cls(
            id=str(d.get("@id", "")),
            title=text(d.get("TITLE")),
            stat_code=as_dict(stat).get("@code"),
            stat_name=text(stat),
            gov_org_code=as_dict(org).get("@code"),
            gov_org=text(org),
            statistics_name=text(d.get("STATISTICS_NAME")),
            cycle=text(d.get("CYCLE")),
            survey_date=None if survey in (None, "") else str(survey),
            open_date=text(d.get("OPEN_DATE")),
            updated_date=text(d.get("UPDATED_DATE")),
            overall_total_number=None if total in (None, "") else int(total),
            synthetic="SYNTHETIC" in d,
            main_category_code=_code(d.get("MAIN_CATEGORY")),
            main_category=text(d.get("MAIN_CATEGORY")),
            sub_category_code=_code(d.get("SUB_CATEGORY")),
            sub_category=text(d.get("SUB_CATEGORY")),
            collect_area=text(d.get("COLLECT_AREA")),
            small_area=text(d.get("SMALL_AREA")),
            description=_description(d.get("DESCRIPTION")),
        )


@dataclass(frozen=True)
class ClassItem:
    """One code of an axis (``CLASS``)."""

    code: str
    name: str
    level: str | None = None
    unit: str | None = None
    parent_code: str | None = None


@dataclass(frozen=True)
class ClassObj:
    """One axis (``CLASS_OBJ``): ``tab``, ``cat01``…``cat15``, ``area`` or ``time``."""

    id: str
    name: str
    items: tuple[ClassItem, ...]
    description: str | None = None

    def codes(self) -> list[str]:
        return [item.code for item in self.items]


@dataclass(frozen=True)
class TableMetadata:
    """A table's description, axes and special-symbol legend."""

    table: TableInfo
    classes: tuple[ClassObj, ...]
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def axes(self) -> list[str]:
        """Axis ids present in this table, in e-Stat order."""
        present = {c.id for c in self.classes}
        return [a for a in AXES if a in present]

    def axis(self, axis_id: str) -> ClassObj | None:
        for c in self.classes:
            if c.id == axis_id:
                return c
        return None


def parse_classes(class_inf: Any) -> tuple[ClassObj, ...]:
    """``CLASS_INF`` → axes; unknown axis ids are kept too (never silently dropped)."""
    objs = []
    for obj in as_list(as_dict(class_inf).get("CLASS_OBJ")):
        obj = as_dict(obj)
        items = tuple(
            ClassItem(
                code=str(c.get("@code", "")),
                name=str(c.get("@name", "")),
                level=c.get("@level") or None,
                unit=c.get("@unit") or None,
                parent_code=c.get("@parentCode") or None,
            )
            for c in (as_dict(x) for x in as_list(obj.get("CLASS")))
        )
        objs.append(
            ClassObj(
                id=str(obj.get("@id", "")),
                name=str(obj.get("@name", "")),
                items=items,
                description=obj.get("@description") or None,
            )
        )
    return tuple(objs)


def parse_notes(data_inf: Any) -> dict[str, str]:
    """``DATA_INF.NOTE`` → {symbol: meaning}. A NOTE may be one object or a list."""
    notes: dict[str, str] = {}
    for note in as_list(as_dict(data_inf).get("NOTE")):
        note = as_dict(note)
        char = note.get("@char")
        if char is not None:
            notes[str(char)] = str(note.get("$", ""))
    return notes


def parse_meta_info(document: dict[str, Any]) -> TableMetadata:
    """A getMetaInfo response → metadata (no legend: getMetaInfo does not carry NOTE)."""
    meta = as_dict(as_dict(document.get("GET_META_INFO")).get("METADATA_INF"))
    return TableMetadata(
        table=TableInfo.parse(meta.get("TABLE_INF")),
        classes=parse_classes(meta.get("CLASS_INF")),
    )
