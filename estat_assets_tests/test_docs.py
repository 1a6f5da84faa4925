"""The documented commands work as written.

Every ``estat-lake`` command in a ``bash`` block of the README, ``docs/`` and ``deploy/`` must
parse with the real CLI (options that exist, arguments in the right places), and the README's
"ask the lake" path runs, command after command, exactly as written, against the emulator.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from estat_assets.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "deploy").glob("*.md")),
]
BLOCK = re.compile(r"```(?:bash|sh|console)\n(.*?)```", re.S)
# Placeholders the docs use for "your table": any canonical statsDataId parses the same way.
PLACEHOLDERS = {"STATS_DATA_ID": "0000020202", "ID": "0000020202"}


def _lines(block: str) -> list[str]:
    """Shell commands of a block: continuation lines and multi-line quotes joined, comments
    dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out: list[str] = []
    pending = ""
    for line in joined.splitlines():
        line = line.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            continue
        out.append(pending)
        pending = ""
    return out


def _is_cli(word: str) -> bool:
    return word == "estat-lake" or word.endswith("/estat-lake")


def documented_invocations() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for block in BLOCK.findall(doc.read_text(encoding="utf-8")):
            for line in _lines(block):
                words = shlex.split(line, comments=True)
                i = 0
                while i < len(words) and "=" in words[i] and not words[i].startswith("-"):
                    i += 1  # VAR=value before the command
                if i + 1 < len(words) and _is_cli(words[i]):
                    argv = [PLACEHOLDERS.get(w, w) for w in words[i + 1 :]]
                    found.append((f"{doc.relative_to(ROOT)}: {line}", argv))
    return found


INVOCATIONS = documented_invocations()


def test_the_docs_show_the_cli() -> None:
    commands = {argv[0] for _, argv in INVOCATIONS}
    assert {"search", "add", "load", "describe", "verify", "query", "mcp", "revisions"} <= commands


@pytest.mark.parametrize(("where", "argv"), INVOCATIONS, ids=[w for w, _ in INVOCATIONS])
def test_every_documented_command_parses(where: str, argv: list[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of saying "not a valid command line"
        pytest.fail(f"{where}: does not parse (exit {exc.code})")


def _readme_block(marker: str) -> list[list[str]]:
    """The ``estat-lake`` commands of the first README bash block that contains ``marker``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in BLOCK.findall(text) if marker in b)
    out = []
    for line in _lines(block):
        words = shlex.split(line, comments=True)
        if words and _is_cli(words[0]) and words[1:2] != ["mcp"]:
            out.append(words[1:])
    return out


@pytest.mark.slow
def test_the_readme_path_from_a_search_word_to_a_cited_answer_runs_as_written(
    tmp_path, emulator
) -> None:
    """search → add → load → describe → verify, as the README's English quick start has them."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ESTAT_")},
        "ESTAT_LAKE_HOME": str(tmp_path / "home"),
        "ESTAT_API_URL": emulator.api_base,
        "ESTAT_RAW_RETRY_DELAY": "0.1",
    }
    commands = _readme_block("estat-lake verify")
    assert [c[0] for c in commands] == ["search", "add", "load", "describe", "verify"]
    for argv in commands:
        done = subprocess.run(
            [sys.executable, "-m", "estat_assets.cli", *argv],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"estat-lake {shlex.join(argv)}: {done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr
    assert "AGREES" in done.stdout and "e-Stat statsDataId 9900000004" in done.stdout
