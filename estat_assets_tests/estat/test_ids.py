"""statsDataIds and years are ASCII digits of a fixed length, as strings, and nothing else."""

from __future__ import annotations

import pytest

from estat_assets.estat.errors import EStatError, InvalidDatasetIdError, InvalidYearError
from estat_assets.estat.ids import canonical_year, check_dataset_id, parse_years


def test_a_dataset_id_is_ten_ascii_digits() -> None:
    assert check_dataset_id("0003065345") == "0003065345"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("１２３４５６７８９０", "non-ASCII"),  # full-width digits: \d and isdigit() accept them
        ("0000020202\n", "whitespace"),  # "$" in a regex accepts a trailing newline
        (" 0000020202", "whitespace"),
        ("000002020", "9 digits, not 10"),
        ("00000202021", "11 digits, not 10"),
        ("000002020a", "other than digits"),
        ("", "0 digits"),
    ],
)
def test_near_misses_are_refused_with_the_reason(value, why) -> None:
    with pytest.raises(InvalidDatasetIdError, match=why) as caught:
        check_dataset_id(value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, EStatError)
    assert "10 digits" in caught.value.hint


def test_an_int_id_says_to_quote_it() -> None:
    # YAML reads an unquoted 0000020202 as the octal number 8322
    with pytest.raises(InvalidDatasetIdError, match="quote it") as caught:
        check_dataset_id(8322)
    assert "8322" in str(caught.value) and "int" in str(caught.value)
    for other in (None, 3.0, b"0000020202", True):
        with pytest.raises(InvalidDatasetIdError, match="not a string"):
            check_dataset_id(other)


@pytest.mark.parametrize("year", ["1985", "2020", "0000"])
def test_a_year_is_four_ascii_digits(year) -> None:
    assert canonical_year(year) == year


@pytest.mark.parametrize(
    "value",
    ["01985", "１９８５", "1985 ", " 1985", "1985\n", "abc", "-1", "+1985", "985", "", "19８5"],
)
def test_years_that_only_look_like_years_are_refused(value) -> None:
    with pytest.raises(InvalidYearError) as caught:
        canonical_year(value)
    assert isinstance(caught.value, ValueError) and not caught.value.retryable
    assert "four ASCII digits" in caught.value.hint and repr(value) in str(caught.value)


def test_a_year_that_is_not_a_string_says_to_quote_it() -> None:
    with pytest.raises(InvalidYearError, match="quote it"):
        canonical_year(1985)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "years"),
    [
        ("2011", ["2011"]),
        ("2015,2011", ["2011", "2015"]),
        ("2011,2011", ["2011"]),
        ("2010-2013", ["2010", "2011", "2012", "2013"]),
        ("2012-2012", ["2012"]),
        ("2014,2010-2012,2011", ["2010", "2011", "2012", "2014"]),
        ("0000", ["0000"]),
    ],
)
def test_parse_years(spec, years) -> None:
    assert parse_years(spec) == years


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "2011,",
        ",2011",
        "2011, 2015",
        "2011 ",
        "01985",
        "１９８５",
        "-1",
        "2013-2010",
        "2010-2012-2014",
        "2010-",
        "2010..2013",
        "2010–2013",  # an en dash
        "abc",
    ],
)
def test_parse_years_refuses_anything_else_with_one_message(spec) -> None:
    with pytest.raises(InvalidYearError) as caught:
        parse_years(spec)
    assert repr(spec) in str(caught.value) and "2010-2013" in caught.value.hint
