"""``domains.yaml``: domain → datasets, surveys, fields, rules; every mistake named with its fix."""

from __future__ import annotations

import pytest

from estat_assets.domains import (
    DomainsError,
    DomainSpec,
    domain_for_field,
    domain_of,
    load_domains,
    parse_domains,
    with_registered,
)
from estat_assets.estat.ids import check_dataset_id


def test_packaged_domains_load() -> None:
    domains = {d.name: d for d in load_domains()}
    assert {"population", "education"} <= set(domains)
    assert {"0000020202", "9900020202"} <= set(domains["population"].datasets)
    assert {"0003065345", "9903065345"} <= set(domains["education"].datasets)
    every = [ds for d in domains.values() for ds in d.datasets]
    assert len(every) == len(set(every))  # a dataset is in one domain
    assert all(check_dataset_id(ds) == ds for ds in every)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "non-empty mapping under 'domains:'"),
        ({"domains": []}, "non-empty mapping"),
        ({"domains": {"Bad-Name": {}}}, "must match"),
        ({"domains": {"x": ["0000020202"]}}, "domain x: expected a mapping"),
        ({"domains": {"x": {"datasets": "0000020202"}}}, "datasets: expected a list"),
        ({"domains": {"x": {"datasets": ["123"]}}}, "'123' is not a valid statsDataId"),
        ({"domains": {"x": {"datasets": [""]}}}, "'' is not a valid statsDataId"),
        ({"domains": {"x": {"datasets": ["０００００２０２０２"]}}}, "full-width"),
        ({"domains": {"x": {"datasets": [8322]}}}, "quote it"),
        ({"domains": {"x": {"datasets": ["0000000001", "0000000001"]}}}, "twice"),
        (
            {"domains": {"x": {"datasets": ["0000000001"]}, "y": {"datasets": ["0000000001"]}}},
            "0000000001 is in both x and y",
        ),
        ({"domains": {"x": {"fields": [2]}}}, "fields ['2']: a statistical field is two digits"),
        ({"domains": {"x": {"cycle": "weekly"}}}, "cycle 'weekly': expected one of"),
    ],
)
def test_bad_config_names_the_fix(doc, message) -> None:
    with pytest.raises(DomainsError) as caught:
        parse_domains(doc)
    assert message in str(caught.value)
    assert str(caught.value).startswith("domains.yaml")  # where to fix it


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"semantic_columns": {"sex": "性別"}}, "unknown column 'sex'"),
        ({"semantic_columns": {"gender": "("}}, "bad regex"),
        ({"semantic_columns": ["gender"]}, "expected a mapping"),
        ("gender", "rules must be a mapping"),
    ],
)
def test_bad_rules_name_the_fix(rules, message) -> None:
    with pytest.raises(DomainsError, match=message):
        parse_domains({"domains": {"x": {"rules": rules}}})


def test_an_unquoted_id_in_a_domains_file_says_to_quote_it(tmp_path) -> None:
    path = tmp_path / "domains.yaml"
    path.write_text("domains:\n  population:\n    datasets: [0000020202]\n", encoding="utf-8")
    with pytest.raises(DomainsError) as caught:
        load_domains(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "quote it" in message and "8322" in message


def test_unreadable_or_invalid_files_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(DomainsError, match=r"cannot read the domains file .*missing\.yaml"):
        load_domains(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("domains:\n  population: [\n", encoding="utf-8")
    with pytest.raises(DomainsError) as caught:
        load_domains(bad)
    assert "is not valid YAML" in str(caught.value) and "\n" not in str(caught.value)


def test_a_domains_file_replaces_the_packaged_one(tmp_path) -> None:
    path = tmp_path / "domains.yaml"
    path.write_text(
        "domains:\n  labor:\n    title: 労働\n    datasets: ['0003065345']\n"
        "    fields: ['03']\n    owners: [a@example.org]\n    cycle: monthly\n",
        encoding="utf-8",
    )
    (labor,) = load_domains(path)
    assert (labor.name, labor.title, labor.datasets) == ("labor", "労働", ("0003065345",))
    assert (labor.fields, labor.owners, labor.cycle) == (("03",), ("a@example.org",), "monthly")


def test_packaged_rules_pick_semantic_columns_by_axis_name() -> None:
    domains = {d.name: d for d in load_domains()}
    population = {r.column: r for r in domains["population"].semantic_rules}
    assert population["gender"].matches("性別") and population["age_group"].matches("年齢階級")
    assert not population["gender"].matches("地域")
    assert {r.column for r in domains["economy"].semantic_rules} == {
        "industry_code",
        "indicator_type",
    }


def test_lookups_by_dataset_and_statistical_field() -> None:
    domains = parse_domains(
        {
            "domains": {
                "population": {"datasets": ["0000020202"], "fields": ["02"]},
                "economy": {"fields": ["05", "06"]},
            }
        }
    )
    assert domain_of(domains, "0000020202").name == "population"
    assert domain_of(domains, "0003065345") is None
    assert domain_for_field(domains, "06").name == "economy"
    assert domain_for_field(domains, None) is None and domain_for_field(domains, "99") is None


def test_with_registered_appends_added_datasets_once() -> None:
    domains = (DomainSpec("population", datasets=("0000020202",)), DomainSpec("economy"))
    merged = with_registered(domains, {"economy": ["9900000003"], "population": ["0000020202"]})
    assert [d.datasets for d in merged] == [("0000020202",), ("9900000003",)]


def test_match_axes_first_axis_wins_and_one_axis_may_feed_two_columns() -> None:
    from estat_assets.conform.rules import match_axes, parse_rules
    from estat_assets.estat.models import ClassObj

    rules = parse_rules(
        {"semantic_columns": {"employment_status": "就業状態", "age_group": "年齢", "gender": "性"}}
    )
    classes = [
        ClassObj("cat03", "ふだんの就業状態，年齢", ()),
        ClassObj("cat02", "性別", ()),
        ClassObj("cat04", "性別（再掲）", ()),
    ]
    assert match_axes(rules, classes) == {
        "gender": "cat02",
        "age_group": "cat03",
        "employment_status": "cat03",
    }
