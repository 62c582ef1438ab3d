"""Turn the generated demo company into a ready data directory, through the same code paths as production.

generate (3CX v20 export + recordings + directory) → init → directory import →
demo passwords → load 3cx → archive everything older than the last day (so
some recordings still wait for the next archive run) → a fixed audit trail
(so the audit notebook has something to report) → the demo's "now" pinned to
the end of its last day (``clock.pin``), so Today / Yesterday / Last 7 days
show calls on whatever day the demo runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dimnb import archive, audit_checkpoints, clock
from dimnb.demo.audit_events import seed_demo_audit
from dimnb.directory import import_directory, set_password
from dimnb.ingest.loader import LoadSummary, sync_directory
from dimnb.ingest.threecx import load_3cx
from dimnb.store.stores import Stores

PBX_DIR = "pbx"


def demo_password(login: str) -> str:
    """Demo logins' passwords: printed by `make demo`; a demo data directory must never hold real calls."""
    return f"{login}-demo"


@dataclass
class DemoSetup:
    data_dir: Path
    manifest: dict[str, Any]
    created: bool
    load: LoadSummary | None = None
    archived: int = 0

    @property
    def logins(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("demo_logins", []))


def setup_demo(data_dir: Path, *, calls: int = 500, seed: int = 7, progress: bool = False) -> DemoSetup:
    """Build the demo data directory if it is not there yet; otherwise leave it as it is."""
    data_dir = Path(data_dir).resolve()
    pbx = data_dir / PBX_DIR
    manifest_path = pbx / "manifest.json"
    stores = Stores.open(str(data_dir), create=True)
    audit_checkpoints.create_key(audit_checkpoints.key_path(data_dir))  # as `dimnb init` does: no manual step
    already = stores.calls.query("SELECT count(*) FROM calls")[0][0] > 0 and manifest_path.exists()
    if already:
        manifest = json.loads(manifest_path.read_text())
        _pin_today(data_dir, manifest)  # a demo set up before the pin existed gets it too
        return DemoSetup(data_dir, manifest, created=False)
    if not manifest_path.exists():
        from dimnb.demo.generate import generate

        generate(pbx, calls=calls, seed=seed, progress=progress)
    manifest = json.loads(manifest_path.read_text())
    import_directory(stores.state, pbx / "directory.json")
    with stores.calls.write() as con:
        sync_directory(con, stores)
    for entry in manifest.get("demo_logins", []):
        set_password(stores.state, entry["login"], demo_password(entry["login"]))
    summary = load_3cx(stores, [pbx], progress=progress)
    archived = _archive_all_but_last_day(stores, manifest, progress=progress)
    seed_demo_audit(stores)
    _pin_today(data_dir, manifest)
    return DemoSetup(data_dir, manifest, created=True, load=summary, archived=archived)


def _archive_all_but_last_day(stores: Stores, manifest: dict[str, Any], *, progress: bool) -> int:
    """Run the nightly archive job as it would have run before the last day of the demo window."""
    end = datetime.fromisoformat(manifest["window"]["end"].replace("Z", "+00:00")).astimezone(timezone.utc)
    result = archive.run(stores, before=end - timedelta(days=1), progress=progress)
    return result.archived


def demo_today_end(manifest: dict[str, Any]) -> datetime:
    """The demo's "now": the last minute of its last day (the window's end is exclusive)."""
    end = datetime.fromisoformat(manifest["window"]["end"].replace("Z", "+00:00")).astimezone(timezone.utc)
    return end - timedelta(minutes=1)


def _pin_today(data_dir: Path, manifest: dict[str, Any]) -> None:
    if "window" in manifest and clock.pinned(data_dir) is None:
        clock.pin(data_dir, demo_today_end(manifest))
