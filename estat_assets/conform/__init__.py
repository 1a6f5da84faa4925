"""Pure functions from raw e-Stat pages to the conformed long table (Arrow). No Dagster here."""

from estat_assets.conform.table import ConformInput, conform_pages, conformed_schema

__all__ = ["ConformInput", "conform_pages", "conformed_schema"]
