"""``estat-lake athena setup-workgroup`` is the same idempotent command as the module's."""

from __future__ import annotations

import uuid

from estat_assets.cli import main
from estat_assets_tests import servers

moto_server = servers.moto_server


def test_cli_sets_up_the_workgroup_once(moto_server, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name = f"wg-{uuid.uuid4().hex[:8]}"
    argv = [
        "athena",
        "setup-workgroup",
        "--name",
        name,
        "--output",
        "s3://b/results/",
        "--region",
        moto_server.region,
        "--endpoint-url",
        moto_server.endpoint,
    ]
    assert main(argv) == 0
    assert "created" in capsys.readouterr().out
    assert main(argv) == 0
    assert "unchanged" in capsys.readouterr().out
