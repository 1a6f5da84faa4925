"""Add an e-Stat table to the lake without editing YAML.

The table's own metadata (getMetaInfo) decides its domain, in this order: ``--domain``; the
domain that declares the dataset in ``domains.yaml`` or had it added before; the domain whose
``surveys`` watch the table's survey (``STAT_NAME/@code``); the domain whose ``fields`` list the
table's statistical field (``MAIN_CATEGORY/@code``, :func:`estat_assets.domains.domain_for_field`).
The answer says which rule chose it. The dataset is then written to the lake's registry
(``lake/registry.py``: it survives restarts, the Dagster definitions and the release sensor read
it) and added as a dynamic partition of the domain in the lake's Dagster instance, and the
table's English metadata is cached beside its raw data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from estat_assets.app.citation import Citation, cite
from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError, app_error
from estat_assets.app.metadata import (
    axes_from_meta,
    english_info,
    english_meta,
    fetch_meta,
    years_of,
)
from estat_assets.domains import DomainSpec, domain_for_field
from estat_assets.estat.models import TableInfo


@dataclass
class AddAnswer:
    stats_data_id: str
    domain: str
    rule: str  # option | declared | added before | survey | field
    reason: str
    title: str | None
    survey: str | None
    organisation: str | None
    field_code: str | None
    field: str | None
    updated_date: str | None
    rows_at_estat: int | None
    years: list[str]
    new_partition: bool
    registered: bool  # written to the lake's registry (not needed when domains.yaml declares it)
    english: dict[str, str]
    citation: Citation

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["citation"] = self.citation.to_dict()
        return out


def _names(domains: tuple[DomainSpec, ...]) -> str:
    return ", ".join(d.name for d in domains)


def choose_domain(
    info: TableInfo,
    domains: tuple[DomainSpec, ...],
    registry: dict[str, dict[str, Any]],
    option: str | None = None,
) -> tuple[str, str, str]:
    """``(domain, rule, reason)`` for a table; raises an AppError saying what to pass."""
    dataset_id = info.id
    declared = next((d for d in domains if dataset_id in d.datasets), None)
    known = {d.name for d in domains}
    if option is not None:
        if option not in known:
            raise AppError(
                "unknown_domain",
                f"no domain {option!r} in domains.yaml",
                f"pass one of: {_names(domains)} (or add the domain to domains.yaml)",
                retryable=True,
                context={"domains": sorted(known)},
            )
        if declared is not None and declared.name != option:
            raise AppError(
                "declared_elsewhere",
                f"{dataset_id} is declared in domain {declared.name} in domains.yaml",
                f"drop --domain (or move it in domains.yaml): it loads into {declared.name}",
                context={"domain": declared.name},
            )
        return option, "option", f"--domain {option} was given"
    if declared is not None:
        return declared.name, "declared", f"domains.yaml lists {dataset_id} under {declared.name}"
    entry = registry.get(dataset_id)
    if entry and entry.get("domain") in known:
        return entry["domain"], "added before", f"added before: {entry.get('reason') or ''}".strip()
    if info.stat_code:
        watching = [d for d in domains if info.stat_code in d.surveys]
        if len(watching) == 1:
            d = watching[0]
            return (
                d.name,
                "survey",
                f"its survey {info.stat_code} ({info.stat_name}) is watched by domain {d.name} "
                "(surveys in domains.yaml)",
            )
    spec = domain_for_field(domains, info.main_category_code)
    if spec is not None:
        return (
            spec.name,
            "field",
            f"e-Stat files it under statistical field {info.main_category_code} "
            f"({info.main_category}), which domain {spec.name} lists in domains.yaml (fields)",
        )
    field = (
        f"statistical field {info.main_category_code} ({info.main_category})"
        if info.main_category_code
        else "no statistical field"
    )
    raise AppError(
        "no_domain",
        f"cannot tell the domain of {dataset_id}: e-Stat gives {field}, which no domain in "
        "domains.yaml lists",
        f"pass --domain (one of: {_names(domains)}), or add "
        f"'{info.main_category_code or 'NN'}' to a domain's fields in domains.yaml",
        retryable=True,
        context={
            "field_code": info.main_category_code,
            "field": info.main_category,
            "domains": {d.name: list(d.fields) for d in domains},
        },
    )


def add(ctx: LakeContext, dataset_id: str, domain: str | None = None) -> AddAnswer:
    """Register ``dataset_id`` in its domain (persisted) and as a Dagster partition."""
    from estat_assets.estat.ids import check_dataset_id

    try:
        check_dataset_id(dataset_id)
    except Exception as exc:
        raise app_error(exc) from None
    meta, _ = fetch_meta(ctx, dataset_id, "J")  # unknown ids: e-Stat's own message
    info = meta.table
    domains = ctx.configured_domains()
    registry = ctx.registry()
    chosen, rule, reason = choose_domain(info, domains, registry, domain)
    previous = registry.get(dataset_id)
    if previous and previous.get("domain") != chosen:
        row = ctx.inventory().get(dataset_id)
        if row and row.get("rows_stored"):
            raise AppError(
                "already_loaded_elsewhere",
                f"{dataset_id} is loaded in domain {row['domain']} ({row['rows_stored']:,} rows)",
                f"keep it there (drop --domain), or ask an operator to remove it from "
                f"estat.{row['domain']} before moving it",
                context={"domain": row["domain"]},
            )
    registered = False
    if rule != "declared":
        from estat_assets.lake.registry import register_dataset

        register_dataset(ctx.storage(), dataset_id, chosen, info.title, reason)
        registered = True
    new_partition = register_partition(ctx, chosen, dataset_id)
    meta_en = None
    try:
        meta_en, _ = english_meta(ctx, dataset_id, chosen, updated_date=info.updated_date)
    except AppError as exc:
        ctx.say(f"English names not cached: {exc.one_line()}")
    years = years_of(axes_from_meta(meta))
    return AddAnswer(
        stats_data_id=dataset_id,
        domain=chosen,
        rule=rule,
        reason=reason,
        title=info.title,
        survey=info.stat_name,
        organisation=info.gov_org,
        field_code=info.main_category_code,
        field=info.main_category,
        updated_date=info.updated_date,
        rows_at_estat=info.overall_total_number,
        years=years,
        new_partition=new_partition,
        registered=registered,
        english=english_info(info, meta_en.table if meta_en else None),
        citation=cite(
            ctx, dataset_id, domain=chosen, info=info, info_en=meta_en.table if meta_en else None
        ),
    )


def register_partition(ctx: LakeContext, domain: str, dataset_id: str) -> bool:
    """Add the dataset as a partition of ``<domain>__dataset`` in the lake's Dagster instance."""
    from estat_assets.defs.partitions import register
    from estat_assets.runner import open_instance

    instance = open_instance(ctx.settings)
    try:
        return bool(register(instance, domain, [dataset_id]))
    finally:
        instance.dispose()
