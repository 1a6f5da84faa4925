"""Analytics assets on DuckDB: real numbers, recomputed when a dataset of the domain is loaded.

One test builds a small domain table whose answers are computed by hand; another loads real
(synthetic-valued) e-Stat data through the domain job and checks the analytics tables against
an independent computation over the rows the lake holds.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from estat_assets.conform.table import conformed_schema
from estat_assets.defs.analytics import ANALYTICS, build_analytics_assets
from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec
from estat_assets.lake.analytics import analytics_table_name
from estat_assets.lake.iceberg import ensure_table, replace_slices
from estat_assets.query.analytics_sql import QUERIES, render
from estat_assets.query.engine import to_duckdb
from estat_assets_tests.harness import DATASET, Lake
from estat_assets_tests.harness import test_settings as lake_settings

DOMAIN = DomainSpec("population", datasets=("0000000001",))
KEYS = {name: dg.AssetKey(["population", name]) for name in ANALYTICS}

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


def _read(resources, name: str) -> list[dict]:
    iceberg = resources["iceberg"]
    ident = iceberg.identifier(analytics_table_name("population", name))
    return iceberg.catalog().load_table(ident).scan().to_arrow().to_pylist()


@pytest.fixture
def built(tmp_path):
    """Local resources over a domain table written by the lake's one writer (no e-Stat)."""
    resources = build_resources(lake_settings(tmp_path / "home", "http://127.0.0.1:9"))
    iceberg = resources["iceberg"]
    catalog = iceberg.catalog()
    ident = iceberg.identifier("population")
    ensure_table(catalog, *ident)
    slices = [_slice(y) for y in (2019, 2020, 2021)]
    replace_slices(catalog, ident, "0000000001", None, lambda: slices)
    return resources


def test_every_query_is_trino_and_transpiles_to_duckdb() -> None:
    for name in QUERIES:
        sql = render(name, "estat.population")
        assert "estat.population" in sql
        assert to_duckdb(sql)  # parses as Trino, writes DuckDB


def test_analytics_assets_are_eager_and_name_their_tables() -> None:
    assets = build_analytics_assets(DOMAIN)
    assert {key for a in assets for key in a.keys} == set(KEYS.values())
    for a in assets:
        key = a.key
        assert a.automation_conditions_by_key[key] == dg.AutomationCondition.eager()
        table = f"estat.{analytics_table_name('population', key.path[-1])}"
        assert a.metadata_by_key[key]["dagster/table_name"] == table
        assert a.partitions_def is None
        assert {d.asset_key for d in a.specs_by_key[key].deps} == {
            dg.AssetKey(["population", "table"])
        }


def test_analytics_assets_compute_real_numbers_on_duckdb(built) -> None:
    result = dg.materialize(build_analytics_assets(DOMAIN), resources=built)
    assert result.success
    meta = {
        m.asset_key.path[-1]: m.metadata
        for m in (e.materialization for e in result.get_asset_materialization_events())
    }
    assert meta["latest_by_area"]["query_engine"].value == "duckdb"
    assert meta["latest_by_area"]["dagster/table_name"].value == ("estat.population_latest_by_area")

    latest = {r["area_code"]: r for r in _read(built, "latest_by_area")}
    assert latest["13000"]["latest_year"] == 2020 and latest["13000"]["value"] == 80.0  # 2021 null
    assert latest["01100"]["value"] == 20.0 and latest["00000"]["value"] == 110.0
    assert latest["01000"]["area_name"] == "北海道" and latest["01000"]["cat01_name"] == "総人口"
    assert meta["latest_by_area"]["dagster/row_count"].value == 4

    yoy = {r["area_code"]: r for r in _read(built, "yoy_change")}
    assert set(yoy) == {"00000", "01000", "13000"}  # 札幌市 has no 2019, 東京都 no 2021 number
    assert yoy["01000"]["change"] == -10.0 and yoy["01000"]["change_ratio"] == -0.25
    assert yoy["13000"]["previous_value"] == 60.0 and yoy["13000"]["year"] == 2020
    assert yoy["00000"]["change_ratio"] == pytest.approx(0.1)

    totals = {r["year"]: r for r in _read(built, "national_totals")}
    assert totals[2019]["national_value"] == 100.0
    assert totals[2019]["prefecture_total"] == 100.0 and totals[2019]["areas"] == 3
    assert totals[2020]["prefecture_total"] == 110.0  # 札幌市 is not a prefecture
    assert totals[2020]["all_areas_total"] == 130.0
    assert totals[2020]["national_total"] == 110.0
    assert 2021 not in totals

    # A second run replaces the analytics tables, never appends.
    assert dg.materialize(build_analytics_assets(DOMAIN), resources=built).success
    assert len(_read(built, "latest_by_area")) == 4


def requested(evaluation) -> set[dg.AssetKey]:
    """The analytics assets an automation evaluation asked to materialize."""
    analytics = set(KEYS.values())
    return {r.key for r in evaluation.results if r.true_subset.size and r.key in analytics}


def test_a_load_triggers_the_analytics_and_they_match_the_lakes_rows(lake: Lake) -> None:
    """Eager automation after a real load, then the numbers against pandas over the same rows."""
    instance = lake.instance
    before = dg.evaluate_automation_conditions(defs=lake.defs, instance=instance)
    assert requested(before) == set()  # nothing loaded, nothing to compute
    assert lake.run(DATASET, years="2022-2023").success
    after = dg.evaluate_automation_conditions(
        defs=lake.defs, instance=instance, cursor=before.cursor
    )
    assert requested(after) == set(KEYS.values())
    job = lake.defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=list(KEYS.values())).success
    settled = dg.evaluate_automation_conditions(
        defs=lake.defs, instance=instance, cursor=after.cursor
    )
    assert requested(settled) == set()  # computed once per load

    rows = lake.rows(DATASET).to_pandas()
    assert len(rows) == 9 * 1913 * 2
    numbers = rows.dropna(subset=["value"])
    series = ["cat01_code", "area_code"]

    latest = numbers.sort_values("year").groupby(series).tail(1).set_index(series)
    got = pd.DataFrame(_read(lake.resources, "latest_by_area")).set_index(series)
    assert len(got) == len(latest)
    joined = got.join(latest[["value", "year"]], rsuffix="_lake")
    assert (joined["value"] == joined["value_lake"]).all()
    assert (joined["latest_year"] == joined["year"]).all()

    wide = numbers.pivot_table(index=series, columns="year", values="value").dropna()
    yoy = pd.DataFrame(_read(lake.resources, "yoy_change")).set_index(series)
    assert len(yoy) == len(wide) and set(yoy["year"]) == {2023}
    yoy = yoy.join((wide[2023] - wide[2022]).rename("expected"))
    assert yoy["change"].to_numpy() == pytest.approx(yoy["expected"].to_numpy(), abs=1e-6)

    area = numbers["area_code"]
    prefecture = area.str.endswith("000") & (area != "00000")
    by_time = ["cat01_code", "year"]
    expected = pd.DataFrame(
        {
            "areas_lake": numbers.groupby(by_time)["area_code"].nunique(),
            "all_lake": numbers[area != "00000"].groupby(by_time)["value"].sum(),
            "prefectures_lake": numbers[prefecture].groupby(by_time)["value"].sum(),
            "nation_lake": numbers[area == "00000"].groupby(by_time)["value"].max(),
        }
    )
    expected["national_lake"] = (
        expected["nation_lake"].fillna(expected["prefectures_lake"]).fillna(expected["all_lake"])
    )
    totals = pd.DataFrame(_read(lake.resources, "national_totals")).set_index(by_time)
    assert len(totals) == len(expected) == 9 * 2
    compared = totals.join(expected)
    assert (compared["areas"] == compared["areas_lake"]).all()
    for got_column, lake_column in (
        ("all_areas_total", "all_lake"),
        ("national_total", "national_lake"),
    ):
        assert compared[got_column].to_numpy() == pytest.approx(
            compared[lake_column].to_numpy(), rel=1e-9
        )
