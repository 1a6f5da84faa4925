"""A table's description and axes, in Japanese (primary, byte-true) and English where e-Stat has it.

Sources, cheapest first: the lake's ``estat.<domain>_class_codes`` rows of the dataset (written
by every load), then e-Stat's getMetaInfo. English names come from getMetaInfo with ``lang=E``,
cached byte for byte beside the raw data as ``<domain>/raw/dataset_id=X/meta-en.json`` (written
through ``lake.storage``, so it works on S3 too) and refreshed when the table's UPDATED_DATE
changes. An English text identical to the Japanese one is not an English name: e-Stat (and the
emulator) repeat the Japanese where nobody translated.

:func:`resolve_filters` turns what a person or an assistant says (``性別=男``, ``Sex=Male``,
``cat02=2``, ``time=2020``) into axis codes, or an error listing what exists.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError, app_error
from estat_assets.estat.models import TableInfo, TableMetadata, parse_meta_info

ENGLISH_FILE = "meta-en.json"
AXIS_ORDER = ("tab", *(f"cat{i:02d}" for i in range(1, 16)), "area", "time")


@dataclass
class AxisItem:
    code: str
    name: str
    name_en: str | None = None
    level: str | None = None
    parent_code: str | None = None
    unit: str | None = None


@dataclass
class Axis:
    id: str
    name: str
    name_en: str | None = None
    items: list[AxisItem] = field(default_factory=list)

    def item(self, code: str) -> AxisItem | None:
        return next((i for i in self.items if i.code == code), None)


@dataclass
class TableFacts:
    """What is known of a table: e-Stat's TABLE_INF (Japanese), its English twin, the axes."""

    info: TableInfo
    info_en: TableInfo | None
    axes: list[Axis]
    axes_source: str  # class_codes | lake (raw metadata) | getMetaInfo
    english_source: str | None  # lake cache | getMetaInfo(lang=E) | None


# ---------------------------------------------------------------------------------- e-Stat


def fetch_meta(ctx: LakeContext, dataset_id: str, lang: str = "J") -> tuple[TableMetadata, bytes]:
    """getMetaInfo (``lang`` J or E): the parsed metadata and the response bytes."""
    from estat_assets.estat.ids import check_dataset_id

    try:
        check_dataset_id(dataset_id)
        with ctx.client() as client:
            meta, response = client.get_meta_info(dataset_id, lang=lang)
    except AppError:
        raise
    except Exception as exc:
        raise app_error(exc, stats_data_id=dataset_id) from None
    return meta, response.raw


# ------------------------------------------------------------------------------- English


def _english_path(ctx: LakeContext, domain: str, dataset_id: str):
    from estat_assets.lake.layout import dataset_dir

    storage = ctx.storage()
    return storage, storage.path(*dataset_dir(domain, "raw", dataset_id), ENGLISH_FILE)


def read_english_cache(ctx: LakeContext, domain: str, dataset_id: str) -> TableMetadata | None:
    storage, path = _english_path(ctx, domain, dataset_id)
    try:
        if not storage.exists(path):
            return None
        return parse_meta_info(orjson.loads(storage.read_bytes(path)))
    except Exception:  # unreadable cache: fetch again
        return None


def write_english_cache(ctx: LakeContext, domain: str, dataset_id: str, raw: bytes) -> str:
    storage, path = _english_path(ctx, domain, dataset_id)
    storage.write_bytes(path, raw)
    return str(path)


def english_meta(
    ctx: LakeContext,
    dataset_id: str,
    domain: str | None,
    *,
    updated_date: str | None = None,
    fetch: bool = True,
) -> tuple[TableMetadata | None, str | None]:
    """The table's ``lang=E`` metadata and where it came from (``None`` if e-Stat has none).

    With a ``domain`` the lake's cached copy is used unless its UPDATED_DATE differs from
    ``updated_date``; a fetched copy is written to the cache.
    """
    if domain is not None:
        cached = read_english_cache(ctx, domain, dataset_id)
        if cached is not None and (
            updated_date is None or cached.table.updated_date in (None, updated_date)
        ):
            return cached, "lake cache"
    if not fetch:
        return None, None
    try:
        meta, raw = fetch_meta(ctx, dataset_id, "E")
    except AppError as exc:
        if exc.type in ("estat_refused",):  # no English for this table
            return None, None
        raise
    if domain is not None:
        try:
            write_english_cache(ctx, domain, dataset_id, raw)
        except Exception as exc:  # a cache: never fail the answer for it
            ctx.say(f"could not cache the English metadata of {dataset_id}: {exc}")
    return meta, "getMetaInfo(lang=E)"


def _english(japanese: str | None, english: str | None) -> str | None:
    if not english or english == japanese:
        return None
    return english


def english_info(info: TableInfo, info_en: TableInfo | None) -> dict[str, str | None]:
    """The English texts of a table that differ from the Japanese ones."""
    if info_en is None:
        return {}
    out = {
        "title_en": _english(info.title, info_en.title),
        "survey_en": _english(info.stat_name, info_en.stat_name),
        "organisation_en": _english(info.gov_org, info_en.gov_org),
        "statistics_name_en": _english(info.statistics_name, info_en.statistics_name),
        "main_category_en": _english(info.main_category, info_en.main_category),
        "cycle_en": _english(info.cycle, info_en.cycle),
    }
    return {k: v for k, v in out.items() if v}


# ----------------------------------------------------------------------------------- axes


def axes_from_meta(meta: TableMetadata) -> list[Axis]:
    return [
        Axis(
            id=c.id,
            name=c.name,
            items=[AxisItem(i.code, i.name, None, i.level, i.parent_code, i.unit) for i in c.items],
        )
        for c in meta.classes
    ]


def axes_from_class_codes(ctx: LakeContext, domain: str, dataset_id: str) -> list[Axis] | None:
    """The dataset's axes from ``estat.<domain>_class_codes`` (``None`` if not loaded yet)."""
    from pyiceberg.expressions import EqualTo

    from estat_assets.lake.class_codes import class_codes_name
    from estat_assets.query.engine import load_arrow

    if ctx.table(class_codes_name(domain)) is None:
        return None
    rows = load_arrow(
        ctx.catalog(),
        ctx.namespace,
        class_codes_name(domain),
        row_filter=EqualTo("dataset_id", dataset_id),
    ).to_pylist()
    if not rows:
        return None
    by_axis: dict[str, Axis] = {}
    for row in sorted(rows, key=lambda r: (_axis_rank(r["axis"]), r["position"] or 0)):
        axis = by_axis.setdefault(row["axis"], Axis(id=row["axis"], name=row["axis_name"] or ""))
        axis.items.append(
            AxisItem(
                row["code"], row["name"] or "", None, row["level"], row["parent_code"], row["unit"]
            )
        )
    return list(by_axis.values())


def _axis_rank(axis: str) -> int:
    return AXIS_ORDER.index(axis) if axis in AXIS_ORDER else len(AXIS_ORDER)


def add_english(axes: list[Axis], meta_en: TableMetadata | None) -> None:
    if meta_en is None:
        return
    for axis in axes:
        english = meta_en.axis(axis.id)
        if english is None:
            continue
        axis.name_en = _english(axis.name, english.name)
        names = {i.code: i.name for i in english.items}
        for item in axis.items:
            item.name_en = _english(item.name, names.get(item.code))


def lake_meta(ctx: LakeContext, domain: str, dataset_id: str) -> TableMetadata | None:
    """The getMetaInfo response the last load stored with the raw pages (no e-Stat request)."""
    from estat_assets.lake.rawstore import load_manifest, read_run_file

    try:
        manifest = load_manifest(ctx.storage(), domain, dataset_id)
        if not manifest or not manifest.get("meta_file"):
            return None
        return parse_meta_info(
            orjson.loads(read_run_file(ctx.storage(), manifest, manifest["meta_file"]))
        )
    except Exception:  # unreadable or swept: ask e-Stat instead
        return None


def table_facts(
    ctx: LakeContext,
    dataset_id: str,
    domain: str | None = None,
    *,
    english: bool = True,
    fetch_english: bool = True,
) -> TableFacts:
    """The table's facts from the lake when it was loaded (its class codes and the metadata
    stored with the raw pages), else from getMetaInfo; English names beside."""
    axes = axes_from_class_codes(ctx, domain, dataset_id) if domain else None
    source = "class_codes"
    meta = lake_meta(ctx, domain, dataset_id) if domain else None
    if meta is None:
        meta, _ = fetch_meta(ctx, dataset_id, "J")
        meta_source = "getMetaInfo"
    else:
        meta_source = "lake"
    info = meta.table
    if axes is None:
        axes, source = axes_from_meta(meta), meta_source
    meta_en, en_source = (None, None)
    if english:
        try:
            meta_en, en_source = english_meta(
                ctx, dataset_id, domain, updated_date=info.updated_date, fetch=fetch_english
            )
        except AppError as exc:  # English is a courtesy: the answer stands without it
            ctx.say(f"English names unavailable: {exc.one_line()}")
    add_english(axes, meta_en)
    return TableFacts(
        info=info,
        info_en=meta_en.table if meta_en else None,
        axes=axes,
        axes_source=source,
        english_source=en_source,
    )


def years_of(axes: Iterable[Axis]) -> list[str]:
    """The four-digit years of the time axis (from its codes: e-Stat's ``YYYY…`` codes)."""
    years = set()
    for axis in axes:
        if axis.id == "time":
            for item in axis.items:
                if re.fullmatch(r"[0-9]{4}[0-9]*", item.code) and item.code[:4] != "0000":
                    years.add(item.code[:4])
    return sorted(years)


# ------------------------------------------------------------------------ filter resolution


def normalise(text: str) -> str:
    """NFKC, case-folded, spaces squeezed: ``Ｂ　自然環境`` and ``b 自然環境`` compare equal."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).casefold().split())


@dataclass
class ResolvedFilter:
    axis: str
    axis_name: str
    codes: list[str]
    said: list[str]
    how: list[str]  # per value: code | name | english name | year | partial name

    def to_dict(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "axis_name": self.axis_name,
            "codes": self.codes,
            "given": self.said,
            "matched_by": self.how,
        }


def find_axis(axes: Sequence[Axis], key: str) -> Axis:
    """An axis by id (``cat01``), Japanese or English name (``性別``, ``Sex``)."""
    wanted = normalise(key)
    for match in (
        lambda a: normalise(a.id) == wanted,
        lambda a: normalise(a.name) == wanted,
        lambda a: a.name_en is not None and normalise(a.name_en) == wanted,
    ):
        found = [a for a in axes if match(a)]
        if len(found) == 1:
            return found[0]
    partial = [
        a
        for a in axes
        if wanted and (wanted in normalise(a.name) or wanted in normalise(a.name_en or ""))
    ]
    if len(partial) == 1:
        return partial[0]
    raise AppError(
        "unknown_axis",
        f"no axis {key!r} in this table",
        "name an axis by id, Japanese or English name: "
        + "; ".join(f"{a.id}={a.name}" + (f" ({a.name_en})" if a.name_en else "") for a in axes),
        retryable=True,
        context={"axes": [{"id": a.id, "name": a.name, "name_en": a.name_en} for a in axes]},
    )


def _year_items(axis: Axis, value: str) -> list[AxisItem]:
    """``2020`` on the time axis: the year's (or fiscal year's) own code, not its months."""
    if axis.id != "time" or not re.fullmatch(r"[0-9]{4}", value):
        return []
    names = {f"{value}年", f"{value}年度", value, f"fy{value}", f"{value}年度 fy"}
    by_name = [i for i in axis.items if normalise(i.name) in names]
    if by_name:
        return by_name
    return [i for i in axis.items if i.code.startswith(value) and set(i.code[4:]) <= {"0"}]


def find_items(axis: Axis, value: str) -> tuple[list[AxisItem], str]:
    wanted = normalise(value)
    for how, match in (
        ("code", lambda i: i.code == value.strip()),
        ("name", lambda i: normalise(i.name) == wanted),
        ("english name", lambda i: i.name_en is not None and normalise(i.name_en) == wanted),
    ):
        found = [i for i in axis.items if match(i)]
        if found:
            return found, how
    years = _year_items(axis, value.strip())
    if years:
        return years, "year"
    partial = [
        i
        for i in axis.items
        if wanted and (wanted in normalise(i.name) or wanted in normalise(i.name_en or ""))
    ]
    if len(partial) == 1:
        return partial, "partial name"
    shown = partial or axis.items
    raise AppError(
        "unknown_item",
        f"no item {value!r} on axis {axis.id} ({axis.name})"
        + (f": {len(partial)} names contain it" if partial else ""),
        "give a code or an exact name (Japanese or English); candidates: "
        + "; ".join(
            f"{i.code}={i.name}" + (f" ({i.name_en})" if i.name_en else "") for i in shown[:12]
        )
        + (" …" if len(shown) > 12 else ""),
        retryable=True,
        context={
            "axis": axis.id,
            "candidates": [
                {"code": i.code, "name": i.name, "name_en": i.name_en} for i in shown[:50]
            ],
        },
    )


def resolve_filters(
    axes: Sequence[Axis], filters: Mapping[str, str | Sequence[str]] | None
) -> list[ResolvedFilter]:
    """``{axis: value or [values]}`` → axis codes; several values of an axis are alternatives."""
    out: dict[str, ResolvedFilter] = {}
    for key, values in (filters or {}).items():
        axis = find_axis(axes, key)
        values = [values] if isinstance(values, str) else list(values)
        resolved = out.setdefault(axis.id, ResolvedFilter(axis.id, axis.name, [], [], []))
        for value in values:
            items, how = find_items(axis, str(value))
            for item in items:
                if item.code not in resolved.codes:
                    resolved.codes.append(item.code)
            resolved.said.append(str(value))
            resolved.how.append(how)
    return list(out.values())


def parse_filter_args(args: Iterable[str]) -> dict[str, list[str]]:
    """CLI ``AXIS=VALUE`` pairs (repeatable; the same axis twice means either value)."""
    out: dict[str, list[str]] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise AppError(
                "bad_filter",
                f"filter {arg!r} is not AXIS=VALUE",
                "write e.g. --filter 性別=男 or --filter cat02=2 or --filter time=2020",
                retryable=True,
            )
        out.setdefault(key.strip(), []).append(value.strip())
    return out
