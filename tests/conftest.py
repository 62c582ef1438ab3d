"""Shared fixtures: real data directories on disk, the real-world samples, small CDR writers."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dimnb.directory import import_directory
from dimnb.store.stores import Stores

ROOT = Path(__file__).resolve().parents[1]

# Every `dimnb serve` a test starts keeps 2 spare kernels, not the machine-sized default (20 on 24 GB and 2 cores):
# the tests that measure the pool pass --kernel-pool themselves.
os.environ.setdefault("DIMNB_KERNEL_POOL", "2")


def realdata_dir() -> Path:
    """``$DIMNB_REALDATA``, else the nearest ``shared/realdata`` beside the checkout or one of its parents."""
    if os.environ.get("DIMNB_REALDATA"):
        return Path(os.environ["DIMNB_REALDATA"])
    for parent in ROOT.parents:
        candidate = parent / "shared" / "realdata"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    path = realdata_dir()
    if not path.is_dir():
        pytest.fail(f"the real-world samples are expected in {path} (set DIMNB_REALDATA)")
    return path


@pytest.fixture
def stores(tmp_path: Path) -> Stores:
    s = Stores.open(str(tmp_path / "data"), create=True)
    yield s
    s.close()


SMALL_DIRECTORY = {
    "groups": [{"name": "Sales"}, {"name": "Support"}, {"name": "Billing"}],
    "users": [
        {"login": "ann", "name": "Ann Agent", "report_scope": "own", "playback": "own",
         "extensions": [{"extension": "101"}], "groups": [{"group": "Sales", "primary": True}]},
        {"login": "bob", "name": "Bob Lead", "report_scope": "primary_group", "playback": "primary_group",
         "extensions": [{"extension": "102"}],
         "groups": [{"group": "Sales", "primary": True}, {"group": "Support"}]},
        {"login": "cat", "name": "Cat Support", "report_scope": "member_groups", "playback": "member_groups",
         "extensions": [{"extension": "201"}],
         "groups": [{"group": "Support", "primary": True}, {"group": "Billing"}]},
        {"login": "dan", "name": "Dan Director", "report_scope": "all", "playback": "all",
         "extensions": [{"extension": "300"}], "groups": [{"group": "Billing", "primary": True}]},
        {"login": "eve", "name": "Eve Viewer", "report_scope": "all", "playback": "none",
         "groups": [{"group": "Billing", "primary": True}]},
    ],
}


@pytest.fixture
def directory_file(tmp_path: Path) -> Path:
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(SMALL_DIRECTORY))
    return path


@pytest.fixture
def stores_with_directory(stores: Stores, directory_file: Path) -> Stores:
    import_directory(stores.state, directory_file)
    return stores


def legacy_row(
    n: int,
    *,
    start: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc),
    caller: str = "+442079460001",
    chain: list[str] | None = None,
    answered_after: int | None = 3,
    talk: int = 60,
    reason_changed: str = "",
    from_type: str = "External",
    to_type: str = "Internal",
) -> str:
    """One 3CX legacy CDR line (27 fields + trailing comma), as the CDR service writes it."""
    chain = chain or [caller, "Ext.101"]
    t0 = start + timedelta(minutes=n)
    ta = t0 + timedelta(seconds=answered_after) if answered_after is not None else None
    te = (ta or t0) + timedelta(seconds=talk if ta else 20)
    fmt = "%Y/%m/%d %H:%M:%S"
    to_no = chain[1]
    final = chain[-1]
    fields = [
        f"Call {n}", f"00000000CALL{n:06d}_1", "", t0.strftime(fmt), ta.strftime(fmt) if ta else "", te.strftime(fmt),
        "TerminatedByDst" if ta else "Failed_Cancelled", chain[0], to_no, "10000", to_no.replace("Ext.", ""),
        to_no.replace("Ext.", ""), reason_changed, final if len(chain) > 2 else "", final.replace("Ext.", "") if len(chain) > 2 else "",
        "", "", "", "", '"Chain: ' + ",".join(chain) + ',"', from_type, to_type, to_type, "", "", "", "",
    ]
    return ",".join(fields) + ","


def write_legacy(path: Path, rows: list[str], *, header: bool = False, bom: bool = False) -> Path:
    from dimnb.ingest.threecx_legacy import FIELDS

    text = ("\ufeff" if bom else "") + ((",".join(FIELDS) + "\n") if header else "") + "\n".join(rows) + "\n"
    path.write_text(text, encoding="utf-8")
    return path
