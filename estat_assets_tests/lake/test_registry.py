"""``lake/registry.py``: the datasets added at run time, kept in the lake beside the data.

``registry/datasets.json`` maps a statsDataId to its domain; the definitions merge it into the
configured domains (``domains.with_registered``), so an added dataset gets its domain's assets.
"""

from __future__ import annotations

import orjson
import pytest

from estat_assets.definitions import active_domains
from estat_assets.domains import DomainSpec, with_registered
from estat_assets.estat.errors import InvalidDatasetIdError
from estat_assets.lake.layout import UnsafePathError
from estat_assets.lake.registry import (
    REGISTRY,
    read_registry,
    register_dataset,
    registered_by_domain,
)
from estat_assets.lake.storage import Storage
from estat_assets.settings import Settings


@pytest.fixture
def storage(tmp_path) -> Storage:
    return Storage(str(tmp_path / "lake"))


def test_an_empty_lake_has_no_added_datasets(storage) -> None:
    assert read_registry(storage) == {} and registered_by_domain(storage) == {}


def test_added_datasets_by_domain_sorted_and_moved(storage) -> None:
    register_dataset(storage, "0003065345", "education", "趣味・娯楽", "field 12")
    register_dataset(storage, "0000020202", "population", None, "--domain")
    entry = register_dataset(storage, "0000020203", "population", "t", "field 02")
    assert entry["domain"] == "population" and entry["reason"] == "field 02"
    assert registered_by_domain(storage) == {
        "education": ["0003065345"],
        "population": ["0000020202", "0000020203"],
    }
    register_dataset(storage, "0003065345", "population", "趣味・娯楽", "moved")  # one home only
    assert registered_by_domain(storage) == {
        "population": ["0000020202", "0000020203", "0003065345"]
    }
    body = orjson.loads(storage.read_bytes(storage.path(*REGISTRY)))
    assert list(body["datasets"]) == sorted(body["datasets"])
    assert body["datasets"]["0003065345"]["title"] == "趣味・娯楽"


@pytest.mark.parametrize(
    ("dataset", "domain", "error"),
    [
        ("12345", "population", InvalidDatasetIdError),
        ("../../etc", "population", InvalidDatasetIdError),
        ("0000020202", "../population", UnsafePathError),
        ("0000020202", "Population", UnsafePathError),
    ],
)
def test_bad_ids_and_domains_are_refused_and_nothing_is_written(
    storage, dataset, domain, error
) -> None:
    with pytest.raises(error):
        register_dataset(storage, dataset, domain, None, "test")
    assert not storage.exists(storage.path(*REGISTRY))


def test_a_tampered_registry_is_refused_not_trusted(storage) -> None:
    storage.write_bytes(
        storage.path(*REGISTRY), orjson.dumps({"datasets": {"../x": {"domain": "population"}}})
    )
    with pytest.raises(InvalidDatasetIdError):
        read_registry(storage)


def test_added_datasets_join_their_configured_domain() -> None:
    domains = (DomainSpec("population", datasets=("0000020202",)), DomainSpec("economy"))
    merged = with_registered(domains, {"population": ["0000020202", "0003065345"], "x": ["1"]})
    assert merged[0].datasets == ("0000020202", "0003065345")  # no duplicate
    assert merged[1] == domains[1]
    assert [d.name for d in merged] == ["population", "economy"]  # no unknown domain created


def test_the_definitions_see_added_datasets(tmp_path) -> None:
    domains = tmp_path / "domains.yaml"
    domains.write_text(
        "domains:\n  population:\n    datasets: ['0000020202']\n  economy:\n    title: e\n",
        encoding="utf-8",
    )
    settings = Settings.from_env(
        {"ESTAT_LAKE_HOME": str(tmp_path / "home"), "ESTAT_DOMAINS_FILE": str(domains)}
    )
    from estat_assets.defs.resources import build_resources

    resources = build_resources(settings)
    assert [d.name for d in active_domains(settings, resources)] == ["population"]
    register_dataset(resources["lake"].storage(), "9900000003", "economy", None, "test")
    active = {d.name: d.datasets for d in active_domains(settings, resources)}
    assert active == {"population": ("0000020202",), "economy": ("9900000003",)}
