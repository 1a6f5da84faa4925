"""SQL over the lake: written once in Trino (Athena) dialect, run on DuckDB locally."""
