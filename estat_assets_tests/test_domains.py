import pytest

from estat_assets.domains import load_domains, parse_domains


def test_packaged_domains_load() -> None:
    domains = {d.name: d for d in load_domains()}
    assert {"population", "education"} <= set(domains)
    assert "0000020202" in domains["population"].datasets


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "non-empty mapping"),
        ({"domains": {"Bad-Name": {}}}, "must match"),
        ({"domains": {"x": {"datasets": ["123"]}}}, "not a valid statsDataId"),
        ({"domains": {"x": {"datasets": ["0000000001", "0000000001"]}}}, "twice"),
    ],
)
def test_bad_config_names_the_fix(doc, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_domains(doc)


def test_packaged_rules_pick_semantic_columns_by_axis_name() -> None:
    domains = {d.name: d for d in load_domains()}
    population = {r.column: r for r in domains["population"].semantic_rules}
    assert population["gender"].matches("性別") and population["age_group"].matches("年齢階級")
    assert not population["gender"].matches("地域")
    assert {r.column for r in domains["economy"].semantic_rules} == {
        "industry_code",
        "indicator_type",
    }
    assert domains["health"].datasets == ()  # rules without datasets are allowed


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
    with pytest.raises(ValueError, match=message):
        parse_domains({"domains": {"x": {"rules": rules}}})


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
