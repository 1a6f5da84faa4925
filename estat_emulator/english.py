"""English names (``lang=E``) for the emulator's tables, from data files next to the samples.

Why: real e-Stat answers ``lang=E`` for many tables, with English TABLE_INF texts, CLASS_OBJ and
CLASS names in the same shapes. The English texts are data (``estat_assets/samples/english/``),
indexed by content like every sample: a JSON document with root ``ENGLISH_NAMES`` holding either

* one table's names: ``{"statsDataId": "0000020202", "TABLE_INF": {"TITLE": "…", "STAT_NAME": "…",
  "TITLE_SPEC": {"TABLE_NAME": "…"}, …}, "CLASS_OBJ": {"cat01": {"@name": "…", "@description": "…",
  "CLASS": {"B1101": "…"}}}, "NOTE": {"***": "…"}}`` (``{@code, $}`` fields are given as text), or
* a shared vocabulary: ``{"vocabulary": {"GOV_ORG": {code: …}, "STAT_NAME": {code: …},
  "MAIN_CATEGORY": {code: …}, "SUB_CATEGORY": {main+sub code: …}, "CYCLE": {ja: …},
  "COLLECT_AREA": {ja: …}, "names": {ja: …}, "patterns": [[regex, replacement], …]}}``.

A text is looked up in the table's own file, then in the files of the tables its metadata comes
from (a generated table's base; a borrowed axis's table), then in the vocabulary: by code, by the
exact Japanese text, by patterns (``1980年度`` → ``FY1980``), and a name of space-separated parts
(``北海道 札幌市``) part by part when every part is known.

**No English name**: the Japanese text is kept. That is what e-Stat most plausibly does (its English
pages show Japanese labels for items nobody translated, and the API fills the same fields from the
same database); an empty or invented name would lose information a client needs. Units
(``@unit``), VALUE rows and the RESULT messages stay as they are. A generated table's title keeps
its 【合成データ】 prefix in English too, so the label means one thing in both languages. ``lang=J``
(or none) never comes here: Japanese responses are the untouched documents.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from estat_assets.estat.shape import as_dict

from .generate import SYNTHETIC_LABEL
from .table import Axis, Selection, Table, class_inf, search_text

ROOT = "ENGLISH_NAMES"
_CODED = ("STAT_NAME", "GOV_ORG", "MAIN_CATEGORY", "SUB_CATEGORY")
_TEXTS = ("STATISTICS_NAME", "TITLE", "CYCLE", "COLLECT_AREA")
_PARTS = ("STATISTICS_NAME_SPEC", "DESCRIPTION", "TITLE_SPEC")
_LABELLED = ("STATISTICS_NAME", "TITLE")
_SPACES = re.compile(r"[ \u3000]+")


def is_english_document(document: Any) -> bool:
    return isinstance(document, dict) and ROOT in document


class EnglishNames:
    """All English names the store knows, and the localised views built from them (cached)."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Any]] = {}
        self._vocabulary: dict[str, dict[str, str]] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        self._cache: dict[tuple[str, int, int, str], Any] = {}
        self._lock = threading.Lock()

    def add(self, document: dict[str, Any]) -> None:
        """Index one ``ENGLISH_NAMES`` document (raises ValueError if it is malformed)."""
        body = document.get(ROOT)
        if not isinstance(body, dict):
            raise ValueError(f"{ROOT} must be an object")
        with self._lock:
            if "vocabulary" in body:
                self._add_vocabulary(as_dict(body["vocabulary"]))
            if "statsDataId" in body:
                table_id = str(body["statsDataId"])
                self._tables[table_id] = {
                    "TABLE_INF": as_dict(body.get("TABLE_INF")),
                    "CLASS_OBJ": as_dict(body.get("CLASS_OBJ")),
                    "NOTE": as_dict(body.get("NOTE")),
                }
            elif "vocabulary" not in body:
                raise ValueError(f"{ROOT} needs statsDataId or vocabulary")
            self._cache.clear()

    def _add_vocabulary(self, vocabulary: dict[str, Any]) -> None:
        for key, value in vocabulary.items():
            if key == "patterns":
                for pattern, replacement in value:
                    self._patterns.append((re.compile(pattern), str(replacement)))
            elif isinstance(value, dict):
                self._vocabulary.setdefault(key, {}).update(
                    (str(k), str(v)) for k, v in value.items()
                )
            else:
                raise ValueError(f"vocabulary.{key} must be an object")

    def __contains__(self, table_id: object) -> bool:
        return table_id in self._tables

    # -- texts ----------------------------------------------------------------------------

    def name(self, japanese: str) -> str | None:
        """The vocabulary's English for a Japanese text (exact, pattern, or part by part)."""
        names = self._vocabulary.get("names", {})
        if japanese in names:
            return names[japanese]
        for pattern, replacement in self._patterns:
            if pattern.fullmatch(japanese):
                return pattern.sub(replacement, japanese)
        parts = _SPACES.split(japanese.strip())
        if len(parts) > 1:
            english = [self.name(p) for p in parts]
            if all(english):
                return " ".join(e for e in english if e)
        return None

    def _files(self, ids: tuple[str, ...]) -> list[dict[str, Any]]:
        return [self._tables[i] for i in ids if i in self._tables]

    # -- views ----------------------------------------------------------------------------

    def _cached(self, table: Table, what: str, build: Any) -> Any:
        key = (table.id, id(table), table.version, what)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = build()
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = value
        return value

    def table_inf(self, table: Table) -> dict[str, Any]:
        """TABLE_INF with English texts where known (same fields, same shapes)."""
        return self._cached(table, "inf", lambda: self._table_inf(table))

    def _table_inf(self, table: Table) -> dict[str, Any]:
        ids = table.english_inf_ids or (table.id,)
        out = dict(table.table_inf)
        for key, value in table.table_inf.items():
            own = ids[:1] if key in table.overridden_fields else ids
            given = [f["TABLE_INF"][key] for f in self._files(own) if key in f["TABLE_INF"]]
            if key in _CODED and isinstance(value, dict):
                english = given[0] if given else self._coded(key, table.table_inf)
                if english is not None:
                    out[key] = {**value, "$": str(english)}
            elif key in _TEXTS:
                out[key] = self._text(key, value, given)
            elif key in _PARTS and isinstance(value, dict):
                parts = [g for g in given if isinstance(g, dict)]
                out[key] = {
                    k: next((str(p[k]) for p in parts if k in p), None) or self.name(str(v)) or v
                    for k, v in value.items()
                }
        return out

    def _coded(self, key: str, inf: dict[str, Any]) -> str | None:
        code = str(as_dict(inf.get(key)).get("@code", ""))
        if key == "SUB_CATEGORY":
            code = str(as_dict(inf.get("MAIN_CATEGORY")).get("@code", "")) + code
        return self._vocabulary.get(key, {}).get(code)

    def _text(self, key: str, value: Any, given: list[Any]) -> Any:
        japanese = str(value.get("$", "")) if isinstance(value, dict) else str(value)
        labelled = key in _LABELLED and japanese.startswith(SYNTHETIC_LABEL)
        plain = japanese[len(SYNTHETIC_LABEL) :] if labelled else japanese
        english = str(given[0]) if given else None
        if english is None:
            english = self._vocabulary.get(key, {}).get(plain) or self.name(plain)
        if english is None:
            return value
        if labelled:
            english = SYNTHETIC_LABEL + english
        return {**value, "$": english} if isinstance(value, dict) else english

    def axes(self, table: Table) -> list[Axis]:
        """The table's axes with English CLASS_OBJ/CLASS names where known."""
        return self._cached(table, "axes", lambda: self._axes(table))

    def _axes(self, table: Table) -> list[Axis]:
        files = self._files(table.english_ids or (table.id,))
        out = []
        for axis in table.axes:
            given = [as_dict(f["CLASS_OBJ"].get(axis.id)) for f in files]
            given = [g for g in given if g]
            names = [as_dict(g.get("CLASS")) for g in given]
            attrs = dict(axis.attrs)
            for key in ("@name", "@description"):
                if key in attrs:
                    english = next((str(g[key]) for g in given if key in g), None)
                    attrs[key] = english or self.name(str(attrs[key])) or attrs[key]
            items = []
            for item in axis.items:
                code = str(item.get("@code", ""))
                japanese = str(item.get("@name", ""))
                english = next((str(n[code]) for n in names if code in n), None)
                english = english or self.name(japanese)
                items.append({**item, "@name": english} if english else item)
            out.append(Axis(axis.id, attrs, items))
        return out

    def class_inf(self, table: Table, selection: Selection | None = None) -> dict[str, Any]:
        return class_inf(self.axes(table), selection)

    def notes(self, table: Table) -> list[dict[str, Any]]:
        """The NOTE legend with English explanations where known."""
        return self._cached(table, "notes", lambda: self._notes(table))

    def _notes(self, table: Table) -> list[dict[str, Any]]:
        files = self._files(table.english_ids or (table.id,))
        out = []
        for note in table.notes:
            char = str(note.get("@char", ""))
            english = next((str(f["NOTE"][char]) for f in files if char in f["NOTE"]), None)
            english = english or self.name(str(note.get("$", "")))
            out.append({**note, "$": english} if english else note)
        return out

    def search_text(self, table: Table) -> str:
        """What an English searchWord is matched against."""
        return self._cached(
            table, "search", lambda: search_text(self.table_inf(table), self.axes(table))
        )
