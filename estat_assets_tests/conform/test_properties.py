"""Properties over generated e-Stat responses with random shape drift, axes, symbols and legends.

Every input VALUE appears exactly once, in the conformed table or in quarantine; ``value_raw`` is
the ``$`` string as sent; ``value`` is exactly ``float(value_raw)`` for a plain number, else null;
the annotation is the table's own NOTE meaning of the raw value.
"""

from __future__ import annotations

import re

import pyarrow as pa
from hypothesis import HealthCheck, given, settings

from estat_assets.conform import ConformInput, conform_pages
from estat_assets.conform.pages import read_page
from estat_assets.conform.stream import iter_conformed
from estat_assets.conform.table import NUMBER_PATTERN
from estat_assets.estat.models import parse_meta_info
from estat_assets.quality.quarantine import split_rows
from estat_assets_tests.conform.shapes import Generated, meta_info, responses

NUMBER = re.compile(NUMBER_PATTERN)
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _conform(gen: Generated) -> tuple[pa.Table, object]:
    meta = parse_meta_info(meta_info(gen))
    inp = ConformInput(
        dataset_id="0000000001",
        metadata=None if gen.meta_on_first_page else meta,
        default_year=2000,
    )
    return conform_pages(gen.pages, inp), meta


@SETTINGS
@given(responses())
def test_every_value_conformed_once_and_exact(gen: Generated) -> None:
    table, _ = _conform(gen)
    rows = table.to_pylist()
    assert len(rows) == len(gen.values)
    for row, value in zip(rows, gen.values, strict=True):
        raw = value["$"]
        assert row["value_raw"] == raw
        if NUMBER.match(raw):
            assert row["value"] == float(raw)
        else:
            assert row["value"] is None
        assert row["annotation"] == gen.notes.get(raw)
        for axis, items in gen.classes.items():
            code = value.get(f"@{axis}")
            assert row[f"{axis}_code"] == code
            names = {i["@code"]: i["@name"] for i in items}
            assert row[f"{axis}_name"] == names.get(code)
        units = [
            i.get("@unit")
            for axis, items in gen.classes.items()
            for i in items
            if i["@code"] == value.get(f"@{axis}") and i.get("@unit")
        ]
        assert row["unit"] == value.get("@unit", units[0] if units else None)


@SETTINGS
@given(responses())
def test_conformed_plus_quarantined_is_every_raw_row(gen: Generated) -> None:
    table, meta = _conform(gen)
    split = split_rows(table, meta.axes, meta)
    assert split.clean.num_rows + split.quarantined.num_rows == len(gen.values)
    source = split.quarantined.column("source_row").to_pylist()
    assert len(set(source)) == len(source)
    quarantined = {s - 1 for s in source}
    kept = [i for i in range(len(gen.values)) if i not in quarantined]
    assert split.clean.column("value_raw").to_pylist() == [gen.values[i]["$"] for i in kept]
    keys = [f"{a}_code" for a in meta.axes]
    seen = set()
    for row in split.clean.select(keys).to_pylist():
        key = tuple(row.values())
        assert None not in key and key not in seen  # no null and no repeated key survives
        seen.add(key)
        for axis in meta.axes:
            assert row[f"{axis}_code"] in {i["@code"] for i in gen.classes[axis]}
    assert all(split.quarantined.column("quarantine_reason").to_pylist())


@SETTINGS
@given(responses())
def test_fast_and_exact_readers_agree_and_streaming_equals_in_memory(gen: Generated) -> None:
    table, _ = _conform(gen)
    meta = parse_meta_info(meta_info(gen))
    inp = ConformInput(
        dataset_id="0000000001",
        metadata=None if gen.meta_on_first_page else meta,
        default_year=2000,
    )
    batches = list(iter_conformed(gen.pages, inp, pages_per_batch=1))
    streamed = pa.concat_tables(batches) if batches else table.slice(0, 0)
    assert streamed.to_pylist() == table.to_pylist()
    hinted = [f"@{a}" for a in gen.classes]
    for page in gen.pages:
        assert read_page(page).equals(read_page(page, fields=hinted))
