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
