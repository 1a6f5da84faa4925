"""Pandera schemas for the conformed table, one schema per check so each failure names its cause."""

from __future__ import annotations

from collections.abc import Sequence

import pandera.pandas as pa

from estat_assets.conform.table import key_columns

BASE_REQUIRED = (
    "dataset_id",
    "year",
    "period_kind",
    "unit",
    "value_raw",
    "value",
    "annotation",
    "source_updated_date",
    "run_id",
)


def required_columns_schema(axes: Sequence[str]) -> pa.DataFrameSchema:
    """Every base column, and a code and a name column for every axis of the table's metadata."""
    names = list(BASE_REQUIRED)
    for axis in axes:
        names += [f"{axis}_code", f"{axis}_name"]
    return pa.DataFrameSchema({n: pa.Column(required=True, nullable=True) for n in names})


def non_null_keys_schema(axes: Sequence[str]) -> pa.DataFrameSchema:
    """Keys (dataset, every axis code) and the partition year are never null."""
    cols = [*key_columns(axes), "year"]
    return pa.DataFrameSchema({c: pa.Column(nullable=False, required=False) for c in cols})


def unique_keys_schema(axes: Sequence[str]) -> pa.DataFrameSchema:
    """One row per observation: dataset + every axis code."""
    return pa.DataFrameSchema(unique=key_columns(axes), report_duplicates="all")


def codes_in_class_inf_schema(codes_by_axis: dict[str, list[str]]) -> pa.DataFrameSchema:
    """Every axis code is one of the table's own ``CLASS_INF`` codes for that axis."""
    return pa.DataFrameSchema(
        {
            f"{axis}_code": pa.Column(checks=pa.Check.isin(codes), nullable=True, required=False)
            for axis, codes in codes_by_axis.items()
        }
    )
