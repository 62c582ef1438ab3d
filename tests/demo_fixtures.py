"""The demo company as test data: built once per test module, in two recording states.

``demo_pending``: every recording waits for the archive run (``pending_archive``).
``demo_playable``: every recording is ``available`` from where the PBX wrote it
(``archive_path`` NULL, ``source_path`` kept), as if the archive job had run.
Both are set explicitly, so the tests do not depend on whether this build has
an archive job (``demo setup`` runs it when present).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from dimnb.demo.setup import setup_demo
from dimnb.ingest import staging
from dimnb.store.stores import Stores


def set_recording_states(data_dir: Path, state: str) -> None:
    stores = Stores.open(str(data_dir))
    with stores.calls.write() as con:
        if state == "available":
            con.execute("UPDATE recordings SET state = 'available', archive_path = NULL "
                        "WHERE state IN ('pending_archive', 'available')")
        else:
            con.execute("UPDATE recordings SET state = 'pending_archive' WHERE state = 'available'")
        staging.refresh_recording_counts(con, "SELECT call_id FROM calls")
    stores.close()


@pytest.fixture(scope="module")
def demo_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "data"
    setup_demo(root)
    return root


def copy_stores(source: Path, target: Path) -> Path:
    """A private copy of a data directory's stores. The PBX folder is shared (recordings' source paths are
    absolute). The state store goes through SQLite's backup API: another test's idle connection closing during
    a file copy deletes its -wal file under the copy's feet."""
    shutil.copytree(source, target, symlinks=True,
                    ignore=shutil.ignore_patterns("pbx", "cache", "state.sqlite", "state.sqlite-*"))
    with sqlite3.connect(source / "state.sqlite") as src, sqlite3.connect(target / "state.sqlite") as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return target


@pytest.fixture(scope="module")
def demo_pending(demo_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = copy_stores(demo_built, tmp_path_factory.mktemp("pending") / "data")
    set_recording_states(target, "pending_archive")
    return target


@pytest.fixture(scope="module")
def demo_playable(demo_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = copy_stores(demo_built, tmp_path_factory.mktemp("playable") / "data")
    set_recording_states(target, "available")
    return target
