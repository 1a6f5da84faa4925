"""Real servers on loopback for the production-twin tests: SeaweedFS, moto (Glue, Athena), Postgres.

Each is a context manager that binds 127.0.0.1 on free ports, keeps its files (and sockets, and
TMPDIR) under a directory the test owns, and stops the process it started, by pid, on exit. Use
them from session-scoped fixtures: ``with seaweed(tmp) as s3: yield s3``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent


def _pg_bin() -> Path:
    """The newest installed Debian PostgreSQL server binaries (.ci/run installs them)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
S3_KEY, S3_SECRET = "estatlake", "estatlake-secret"
MOTO_KEY, MOTO_SECRET = "testing", "testing"
REGION = "us-east-1"
MOTO_ACCOUNT = "123456789012"


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(with_grpc: bool = False, taken: set[int] | None = None) -> int:
    """A free loopback port; with ``with_grpc`` also ``port + 10000`` (SeaweedFS's gRPC rule)."""
    taken = taken if taken is not None else set()
    for _ in range(500):
        port = random.randint(20000, 40000) if with_grpc else random.randint(40001, 60000)
        need = [port, port + 10000] if with_grpc else [port]
        if all(p not in taken and _is_free(p) for p in need):
            taken.update(need)
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {log.read_text()}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer (S3 says 403 unauthenticated) means it is up
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout} s: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str = S3_KEY
    secret_key: str = S3_SECRET
    region: str = REGION

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name: str) -> str:
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)
        return name


@contextlib.contextmanager
def seaweed(workdir: Path) -> Iterator[S3Server]:
    """``weed mini`` (master, volume, filer, S3 in one process) on 127.0.0.1, telemetry off."""
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "tmp"):
        (workdir / sub).mkdir(exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "admin",
                        "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    taken: set[int] = set()
    master, volume, filer, s3 = (free_port(True, taken) for _ in range(4))
    iceberg = free_port(True, taken)
    admin = free_port(True, taken)  # listens (with its gRPC at +10000) even with -admin.ui=false
    log = workdir / "weed.log"
    cmd = [
        str(BIN / "weed"),
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-s3.port={s3}",
        f"-s3.port.iceberg={iceberg}",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin + 10000}",
        "-master.telemetry=false",
        f"-s3.config={config}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.localSocket={workdir / 's3.sock'}",
    ]
    env = {**os.environ, "TMPDIR": str(workdir / "tmp")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    try:
        endpoint = f"http://127.0.0.1:{s3}"
        _wait_http(endpoint, proc, log)
        server = S3Server(endpoint)
        # The S3 gateway answers before the filer is ready to take writes: wait for a bucket.
        deadline = time.monotonic() + 30
        while True:
            try:
                server.create_bucket("ready-probe")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        _stop(proc)


@dataclass(frozen=True)
class MotoServer:
    endpoint: str
    region: str = REGION
    account_id: str = MOTO_ACCOUNT

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            aws_access_key_id=MOTO_KEY,
            aws_secret_access_key=MOTO_SECRET,
            region_name=self.region,
        )

    def queue_athena_results(self, results: list[dict]) -> None:
        """Queue canned Athena results: each is ``{"rows": [...], "column_info": [...]}``."""
        body = json.dumps(
            {"account_id": self.account_id, "region": self.region, "results": results}
        ).encode()
        req = urllib.request.Request(
            f"{self.endpoint}/moto-api/static/athena/query-results",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status in (200, 201), resp.status

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=5).close()


@contextlib.contextmanager
def moto(workdir: Path) -> Iterator[MotoServer]:
    """``moto_server -H 127.0.0.1 -p <free>``: Glue, Athena (and S3) in memory."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "moto.log"
    env = {
        **os.environ,
        "TMPDIR": str(workdir),
        "AWS_ACCESS_KEY_ID": MOTO_KEY,
        "AWS_SECRET_ACCESS_KEY": MOTO_SECRET,
        "AWS_DEFAULT_REGION": REGION,
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_http(f"{endpoint}/moto-api/", proc, log)
        yield MotoServer(endpoint)
    finally:
        _stop(proc)


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str = "postgres"

    def url(self, database: str = "dagster") -> str:
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; dagster-postgres ships psycopg2.
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{database}"


def postgres_available() -> bool:
    return (PG_BIN / "initdb").exists() and shutil.which("runuser") is not None


@contextlib.contextmanager
def postgres(workdir: Path, database: str = "dagster") -> Iterator[PostgresServer]:
    """A private PostgreSQL 15 cluster on 127.0.0.1 (initdb as the postgres user, trust auth)."""
    workdir.mkdir(parents=True, exist_ok=True)
    data, sock, log = workdir / "data", workdir / "sock", workdir / "server.log"
    sock.mkdir(exist_ok=True)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres:postgres", str(workdir)], check=True)
        # postgres must be able to reach its folder through the test's tmp tree.
        # (pytest's tmp folders are 0700: let others traverse, not list, the ones that are).
        for p in (workdir, *workdir.parents):
            if not os.stat(p).st_mode & 0o001:
                os.chmod(p, os.stat(p).st_mode | 0o011)
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "-N",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            opts,
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{database}"')
        conn.close()
        yield PostgresServer("127.0.0.1", port)
    finally:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )


# ---------------------------------------------------------------------- pytest fixtures
# Import these into a test module (``from estat_assets_tests.servers import s3_server``). The
# servers are shared by the whole session however many modules import them, and stopped at the
# end of the session.
_RUNNING: dict[str, Any] = {}


def _shared(request: pytest.FixtureRequest, name: str, factory) -> Any:
    if name not in _RUNNING:
        stack = contextlib.ExitStack()
        _RUNNING[name] = stack.enter_context(factory())

        def close() -> None:
            _RUNNING.pop(name, None)
            stack.close()

        request.session.config.add_cleanup(close)
    return _RUNNING[name]


@pytest.fixture(scope="session")
def s3_server(request, tmp_path_factory) -> S3Server:
    """SeaweedFS ``weed mini`` for the session (~1 s to start, ~400 MB RSS)."""
    return _shared(request, "seaweed", lambda: seaweed(tmp_path_factory.mktemp("seaweed")))


@pytest.fixture(scope="session")
def moto_server(request, tmp_path_factory) -> MotoServer:
    """``moto_server`` (Glue, Athena) for the session."""
    return _shared(request, "moto", lambda: moto(tmp_path_factory.mktemp("moto")))


@pytest.fixture
def aws_env(s3_server, moto_server, emulator, monkeypatch) -> dict[str, str]:
    """An ``ESTAT_LAKE_ENV=aws`` environment on the loopback servers, unique per test."""
    tag = uuid.uuid4().hex[:8]
    bucket = s3_server.create_bucket("estat-lake-test")
    # EStatResource reads ESTAT_APP_ID through EnvVar at run time.
    monkeypatch.setenv("ESTAT_APP_ID", "estat-lake-test-app-id")
    # Nothing may fall back to real AWS: no profile, no instance metadata.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return {
        "ESTAT_LAKE_ENV": "aws",
        "ESTAT_APP_ID": "estat-lake-test-app-id",
        "ESTAT_API_URL": emulator.api_base,
        "ESTAT_LAKE_S3_ROOT": f"s3://{bucket}/{tag}",
        "ESTAT_LAKE_S3_ENDPOINT": s3_server.endpoint,
        "ESTAT_LAKE_S3_ACCESS_KEY_ID": s3_server.access_key,
        "ESTAT_LAKE_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
        "ESTAT_GLUE_ENDPOINT": moto_server.endpoint,
        "ESTAT_GLUE_DATABASE": f"estat_{tag}",
        "ESTAT_ATHENA_ENDPOINT": moto_server.endpoint,
        "ESTAT_ATHENA_WORKGROUP": "primary",
        "ESTAT_RATE_LIMIT": "100",
    }
