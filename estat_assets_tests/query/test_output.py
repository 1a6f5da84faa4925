"""Query output: strings and numbers exactly as stored, nulls per format, Japanese byte-true."""

from __future__ import annotations

import csv
import decimal
import io
import json

import pyarrow as pa
import pytest

from estat_assets.query.output import display_width, footer, format_table

BIG = 9_007_199_254_740_993  # 2**53 + 1: a float would print ...992


@pytest.fixture
def table() -> pa.Table:
    return pa.table(
        {
            "area_name": ["日本語", "\u3000うち東京都", None],
            "value_raw": ["19.0", "99716544", "***"],
            "value": [19.0, 99716544.0, None],
            "n": pa.array([99716544, None, BIG], pa.int64()),
            "ratio": [1.5, None, 0.1],
            "f32": pa.array([0.1, 1.5, None], pa.float32()),
            "d": pa.array(
                [decimal.Decimal("0.25"), None, decimal.Decimal("1.50")], pa.decimal128(5, 2)
            ),
            "ok": [True, False, None],
        }
    )


def test_table_keeps_strings_and_numbers_exact(table) -> None:
    text = format_table(table, "table")
    lines = text.splitlines()
    assert lines[0].split("|")[1:-1] == [
        " area_name    ",
        " value_raw ",
        "      value ",
        "                n ",
        " ratio ",
        " f32 ",
        "    d ",
        " ok    ",
    ]
    # numeric columns are right-aligned, which the rule shows as in Markdown
    assert lines[1] == (
        "|--------------|-----------|-----------:|-----------------:|------:|----:|-----:|-------|"
    )
    assert [c.strip() for c in lines[2].split("|")[1:-1]] == [
        "日本語",
        "19.0",  # the string, not the number 19
        "19.0",
        "99716544",
        "1.5",
        "0.1",
        "0.25",
        "true",
    ]
    assert [c.strip() for c in lines[3].split("|")[1:-1]] == [
        "うち東京都",
        "99716544",
        "99716544.0",
        "",
        "",
        "1.5",
        "",
        "false",
    ]
    assert "| \u3000うち東京都 |" in lines[3]  # the leading full-width space is kept
    assert [c.strip() for c in lines[4].split("|")[1:-1]] == [
        "",  # null: an empty cell
        "***",
        "",
        str(BIG),
        "0.1",
        "",
        "1.50",
        "",
    ]


def test_table_columns_line_up_by_display_width(table) -> None:
    lines = format_table(table, "table").splitlines()
    assert len({display_width(line) for line in lines}) == 1
    assert display_width("日本語") == 6 and display_width("abc") == 3


def test_table_shows_control_characters_instead_of_breaking_rows() -> None:
    text = format_table(pa.table({"s": ["a\nb\tc"]}), "table")
    assert text.splitlines()[2] == "| a\\nb\\tc |"


def test_csv_is_byte_true_utf8(table) -> None:
    text = format_table(table, "csv")
    assert text.splitlines() == [
        "area_name,value_raw,value,n,ratio,f32,d,ok",
        "日本語,19.0,19.0,99716544,1.5,0.1,0.25,true",
        "\u3000うち東京都,99716544,99716544.0,,,1.5,,false",
        f",***,,{BIG},0.1,,1.50,",
    ]
    assert "日本語".encode() in text.encode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[3][0] == "" and rows[1][1] == "19.0"


def test_csv_quotes_what_needs_quoting() -> None:
    text = format_table(pa.table({"s": ["a,b", 'say "x"', "line\nbreak"]}), "csv")
    assert list(csv.reader(io.StringIO(text))) == [
        ["s"],
        ["a,b"],
        ['say "x"'],
        ["line\nbreak"],
    ]


def test_json_keeps_types_nulls_and_japanese(table) -> None:
    text = format_table(table, "json")
    assert "日本語" in text and "\\u" not in text  # not ASCII-escaped
    assert text.splitlines()[1] == (
        '  {"area_name": "日本語", "value_raw": "19.0", "value": 19.0, "n": 99716544, '
        '"ratio": 1.5, "f32": 0.1, "d": 0.25, "ok": true},'
    )
    rows = json.loads(text, parse_float=decimal.Decimal)
    assert rows[1]["value"] == decimal.Decimal("99716544.0")
    assert rows[2]["n"] == BIG
    assert rows[2]["area_name"] is None and rows[1]["n"] is None
    assert rows[2]["d"] == decimal.Decimal("1.50")
    assert [r["value_raw"] for r in rows] == ["19.0", "99716544", "***"]


def test_json_edge_cases() -> None:
    assert format_table(pa.table({"a": pa.array([], pa.int64())}), "json") == "[]"
    special = pa.table({"x": [float("nan"), float("inf")]})
    assert json.loads(format_table(special, "json")) == [{"x": None}, {"x": None}]
    repeated = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    assert json.loads(format_table(repeated, "json")) == [{"a": 1, "a_2": 2}]
    nested = pa.table({"l": [["東京", None]], "m": [{"k": 1.5}], "x": [[float("nan")]]})
    assert (
        format_table(nested, "json")
        == '[\n  {"l": ["東京", null], "m": {"k": 1.5}, "x": [null]}\n]'
    )
    assert json.loads(format_table(nested, "json")) == [
        {"l": ["東京", None], "m": {"k": 1.5}, "x": [None]}
    ]


def test_max_rows_and_empty_results(table) -> None:
    assert len(format_table(table, "csv", max_rows=1).splitlines()) == 2
    assert len(json.loads(format_table(table, "json", max_rows=2))) == 2
    assert len(format_table(table, "table", max_rows=0).splitlines()) == 2  # header + rule
    assert format_table(table, "table", max_rows=None).count("\n") == 4


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="table, csv, json"):
        format_table(pa.table({"a": [1]}), "xml")


def test_footer() -> None:
    assert footer(3, 0.1234) == "3 rows in 0.12 s"
    assert footer(1, 2) == "1 row in 2.00 s"
    assert footer(1000, 1.5, truncated=True) == "1000 rows (truncated at 1000) in 1.50 s"
    assert footer(1000, 1.5, truncated=True, shown=50) == (
        "1000 rows (truncated at 1000; 50 shown) in 1.50 s"
    )
    assert footer(80, 0.0, shown=50) == "80 rows (50 shown) in 0.00 s"
