"""deploy/ parsed and cross-checked against the code (Docker cannot run here).

IAM: no wildcard action on a wildcard resource, everything scoped to the lake's bucket/prefix,
Glue database and Athena workgroup. Compose and ECS task definitions: the same image, commands
that name the real module, every environment variable the code requires (and none it does not
know), secrets from Secrets Manager. The production instance config queues runs through
``EstatRunCoordinator`` with the local instance's limits. The docs describe dataset partitions.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from estat_assets.defs.resources import (
    AthenaQueryEngine,
    PyIcebergWriter,
    aws_resources,
)
from estat_assets.settings import SECRETS, VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MODULE = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
TASKS = {p.stem: json.loads(p.read_text()) for p in sorted((DEPLOY / "ecs").glob("*.json"))}
POLICIES = {p.stem: json.loads(p.read_text()) for p in sorted((DEPLOY / "iam").glob("*.json"))}
# What aws_resources() needs, and what the production dagster.yaml reads.
REQUIRED_APP_ENV = {
    "ESTAT_LAKE_ENV",
    "ESTAT_LAKE_S3_ROOT",
    "AWS_REGION",
    "ESTAT_GLUE_DATABASE",
    "ESTAT_ATHENA_WORKGROUP",
    "ESTAT_ATHENA_OUTPUT",
}


def _env_refs(node) -> set[str]:
    """Every ``{env: NAME}`` in a Dagster YAML tree."""
    if isinstance(node, dict):
        found = {node["env"]} if set(node) == {"env"} else set()
        return found.union(*(_env_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node))
    return set()


INSTANCE = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
INSTANCE_ENV = _env_refs(INSTANCE)


def _container(task: dict) -> dict:
    (container,) = task["containerDefinitions"]
    return container


def _statements(policy: dict) -> list[dict]:
    statements = policy["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_policies_have_no_wildcard_action_on_a_wildcard_resource() -> None:
    assert set(POLICIES) >= {"app-task-role", "control-task-role", "execution-role"}
    for name, policy in POLICIES.items():
        assert policy["Version"] == "2012-10-17"
        for st in _statements(policy):
            assert st["Effect"] == "Allow", name
            actions = _as_list(st["Action"])
            assert "NotAction" not in st and "NotResource" not in st
            for action in actions:
                assert action != "*" and not action.endswith(":*"), (name, action)
            if "Resource" in st:
                resources = _as_list(st["Resource"])
                if "*" in resources:
                    # Only describe/list calls AWS cannot scope to a resource.
                    assert all(
                        re.match(r"^[a-z0-9]+:(Describe|Get|List)[A-Za-z]+$", a)
                        and not a.startswith(("s3:", "glue:", "athena:", "secretsmanager:"))
                        for a in actions
                    ), (name, st)


def test_app_role_is_scoped_to_the_lake() -> None:
    resources = [
        r for st in _statements(POLICIES["app-task-role"]) for r in _as_list(st["Resource"])
    ]
    assert all(
        "${LAKE_BUCKET}" in r
        or "${GLUE_DATABASE}" in r
        or r.endswith(":catalog")
        or "${ATHENA_WORKGROUP}" in r
        for r in resources
    ), resources
    objects = [r for r in resources if r.startswith("arn:aws:s3:::") and "/" in r]
    assert objects and all(
        r.startswith("arn:aws:s3:::${LAKE_BUCKET}/${LAKE_PREFIX}/") for r in objects
    )
    actions = {a for st in _statements(POLICIES["app-task-role"]) for a in _as_list(st["Action"])}
    # What the code calls: pyiceberg Glue, s3fs/pyarrow S3, the Athena engine.
    assert {
        "glue:CreateTable",
        "glue:UpdateTable",
        "glue:GetTable",
        "s3:PutObject",
        "s3:GetObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
    } <= actions
    assert not any(a.startswith(("iam:", "ecs:")) for a in actions)


def test_control_role_may_pass_only_the_run_roles() -> None:
    passes = [
        st
        for st in _statements(POLICIES["control-task-role"])
        if "iam:PassRole" in _as_list(st["Action"])
    ]
    assert passes and all("*" not in r for st in passes for r in _as_list(st["Resource"]))
    assert all(
        st["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"
        for st in passes
    )


def test_task_definitions_run_the_code_location() -> None:
    assert set(TASKS) == {"code-server", "webserver", "daemon", "run"}
    images = {_container(t)["image"] for t in TASKS.values()}
    assert len(images) == 1  # one image for all four
    for name, task in TASKS.items():
        assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
        assert task["executionRoleArn"].endswith("/estat-lake-execution")
        container = _container(task)
        assert container["logConfiguration"]["logDriver"] == "awslogs"
        env = {e["name"]: e["value"] for e in container["environment"]}
        secrets = {s["name"]: s["valueFrom"] for s in container.get("secrets", [])}
        assert not set(env) & set(secrets)
        # Everything the production dagster.yaml reads is set (or a secret).
        assert set(env) | set(secrets) >= INSTANCE_ENV, (name, INSTANCE_ENV - set(env))
        assert env["ESTAT_LAKE_ENV"] == "aws"
        assert "DAGSTER_PG_PASSWORD" in secrets
        assert all(v.startswith("arn:aws:secretsmanager:") for v in secrets.values())
    code = _container(TASKS["code-server"])["command"]
    assert code[:3] == ["dagster", "api", "grpc"] and code[code.index("-m") + 1] == MODULE
    assert _container(TASKS["webserver"])["command"][0] == "dagster-webserver"
    assert _container(TASKS["daemon"])["command"][:2] == ["dagster-daemon", "run"]
    assert "command" not in _container(TASKS["run"])  # EcsRunLauncher sets it
    # Code server and runs execute the assets: the e-Stat key and the lake's settings.
    for name in ("code-server", "run"):
        container = _container(TASKS[name])
        env = {e["name"] for e in container["environment"]}
        assert env >= REQUIRED_APP_ENV, (name, REQUIRED_APP_ENV - env)
        assert {s["name"] for s in container["secrets"]} >= {"ESTAT_APP_ID"}
        assert TASKS[name]["taskRoleArn"].endswith("/estat-lake-app")
    for name in ("webserver", "daemon"):
        assert TASKS[name]["taskRoleArn"].endswith("/estat-lake-control")


def test_task_environment_builds_the_aws_resources(monkeypatch) -> None:
    container = _container(TASKS["run"])
    env = {e["name"]: e["value"] for e in container["environment"]}
    env = {
        k: v.replace("${LAKE_BUCKET}", "b")
        .replace("${LAKE_PREFIX}", "p")
        .replace("${AWS_REGION}", "ap-northeast-1")
        .replace("${GLUE_DATABASE}", "estat")
        .replace("${ATHENA_WORKGROUP}", "estat-lake")
        for k, v in env.items()
    }
    env["ESTAT_APP_ID"] = "from-secrets-manager"
    resources = aws_resources(Settings.from_env(env))
    assert resources["lake"].root == "s3://b/p/lake"
    assert resources["iceberg"].catalog_type == "glue"
    assert resources["iceberg"].namespace == "estat"
    engine = resources["query_engine"]
    assert isinstance(engine, AthenaQueryEngine)
    assert (engine.workgroup, engine.region) == ("estat-lake", "ap-northeast-1")
    assert engine.output_location == "s3://b/p/athena-results/"
    assert isinstance(resources["table_writer"], PyIcebergWriter)


def test_every_lake_variable_in_deploy_is_one_the_code_reads() -> None:
    """A misspelt ESTAT_* variable would be ignored silently: every one must be in VARIABLES."""
    known = {v.name for v in VARIABLES}
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    names = {n for svc in compose["services"].values() for n in svc.get("environment", {})}
    for task in TASKS.values():
        container = _container(task)
        names |= {e["name"] for e in container["environment"]}
        names |= {e["name"] for e in container.get("secrets", [])}
    lake = {n for n in names if n.startswith("ESTAT_") or n.startswith("AWS_")}
    assert lake <= known, lake - known
    # secrets of the code come from Secrets Manager, never from a plain environment value
    for task in TASKS.values():
        container = _container(task)
        plain = {e["name"] for e in container["environment"]}
        assert not plain & set(SECRETS), plain & set(SECRETS)


def test_instance_and_launcher_match_the_task_definitions() -> None:
    launcher = INSTANCE["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    assert launcher["config"]["container_name"] == _container(TASKS["run"])["name"]
    assert launcher["config"]["run_resources"]["memory"] == TASKS["run"]["memory"]
    storage = INSTANCE["storage"]["postgres"]["postgres_db"]
    assert storage["scheme"] == "postgresql+psycopg2"
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    code = _container(TASKS["code-server"])["command"]
    assert str(server["port"]) == code[code.index("-p") + 1]
    assert server["location_name"] == "estat_lake"


def test_production_queues_runs_like_the_local_instance() -> None:
    """The same run coordinator, per-tag limits, pools and retry rules as the packaged
    dagster.yaml; only storage, launcher, compute logs and the sizes differ."""
    local = yaml.safe_load((ROOT / "estat_assets" / "dagster.yaml").read_text())
    assert INSTANCE["run_coordinator"]["module"] == local["run_coordinator"]["module"]
    assert INSTANCE["run_coordinator"]["class"] == "EstatRunCoordinator"
    runs, local_runs = INSTANCE["concurrency"]["runs"], local["concurrency"]["runs"]
    assert runs["tag_concurrency_limits"] == local_runs["tag_concurrency_limits"]
    assert runs["max_concurrent_runs"] >= local_runs["max_concurrent_runs"]
    assert INSTANCE["concurrency"]["pools"] == local["concurrency"]["pools"]
    monitoring = INSTANCE["run_monitoring"]
    assert monitoring["enabled"] is True and monitoring["max_resume_run_attempts"] == 0
    for key in ("max_runtime_seconds", "free_slots_after_run_end_seconds"):
        assert monitoring[key] == local["run_monitoring"][key]
    assert INSTANCE["run_retries"]["enabled"] is True
    assert INSTANCE["run_retries"]["retry_on_asset_or_op_failure"] is False


def test_the_deploy_docs_describe_dataset_partitions() -> None:
    """One partition is one e-Stat table: no `dataset|year` keys or `dataset × year` grid, and
    the CLI backfill runs against the lake's instance (DAGSTER_HOME set)."""
    for name in ("README.md", "RUNBOOK.md"):
        text = (DEPLOY / name).read_text(encoding="utf-8")
        assert not re.search(
            r"\d{10}\|\d{4}|dataset × year|\(dataset_id, year\) slice per", text
        ), name
    runbook = (DEPLOY / "RUNBOOK.md").read_text(encoding="utf-8")
    backfill = next(line for line in runbook.splitlines() if "dagster job backfill" in line)
    assert "DAGSTER_HOME" in backfill and "population_job" in backfill
    assert "--partitions 0000020202" in backfill


@pytest.mark.parametrize("service", ["code-server", "webserver", "daemon"])
def test_compose_runs_what_ecs_runs(service) -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "code-server", "webserver", "daemon"}
    ours = services[service]
    ecs_cmd = _container(TASKS[service])["command"]
    assert ours["command"] == ecs_cmd
    env = set(ours["environment"])
    assert env >= INSTANCE_ENV, INSTANCE_ENV - env
    assert {"ESTAT_APP_ID", "ESTAT_LAKE_S3_ROOT", "ESTAT_LAKE_ENV"} <= env
    assert ours["image"] == services["code-server"]["image"]
    assert services["code-server"]["build"]["dockerfile"] == "deploy/Dockerfile"
    # Nothing but the UI is published, and only on the host's loopback.
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_dockerfile_installs_the_package_and_serves_the_module() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "pip install ." in text
    assert "COPY deploy/dagster.yaml deploy/workspace.yaml $DAGSTER_HOME/" in text
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    assert cmd == _container(TASKS["code-server"])["command"]
    assert re.search(r"^USER (?!root)\w+", text, re.M)
