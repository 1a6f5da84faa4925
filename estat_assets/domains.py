"""The domain configuration (``domains.yaml``): domain → datasets, surveys, statistical fields.

Each domain is one Iceberg table. ``fields`` are e-Stat's statistical field codes
(``MAIN_CATEGORY``, e.g. ``02`` 人口・世帯) that ``estat-lake add`` maps to the domain when no
``--domain`` is given. Datasets added at run time (``estat-lake add``) live in the lake's dataset
registry, not here; :func:`with_registered` merges them in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from estat_assets.conform.rules import SemanticRule, parse_rules
from estat_assets.estat.ids import check_dataset_id

_DOMAIN_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_FIELD = re.compile(r"[0-9]{2}")
DEFAULT_OWNERS = ("team:estat-lake",)
CYCLES = ("monthly", "quarterly", "annual")


class DomainsError(ValueError):
    """``domains.yaml`` (or ESTAT_DOMAINS_FILE) cannot be used; the message names where."""


@dataclass(frozen=True)
class DomainSpec:
    name: str
    title: str = ""
    datasets: tuple[str, ...] = ()
    surveys: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()  # e-Stat statistical field codes (MAIN_CATEGORY/@code)
    owners: tuple[str, ...] = DEFAULT_OWNERS
    cycle: str | None = None  # monthly | quarterly | annual: how often e-Stat publishes
    rules: dict[str, Any] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict, compare=False)  # dataset → title

    @property
    def semantic_rules(self) -> tuple[SemanticRule, ...]:
        """``rules.semantic_columns``: which axis (by its CLASS_OBJ name) feeds which column."""
        return parse_rules(self.rules, where=f"domains.yaml: domain {self.name}: rules")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise DomainsError(f"{where}: expected a list")
    return tuple(value)


def parse_domains(document: dict[str, Any], where: str = "domains.yaml") -> tuple[DomainSpec, ...]:
    """Validate and parse; errors name the domain and the field to fix."""
    domains = (document or {}).get("domains") if isinstance(document, dict) else None
    if not isinstance(domains, dict) or not domains:
        raise DomainsError(f"{where}: expected a non-empty mapping under 'domains:'")
    specs = []
    for name, body in domains.items():
        if not isinstance(name, str) or not _DOMAIN_NAME.fullmatch(name):
            raise DomainsError(f"{where}: domain name {name!r} must match [a-z][a-z0-9_]*")
        body = body or {}
        if not isinstance(body, dict):
            raise DomainsError(f"{where}: domain {name}: expected a mapping")
        datasets = _strings(body.get("datasets"), f"{where}: domain {name}: datasets")
        for ds in datasets:
            try:
                check_dataset_id(ds)
            except ValueError as exc:
                raise DomainsError(f"{where}: domain {name}: {exc}") from None
        if len(set(datasets)) != len(datasets):
            raise DomainsError(f"{where}: domain {name} lists a dataset twice")
        fields = tuple(str(f) for f in _strings(body.get("fields"), f"{where}: {name}: fields"))
        bad = [f for f in fields if not _FIELD.fullmatch(f)]
        if bad:
            raise DomainsError(
                f"{where}: domain {name}: fields {bad}: a statistical field is two digits, "
                "quoted (e.g. '02')"
            )
        rules = body.get("rules") or {}
        if not isinstance(rules, dict):
            raise DomainsError(f"{where}: domain {name}: rules must be a mapping")
        try:
            parse_rules(rules, where=f"{where}: domain {name}: rules")  # fail at load, not run
        except ValueError as exc:
            raise DomainsError(str(exc)) from None
        owners = tuple(str(o) for o in _strings(body.get("owners"), f"{where}: {name}: owners"))
        cycle = body.get("cycle")
        if cycle is not None and cycle not in CYCLES:
            raise DomainsError(
                f"{where}: domain {name}: cycle {cycle!r}: expected one of {', '.join(CYCLES)}"
            )
        specs.append(
            DomainSpec(
                name=name,
                title=str(body.get("title") or ""),
                datasets=datasets,
                surveys=tuple(str(s) for s in _strings(body.get("surveys"), f"{where}: {name}")),
                fields=fields,
                owners=owners or DEFAULT_OWNERS,
                cycle=cycle,
                rules=dict(rules),
            )
        )
    claimed: dict[str, str] = {}
    for spec in specs:
        for ds in spec.datasets:
            if ds in claimed:
                raise DomainsError(f"{where}: {ds} is in both {claimed[ds]} and {spec.name}")
            claimed[ds] = spec.name
    return tuple(specs)


def load_domains(path: str | Path | None = None) -> tuple[DomainSpec, ...]:
    """``path`` (``Settings.domains_file``), else the packaged ``domains.yaml``."""
    if path:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise DomainsError(f"cannot read the domains file {where}: {exc.strerror}") from None
    else:
        where = "domains.yaml"
        text = resources.files("estat_assets").joinpath("domains.yaml").read_text("utf-8")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DomainsError(f"{where} is not valid YAML: {exc}".splitlines()[0]) from None
    return parse_domains(document, where)


def with_registered(
    domains: Iterable[DomainSpec],
    registered: Mapping[str, Iterable[str]],
    titles: Mapping[str, str] | None = None,
) -> tuple[DomainSpec, ...]:
    """The domains with the datasets added at run time (``domain → ids``) appended, and the
    titles known for their datasets."""
    out = []
    for spec in domains:
        extra = [d for d in registered.get(spec.name, ()) if d not in spec.datasets]
        datasets = (*spec.datasets, *extra)
        known = {d: t for d, t in (titles or {}).items() if d in datasets and t}
        out.append(replace(spec, datasets=datasets, titles=known))
    return tuple(out)


def domain_of(domains: Iterable[DomainSpec], dataset_id: str) -> DomainSpec | None:
    return next((d for d in domains if dataset_id in d.datasets), None)


def domain_for_field(domains: Iterable[DomainSpec], field_code: str | None) -> DomainSpec | None:
    """The domain that declares e-Stat statistical field ``field_code`` (``MAIN_CATEGORY``)."""
    if not field_code:
        return None
    return next((d for d in domains if field_code in d.fields), None)
