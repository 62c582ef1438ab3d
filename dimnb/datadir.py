"""Where a workbench keeps its files: one data directory holds both stores and the archive."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "DIMNB_DATA"
DEFAULT_DATA = "data"


@dataclass(frozen=True)
class DataDir:
    """The layout of a data directory.

    ``state.sqlite`` (the state store), ``calls/`` (call-store generations),
    ``archive/`` (archived 3CX recordings), ``cache/`` (waveform peaks) and
    ``cookie_secret`` (the dashboard server's persistent secret).
    """

    root: Path

    @property
    def state_db(self) -> Path:
        return self.root / "state.sqlite"

    @property
    def calls_dir(self) -> Path:
        return self.root / "calls"

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def cookie_secret(self) -> Path:
        return self.root / "cookie_secret"

    @property
    def config_file(self) -> Path:
        return self.root / "dimnb.json"


def resolve_data_dir(option: str | os.PathLike[str] | None = None) -> DataDir:
    """The data directory from an explicit option, else ``$DIMNB_DATA``, else ``data/``."""
    chosen = option if option else os.environ.get(DATA_ENV) or DEFAULT_DATA
    return DataDir(Path(chosen).expanduser().resolve())
