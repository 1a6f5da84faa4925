"""Releases are never lost: tags, "as published on", retention, and what maintenance may not do.

Lake-level tests write and tag releases the way the table step does. The end-to-end tests load a
recorded table from their own emulator, let it be republished (values revised, a year withdrawn,
a year added), run the maintenance job so that snapshots expire and slices are rewritten, and
then read the table as of the first release: the same rows, byte for byte, as before the second
load, on the local catalog and on the Glue (moto) + S3 (SeaweedFS) twin.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import httpx
import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo

from estat_assets.defs.resources import build_resources
from estat_assets.domains import DomainSpec
from estat_assets.lake import releases as releases_module
from estat_assets.lake.iceberg import (
    PROP_DATASET,
    PROP_RUN,
    PROP_UPDATED,
    PROP_YEARS,
    ensure_table,
    replace_slices,
)
from estat_assets.lake.maintenance import maintain
from estat_assets.lake.releases import (
    Release,
    as_published_sql,
    read_as_published,
    read_release,
    release_as_of,
    release_row_count,
    release_tag,
    releases,
    releases_as_of,
    superseded_on,
    tag_release,
)
from estat_assets_tests import servers
from estat_assets_tests.harness import KEYS, Lake, make_lake
from estat_assets_tests.harness import test_settings as lake_settings
from estat_emulator import EmulatorServer, TableStore

s3_server, moto_server = servers.s3_server, servers.moto_server

IDENT = ("estat", "population")
A, B = "0000000001", "0000000002"
RECORDED = "0000020202"  # 10 rows, fiscal years 1981-1990, UPDATED_DATE 2025-06-20
FIRST_RELEASE = "2025-06-20"


def rows(dataset: str, years: list[int], tag: str) -> pa.Table:
    return pa.table(
        {
            "dataset_id": pa.array([dataset] * len(years), pa.string()),
            "year": pa.array(years, pa.int32()),
            "time_code": pa.array([f"{y}000000" for y in years], pa.string()),
            "value_raw": pa.array([f"{tag}-{y}" for y in years], pa.string()),
        }
    )


@pytest.fixture
def catalog(tmp_path):
    resources = build_resources(lake_settings(tmp_path / "home", "http://127.0.0.1:9"))
    catalog = resources["iceberg"].catalog()
    ensure_table(catalog, *IDENT)
    return catalog


def load(catalog, dataset: str, years: list[int], release: str, run: str = "r"):
    props = {
        PROP_DATASET: dataset,
        PROP_YEARS: ",".join(map(str, years)),
        PROP_UPDATED: release,
        PROP_RUN: run,
    }
    data = rows(dataset, years, release)
    table = replace_slices(catalog, IDENT, dataset, None, lambda: [data], props)
    tag_release(table, dataset, release, table.current_snapshot().snapshot_id)
    return catalog.load_table(IDENT)


def values(table: pa.Table) -> list[str]:
    return sorted(table.column("value_raw").to_pylist())


def test_each_release_is_a_tag_and_a_reload_moves_it(catalog) -> None:
    load(catalog, A, [2001, 2002], "2024-01-10")
    first = releases(catalog.load_table(IDENT), A)[0]
    table = load(catalog, A, [2001, 2002, 2003], "2024-01-10")  # the same release again
    (again,) = releases(table, A)
    assert again.tag == release_tag(A, "2024-01-10") == f"{A}@2024-01-10"
    assert again.snapshot_id != first.snapshot_id
    assert again.snapshot_id == table.current_snapshot().snapshot_id
    assert table.metadata.refs[again.tag].snapshot_ref_type == "tag"


def test_a_release_is_counted_from_its_manifests_or_read_when_they_cannot_say(
    catalog, monkeypatch
) -> None:
    load(catalog, A, [2001, 2002, 2003], "2024-01-10")
    table = load(catalog, B, [2001, 2002], "2024-01-20")
    reads: list[str] = []
    real_scan = releases_module.scan_release

    def counting_scan(*args, **kwargs):
        reads.append(args[1].dataset_id)
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(releases_module, "scan_release", counting_scan)
    a, b = releases(table, A)[0], releases(table, B)[0]
    assert (release_row_count(table, a), release_row_count(table, b)) == (3, 2)
    assert reads == []  # identity partitions, no delete files: the manifests say it exactly
    # one file holding two datasets (an unpartitioned table) leaves a residual: the rows are read
    both = pa.table({"dataset_id": [A, A, B], "value_raw": ["1", "2", "3"]})
    flat = catalog.create_table(("estat", "flat"), schema=both.schema)
    flat.append(both)
    snapshot = flat.current_snapshot().snapshot_id
    assert release_row_count(flat, Release(A, "2024-01-10", snapshot, "")) == 2
    assert release_row_count(flat, Release(B, "2024-01-10", snapshot, "")) == 1
    assert reads == [A, B]


def test_as_published_on_a_day_is_each_datasets_release_of_that_day(catalog) -> None:
    load(catalog, A, [2001, 2002], "2024-01-10")
    load(catalog, B, [2001], "2024-01-20")
    load(catalog, A, [2001, 2003], "2024-02-10")
    table = load(catalog, B, [2001, 2002], "2024-03-01")
    assert release_as_of(table, A, "2024-01-09") is None
    assert release_as_of(table, A, "2024-02-09").updated_date == "2024-01-10"
    assert [(r.dataset_id, r.updated_date) for r in releases_as_of(table, "2024-02-15")] == [
        (A, "2024-02-10"),
        (B, "2024-01-20"),
    ]
    day = read_as_published(catalog, IDENT, "2024-01-15")
    assert values(day) == ["2024-01-10-2001", "2024-01-10-2002"]  # B not published yet
    day = read_as_published(catalog, IDENT, date(2024, 2, 29))
    assert values(day) == [
        "2024-01-20-2001",
        "2024-02-10-2001",
        "2024-02-10-2003",
    ]
    only_b = read_as_published(catalog, IDENT, "2030-01-01", dataset_ids=[B])
    assert values(only_b) == ["2024-03-01-2001", "2024-03-01-2002"]
    one_year = read_as_published(catalog, IDENT, "2024-01-15", row_filter=EqualTo("year", 2002))
    assert values(one_year) == ["2024-01-10-2002"]
    before = read_as_published(catalog, IDENT, "2023-12-31")
    assert before.num_rows == 0 and "value_raw" in before.column_names
    assert values(read_release(catalog, IDENT, A, "2024-01-10")) == values(
        read_as_published(catalog, IDENT, "2024-01-10", dataset_ids=[A])
    )
    with pytest.raises(LookupError, match="releases kept: 2024-01-10, 2024-02-10"):
        read_release(catalog, IDENT, A, "2024-01-11")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        read_as_published(catalog, IDENT, "15/01/2024")
    # what a SQL engine (Athena) reads instead of the table, asked "as of" a day
    by_tag = {r.tag: r.snapshot_id for r in releases(table)}
    assert as_published_sql(table, "estat.population", "2024-02-29") == (
        f"SELECT * FROM estat.population FOR VERSION AS OF {by_tag[A + '@2024-02-10']} "
        f"WHERE dataset_id = '{A}'\nUNION ALL\n"
        f"SELECT * FROM estat.population FOR VERSION AS OF {by_tag[B + '@2024-01-20']} "
        f"WHERE dataset_id = '{B}'"
    )
    assert as_published_sql(table, "t", "2000-01-01") == "SELECT * FROM t WHERE FALSE"


def test_retention_removes_releases_superseded_long_ago_never_the_current_one(catalog) -> None:
    load(catalog, A, [2001], "2023-01-10")
    load(catalog, A, [2001], "2024-01-10")
    load(catalog, A, [2001], "2024-06-01")
    table = load(catalog, B, [2001], "2020-01-01")  # B's only release: current, however old
    assert superseded_on(table) == {
        f"{A}@2023-01-10": "2024-01-10",
        f"{A}@2024-01-10": "2024-06-01",
    }
    now = datetime(2024, 7, 1, tzinfo=UTC)
    forever = maintain(catalog, "estat", older_than_days=0, retain_last=1, now=now)
    assert next(e for e in forever if e["table"] == "estat.population")["releases_removed"] == []
    report = maintain(catalog, "estat", 0, 1, now=now, release_retention_days=90)
    entry = next(e for e in report if e["table"] == "estat.population")
    assert entry["releases_removed"] == [f"{A}@2023-01-10"]  # superseded 2024-01-10
    table = catalog.load_table(IDENT)
    assert [r.tag for r in releases(table)] == [
        f"{A}@2024-01-10",
        f"{A}@2024-06-01",
        f"{B}@2020-01-01",
    ]
    assert values(read_as_published(catalog, IDENT, "2024-02-01", [A])) == ["2024-01-10-2001"]
    assert read_as_published(catalog, IDENT, "2023-06-01", [A]).num_rows == 0  # gone, as asked


def test_expiry_and_compaction_keep_every_release_readable(catalog) -> None:
    for i, release in enumerate(["2024-01-10", "2024-02-10", "2024-03-10"]):
        load(catalog, A, [2001, 2002, 2003], release, f"run-{i}")
        load(catalog, B, [2001], release, f"run-b{i}")
    table = catalog.load_table(IDENT)
    before = {
        r.tag: read_release(catalog, IDENT, r.dataset_id, r.updated_date).sort_by("year")
        for r in releases(table)
    }
    untagged = {s.snapshot_id for s in table.snapshots()} - {r.snapshot_id for r in releases(table)}
    report = maintain(catalog, "estat", older_than_days=0, retain_last=1, max_files_per_slice=0)
    entry = next(e for e in report if e["table"] == "estat.population")
    assert entry["compacted"] and entry["expired_snapshots"] > 0
    table = catalog.load_table(IDENT)
    assert not untagged & {s.snapshot_id for s in table.snapshots()}  # intermediate ones gone
    after = {
        r.tag: read_release(catalog, IDENT, r.dataset_id, r.updated_date).sort_by("year")
        for r in releases(table)
    }
    assert after.keys() == before.keys() and len(after) == 6
    for tag, data in before.items():
        assert after[tag].equals(data), tag


# ---------------------------------------------------------------------- end to end


def republish_with_changes(server: EmulatorServer) -> None:
    reply = httpx.post(
        f"{server.url}/_emulator/republish",
        json={
            "statsDataId": RECORDED,
            "updated_date": "2030-05-01",
            "revise": {"time": ["1984100000", "1989100000"]},
            "remove_items": {"time": ["1981100000"]},
            "add_cells": [
                {
                    "@tab": "00001",
                    "@cat01": "B1101",
                    "@area": "01100",
                    "@time": "1991100000",
                    "@unit": "ｈａ",
                    "$": "112121",
                }
            ],
        },
        timeout=10,
    )
    assert reply.status_code == 200, reply.text


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in KEYS])


def as_of_survives_maintenance(lake: Lake, server: EmulatorServer) -> None:
    assert lake.run(RECORDED).success
    first = sorted_rows(lake.rows(RECORDED))
    assert first.num_rows == 10
    republish_with_changes(server)
    second_run = lake.run(RECORDED)
    assert second_run.success
    second = sorted_rows(lake.rows(RECORDED))
    assert second.num_rows == 10 and not second.equals(first)

    maintenance = lake.defs.resolve_job_def("lake_maintenance_job").execute_in_process(
        instance=lake.instance,
        run_config={
            "ops": {
                "maintain_tables": {
                    "config": {"older_than_days": 0, "retain_last": 1, "max_files_per_slice": 0}
                }
            }
        },
    )
    assert maintenance.success
    report = maintenance.output_for_node("maintain_tables")
    namespace = lake.resources["iceberg"].namespace  # estat, or the test's Glue database
    entry = next(e for e in report if e["table"] == f"{namespace}.population")
    assert entry["compacted"] and entry["expired_snapshots"] > 0

    catalog, ident = lake.catalog(), lake.resources["iceberg"].identifier("population")
    table = catalog.load_table(ident)
    assert [r.updated_date for r in releases(table, RECORDED)] == [FIRST_RELEASE, "2030-05-01"]
    as_of_first = sorted_rows(read_as_published(catalog, ident, "2025-12-31", [RECORDED]))
    assert as_of_first.equals(first)  # every column of every row, byte for byte
    assert sorted(as_of_first.column("value_raw").to_pylist()) == sorted(
        first.column("value_raw").to_pylist()
    )
    assert sorted_rows(read_as_published(catalog, ident, "2030-05-01", [RECORDED])).equals(second)
    assert read_as_published(catalog, ident, "2025-06-19", [RECORDED]).num_rows == 0
    # and the table itself is still the second release after its slices were rewritten
    assert sorted_rows(lake.rows(RECORDED)).equals(second)


@pytest.fixture
def server():
    """An emulator of our own: these tests republish the table."""
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as s:
        yield s


def test_as_of_returns_the_earlier_release_after_maintenance_locally(
    tmp_path, server, instance
) -> None:
    spec = DomainSpec("population", datasets=(RECORDED,))
    as_of_survives_maintenance(make_lake(tmp_path / "home", server, instance, domain=spec), server)


@pytest.mark.slow
def test_as_of_returns_the_earlier_release_after_maintenance_on_glue_and_s3(
    tmp_path, server, instance, s3_server, moto_server, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    tag = uuid.uuid4().hex[:8]
    bucket = s3_server.create_bucket("estat-lake-test")
    aws = {
        "ESTAT_LAKE_ENV": "aws",
        "ESTAT_APP_ID": "estat-lake-test-app-id",
        "ESTAT_LAKE_S3_ROOT": f"s3://{bucket}/{tag}",
        "ESTAT_LAKE_S3_ENDPOINT": s3_server.endpoint,
        "ESTAT_LAKE_S3_ACCESS_KEY_ID": s3_server.access_key,
        "ESTAT_LAKE_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
        "ESTAT_GLUE_ENDPOINT": moto_server.endpoint,
        "ESTAT_GLUE_DATABASE": f"estat_{tag}",
        "ESTAT_ATHENA_ENDPOINT": moto_server.endpoint,
        "ESTAT_ATHENA_WORKGROUP": "primary",
    }
    spec = DomainSpec("population", datasets=(RECORDED,))
    lake = make_lake(tmp_path / "home", server, instance, domain=spec, **aws)
    assert lake.resources["iceberg"].catalog_type == "glue"
    as_of_survives_maintenance(lake, server)
    # the tags live in the table metadata Glue points at
    glue = moto_server.client("glue")
    entry = glue.get_table(DatabaseName=f"estat_{tag}", Name="population")["Table"]
    location = entry["Parameters"]["metadata_location"]
    assert location == lake.iceberg().metadata_location and location.startswith("s3://")
    assert {f"{RECORDED}@{FIRST_RELEASE}", f"{RECORDED}@2030-05-01"} <= set(
        lake.iceberg().metadata.refs
    )
