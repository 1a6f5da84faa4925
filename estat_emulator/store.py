"""The table store: recorded responses indexed by content, plus generated tables.

Why by content: file names are for people; what a file holds is given by its root element
(GET_STATS_LIST, GET_META_INFO, GET_STATS_DATA, GET_DATA_CATALOG, GENERATED_TABLE or ENGLISH_NAMES)
and by TABLE_INF/@id. Several recordings of one table are merged: the richest/newest TABLE_INF, the
fullest CLASS_INF (getMetaInfo's over a getStatsData's, which may be narrowed to the requested
codes), the NOTE legend and the union of VALUE rows. The table is then served as exactly those rows.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from estat_assets.estat.shape import as_dict, as_list, root_of

from .english import EnglishNames, is_english_document
from .generate import GeneratedSpec, GeneratedTable, build_generated
from .recorded import RecordedTable, row_key
from .release import Release
from .table import Axis, ListedTable, Table, axes_from_rows

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(str(resources.files("estat_assets").joinpath("samples")))

_CLASS_FROM_META = 3
_CLASS_FROM_DATA = 2
_CLASS_FROM_NARROWED_DATA = 1


@dataclass
class _Pending:
    """Everything recorded about one table id, with a rank per candidate (higher wins)."""

    table_infs: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    class_objs: list[tuple[tuple[Any, ...], list[dict[str, Any]]]] = field(default_factory=list)
    notes: list[tuple[tuple[Any, ...], list[dict[str, Any]]]] = field(default_factory=list)
    rows: dict[tuple[tuple[str, str], ...], tuple[str, dict[str, Any]]] = field(
        default_factory=dict
    )


def _best(candidates: list[tuple[tuple[Any, ...], Any]]) -> Any:
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def _is_narrowed(parameter: dict[str, Any]) -> bool:
    """True when a getStatsData request narrowed codes, so its CLASS_INF may be partial."""
    cond = as_dict(parameter.get("NARROWING_COND"))
    return any(k.startswith(("CODE_", "LEVEL_")) for k in cond)


def _next_day(value: str) -> str:
    try:
        return (date.fromisoformat(value) + timedelta(days=1)).isoformat()
    except ValueError:
        return datetime.now(timezone(timedelta(hours=9))).date().isoformat()


class TableStore:
    """Tables by statsDataId (recorded, generated, listed-only) and the data catalogue."""

    def __init__(self, *, keep_recorded_totals: bool = False) -> None:
        """``keep_recorded_totals``: keep a recorded OVERALL_TOTAL_NUMBER instead of the row count.

        By default a recorded table's OVERALL_TOTAL_NUMBER is set to the number of rows served, so
        the emulated world is self-consistent (an unnarrowed TOTAL_NUMBER equals it).
        """
        self.keep_recorded_totals = keep_recorded_totals
        self._tables: dict[str, Table] = {}
        self._pending: dict[str, _Pending] = {}
        self._catalog: dict[str, tuple[str, dict[str, Any]]] = {}
        self.english = EnglishNames()
        self._lock = threading.RLock()

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_directory(
        cls, path: str | Path, *, keep_recorded_totals: bool = False, strict: bool = False
    ) -> TableStore:
        """Load every ``*.json`` under ``path`` (recursively), whatever the files are called."""
        store = cls(keep_recorded_totals=keep_recorded_totals)
        store.load_directory(path, strict=strict)
        return store

    @classmethod
    def default(cls) -> TableStore:
        """The package's own samples (recordings + generated specs): what the demo serves."""
        return cls.from_directory(SAMPLES_DIR)

    def load_directory(self, path: str | Path, *, strict: bool = False) -> None:
        """Index all JSON files under ``path``; unreadable or foreign files are skipped."""
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"not a directory: {root}")
        documents: list[tuple[str, Any]] = []
        for file in sorted(root.rglob("*.json")):
            try:
                documents.append((str(file), orjson.loads(file.read_bytes())))
            except (OSError, orjson.JSONDecodeError) as exc:
                if strict:
                    raise
                log.warning("skipping %s: %s", file, exc)
        self.load_documents(documents, strict=strict)

    def load_documents(self, documents: Iterable[tuple[str, Any]], *, strict: bool = False) -> None:
        """Index parsed documents ``(source, document)``: recordings first, then generator specs.

        Specs are built in statsDataId order, so a spec may borrow an axis from a generated
        table with a smaller id.
        """
        specs: list[tuple[str, dict[str, Any]]] = []
        touched: set[str] = set()
        with self._lock:
            for source, document in documents:
                if not isinstance(document, dict):
                    continue
                if "GENERATED_TABLE" in document:
                    specs.append((source, document))
                    continue
                if is_english_document(document):
                    try:
                        self.english.add(document)
                    except (ValueError, TypeError, re.error) as exc:
                        if strict:
                            raise
                        log.warning("skipping English names %s: %s", source, exc)
                    continue
                try:
                    touched |= self._index(document)
                except ValueError:
                    log.debug("skipping %s: not an e-Stat response", source)
            for table_id in touched:
                self._build(table_id)
            specs.sort(key=lambda s: str(s[1]["GENERATED_TABLE"].get("id", "")))
            for source, document in specs:
                try:
                    self.add_generated(document)
                except ValueError as exc:
                    if strict:
                        raise
                    log.warning("skipping generator spec %s: %s", source, exc)

    def _index(self, document: dict[str, Any]) -> set[str]:
        root, body = root_of(document)
        result = as_dict(body.get("RESULT"))
        if result.get("STATUS") not in (0, "0"):
            return set()
        recorded_at = str(result.get("DATE", ""))
        parameter = as_dict(body.get("PARAMETER"))
        touched: set[str] = set()

        def add_table_inf(inf: Any) -> _Pending | None:
            if not isinstance(inf, dict) or not inf.get("@id"):
                return None
            table_id = str(inf["@id"])
            pending = self._pending.setdefault(table_id, _Pending())
            rank = (str(inf.get("UPDATED_DATE", "")), len(inf), recorded_at)
            pending.table_infs.append((rank, inf))
            touched.add(table_id)
            return pending

        if root == "GET_STATS_LIST":
            for inf in as_list(as_dict(body.get("DATALIST_INF")).get("TABLE_INF")):
                add_table_inf(inf)
        elif root == "GET_META_INFO":
            meta = as_dict(body.get("METADATA_INF"))
            pending = add_table_inf(meta.get("TABLE_INF"))
            objs = as_list(as_dict(meta.get("CLASS_INF")).get("CLASS_OBJ"))
            if pending is not None and objs:
                pending.class_objs.append(((_CLASS_FROM_META, recorded_at), objs))
        elif root == "GET_STATS_DATA":
            data = as_dict(body.get("STATISTICAL_DATA"))
            pending = add_table_inf(data.get("TABLE_INF"))
            if pending is None:
                return touched
            objs = as_list(as_dict(data.get("CLASS_INF")).get("CLASS_OBJ"))
            if objs:
                rank = _CLASS_FROM_NARROWED_DATA if _is_narrowed(parameter) else _CLASS_FROM_DATA
                pending.class_objs.append(((rank, recorded_at), objs))
            data_inf = as_dict(data.get("DATA_INF"))
            notes = [n for n in as_list(data_inf.get("NOTE")) if isinstance(n, dict)]
            if notes:
                pending.notes.append(((len(notes), recorded_at), notes))
            for row in as_list(data_inf.get("VALUE")):
                if isinstance(row, dict):
                    key = row_key(row)
                    if key not in pending.rows or pending.rows[key][0] <= recorded_at:
                        pending.rows[key] = (recorded_at, row)
        elif root == "GET_DATA_CATALOG":
            catalog = as_dict(body.get("DATA_CATALOG_LIST_INF"))
            for entry in as_list(catalog.get("DATA_CATALOG_INF")):
                if isinstance(entry, dict) and entry.get("@id"):
                    entry_id = str(entry["@id"])
                    if entry_id not in self._catalog or self._catalog[entry_id][0] <= recorded_at:
                        self._catalog[entry_id] = (recorded_at, entry)
        return touched

    def _build(self, table_id: str) -> None:
        pending = self._pending[table_id]
        table_inf = dict(_best(pending.table_infs))
        rows = [row for _, row in pending.rows.values()]
        objs = _best(pending.class_objs)
        axes = [Axis.from_class_obj(o) for o in objs] if objs else axes_from_rows(rows)
        if not axes:
            table: Table = ListedTable(table_inf)
        else:
            if rows and not self.keep_recorded_totals:
                table_inf["OVERALL_TOTAL_NUMBER"] = len(rows)
            table = RecordedTable(table_inf, axes, list(_best(pending.notes) or []), rows)
        self._register(table)

    def _register(self, table: Table) -> None:
        existing = self._tables.get(table.id)
        if existing is not None and existing.kind != table.kind:
            log.warning("table %s: %s replaces %s", table.id, table.kind, existing.kind)
        self._tables[table.id] = table

    # -- runtime changes ------------------------------------------------------------------

    def add_generated(self, spec: dict[str, Any] | GeneratedSpec) -> GeneratedTable:
        """Add (or replace) a generated table; its base table must already be in the store."""
        parsed = spec if isinstance(spec, GeneratedSpec) else GeneratedSpec.from_document(spec)
        with self._lock:
            base = self._tables.get(parsed.metadata_from) if parsed.metadata_from else None
            if parsed.metadata_from and base is None:
                raise ValueError(f"{parsed.id}: base table {parsed.metadata_from} is not loaded")
            table = build_generated(parsed, base, self._tables.get)
            self._register(table)
            return table

    def add(self, table: Table) -> None:
        """Add (or replace) a table object."""
        with self._lock:
            self._register(table)

    def remove(self, table_id: str) -> bool:
        """Forget a table (e.g. to simulate a table disappearing). True if it existed."""
        with self._lock:
            return self._tables.pop(table_id, None) is not None

    def republish(
        self,
        table_id: str,
        updated_date: str | None = None,
        *,
        perturb: bool | None = None,
        **changes: Any,
    ) -> Table:
        """A new release of a table: new UPDATED_DATE, values and cells as ``changes`` say.

        ``changes`` are the fields of :class:`~estat_emulator.release.Release` (``revise``,
        ``remove_items``, ``remove_cells``, ``add_items``, ``add_cells``). ``updated_date=None``
        means the day after the current UPDATED_DATE (so it always changes); ``perturb=None``
        means generated tables get new values unless other changes are given, recorded ones never.
        """
        release = Release.from_dict({**changes, "updated_date": updated_date, "perturb": perturb})
        return self.release(table_id, release)

    def release(self, table_id: str, release: Release) -> Table:
        """Apply a parsed release (all-or-nothing); KeyError for an unknown table."""
        with self._lock:
            table = self._tables.get(table_id)
            if table is None:
                raise KeyError(table_id)
            updated_date = release.updated_date
            if updated_date is None:
                updated_date = _next_day(str(table.table_inf.get("UPDATED_DATE", "")))
            table.apply(release, updated_date)
            return table

    # -- lookup ---------------------------------------------------------------------------

    def get(self, table_id: str) -> Table | None:
        return self._tables.get(table_id)

    def __contains__(self, table_id: object) -> bool:
        return table_id in self._tables

    def __len__(self) -> int:
        return len(self._tables)

    def __iter__(self) -> Iterator[Table]:
        return iter(self.tables())

    def ids(self) -> list[str]:
        return sorted(self._tables)

    def tables(self) -> list[Table]:
        """All tables in statsDataId order (the order getStatsList lists them in)."""
        with self._lock:
            return [self._tables[k] for k in sorted(self._tables)]

    def catalog_entries(self) -> list[dict[str, Any]]:
        """Recorded getDataCatalog entries (DATA_CATALOG_INF), in @id order."""
        with self._lock:
            return [self._catalog[k][1] for k in sorted(self._catalog)]
