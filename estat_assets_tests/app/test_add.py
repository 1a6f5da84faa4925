"""``add``: the domain comes from the table's own metadata (never from YAML listing the table)."""

from __future__ import annotations

import pytest

from estat_assets.app.add import add, choose_domain
from estat_assets.app.errors import AppError
from estat_assets.defs.partitions import dataset_dimension
from estat_assets.domains import load_domains
from estat_assets.estat.models import TableInfo
from estat_assets.lake.registry import read_registry
from estat_assets.runner import open_instance
from estat_assets_tests.app.conftest import FIELDS


def partitions(ctx, domain: str) -> list[str]:
    instance = open_instance(ctx.settings)
    try:
        return list(instance.get_dynamic_partitions(dataset_dimension(domain)))
    finally:
        instance.dispose()


@pytest.mark.parametrize("dataset_id", sorted(FIELDS))
def test_add_infers_the_domain_from_the_statistical_field(ctx, dataset_id) -> None:
    field, domain = FIELDS[dataset_id]
    assert all(dataset_id not in d.datasets for d in ctx.configured_domains())  # not declared
    answer = add(ctx, dataset_id)
    assert (answer.domain, answer.rule, answer.field_code) == (domain, "field", field)
    assert f"statistical field {field}" in answer.reason and domain in answer.reason
    # persisted in the lake's registry (it survives restarts) and a partition of its domain
    entry = read_registry(ctx.storage())[dataset_id]
    assert entry["domain"] == domain and entry["title"] == answer.title
    assert entry["reason"] == answer.reason
    assert partitions(ctx, domain) == [dataset_id] and answer.new_partition
    assert ctx.domain_of(dataset_id) == domain
    # the citation names the table, its survey and e-Stat's page, with the credit notice
    c = answer.citation
    assert c.stats_data_id == dataset_id and c.title == answer.title and c.survey
    assert c.url == f"https://www.e-stat.go.jp/dbview?sid={dataset_id}"
    assert c.updated_date == answer.updated_date and c.snapshot_id is None
    assert c.credit.startswith("このサービスは") and c.credit_en.startswith("This service")
    # English names are cached beside the raw data (written through lake.storage)
    assert answer.english.get("title_en")
    cached = ctx.storage().path(domain, "raw", f"dataset_id={dataset_id}", "meta-en.json")
    assert ctx.storage().exists(cached)


def test_add_again_keeps_the_domain_and_the_partition(ctx) -> None:
    first = add(ctx, "9900000004")
    second = add(ctx, "9900000004")
    assert (second.domain, second.rule) == ("labor", "added before")
    assert not second.new_partition and first.new_partition
    assert partitions(ctx, "labor") == ["9900000004"]


def test_a_survey_the_domain_watches_wins_over_the_field(ctx) -> None:
    answer = add(ctx, "0000020202")  # field 99 (その他), survey 00200502 watched by population
    assert (answer.domain, answer.rule) == ("population", "survey")
    assert "00200502" in answer.reason


def test_domain_option_overrides_and_is_checked(ctx) -> None:
    answer = add(ctx, "9900000007", domain="population")  # field 01: no domain lists it
    assert (answer.domain, answer.rule) == ("population", "option")
    with pytest.raises(AppError) as err:
        add(ctx, "9900000004", domain="nowhere")
    assert err.value.type == "unknown_domain" and "labor" in err.value.what_to_do


def test_a_field_no_domain_lists_says_what_to_pass(ctx) -> None:
    with pytest.raises(AppError) as err:
        add(ctx, "9900000007")  # 都道府県別面積: field 01 国土・気象
    e = err.value
    assert e.type == "no_domain" and "01" in e.message and "国土・気象" in e.message
    assert "--domain" in e.what_to_do and e.context["field_code"] == "01"
    assert read_registry(ctx.storage()) == {}  # nothing half-added


def test_an_unknown_id_gets_estats_own_message_in_one_line(ctx) -> None:
    with pytest.raises(AppError) as err:
        add(ctx, "1234567890")
    e = err.value
    assert e.type == "estat_refused" and "統計表IDが存在しません" in e.message
    assert "\n" not in e.one_line() and e.context["estat_status"] == 102
    with pytest.raises(AppError) as err:
        add(ctx, "12345")
    assert err.value.type == "invalid_dataset_id"


def test_choose_domain_rules_in_order(domains_file) -> None:
    domains = load_domains(domains_file)
    info = TableInfo(id="0000000001", stat_code="00200502", main_category_code="03")
    assert choose_domain(info, domains, {})[:2] == ("population", "survey")
    info = TableInfo(id="0000000001", stat_code="99999999", main_category_code="03")
    assert choose_domain(info, domains, {})[:2] == ("labor", "field")
    registry = {"0000000001": {"domain": "health", "reason": "earlier"}}
    assert choose_domain(info, domains, registry)[:2] == ("health", "added before")
    assert choose_domain(info, domains, registry, "economy")[:2] == ("economy", "option")
