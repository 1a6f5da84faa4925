"""Analytics assets on the local engine: real numbers from a small Iceberg table we build."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa
import pytest

from estat_assets.conform.table import conformed_schema
from estat_assets.defs.analytics import analytics_table_name, build_analytics_assets
from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec
from estat_assets.lake.iceberg import ensure_table, replace_partition
from estat_assets.query.analytics_sql import QUERIES, render
from estat_assets.query.engine import to_duckdb

DOMAIN = DomainSpec("population", datasets=("0000000001",))

# (area_code, area_name, year, time_code, value)
ROWS = [
    ("00000", "全国", 2019, "2019000000", 100.0),
    ("00000", "全国", 2020, "2020000000", 110.0),
    ("01000", "北海道", 2019, "2019000000", 40.0),
    ("01000", "北海道", 2020, "2020000000", 30.0),
    ("13000", "東京都", 2019, "2019000000", 60.0),
    ("13000", "東京都", 2020, "2020000000", 80.0),
    ("01100", "札幌市", 2020, "2020000000", 20.0),
    ("13000", "東京都", 2021, "2021000000", None),  # a secret (***) value: no number
]


def _slice(year: int) -> pa.Table:
    rows = [r for r in ROWS if r[2] == year]
    n = len(rows)
    data = {
        "dataset_id": ["0000000001"] * n,
        "cat01_code": ["A1101"] * n,
        "cat01_name": ["総人口"] * n,
        "area_code": [r[0] for r in rows],
        "area_name": [r[1] for r in rows],
        "time_code": [r[3] for r in rows],
        "time_name": [f"{r[2]}年" for r in rows],
        "year": pa.array([r[2] for r in rows], pa.int32()),
        "period_kind": ["year"] * n,
        "unit": ["人"] * n,
        "value_raw": ["***" if r[4] is None else str(r[4]) for r in rows],
        "value": pa.array([r[4] for r in rows], pa.float64()),
    }
    schema = conformed_schema(axes=("cat01", "area", "time"), semantic=())
    return pa.table({f.name: data.get(f.name, pa.nulls(n, f.type)) for f in schema})


@pytest.fixture
def lake(tmp_path):
    resources = build_resources("local", {"ESTAT_LAKE_HOME": str(tmp_path / "home")})
    iceberg = resources["iceberg"]
    catalog = iceberg.catalog()
    ensure_table(catalog, *iceberg.identifier("population"))
    for year in (2019, 2020, 2021):
        replace_partition(
            catalog, iceberg.identifier("population"), _slice(year), "0000000001", year
        )
    return resources


def _read(resources, name: str) -> list[dict]:
    iceberg = resources["iceberg"]
    ident = iceberg.identifier(analytics_table_name("population", name))
    rows = iceberg.catalog().load_table(ident).scan().to_arrow().to_pylist()
    return sorted(rows, key=lambda r: (r.get("area_code") or "", r.get("year") or 0))


def test_every_query_is_trino_and_transpiles_to_duckdb() -> None:
    for name in QUERIES:
        sql = render(name, "estat.population")
        assert "estat.population" in sql
        assert to_duckdb(sql)  # parses as Trino, writes DuckDB


def test_analytics_assets_compute_real_numbers_on_duckdb(lake) -> None:
    assets = build_analytics_assets(DOMAIN)
    assert {a.key for a in assets} == {
        dg.AssetKey(["population", n]) for n in ("latest_by_area", "yoy_change", "national_totals")
    }
    defs = dg.Definitions(assets=assets, resources=lake)
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process()
    assert result.success
    meta = {
        m.asset_key.path[-1]: m.metadata
        for m in (e.materialization for e in result.get_asset_materialization_events())
    }
    assert meta["latest_by_area"]["query_engine"].value == "duckdb"

    latest = {r["area_code"]: r for r in _read(lake, "latest_by_area")}
    assert latest["13000"]["latest_year"] == 2020 and latest["13000"]["value"] == 80.0  # 2021 null
    assert latest["01100"]["value"] == 20.0 and latest["00000"]["value"] == 110.0
    assert latest["01000"]["area_name"] == "北海道" and latest["01000"]["cat01_name"] == "総人口"
    assert meta["latest_by_area"]["dagster/row_count"].value == 4

    yoy = {r["area_code"]: r for r in _read(lake, "yoy_change")}
    assert set(yoy) == {"00000", "01000", "13000"}  # 札幌市 has no 2019, 東京都 no 2021 number
    assert yoy["01000"]["change"] == -10.0 and yoy["01000"]["change_ratio"] == -0.25
    assert yoy["13000"]["previous_value"] == 60.0 and yoy["13000"]["year"] == 2020
    assert yoy["00000"]["change_ratio"] == pytest.approx(0.1)

    totals = {r["year"]: r for r in _read(lake, "national_totals")}
    assert totals[2019]["national_value"] == 100.0
    assert totals[2019]["prefecture_total"] == 100.0 and totals[2019]["areas"] == 3
    assert totals[2020]["prefecture_total"] == 110.0  # 札幌市 is not a prefecture
    assert totals[2020]["all_areas_total"] == 130.0
    assert totals[2020]["national_total"] == 110.0
    assert 2021 not in totals

    # A second run replaces the analytics tables, never appends.
    assert job.execute_in_process().success
    assert len(_read(lake, "latest_by_area")) == 4
