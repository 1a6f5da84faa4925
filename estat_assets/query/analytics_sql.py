"""Analytics SQL, written once in Athena's (Trino) dialect; DuckDB runs it through sqlglot.

Every query reads one domain table (``{table}``, e.g. ``estat.population``) with the conformed
columns. A *series* is one dataset and one combination of its non-time, non-area axes (``tab``,
``cat01`` … ``cat15``): codes identify it, names describe it.
"""

from __future__ import annotations

from estat_assets.conform.table import AXES

SERIES_AXES = tuple(a for a in AXES if a not in ("area", "time"))
SERIES_CODES = ", ".join(f"{a}_code" for a in SERIES_AXES)
SERIES_COLUMNS = ", ".join(f"{a}_code, {a}_name" for a in SERIES_AXES)

LATEST_BY_AREA = """
WITH ranked AS (
    SELECT
        dataset_id, {series_columns}, area_code, area_name,
        period_kind, time_code, time_name, year, value, unit,
        row_number() OVER (
            PARTITION BY dataset_id, {series_codes}, area_code, period_kind
            ORDER BY year DESC, time_code DESC
        ) AS rn
    FROM {table}
    WHERE value IS NOT NULL AND area_code IS NOT NULL
)
SELECT
    dataset_id, {series_columns}, area_code, area_name, period_kind,
    time_code AS latest_time_code, time_name AS latest_time_name, year AS latest_year,
    value, unit
FROM ranked
WHERE rn = 1
"""

YOY_CHANGE = """
WITH annual AS (
    SELECT dataset_id, {series_columns}, area_code, area_name, period_kind, year, value, unit
    FROM {table}
    WHERE period_kind IN ('year', 'fiscal_year') AND value IS NOT NULL
),
lagged AS (
    SELECT
        annual.*,
        lag(year) OVER (
            PARTITION BY dataset_id, {series_codes}, area_code, period_kind ORDER BY year
        ) AS previous_year,
        lag(value) OVER (
            PARTITION BY dataset_id, {series_codes}, area_code, period_kind ORDER BY year
        ) AS previous_value
    FROM annual
)
SELECT
    dataset_id, {series_columns}, area_code, area_name, period_kind, year, unit,
    value, previous_value,
    value - previous_value AS change,
    CASE WHEN previous_value <> 0 THEN (value - previous_value) / abs(previous_value) END
        AS change_ratio
FROM lagged
WHERE previous_year = year - 1
"""

# e-Stat area codes: 00000 is the nation, __000 a prefecture, anything else a municipality.
NATIONAL_TOTALS = """
SELECT
    dataset_id, {series_codes}, period_kind, time_code, year, unit,
    count(DISTINCT area_code) AS areas,
    max(CASE WHEN area_code = '00000' THEN value END) AS national_value,
    sum(CASE WHEN area_code LIKE '__000' AND area_code <> '00000' THEN value END)
        AS prefecture_total,
    sum(CASE WHEN area_code <> '00000' THEN value END) AS all_areas_total,
    coalesce(
        max(CASE WHEN area_code = '00000' THEN value END),
        sum(CASE WHEN area_code LIKE '__000' AND area_code <> '00000' THEN value END),
        sum(CASE WHEN area_code <> '00000' THEN value END)
    ) AS national_total
FROM {table}
WHERE value IS NOT NULL AND area_code IS NOT NULL
GROUP BY dataset_id, {series_codes}, period_kind, time_code, year, unit
"""

QUERIES: dict[str, tuple[str, str]] = {
    "latest_by_area": (
        LATEST_BY_AREA,
        "The latest value of every series in every area (per period kind).",
    ),
    "yoy_change": (
        YOY_CHANGE,
        "Year-over-year change of annual and fiscal-year series per area: the value, the "
        "previous year's, the difference and the ratio (null when the previous value is 0).",
    ),
    "national_totals": (
        NATIONAL_TOTALS,
        "Per series and time: e-Stat's own national value (area 00000), the sum over "
        "prefectures, the sum over all areas, and national_total (the first of these that "
        "exists). Sums are only meaningful for additive units (人, 世帯, 円 …), not rates.",
    ),
}


def render(name: str, table: str) -> str:
    """The Trino text of analytics query ``name`` over ``table`` (``database.table``)."""
    template, _ = QUERIES[name]
    return template.format(
        table=table, series_codes=SERIES_CODES, series_columns=SERIES_COLUMNS
    ).strip()
