"""``estat_assets/instance.py`` and the lake's Dagster home (``runner.open_instance``).

``load_tags`` decides which ``estat/`` tags a queued run lacks; ``EstatRunCoordinator`` adds them
before queueing, so UI/asset-backfill runs fall under the per-domain limit and the audit knows
their domain. ``open_instance`` writes the packaged ``dagster.yaml`` into
``ESTAT_LAKE_HOME/dagster`` whatever the working directory.
"""

from __future__ import annotations

import inspect
import os
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.run_coordinator.base import SubmitRunContext
from dagster._core.test_utils import create_run_for_test

from estat_assets.defs import audit, partitions
from estat_assets.instance import (
    DATASET_TAG,
    DOMAIN_TAG,
    LAYERS,
    EstatRunCoordinator,
    load_tags,
)
from estat_assets.runner import instance_yaml, open_instance
from estat_assets.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGED = ROOT / "estat_assets" / "dagster.yaml"


def _run(keys=(), **tags: str) -> dg.DagsterRun:
    return dg.DagsterRun(
        job_name="__ASSET_JOB",
        run_id=str(uuid.uuid4()),
        tags=tags,
        asset_selection=frozenset(dg.AssetKey(k.split("/")) for k in keys) or None,
    )


CHAIN = ["population/raw", "population/conformed", "population/table", "population/class_codes"]


def test_an_asset_run_of_one_domain_gets_domain_and_dataset() -> None:
    run = _run(CHAIN, **{"dagster/partition": "0000020202"})
    assert load_tags(run) == {DOMAIN_TAG: "population", DATASET_TAG: "0000020202"}
    assert load_tags(_run(["education/table"])) == {DOMAIN_TAG: "education"}


def test_tags_a_run_already_has_are_kept() -> None:
    run = _run(CHAIN, **{"dagster/partition": "0000020202", DOMAIN_TAG: "custom"})
    assert load_tags(run) == {DATASET_TAG: "0000020202"}
    run = _run(CHAIN, **{"dagster/partition": "0000020202", DATASET_TAG: "0000020202"})
    assert load_tags(run) == {DOMAIN_TAG: "population"}


@pytest.mark.parametrize(
    "keys",
    [
        ["population/raw", "education/raw"],  # two domains: no single queue to put it in
        ["population/latest_by_area"],  # analytics: not a layer of the chain
        ["population"],
        ["a/b/raw"],
        [],
    ],
)
def test_no_domain_unless_all_layer_assets_are_of_one_domain(keys) -> None:
    assert DOMAIN_TAG not in load_tags(_run(keys))


@pytest.mark.parametrize(
    "partition",
    ["2020", "0000020202|1981", "０００００２０２０２", "00000202020", "000002020 ", ""],
)
def test_only_a_statsdataid_partition_becomes_the_dataset_tag(partition) -> None:
    assert DATASET_TAG not in load_tags(_run(CHAIN, **{"dagster/partition": partition}))


def test_the_layers_are_every_dataset_partitioned_asset_of_a_domain() -> None:
    """The coordinator and the audit know exactly the assets a domain partitions by dataset."""
    from estat_assets.definitions import build_definitions

    assert audit.LAYERS is LAYERS is partitions.LAYERS
    graph = build_definitions().resolve_asset_graph()
    partitioned = {
        k.path[1]
        for k in graph.get_all_asset_keys()
        if k.path[0] == "population" and graph.get(k).partitions_def is not None
    }
    assert partitioned == set(LAYERS)


def _origin(job: str) -> RemoteJobOrigin:
    """Where a queued run's job lives (the daemon needs it; the coordinator only passes it on)."""
    location = RegisteredCodeLocationOrigin("estat_lake")
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job)


@pytest.fixture
def coordinated():
    with dg.instance_for_test(
        overrides={
            "run_coordinator": {
                "module": "estat_assets.instance",
                "class": "EstatRunCoordinator",
                "config": {"dequeue_interval_seconds": 1},
            }
        }
    ) as instance:
        yield instance


def test_the_coordinator_tags_then_queues(coordinated) -> None:
    assert isinstance(coordinated.run_coordinator, EstatRunCoordinator)
    run = create_run_for_test(
        coordinated,
        job_name="__ASSET_JOB",
        remote_job_origin=_origin("__ASSET_JOB"),
        tags={"dagster/partition": "0003065345", "dagster/backfill": "abc"},
        asset_selection=frozenset(dg.AssetKey(["education", layer]) for layer in LAYERS),
    )
    context = SubmitRunContext(dagster_run=run, workspace=None)
    queued = coordinated.run_coordinator.submit_run(context)
    assert queued.status == dg.DagsterRunStatus.QUEUED
    stored = coordinated.get_run_by_id(run.run_id)
    assert stored.tags[DOMAIN_TAG] == "education" and stored.tags[DATASET_TAG] == "0003065345"
    assert stored.tags["dagster/backfill"] == "abc"  # Dagster's own tags untouched
    assert queued.tags[DOMAIN_TAG] == "education"  # the queued run returned is the tagged one
    enqueued = coordinated.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED
    ).records
    assert len(enqueued) == 1


def test_the_coordinator_leaves_other_runs_as_they_are(coordinated) -> None:
    run = create_run_for_test(
        coordinated,
        job_name="lake_maintenance_job",
        remote_job_origin=_origin("lake_maintenance_job"),
        tags={"x": "1"},
    )
    context = SubmitRunContext(dagster_run=run, workspace=None)
    queued = coordinated.run_coordinator.submit_run(context)
    assert queued.status == dg.DagsterRunStatus.QUEUED
    tags = coordinated.get_run_by_id(run.run_id).tags
    assert tags["x"] == "1" and not [k for k in tags if k.startswith("estat/")]


def test_open_instance_writes_the_packaged_config_whatever_the_cwd(tmp_path, monkeypatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "dagster.yaml").write_text("telemetry: {enabled: true}\n")  # must not be used
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "home"
    settings = Settings.from_env({"ESTAT_LAKE_HOME": str(home)})
    with open_instance(settings) as instance:
        assert isinstance(instance.run_coordinator, EstatRunCoordinator)
        assert Path(instance.root_directory) == home / "dagster"
    target = home / "dagster" / "dagster.yaml"
    assert instance_yaml() == PACKAGED.read_bytes()
    written = yaml.safe_load(target.read_text(encoding="utf-8"))
    packaged = yaml.safe_load(PACKAGED.read_text(encoding="utf-8"))
    # the packaged file, but the storage's path written out (no DAGSTER_HOME in the environment)
    assert written["storage"]["custom"]["config"] == {"base_dir": str(home / "dagster")}
    del written["storage"], packaged["storage"]
    assert written == packaged
    assert (home / "dagster" / ".nux" / "nux.yaml").is_file()  # no first-visit modal in the UI
    # an edited or stale copy is replaced by the packaged one on the next open
    target.write_text("run_coordinator: {}\n")
    open_instance(settings).dispose()
    assert target.read_bytes() == instance_yaml(home / "dagster")
    assert Path.cwd() == elsewhere and sorted(os.listdir(elsewhere)) == ["dagster.yaml"]


def test_the_packaged_instance_config() -> None:
    config = yaml.safe_load(PACKAGED.read_text(encoding="utf-8"))
    coordinator = config["run_coordinator"]
    assert (coordinator["module"], coordinator["class"]) == (
        "estat_assets.instance",
        "EstatRunCoordinator",
    )
    limits = {
        (x["key"], x["limit"]) for x in config["concurrency"]["runs"]["tag_concurrency_limits"]
    }
    assert {(DOMAIN_TAG, 2), ("dagster/backfill", 2)} <= limits
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
    # the repository root's dagster.yaml (used by `dagster dev` from a checkout) is the same file
    root = ROOT / "dagster.yaml"
    assert root.read_bytes() == PACKAGED.read_bytes()


@pytest.fixture
def daemon_interval():
    """Dagster's backfill loop constant, restored after the test (it is process-wide)."""
    from dagster._daemon import controller

    before = controller.DEFAULT_DAEMON_INTERVAL_SECONDS
    yield controller
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = before


def test_the_instance_sets_the_backfill_and_queue_daemons_ticks(tmp_path, daemon_interval) -> None:
    """The daemon builds the run coordinator from dagster.yaml before its threads start; the
    backfill loop then reads Dagster's constant, which the coordinator's config has set, and the
    queue daemon is built with the coordinator's ``dequeue_interval_seconds``, a fraction here."""
    from dagster._daemon.controller import create_daemon_of_type
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
        QueuedRunCoordinatorDaemon,
    )

    daemon_interval.DEFAULT_DAEMON_INTERVAL_SECONDS = 30
    settings = Settings.from_env({"ESTAT_LAKE_HOME": str(tmp_path / "home")})
    with open_instance(settings) as instance:
        assert isinstance(instance.run_coordinator, EstatRunCoordinator)
        assert instance.auto_materialize_minimum_interval_seconds == 30  # pinned, not the tick
        queue = create_daemon_of_type(QueuedRunCoordinatorDaemon.daemon_type(), instance)
        assert queue.interval_seconds == 0.25  # the packaged dequeue_tick_seconds
    assert daemon_interval.DEFAULT_DAEMON_INTERVAL_SECONDS == 0.25  # the packaged config's value
    # what the backfill daemon's loop reads when it starts
    from dagster._daemon import backfill

    source = inspect.getsource(backfill.execute_backfill_iteration_loop)
    assert "from dagster._daemon.controller import DEFAULT_DAEMON_INTERVAL_SECONDS" in source
    assert "DEFAULT_DAEMON_INTERVAL_SECONDS - loop_duration" in source
    # no value, Dagster's stays, and the queue's whole seconds; a tick below 0.1 s is refused
    daemon_interval.DEFAULT_DAEMON_INTERVAL_SECONDS = 30
    plain = EstatRunCoordinator.from_config_value(None, {"dequeue_interval_seconds": 2})
    assert daemon_interval.DEFAULT_DAEMON_INTERVAL_SECONDS == 30
    assert plain.dequeue_interval_seconds == 2
    for key in ("backfill_tick_seconds", "dequeue_tick_seconds"):
        with pytest.raises(ValueError, match=r"at least 0\.1"):
            EstatRunCoordinator.from_config_value(None, {key: 0.05})


def test_production_sets_a_backfill_tick_and_pins_automation() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text(encoding="utf-8"))
    assert config["run_coordinator"]["class"] == "EstatRunCoordinator"
    assert config["run_coordinator"]["config"]["backfill_tick_seconds"] >= 1
    assert config["auto_materialize"]["minimum_interval_seconds"] == 30
