"""A small directory for loader tests: one user per extension, imported and synced into the call store."""

from __future__ import annotations

import json
from pathlib import Path

from dimnb.directory import import_directory
from dimnb.ingest.loader import sync_directory
from dimnb.store.stores import Stores


def give_extensions(stores: Stores, tmp_path: Path, extensions: dict[str, str]) -> None:
    """A directory of one user per extension (login -> extension), synced into the call store."""
    directory = {
        "groups": [{"name": "Staff"}],
        "users": [{"login": login, "name": login.title(), "report_scope": "own", "playback": "own",
                   "extensions": [{"extension": ext}], "groups": [{"group": "Staff", "primary": True}]}
                  for login, ext in extensions.items()],
    }
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(directory))
    import_directory(stores.state, path)
    with stores.calls.write() as con:
        sync_directory(con, stores)
