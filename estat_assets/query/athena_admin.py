"""Athena administration (production): the workgroup the lake's queries run in.

``estat-lake athena setup-workgroup --name N --output s3://bucket/prefix/ --region R`` creates or
updates the workgroup with an enforced result location and an optional per-query scan cutoff,
idempotently (see ``deploy/RUNBOOK.md``). Separate from the query engine (``query/athena.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from estat_assets.query.athena import DEFAULT_WORKGROUP, AthenaError, athena_client


def ensure_workgroup(
    client: Any,
    name: str,
    output_location: str,
    bytes_scanned_cutoff: int | None = None,
    description: str = "estat-lake analytics (managed by setup-workgroup)",
) -> str:
    """Create or update workgroup ``name`` with an enforced output location; idempotent.

    Returns ``"created"``, ``"updated"`` or ``"unchanged"``.
    """
    if not output_location.startswith("s3://"):
        raise AthenaError(f"output location {output_location!r} must be an s3:// URI")
    output_location = output_location.rstrip("/") + "/"
    wanted: dict[str, Any] = {
        "ResultConfiguration": {"OutputLocation": output_location},
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
    }
    if bytes_scanned_cutoff:
        wanted["BytesScannedCutoffPerQuery"] = int(bytes_scanned_cutoff)
    current = None
    try:
        current = client.get_work_group(WorkGroup=name).get("WorkGroup")
    except client.exceptions.InvalidRequestException:
        current = None
    if not current:
        client.create_work_group(Name=name, Configuration=wanted, Description=description)
        return "created"
    config = current.get("Configuration", {})
    same = (
        config.get("ResultConfiguration", {}).get("OutputLocation") == output_location
        and bool(config.get("EnforceWorkGroupConfiguration")) is True
        and config.get("BytesScannedCutoffPerQuery") == wanted.get("BytesScannedCutoffPerQuery")
    )
    if same:
        return "unchanged"
    updates: dict[str, Any] = {
        "ResultConfigurationUpdates": {"OutputLocation": output_location},
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
    }
    if bytes_scanned_cutoff:
        updates["BytesScannedCutoffPerQuery"] = int(bytes_scanned_cutoff)
    else:
        updates["RemoveBytesScannedCutoffPerQuery"] = True
    client.update_work_group(WorkGroup=name, ConfigurationUpdates=updates)
    return "updated"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="estat-lake athena")
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup-workgroup", help="create/update the Athena workgroup")
    setup.add_argument("--name", default=DEFAULT_WORKGROUP)
    setup.add_argument("--output", required=True, help="s3://bucket/prefix/ for query results")
    setup.add_argument("--region", required=True)
    setup.add_argument("--endpoint-url", default=None, help="tests only (moto)")
    setup.add_argument("--cutoff-gb", type=float, default=None, help="per-query scan limit")
    args = parser.parse_args(argv)
    client = athena_client(args.region, args.endpoint_url)
    cutoff = int(args.cutoff_gb * 1024**3) if args.cutoff_gb else None
    try:
        outcome = ensure_workgroup(client, args.name, args.output, cutoff)
    except AthenaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"workgroup {args.name} ({args.region}): {outcome}; results → {args.output}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
