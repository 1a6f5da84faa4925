"""``<domain>/table``: the domain's Iceberg table; a dataset's years replaced in one commit.

The step is the only writer of the lake's tables for a load, and it writes only after the
conformed checks passed and the shrink guard (``quality/shrink.py``) found every year that would
lose rows backed by evidence. Then, in order: the domain table (one commit: the dataset's slices
of the loaded years, or of all years for a whole-table load, deleted and appended), the
quarantine table (one commit), and the dataset's row of ``estat.dataset_inventory``. Every commit
carries the dataset, the release (``estat.updated_date``) and the run in its snapshot summary.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import orjson

from estat_assets import CREDIT_NOTICE
from estat_assets.defs.errors import failure_for
from estat_assets.defs.metadata import column_schema, datasets_markdown, freshness
from estat_assets.defs.partitions import ALLOW_SHRINK_TAG, domain_partitions
from estat_assets.defs.raw import estat_url
from estat_assets.defs.resources import EStatResource, IcebergCatalogResource, TableWriter
from estat_assets.domains import DomainSpec
from estat_assets.estat.ids import check_dataset_id
from estat_assets.estat.models import TableInfo, TableMetadata, parse_meta_info
from estat_assets.estat.slicing import time_filter, year_slices
from estat_assets.lake.conformedstore import iter_year, read_quarantine
from estat_assets.lake.iceberg import (
    PROP_DATASET,
    PROP_RUN,
    PROP_UPDATED,
    PROP_YEARS,
    SlicePart,
    ensure_table,
    held_releases,
    slice_rows,
    table_exists,
)
from estat_assets.lake.inventory import INVENTORY_TABLE, update_inventory
from estat_assets.lake.io_managers import LakeStorage
from estat_assets.lake.quarantine import quarantine_name, write_quarantine
from estat_assets.lake.rawstore import load_manifest, manifest_path, read_run_file
from estat_assets.lake.releases import release_tag, tag_release
from estat_assets.lake.storage import Storage
from estat_assets.quality.shrink import judge_shrinks, refusal


def _raw_meta(storage: Storage, domain: str, dataset_id: str) -> tuple[dict, TableMetadata]:
    raw = load_manifest(storage, domain, dataset_id)
    if raw is None:
        raise dg.Failure(f"{dataset_id}: no raw manifest; materialize {domain}/raw first")
    return raw, parse_meta_info(orjson.loads(read_run_file(storage, raw, raw["meta_file"])))


def held_rows(catalog, iceberg: IcebergCatalogResource, domain: str, dataset_id: str):
    """Rows per year the lake holds for a dataset (domain table + quarantine) and its release."""
    table = catalog.load_table(iceberg.identifier(domain))
    held = slice_rows(table, dataset_id)
    q_id = iceberg.identifier(quarantine_name(domain))
    if table_exists(catalog, q_id):
        for year, n in slice_rows(catalog.load_table(q_id), dataset_id).items():
            held[year] = held.get(year, 0) + n
    return held, held_releases(table, dataset_id)


def guard_shrinks(
    context: dg.AssetExecutionContext,
    estat: EStatResource,
    conformed: dict,
    raw: dict,
    meta: TableMetadata,
    held: dict[str, int],
    held_release: dict[str, str | None],
) -> list[dict]:
    """Refuse a load that would shrink a year without evidence (see ``quality/shrink.py``)."""
    dataset_id = conformed["dataset_id"]
    judged_years = set(held) if conformed["whole"] else set(raw["years"])
    offered = {y: e["raw_rows"] for y, e in conformed["years"].items()}
    slices = year_slices(meta)
    with estat.client() as client:
        shrinks = judge_shrinks(
            {y: n for y, n in held.items() if y in judged_years},
            offered,
            held_release=held_release,
            new_release=conformed.get("updated_date"),
            years_in_metadata=set(slices) if meta.axis("time") is not None else set(offered),
            count_year=lambda y: client.count(dataset_id, time_filter(meta, slices.get(y, []))),
            count_table=lambda: client.count(dataset_id),
            offered_total=sum(offered.values()),
        )
    error = refusal(dataset_id, shrinks, conformed.get("updated_date"))
    allowed = (context.run.tags.get(ALLOW_SHRINK_TAG) or "").strip().lower() == "true"
    if error is not None and not allowed:
        raise failure_for(error)
    if error is not None:
        context.log.warning(f"{error.message} — loading anyway: {ALLOW_SHRINK_TAG}=true")
    return [s.__dict__ for s in shrinks]


def build_table_asset(domain: DomainSpec) -> dg.AssetsDefinition:
    name = domain.name

    @dg.asset(
        key=dg.AssetKey([name, "table"]),
        ins={"conformed": dg.AssetIn(key=dg.AssetKey([name, "conformed"]))},
        partitions_def=domain_partitions(name),
        group_name=name,
        kinds={"iceberg"},
        owners=domain.owners,
        tags={"layer": "table", "domain": name},
        code_version="2",
        pool=f"iceberg_{name}",
        metadata={
            "dagster/table_name": f"estat.{name}",
            "dagster/column_schema": column_schema(),
        },
        freshness_policy=freshness(domain),
        description=(
            f"{domain.title or name}: the Iceberg table estat.{name}, a dataset's years "
            f"replaced in one commit per load, never shrunk without evidence. {CREDIT_NOTICE}"
            + datasets_markdown(domain, domain.titles)
        ),
    )
    def table(
        context: dg.AssetExecutionContext,
        conformed: dict,
        estat: EStatResource,
        iceberg: IcebergCatalogResource,
        lake: LakeStorage,
        table_writer: dg.ResourceParam[TableWriter],
    ) -> dg.MaterializeResult:
        dataset_id = check_dataset_id(context.partition_key)
        storage = lake.storage()
        catalog = iceberg.catalog()
        identifier = iceberg.identifier(name)
        ensure_table(catalog, *identifier)
        raw, meta = _raw_meta(storage, name, dataset_id)
        held, held_release = held_rows(catalog, iceberg, name, dataset_id)
        shrinks = guard_shrinks(context, estat, conformed, raw, meta, held, held_release)
        years = None if conformed["whole"] else [int(y) for y in raw["years"]]
        entries = conformed["years"]
        updated = conformed.get("updated_date") or ""
        props = {
            PROP_DATASET: dataset_id,
            PROP_YEARS: ",".join(sorted(entries)) if years is None else ",".join(raw["years"]),
            PROP_UPDATED: updated,
            PROP_RUN: context.run_id,
        }

        def clean() -> Iterator[SlicePart]:
            for year in sorted(entries):
                yield SlicePart(int(year), lambda y=year: iter_year(storage, name, dataset_id, y))

        def held_back() -> Iterator:
            for year, entry in sorted(entries.items()):
                rows = read_quarantine(storage, name, dataset_id, year, entry)
                if rows is not None:
                    yield rows

        tbl = table_writer.write(
            name, dataset_id, years, clean, props, context.log.info, loaded_years=sorted(entries)
        )
        write_quarantine(
            catalog,
            iceberg.identifier(quarantine_name(name)),
            dataset_id,
            years,
            held_back,
            any_rows=any(e["quarantined"] for e in entries.values()),
            snapshot_properties=props,
        )
        snapshot = tbl.current_snapshot()
        if snapshot is not None and updated:
            tag_release(tbl, dataset_id, updated, snapshot.snapshot_id)  # the release stays
        info = meta.table if meta.table.id else TableInfo(id=dataset_id)
        inventory = update_inventory(
            catalog,
            iceberg.namespace,
            name,
            dataset_id,
            info,
            run_id=context.run_id,
            partition=dataset_id,
            updated_date=updated or None,
            synthetic=bool(raw.get("synthetic")),
            raw_manifest=str(manifest_path(storage, name, dataset_id)),
        )
        total = snapshot.summary.additional_properties.get("total-records") if snapshot else None
        years_loaded = sorted(entries)
        return dg.MaterializeResult(
            metadata={
                "dagster/partition_row_count": inventory["rows_stored"],
                "dagster/row_count": int(total) if total is not None else 0,
                "dagster/table_name": ".".join(identifier),
                "title": raw.get("title") or "",
                "writer": table_writer.kind,
                "years_loaded": ", ".join(years_loaded[:3])
                + (
                    f" … {years_loaded[-1]} ({len(years_loaded)} years)"
                    if len(years_loaded) > 3
                    else ""
                ),
                "rows_loaded": sum(e["rows"] for e in entries.values()),
                "quarantined_rows": sum(e["quarantined"] for e in entries.values()),
                "snapshot_id": str(snapshot.snapshot_id) if snapshot else "",
                "release_tag": release_tag(dataset_id, updated) if updated else "",
                "metadata_location": dg.MetadataValue.path(tbl.metadata_location),
                "source_updated_date": updated,
                "shrinks": dg.MetadataValue.json(shrinks) if shrinks else "none",
                "written_at": dg.MetadataValue.timestamp(datetime.now(UTC)),
                "dataset_status": inventory["status"],
                "dataset_overall_total": inventory["overall_total_number"] or 0,
                "inventory_table": f"{iceberg.namespace}.{INVENTORY_TABLE}",
                "query": dg.MetadataValue.md(
                    f"```sql\nSELECT * FROM {'.'.join(identifier)}\n"
                    f"WHERE dataset_id = '{dataset_id}'\n```"
                ),
                "e-Stat": dg.MetadataValue.url(estat_url(dataset_id)),
            }
        )

    return table
