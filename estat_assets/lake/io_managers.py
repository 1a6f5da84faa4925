"""IO managers for the lake's files: raw manifests (JSON) and conformed tables (Parquet).

No pickles: everything written is readable by Athena, DuckDB or a person. Both managers map a
``(dataset, year)`` partition of asset ``<domain>/<layer>`` to a Hive-style folder (see ``layout``),
on a local folder or S3 alike, and write all-or-nothing.
"""

import io
import os
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from estat_assets.lake.layout import DATASET_DIM, YEAR_DIM, partition_dir
from estat_assets.lake.rawstore import MANIFEST, run_dir_of, sweep_runs
from estat_assets.lake.storage import Storage


class LakeStorage(dg.ConfigurableResource):
    """The lake's file root: a local folder by default, ``s3://bucket/prefix`` in production."""

    root: str
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    def storage(self) -> Storage:
        options: dict[str, Any] = {}
        if self.root.startswith("s3://"):
            client_kwargs: dict[str, Any] = {"region_name": self.s3_region or "us-east-1"}
            if self.s3_endpoint:
                client_kwargs["endpoint_url"] = self.s3_endpoint
            options["client_kwargs"] = client_kwargs
            # Other runs (other processes) write the same prefixes: never trust a cached listing.
            options["use_listings_cache"] = False
            if self.s3_access_key_id:
                # Outside a run (CLI, tests) an EnvVar field is not resolved yet.
                key, secret = (
                    v.get_value() if isinstance(v, dg.EnvVar) else v
                    for v in (self.s3_access_key_id, self.s3_secret_access_key)
                )
                options["key"] = key
                options["secret"] = secret
        return Storage(self.root, options)


def partition_dims(key: Any) -> tuple[str, str]:
    """(dataset_id, year) of a multi-partition key such as ``0003065345|2011``."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims[DATASET_DIM], dims[YEAR_DIM]
    dataset_id, _, year = str(key).partition("|")
    if not year:
        raise ValueError(f"expected a '<dataset>|<year>' partition key, got {key!r}")
    return dataset_id, year


def _asset_parts(context: dg.OutputContext | dg.InputContext) -> tuple[str, str, str, str]:
    path = context.asset_key.path
    domain, layer = path[0], path[-1]
    dataset_id, year = partition_dims(context.asset_partition_key)
    return domain, layer, dataset_id, year


class ManifestIOManager(dg.ConfigurableIOManager):
    """Publishes a raw partition by writing its manifest; then drops the run it replaced."""

    lake: dg.ResourceDependency[LakeStorage]

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        storage = self.lake.storage()
        domain, layer, dataset_id, year = _asset_parts(context)
        path = storage.path(*partition_dir(domain, layer, dataset_id, year), MANIFEST)
        previous = orjson.loads(storage.read_bytes(path)) if storage.exists(path) else None
        storage.write_bytes(path, orjson.dumps(obj, option=orjson.OPT_INDENT_2))
        if previous and previous.get("run_id") != obj.get("run_id"):
            storage.remove_tree(storage.path(*run_dir_of(previous)))
        sweep_runs(storage, domain, dataset_id, year, keep=obj.get("run_id"))
        context.add_output_metadata(
            {
                "manifest": dg.MetadataValue.path(
                    storage.uri(*partition_dir(domain, layer, dataset_id, year), MANIFEST)
                )
            }
        )

    def load_input(self, context: dg.InputContext) -> dict:
        storage = self.lake.storage()
        domain, layer, dataset_id, year = _asset_parts(context)
        path = storage.path(*partition_dir(domain, layer, dataset_id, year), MANIFEST)
        if not storage.exists(path):
            raise FileNotFoundError(
                f"no raw data for {domain} {dataset_id}|{year} at {storage.uri()}: "
                f"materialize {domain}/raw for this partition first"
            )
        return orjson.loads(storage.read_bytes(path))


class ParquetIOManager(dg.ConfigurableIOManager):
    """Arrow tables as snappy Parquet, one file per partition, replaced atomically."""

    lake: dg.ResourceDependency[LakeStorage]
    compression: str = "snappy"

    def _path(self, context: dg.OutputContext | dg.InputContext) -> tuple[Storage, Any]:
        storage = self.lake.storage()
        domain, layer, dataset_id, year = _asset_parts(context)
        return storage, storage.path(
            *partition_dir(domain, layer, dataset_id, year), "data.parquet"
        )

    def handle_output(self, context: dg.OutputContext, obj: pa.Table) -> None:
        storage, path = self._path(context)
        if storage.is_local:
            local = Path(str(path))
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex}.tmp")
            pq.write_table(obj, tmp, compression=self.compression)
            os.replace(tmp, local)
        else:
            buf = io.BytesIO()
            pq.write_table(obj, buf, compression=self.compression)
            storage.write_bytes(path, buf.getvalue())
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> pa.Table:
        storage, path = self._path(context)
        if storage.is_local:
            return pq.read_table(str(path))
        return pq.read_table(io.BytesIO(storage.read_bytes(path)))
