"""The e-Stat API without Dagster: ids, HTTP, pages, the concurrent fetch, the client, typed errors,
response shapes, metadata models and year slicing."""
