from estat_assets.conform.timecodes import parse_time_code


def test_known_patterns() -> None:
    assert parse_time_code("2011000000").kind == "year"
    assert parse_time_code("1981100000").kind == "fiscal_year"
    assert parse_time_code("2024000101").month == 1
    assert parse_time_code("1994000709").quarter == 3


def test_unknown_patterns_stay_opaque() -> None:
    for code in ("2024001000", "2024000", "1994020000", "2024000113", "abcd000000", None):
        p = parse_time_code(code)
        assert p.kind == "other" and p.month is None and p.quarter is None
