"""The datasets added at run time (``estat-lake add``), kept in the lake beside the data.

``<lake root>/registry/datasets.json`` maps each added statsDataId to its domain, title and why
that domain was chosen. The Dagster definitions read it when they load (so an added dataset has
its domain's assets and the release sensor watches it), and ``add`` writes it all-or-nothing.
Datasets declared in ``domains.yaml`` need no entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from estat_assets.estat.ids import check_dataset_id
from estat_assets.lake.layout import domain_part
from estat_assets.lake.storage import Storage

REGISTRY = ("registry", "datasets.json")


def read_registry(storage: Storage) -> dict[str, dict[str, Any]]:
    path = storage.path(*REGISTRY)
    if not storage.exists(path):
        return {}
    data = orjson.loads(storage.read_bytes(path))
    return {check_dataset_id(k): v for k, v in (data.get("datasets") or {}).items()}


def registered_by_domain(storage: Storage) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for dataset_id, entry in sorted(read_registry(storage).items()):
        out.setdefault(entry["domain"], []).append(dataset_id)
    return out


def register_dataset(
    storage: Storage, dataset_id: str, domain: str, title: str | None, reason: str
) -> dict[str, Any]:
    """Add (or move) a dataset to a domain; returns its entry."""
    datasets = read_registry(storage)
    entry = {
        "domain": domain_part(domain),
        "title": title,
        "reason": reason,
        "added_at": datetime.now(UTC).isoformat(),
    }
    datasets[check_dataset_id(dataset_id)] = entry
    body = {"datasets": dict(sorted(datasets.items()))}
    storage.write_bytes(storage.path(*REGISTRY), orjson.dumps(body, option=orjson.OPT_INDENT_2))
    return entry
