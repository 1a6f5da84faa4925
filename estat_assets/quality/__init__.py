"""Pandera schemas and the pure check functions behind the Dagster asset checks."""
