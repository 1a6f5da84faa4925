"""Where each layer's files live, and the only way path parts are made from keys.

Hive-style folders, so Athena/Glue can read them too::

    <root>/<domain>/raw/dataset_id=<id>/manifest.json          (+ runs/<run_id>/meta.json, pages)
    <root>/<domain>/conformed/dataset_id=<id>/manifest.json    (+ checks.md)
    <root>/<domain>/conformed/dataset_id=<id>/year=<yyyy>/data.parquet (+ quarantine.parquet)
    <root>/<domain>/runs/date=<yyyy-mm-dd>/<run_id>.json       (the audit manifest of a run)

Every part built from a key is checked here (a statsDataId is ten ASCII digits, a year four, a
domain ``[a-z][a-z0-9_]*``, a run id a Dagster run id), so no partition key, tag or file name can
walk out of the lake (``../``) or alias another slice (``01985``, ``１９８５``).
"""

from __future__ import annotations

import re

from estat_assets.estat.ids import canonical_year, check_dataset_id

DOMAIN = re.compile(r"[a-z][a-z0-9_]{0,62}")
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MANIFEST = "manifest.json"
META_FILE = "meta.json"
DATA_FILE = "data.parquet"
QUARANTINE_FILE = "quarantine.parquet"
REPORT_FILE = "checks.md"


class UnsafePathError(ValueError):
    """A path part that is not a canonical key: refused before anything is read or written."""


def _match(pattern: re.Pattern[str], value: object, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise UnsafePathError(f"{what} {value!r} is not a valid path part")
    return value


def domain_part(domain: str) -> str:
    return _match(DOMAIN, domain, "domain")


def run_part(run_id: str) -> str:
    return _match(RUN_ID, run_id, "run id")


def dataset_dir(domain: str, layer: str, dataset_id: str) -> tuple[str, ...]:
    if layer not in ("raw", "conformed"):
        raise UnsafePathError(f"layer {layer!r} is not raw or conformed")
    return (domain_part(domain), layer, f"dataset_id={check_dataset_id(dataset_id)}")


def year_dir(domain: str, dataset_id: str, year: str) -> tuple[str, ...]:
    return (*dataset_dir(domain, "conformed", dataset_id), f"year={canonical_year(year)}")


def raw_run_dir(domain: str, dataset_id: str, run_id: str) -> tuple[str, ...]:
    return (*dataset_dir(domain, "raw", dataset_id), "runs", run_part(run_id))


def audit_file(domain: str, day: str, run_id: str) -> tuple[str, ...]:
    return (
        domain_part(domain),
        "runs",
        f"date={_match(DAY, day, 'day')}",
        f"{run_part(run_id)}.json",
    )


def page_name(request_no: int, page_no: int) -> str:
    """``page-RRR-PPPPP.json``: page ``page_no`` of the run's request ``request_no``."""
    return f"page-{int(request_no):03d}-{int(page_no):05d}.json"
