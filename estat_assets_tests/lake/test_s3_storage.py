"""The lake's files on a real S3 server (SeaweedFS on loopback): same API as a local folder."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

from estat_assets.defs.resources import IcebergCatalogResource
from estat_assets.lake.io_managers import LakeStorage
from estat_assets_tests import servers

s3_server = servers.s3_server
pytestmark = pytest.mark.slow  # SeaweedFS


@pytest.fixture
def storage(s3_server):
    bucket = s3_server.create_bucket("estat-lake-storage")
    lake = LakeStorage(
        root=f"s3://{bucket}/{uuid.uuid4().hex[:8]}",
        s3_endpoint=s3_server.endpoint,
        s3_region=s3_server.region,
        s3_access_key_id=s3_server.access_key,
        s3_secret_access_key=s3_server.secret_key,
    )
    return lake.storage()


def test_write_read_list_remove_on_s3(storage, s3_server) -> None:
    assert not storage.is_local
    path = storage.path("population", "raw", "dataset_id=1", "year=2020", "manifest.json")
    storage.write_bytes(path, b'{"run_id": "r1"}')
    assert storage.exists(path) and storage.read_bytes(path) == b'{"run_id": "r1"}'
    storage.write_bytes(path, b'{"run_id": "r2"}')  # a PUT replaces whole
    assert storage.read_bytes(path) == b'{"run_id": "r2"}'
    dirs = storage.list_dirs(storage.path("population", "raw"))
    assert [d.name for d in dirs] == ["dataset_id=1"]
    storage.remove_tree(storage.path("population"))
    assert not storage.exists(path)
    # No object is left. (SeaweedFS, unlike S3, may keep the emptied folder as a prefix.)
    bucket, prefix = storage.root.removeprefix("s3://").split("/", 1)
    left = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/population/")
    assert left.get("KeyCount", 0) == 0
    assert "secret" not in storage.uri()


def test_a_failed_write_leaves_the_old_object_and_bad_parts_are_refused(storage) -> None:
    path = storage.path("population", "raw", "dataset_id=0000020202", "manifest.json")
    storage.write_bytes(path, b'{"run_id": "r1"}')

    def broken(fh) -> None:
        fh.write(b'{"run_id": "r2", "hal')
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        storage.write_with(path, broken)
    assert storage.read_bytes(path) == b'{"run_id": "r1"}'  # nothing was PUT
    for part in ("..", "a/b", ""):
        with pytest.raises(ValueError, match="refusing path part"):
            storage.path("population", part)


def test_s3_options_always_carry_a_region() -> None:
    lake = LakeStorage(root="s3://b/p")
    assert lake.storage().options["client_kwargs"]["region_name"] == "us-east-1"
    props = IcebergCatalogResource(catalog_type="glue", warehouse="s3://b/w").properties()
    assert props["s3.region"]  # without it pyarrow asks real AWS where the bucket is
    sql = IcebergCatalogResource(uri="sqlite://", warehouse="s3://b/w", region="eu-west-1")
    assert sql.properties()["s3.region"] == "eu-west-1"


def test_parquet_round_trip_through_s3(storage) -> None:
    import io

    import pyarrow.parquet as pq

    table = pa.table({"area_code": ["01100"], "value": [1.5]})
    path = storage.path("population", "conformed", "dataset_id=1", "year=2020", "data.parquet")
    buf = io.BytesIO()
    pq.write_table(table, buf)
    storage.write_bytes(path, buf.getvalue())
    assert pq.read_table(io.BytesIO(storage.read_bytes(path))).equals(table)
