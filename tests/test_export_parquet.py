"""``dimnb export parquet``: layout, manifest, incremental re-runs, and nothing half-written on a kill or a full disk."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from demo_fixtures import copy_stores, demo_built  # noqa: F401  (module fixture)
from dimnb import export_parquet
from dimnb.cli import main
from dimnb.ingest import staging
from dimnb.store.stores import Stores

TABLES = ("calls", "segments", "participants", "group_tags", "conferences", "conference_members", "recordings")


@pytest.fixture
def data(demo_built: Path, tmp_path: Path) -> Path:  # noqa: F811
    return copy_stores(demo_built, tmp_path / "data")


def files(out: Path) -> dict[str, Path]:
    """Every visible Parquet file of an export, by its path inside it."""
    return {str(p.relative_to(out)): p for p in sorted(out.rglob("*.parquet")) if not p.name.startswith(".")}


def snapshot(out: Path) -> dict[str, object]:
    return {name: pq.read_table(path) for name, path in files(out).items()}


def make_all_recordings_available(data: Path) -> None:
    stores = Stores.open(str(data))
    with stores.calls.write() as con:
        con.execute("UPDATE recordings SET state = 'available' WHERE state = 'pending_archive'")
        staging.refresh_recording_counts(con, "SELECT call_id FROM calls")
    stores.close()


def test_export_writes_hive_partitions_a_manifest_and_every_row(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = CliRunner().invoke(main, ["export", "parquet", "--data", str(data), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    stores = Stores.open(str(data))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["generation"] == stores.calls.current_generation()
    months = stores.calls.query("SELECT DISTINCT year(start_time), month(start_time) FROM calls ORDER BY ALL")
    assert sorted(manifest["periods"]) == [f"{y:04d}-{m:02d}" for y, m in months]
    for table, store_table in (("calls", "calls"), ("segments", "segments"), ("participants", "call_users"),
                               ("group_tags", "call_tags"), ("recordings", "recordings"),
                               ("conference_members", "conference_members")):
        for year, month in months:
            assert (out / table / f"year={year}" / f"month={month}" / "data.parquet").is_file()
        exported = sum(pq.read_table(p).num_rows for n, p in files(out).items() if n.startswith(f"{table}/"))
        assert exported == stores.calls.query(f"SELECT count(*) FROM {store_table}")[0][0], table
    users = pq.read_table(out / "directory" / "users.parquet")
    assert "password_hash" not in users.column_names and users.num_rows > 0
    assert pq.read_table(out / "directory" / "memberships.parquet").num_rows > 0
    assert not [p for p in out.rglob(".*")], "no temp file is left behind"


def test_a_rerun_rewrites_only_the_periods_that_changed(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    stores = Stores.open(str(data))
    first = export_parquet.export(stores, out)
    assert len(first.written) >= 2
    again = export_parquet.export(stores, out)
    assert again.written == [] and again.unchanged == first.periods
    inodes = {name: path.stat().st_ino for name, path in files(out).items()}

    # Change the recordings of one month only: its files are rewritten, the other months' are not touched.
    target = first.written[-1]
    year, month = (int(x) for x in target.split("-"))
    with stores.calls.write() as con:
        con.execute("UPDATE recordings SET state = 'available' WHERE state = 'pending_archive' "
                    "AND call_id IN (SELECT call_id FROM calls WHERE year(start_time) = $y AND month(start_time) = $m)",
                    {"y": year, "m": month})
        staging.refresh_recording_counts(con, "SELECT call_id FROM calls")
    third = export_parquet.export(stores, out)
    assert third.written == [target]
    manifest = export_parquet.read_manifest(out)
    assert manifest["generation"] == stores.calls.current_generation() > first.generation
    for name, path in files(out).items():
        in_target = f"/year={year}/month={month}/" in f"/{name}"
        if name.startswith("directory/"):
            continue
        assert (path.stat().st_ino != inodes[name]) == in_target, name
    stores.close()


def _complete_export(data: Path, out: Path) -> dict[str, object]:
    subprocess.run([sys.executable, "-m", "dimnb", "export", "parquet", "--data", str(data), "--out", str(out),
                    "--no-progress"], check=True, capture_output=True)
    return snapshot(out)


def test_a_kill_at_any_point_leaves_only_whole_files(data: Path, tmp_path: Path) -> None:
    """SIGKILL the export at random moments: every visible file is a whole old or new one; a re-run finishes."""
    reference_old = _complete_export(data, tmp_path / "reference-old")
    make_all_recordings_available(data)  # every period's calls and recordings change
    reference_new = _complete_export(data, tmp_path / "reference-new")
    assert reference_old.keys() == reference_new.keys()

    out = tmp_path / "export"
    command = [sys.executable, "-m", "dimnb", "export", "parquet", "--data", str(data), "--no-progress"]
    # Kill points within what one whole run takes on this machine now (it is shared: a fixed range missed).
    shutil.copytree(tmp_path / "reference-old", out)
    started = time.monotonic()
    subprocess.run([*command, "--out", str(out)], check=True, capture_output=True)
    whole_run = time.monotonic() - started
    shutil.rmtree(out)
    shutil.copytree(tmp_path / "reference-old", out)
    rng = random.Random(19)
    kills = 0
    for _ in range(6):
        process = subprocess.Popen([*command, "--out", str(out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.2, 0.9) * whole_run)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        for name, path in files(out).items():
            table = pq.read_table(path)  # a half-written file would not even parse
            assert table.equals(reference_old[name]) or table.equals(reference_new[name]), name
        if process.returncode == 0:
            shutil.rmtree(out)
            shutil.copytree(tmp_path / "reference-old", out)
    assert kills >= 1, "no run was interrupted: the kill points missed the export"
    subprocess.run([sys.executable, "-m", "dimnb", "export", "parquet", "--data", str(data), "--out", str(out),
                    "--no-progress"], check=True, capture_output=True)
    final = snapshot(out)
    assert final.keys() == reference_new.keys()
    assert all(final[name].equals(reference_new[name]) for name in final)
    assert export_parquet.read_manifest(out)["complete"] is True


def _mount_tiny_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_gives_a_clear_error_and_no_half_file(data: Path, tmp_path: Path) -> None:
    """A real full disk where we may mount a tiny tmpfs (root); elsewhere the same test on a failing write."""
    disk = tmp_path / "tiny"
    mounted = _mount_tiny_tmpfs(disk, "96k")
    try:
        out = disk / "export"
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (not root): see test_a_failing_write_leaves_no_half_file")
        result = CliRunner().invoke(main, ["export", "parquet", "--data", str(data), "--out", str(out),
                                           "--no-progress"])
        assert result.exit_code == 1, result.output
        assert "the disk is full" in result.output and "run the same command again" in result.output
        assert "Traceback" not in result.output
        assert not [p for p in out.rglob(".*.tmp-*")], "the temp file of the failed write is removed"
        for name, path in files(out).items():
            pq.read_table(path)  # every visible file is whole
        assert export_parquet.read_manifest(out).get("complete") is False
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=False)


def test_a_failing_write_leaves_no_half_file(data: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "export"
    stores = Stores.open(str(data))
    export_parquet.export(stores, out)
    before = snapshot(out)
    make_all_recordings_available(data)
    stores = Stores.open(str(data))

    writes = {"n": 0}
    real_write = pq.ParquetWriter.write_batch

    def failing_write(self, batch, *args, **kwargs):  # type: ignore[no-untyped-def]
        writes["n"] += 1
        if writes["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, batch, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_batch", failing_write)
    with pytest.raises(export_parquet.ExportFailed, match="the disk is full"):
        export_parquet.export(stores, out)
    assert writes["n"] == 3
    after = snapshot(out)
    assert not [p for p in out.rglob(".*.tmp-*")]
    assert export_parquet.read_manifest(out)["complete"] is False
    monkeypatch.undo()
    export_parquet.export(stores, out)
    assert export_parquet.read_manifest(out)["complete"] is True
    new = snapshot(out)
    assert after.keys() == before.keys() == new.keys()
    assert any(not after[n].equals(before[n]) for n in after if n.startswith("calls/"))  # the first write landed
    for name in after:  # the write before the failure went through whole, the failed one left the old file
        assert after[name].equals(before[name]) or after[name].equals(new[name]), name
    stores.close()
