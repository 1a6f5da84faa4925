"""The lake's file root as a resource, and the IO manager that publishes a dataset's manifests.

No pickles: everything written is readable by Athena, DuckDB or a person. The raw and conformed
layers of a dataset partition each end in ``<domain>/<layer>/dataset_id=X/manifest.json``; writing
it (all-or-nothing) is what publishes the layer. After a raw manifest, the runs it replaced are
swept; after a conformed manifest of the whole table, year folders it no longer names are
removed.
"""

from typing import Any

import dagster as dg
import orjson

from estat_assets.estat.ids import check_dataset_id
from estat_assets.lake.layout import MANIFEST, dataset_dir
from estat_assets.lake.rawstore import run_dir_of, sweep_runs
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
                options["key"] = resolved(self.s3_access_key_id)
                options["secret"] = resolved(self.s3_secret_access_key)
        return Storage(self.root, options)


def resolved(value: Any) -> Any:
    """A field's value: outside a run (the CLI, tests) it may still be an unresolved EnvVar."""
    return value.get_value() if isinstance(value, dg.EnvVar) else value


def _where(context: dg.OutputContext | dg.InputContext) -> tuple[str, str, str]:
    path = context.asset_key.path
    return path[0], path[-1], check_dataset_id(context.asset_partition_key)


class ManifestIOManager(dg.ConfigurableIOManager):
    """Publishes a dataset's raw or conformed layer by writing its manifest."""

    lake: dg.ResourceDependency[LakeStorage]

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        storage = self.lake.storage()
        domain, layer, dataset_id = _where(context)
        parts = (*dataset_dir(domain, layer, dataset_id), MANIFEST)
        path = storage.path(*parts)
        previous = orjson.loads(storage.read_bytes(path)) if storage.exists(path) else None
        storage.write_bytes(path, orjson.dumps(obj, option=orjson.OPT_INDENT_2))
        if layer == "raw":
            if previous and previous.get("run_id") != obj.get("run_id"):
                storage.remove_tree(storage.path(*run_dir_of(previous)))
            sweep_runs(storage, domain, dataset_id, keep=obj.get("run_id"))
        elif layer == "conformed" and obj.get("whole"):
            _sweep_years(storage, domain, dataset_id, set(obj.get("years", {})))
        context.add_output_metadata({"manifest": dg.MetadataValue.path(storage.uri(*parts))})

    def load_input(self, context: dg.InputContext) -> dict:
        storage = self.lake.storage()
        domain, layer, dataset_id = _where(context)
        path = storage.path(*dataset_dir(domain, layer, dataset_id), MANIFEST)
        if not storage.exists(path):
            raise FileNotFoundError(
                f"no {layer} data for {domain} {dataset_id} at {storage.uri()}: "
                f"materialize {domain}/{layer} for this dataset first"
            )
        return orjson.loads(storage.read_bytes(path))


def _sweep_years(storage: Storage, domain: str, dataset_id: str, keep: set[str]) -> None:
    """Remove ``year=`` folders of a dataset that the whole-table manifest no longer names."""
    for folder in storage.list_dirs(storage.path(*dataset_dir(domain, "conformed", dataset_id))):
        name = folder.name
        if name.startswith("year=") and name.removeprefix("year=") not in keep:
            storage.remove_tree(folder)
