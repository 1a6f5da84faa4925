"""One file API over a local folder and ``s3://``, with writes that are all-or-nothing.

Local writes go to a temporary sibling and are renamed into place (atomic on POSIX); an S3 PUT is
atomic by itself. Readers therefore never see half a manifest or half a Parquet file.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from upath import UPath

_BAD_PART = re.compile(r"[/\\\x00-\x1f\x7f]")


def check_part(part: str) -> str:
    """One path component: not empty, not ``.``/``..``, no separator or control character."""
    if not isinstance(part, str) or part in ("", ".", "..") or _BAD_PART.search(part):
        raise ValueError(f"refusing path part {part!r}: not a plain name inside the lake")
    return part


@dataclass(frozen=True)
class Storage:
    """A root (``/abs/dir`` or ``s3://bucket/prefix``) and the fsspec options to reach it."""

    root: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    def path(self, *parts: str) -> UPath:
        """``root/part/part…``; a part that could leave the root (``..``, ``/``) is refused."""
        for part in parts:
            check_part(part)
        base = UPath(self.root, **self.options) if not self.is_local else UPath(self._local())
        return base.joinpath(*parts) if parts else base

    def _local(self) -> str:
        return self.root.removeprefix("file://")

    def uri(self, *parts: str) -> str:
        """A printable location (no credentials)."""
        return str(self.path(*parts))

    def write_bytes(self, path: UPath, data: bytes) -> None:
        self.write_with(path, lambda fh: fh.write(data))

    def write_with(self, path: UPath, write: Callable[[BinaryIO], object]) -> None:
        """All-or-nothing: ``write(fh)`` fills a temporary sibling renamed into place (local), or
        one buffered PUT (S3). The one atomic write of the lake (Parquet and JSON alike)."""
        if self.is_local:
            local = Path(str(path))
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex}.tmp")
            try:
                with open(tmp, "wb") as fh:
                    write(fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, local)
            finally:
                tmp.unlink(missing_ok=True)
        else:
            buf = io.BytesIO()
            write(buf)
            path.write_bytes(buf.getvalue())  # one PUT (multipart above 5 MB): all-or-nothing

    def remove(self, path: UPath) -> None:
        if self.is_local:
            Path(str(path)).unlink(missing_ok=True)
        elif path.exists():
            path.fs.rm(path.path)

    def read_bytes(self, path: UPath) -> bytes:
        return path.read_bytes()

    def exists(self, path: UPath) -> bool:
        return path.exists()

    def remove_tree(self, path: UPath) -> None:
        if self.is_local:
            shutil.rmtree(str(path), ignore_errors=True)
        elif path.exists():
            path.fs.rm(path.path, recursive=True)
            path.fs.invalidate_cache()

    def list_dirs(self, path: UPath) -> list[UPath]:
        if not path.exists():
            return []
        return [p for p in path.iterdir() if p.is_dir()]
