"""Small file-system steps that crash safety depends on: flush to disk, remove if present, replace atomically."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory's entries (after a create, rename or unlink in it), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass


@contextmanager
def replaced_atomically(target: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Write ``target`` through a hidden temp file beside it (``.NAME.tmp-<random>``), flushed to disk and then
    renamed over it, the rename flushed too; on any error the temp file goes and ``target`` is untouched."""
    temp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    try:
        with open(temp, mode) as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, target)
        fsync_path(target.parent)
    except BaseException:
        unlink_quietly(temp)
        raise
