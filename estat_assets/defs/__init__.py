"""Dagster at the edge: assets, checks, resources, jobs and sensors built from ``domains.yaml``."""
