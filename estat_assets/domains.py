"""The domain configuration (``domains.yaml``): domain → datasets and watched surveys."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from estat_assets.conform.rules import SemanticRule, parse_rules
from estat_assets.estat.client import check_dataset_id

_DOMAIN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class DomainSpec:
    name: str
    title: str = ""
    datasets: tuple[str, ...] = ()
    surveys: tuple[str, ...] = ()
    rules: dict[str, Any] = field(default_factory=dict)

    @property
    def semantic_rules(self) -> tuple[SemanticRule, ...]:
        """``rules.semantic_columns``: which axis (by its CLASS_OBJ name) feeds which column."""
        return parse_rules(self.rules, where=f"domains.yaml: domain {self.name}: rules")


def parse_domains(document: dict[str, Any]) -> tuple[DomainSpec, ...]:
    """Validate and parse; errors name the domain and the field to fix."""
    domains = (document or {}).get("domains")
    if not isinstance(domains, dict) or not domains:
        raise ValueError("domains.yaml: expected a non-empty mapping under 'domains:'")
    specs = []
    for name, body in domains.items():
        if not _DOMAIN_NAME.match(str(name)):
            raise ValueError(f"domains.yaml: domain name {name!r} must match [a-z][a-z0-9_]*")
        body = body or {}
        datasets = tuple(str(d) for d in body.get("datasets") or ())
        for ds in datasets:
            try:
                check_dataset_id(ds)
            except ValueError as exc:
                raise ValueError(f"domains.yaml: domain {name}: {exc}") from None
        if len(set(datasets)) != len(datasets):
            raise ValueError(f"domains.yaml: domain {name} lists a dataset twice")
        rules = body.get("rules") or {}
        if not isinstance(rules, dict):
            raise ValueError(f"domains.yaml: domain {name}: rules must be a mapping")
        parse_rules(rules, where=f"domains.yaml: domain {name}: rules")  # fail at load, not run
        specs.append(
            DomainSpec(
                name=str(name),
                title=str(body.get("title") or ""),
                datasets=datasets,
                surveys=tuple(str(s) for s in body.get("surveys") or ()),
                rules=dict(rules),
            )
        )
    return tuple(specs)


def load_domains(path: str | Path | None = None) -> tuple[DomainSpec, ...]:
    """``path``, else ``ESTAT_DOMAINS_FILE``, else the packaged ``domains.yaml``."""
    path = path or os.environ.get("ESTAT_DOMAINS_FILE")
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("estat_assets").joinpath("domains.yaml").read_text("utf-8")
    return parse_domains(yaml.safe_load(text))
