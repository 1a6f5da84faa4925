"""Storage: raw and conformed files (local folder or S3) and the Iceberg tables."""
