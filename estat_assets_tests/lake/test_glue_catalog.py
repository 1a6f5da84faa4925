"""pyiceberg's Glue catalog on moto_server with the warehouse on SeaweedFS: the production path.

The same ``replace_slices`` as locally: a dataset's years replaced in one Glue ``UpdateTable``
(one new metadata location), registered the way Athena reads Iceberg tables.
"""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

from estat_assets.conform.table import conformed_schema
from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.lake.iceberg import ensure_table, replace_partition, replace_slices, slice_rows
from estat_assets_tests import servers

s3_server, moto_server = servers.s3_server, servers.moto_server
pytestmark = pytest.mark.slow  # SeaweedFS and moto_server


@pytest.fixture
def iceberg(s3_server, moto_server, monkeypatch) -> IcebergCatalogResource:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    bucket = s3_server.create_bucket("estat-lake-glue")
    tag = uuid.uuid4().hex[:8]
    return IcebergCatalogResource(
        catalog_type="glue",
        namespace=f"estat_{tag}",
        warehouse=f"s3://{bucket}/{tag}/warehouse",
        region=s3_server.region,
        glue_endpoint=moto_server.endpoint,
        s3_endpoint=s3_server.endpoint,
        s3_access_key_id=s3_server.access_key,
        s3_secret_access_key=s3_server.secret_key,
    )


def _slice(dataset_id: str, year: int, n: int) -> pa.Table:
    schema = conformed_schema(axes=("area", "time"), semantic=())
    data = {
        "dataset_id": [dataset_id] * n,
        "area_code": [f"{i:05d}" for i in range(n)],
        "time_code": [f"{year}000000"] * n,
        "year": pa.array([year] * n, pa.int32()),
        "value": pa.array([float(i) for i in range(n)]),
    }
    return pa.table({f.name: data.get(f.name, pa.nulls(n, f.type)) for f in schema})


def test_glue_table_is_registered_the_way_athena_reads_it(iceberg, moto_server) -> None:
    catalog = iceberg.catalog()
    ident = iceberg.identifier("population")
    ensure_table(catalog, *ident)
    ensure_table(catalog, *ident)  # idempotent
    replace_partition(catalog, ident, _slice("0000000001", 2020, 5), "0000000001", 2020)
    replace_partition(catalog, ident, _slice("0000000001", 2021, 3), "0000000001", 2021)
    table = replace_partition(catalog, ident, _slice("0000000001", 2020, 2), "0000000001", 2020)
    assert table.scan().to_arrow().num_rows == 5  # 2020 replaced (2), 2021 kept (3)
    entry = moto_server.client("glue").get_table(DatabaseName=ident[0], Name=ident[1])["Table"]
    assert entry["TableType"] == "EXTERNAL_TABLE"
    assert entry["Parameters"]["table_type"].upper() == "ICEBERG"
    assert entry["Parameters"]["metadata_location"] == table.metadata_location
    assert entry["Parameters"]["previous_metadata_location"].startswith("s3://")
    assert table.metadata_location.startswith(iceberg.warehouse)
    names = [c["Name"] for c in entry["StorageDescriptor"]["Columns"]]
    assert names[:2] == ["dataset_id", "tab_code"] and "value" in names


def test_a_dataset_load_is_one_glue_commit(iceberg, moto_server) -> None:
    catalog = iceberg.catalog()
    ident = iceberg.identifier("population")
    ensure_table(catalog, *ident)
    glue = moto_server.client("glue")

    def location() -> str:
        entry = glue.get_table(DatabaseName=ident[0], Name=ident[1])["Table"]
        return entry["Parameters"]["metadata_location"]

    first = [_slice("0000000001", y, 2) for y in (2019, 2020, 2021)]
    replace_slices(catalog, ident, "0000000001", None, lambda: first)
    before = location()
    # the next release has 2020-2021 only: three slices change in one UpdateTable
    table = replace_slices(
        catalog, ident, "0000000001", None, lambda: [_slice("0000000001", 2021, 4), first[1]]
    )
    entry = glue.get_table(DatabaseName=ident[0], Name=ident[1])["Table"]
    assert entry["Parameters"]["previous_metadata_location"] == before
    assert entry["Parameters"]["metadata_location"] == table.metadata_location
    assert slice_rows(table, "0000000001") == {"2020": 2, "2021": 4}


def test_glue_properties_name_region_endpoint_and_keys(iceberg) -> None:
    props = iceberg.properties()
    assert props["type"] == "glue" and props["glue.region"] == props["s3.region"]
    assert props["glue.endpoint"].startswith("http://127.0.0.1:")
    assert props["s3.endpoint"].startswith("http://127.0.0.1:")
