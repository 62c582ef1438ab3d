"""The 3CX archive job on real demo exports: real WAV files, real data directories, the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import ROOT, legacy_row, write_legacy
from dimnb.audiofiles import sha256_file
from dimnb import access, archive
from dimnb.demo.generate import generate
from dimnb.directory import import_directory
from dimnb.errors import InvalidInput
from dimnb.ingest.loader import load_3cx
from dimnb.store.stores import Stores


@pytest.fixture
def world(tmp_path: Path) -> tuple[Stores, Path]:
    """The demo company's 3CX v20 export (40 calls, about 15 recordings), loaded into a new data directory."""
    pbx = tmp_path / "pbx"
    generate(pbx, calls=40, seed=3)
    stores = Stores.open(str(tmp_path / "data"), create=True)
    import_directory(stores.state, pbx / "directory.json")
    load_3cx(stores, [pbx])
    yield stores, pbx
    stores.close()


def recordings(stores: Stores) -> dict[int, dict]:
    cur = stores.calls.cursor()
    cur.execute("SELECT * FROM recordings WHERE system = '3cx' ORDER BY recording_id")
    names = [d[0] for d in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def pending(stores: Stores) -> list[dict]:
    return [r for r in recordings(stores).values() if r["state"] == "pending_archive"]


def sha(path: Path) -> str:
    return sha256_file(path)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "dimnb", "archive", "--no-progress", *args],
                          capture_output=True, text=True, env=full_env, timeout=300)


def archive_files(stores: Stores) -> list[Path]:
    root = stores.data.archive_dir
    return sorted(p for p in root.rglob("*") if p.is_file() and archive.INCOMING not in p.parts
                  and p.name not in (archive.LOCK_FILE, archive.LAST_RUN_FILE))


# ------------------------------------------------------------------------------------------ the flow


def test_pending_recordings_become_available_with_a_verified_copy_and_playable(world) -> None:
    stores, pbx = world
    waiting = pending(stores)
    assert len(waiting) >= 8
    alex = access.load_actor(stores.state, "alex")  # playback: all
    nina = access.load_actor(stores.state, "nina")  # playback: none
    assert all(access.can_play(stores.calls, alex, r["recording_id"]) is None for r in waiting)

    result = cli("--data", str(stores.data.root))
    assert result.returncode == 0, result.stderr
    assert f"{len(waiting)} archived" in result.stdout

    after = recordings(stores)
    for r in waiting:
        row = after[r["recording_id"]]
        assert row["state"] == "available"
        assert re.fullmatch(rf"\d{{4}}/\d{{2}}/\d{{2}}/{r['recording_id']}-[A-Za-z0-9._+()\[\]-]+\.wav",
                            row["archive_path"])
        assert row["archive_path"][:10] == r["start_time"].astimezone(timezone.utc).strftime("%Y/%m/%d")
        copy = stores.data.archive_dir / row["archive_path"]
        assert sha(copy) == r["checksum"] and copy.stat().st_size == r["size_bytes"]
        assert Path(r["source_path"]).is_file()  # the job never touches a source
        decision = access.can_play(stores.calls, alex, r["recording_id"])
        assert decision is not None and decision.path_kind == "archive" and decision.path == row["archive_path"]
        assert access.can_play(stores.calls, nina, r["recording_id"]) is None
    assert len(archive_files(stores)) == len(waiting)
    assert stores.calls.query("SELECT sum(recordings_pending), sum(recordings_available) FROM calls") == [
        (0, len(waiting))]
    assert not any((stores.data.archive_dir / archive.INCOMING).iterdir())
    last = archive.last_run(stores)
    assert last is not None and last["archived"] == len(waiting) and last["failed"] == 0


def test_a_second_run_changes_nothing(world) -> None:
    stores, _pbx = world
    first = archive.run(stores)
    generation = stores.calls.current_generation()
    stamps = {p: p.stat().st_mtime_ns for p in archive_files(stores)}
    second = archive.run(stores)
    assert first.archived > 0 and first.generations
    assert (second.archived, second.already_archived, second.missing, second.failed) == (0, 0, 0, 0)
    assert second.generations == [] and stores.calls.current_generation() == generation
    assert second.lines() == ["no 3CX recording waits for the archive"]
    assert {p: p.stat().st_mtime_ns for p in archive_files(stores)} == stamps


def test_batches_publish_several_generations(world) -> None:
    stores, _pbx = world
    count = len(pending(stores))
    summary = archive.run(stores, batch_size=3)
    assert summary.archived == count
    assert len(summary.generations) == -(-count // 3)
    assert summary.generations == sorted(summary.generations)


def test_before_limits_the_run_to_older_recordings(world) -> None:
    stores, _pbx = world
    starts = sorted(r["start_time"] for r in pending(stores))
    cut = starts[len(starts) // 2]
    summary = archive.run(stores, before=cut.astimezone(timezone.utc).replace(tzinfo=None))  # naive = UTC
    states = {r["recording_id"]: (r["state"], r["start_time"]) for r in recordings(stores).values()}
    assert summary.archived == sum(1 for s in starts if s < cut)
    assert all(state == "available" for state, start in states.values() if start is not None and start < cut
               and state != "missing")
    assert all(state == "pending_archive" for state, start in states.values() if start is not None and start >= cut)


def test_dry_run_copies_and_changes_nothing(world) -> None:
    stores, _pbx = world
    count = len(pending(stores))
    generation = stores.calls.current_generation()
    result = cli("--data", str(stores.data.root), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"dry run: {count} would be archived" in result.stdout
    assert stores.calls.current_generation() == generation
    assert archive_files(stores) == [] and len(pending(stores)) == count


# ------------------------------------------------------------------------------------------ sources


def test_a_source_removed_by_housekeeping_becomes_missing_and_does_not_block(world) -> None:
    stores, _pbx = world
    waiting = pending(stores)
    gone = waiting[1]
    os.unlink(gone["source_path"])
    result = cli("--data", str(stores.data.root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"source missing: {gone['source_path']}" in result.stdout
    assert f"{len(waiting) - 1} archived" in result.stdout and "1 source missing, 0 failed" in result.stdout
    after = recordings(stores)
    assert after[gone["recording_id"]]["state"] == "missing" and after[gone["recording_id"]]["archive_path"] is None
    assert all(after[r["recording_id"]]["state"] == "available" for r in waiting if r is not gone)
    available = sum(1 for r in after.values() if r["call_id"] == gone["call_id"] and r["state"] == "available")
    call = stores.calls.query("SELECT recordings_available, recordings_pending FROM calls WHERE call_id = $c",
                              {"c": gone["call_id"]})
    assert call == [(available, 0)]


def test_a_missing_source_that_comes_back_is_archived_on_the_next_run(world) -> None:
    stores, _pbx = world
    r = pending(stores)[0]
    saved = Path(r["source_path"]).read_bytes()
    os.unlink(r["source_path"])
    assert archive.run(stores).missing == 1
    Path(r["source_path"]).write_bytes(saved)
    again = archive.run(stores)
    assert (again.archived, again.missing, again.still_missing) == (1, 0, 0)
    assert recordings(stores)[r["recording_id"]]["state"] == "available"


def test_a_changed_source_is_a_failure_left_pending_and_never_published(world) -> None:
    stores, _pbx = world
    waiting = pending(stores)
    same_size, other_size = Path(waiting[0]["source_path"]), Path(waiting[1]["source_path"])
    data = bytearray(same_size.read_bytes())
    data[-100] ^= 0xFF
    same_size.write_bytes(bytes(data))
    with open(other_size, "ab") as handle:
        handle.write(b"\0" * 10)
    result = cli("--data", str(stores.data.root))
    assert result.returncode == 1
    changed = "the source changed since it was loaded"
    assert f"FAILED recording {waiting[0]['recording_id']}: {changed} (its checksum differs)" in result.stdout
    assert f"FAILED recording {waiting[1]['recording_id']}: {changed} (" in result.stdout
    assert "2 failed" in result.stdout
    after = recordings(stores)
    for r in waiting[:2]:
        assert after[r["recording_id"]]["state"] == "pending_archive"
        assert after[r["recording_id"]]["archive_path"] is None
        assert not any(p.name.startswith(f"{r['recording_id']}-") for p in archive_files(stores))
    assert all(after[r["recording_id"]]["state"] == "available" for r in waiting[2:])
    assert not any((stores.data.archive_dir / archive.INCOMING).iterdir())


def test_source_option_finds_the_files_in_a_moved_recordings_folder(world, tmp_path: Path) -> None:
    stores, pbx = world
    count = len(pending(stores))
    moved = tmp_path / "mnt" / "3cx-recordings"
    moved.parent.mkdir()
    shutil.move(pbx / "Recordings", moved)
    # The folder the files were loaded from is gone: that is "not mounted", never "missing".
    unmounted = cli("--data", str(stores.data.root))
    assert unmounted.returncode == 1
    assert f"{count} failed" in unmounted.stdout and "not reachable (not mounted?)" in unmounted.stdout
    assert len(pending(stores)) == count
    result = cli("--data", str(stores.data.root), "--source", str(moved))
    assert result.returncode == 0, result.stdout
    assert f"{count} archived" in result.stdout
    assert pending(stores) == []


def test_recordings_without_a_relative_path_are_found_by_3cx_folder_convention(world, tmp_path: Path) -> None:
    stores, pbx = world
    with stores.calls.write() as con:  # as loaded before the loaders kept source_relpath
        con.execute("UPDATE recordings SET source_relpath = NULL")
    moved = tmp_path / "elsewhere"
    shutil.move(pbx / "Recordings", moved)
    count = len(pending(stores))
    assert archive.run(stores, source=moved).archived == count


def test_the_v20_loader_keeps_each_recordings_path_inside_its_folder(world) -> None:
    stores, pbx = world
    root = (pbx / "Recordings").resolve()
    rows = list(recordings(stores).values())
    assert rows and all(r["source_relpath"] and root / r["source_relpath"] == Path(r["source_path"]) for r in rows)


def test_the_legacy_loader_keeps_the_relative_path_and_an_absolute_source(stores: Stores, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write_legacy(tmp_path / "cdr.csv", [legacy_row(0, talk=40)])
    wav = tmp_path / "Recordings" / "101" / "[Ann Agent]_+442079460001-101_20260302090003(1).wav"
    wav.parent.mkdir(parents=True)
    soundfile.write(wav, np.zeros(8000, dtype="float32"), 8000, subtype="PCM_16")
    monkeypatch.chdir(tmp_path)
    load_3cx(stores, [Path("cdr.csv")])  # a relative path, as typed at a shell
    [(source_path, relpath)] = stores.calls.query("SELECT source_path, source_relpath FROM recordings")
    assert relpath == f"101/{wav.name}" and source_path == str(wav.resolve())
    assert archive.run(stores).archived == 1


# ------------------------------------------------------------------------------------------ one run at a time


def _wait_for_pause(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], timeout)
    assert ready, "the archive job did not reach its pause"
    return proc.stderr.readline()


def test_a_second_run_stops_with_a_clear_message_while_one_is_running(world) -> None:
    stores, _pbx = world
    first = subprocess.Popen(
        [sys.executable, "-m", "dimnb", "archive", "--no-progress", "--data", str(stores.data.root)],
        env={**os.environ, "PYTHONPATH": str(ROOT), archive.PAUSE_ENV: "copy", archive.PAUSE_SECONDS_ENV: "120"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for_pause(first).startswith(archive.PAUSE_MARKER + " copy")
        second = cli("--data", str(stores.data.root))
        assert second.returncode == 1
        assert "another `dimnb archive` is already running" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        first.stderr.close()
    third = cli("--data", str(stores.data.root))  # the lock died with its holder
    assert third.returncode == 0, third.stderr
    assert pending(stores) == []


def test_partial_copies_left_by_a_dead_run_are_cleared(world) -> None:
    stores, _pbx = world
    incoming = stores.data.archive_dir / archive.INCOMING
    incoming.mkdir(parents=True)
    (incoming / "7.partial").write_bytes(b"RIFF half")
    archive.run(stores)
    assert list(incoming.iterdir()) == []


def test_a_summary_left_half_written_by_a_killed_run_is_removed_by_the_next(world) -> None:
    stores, _pbx = world
    root = stores.data.archive_dir
    root.mkdir(parents=True)
    stray = root / f".{archive.LAST_RUN_FILE}.4242.tmp"  # a run SIGKILLed between writing and renaming it
    stray.write_text('{"started_at": ')
    archive.run(stores)
    assert not stray.exists()
    assert sorted(p.name for p in root.iterdir() if p.is_file()) == sorted([archive.LAST_RUN_FILE, archive.LOCK_FILE])


def test_a_copy_that_does_not_verify_is_never_published(world, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check must read the copy, not the source: a bit flipped while copying must stop the publish.
    stores, _pbx = world
    real_copy = archive._copy
    damaged: list[int] = []

    def copy_with_a_bad_byte(src: Path, partial: Path, pause, recording_id: int) -> int:  # type: ignore[no-untyped-def]
        copied = real_copy(src, partial, pause, recording_id)
        if not damaged:
            damaged.append(recording_id)
            data = bytearray(partial.read_bytes())
            data[len(data) // 2] ^= 0xFF
            partial.write_bytes(bytes(data))
        return copied

    monkeypatch.setattr(archive, "_copy", copy_with_a_bad_byte)
    summary = archive.run(stores)
    [bad] = damaged
    assert [f.recording_id for f in summary.failures] == [bad]
    assert "the copy did not verify" in summary.failures[0].reason
    row = recordings(stores)[bad]
    assert row["state"] == "pending_archive" and row["archive_path"] is None
    assert not any(p.name.startswith(f"{bad}-") for p in archive_files(stores))
    for path in archive_files(stores):  # everything else is published with a copy that verifies
        rid = int(path.name.split("-", 1)[0])
        assert sha(path) == recordings(stores)[rid]["checksum"]


def test_a_file_already_under_its_final_name_is_verified_before_it_is_published(world) -> None:
    # A file found in place is published only if it verifies; otherwise it is copied again over it.
    stores, _pbx = world
    first = pending(stores)[0]
    candidate = next(c for c in archive.candidates(stores) if c.recording_id == first["recording_id"])
    target = stores.data.archive_dir / archive.archive_relpath(candidate)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"RIFF" + b"\0" * (first["size_bytes"] - 4))  # right size, wrong bytes
    summary = archive.run(stores)
    assert summary.failed == 0 and summary.already_archived == 0
    row = recordings(stores)[first["recording_id"]]
    assert row["state"] == "available" and row["archive_path"] == archive.archive_relpath(candidate)
    assert sha(target) == first["checksum"]


# ------------------------------------------------------------------------------------------ small parts


def test_parse_before() -> None:
    assert archive.parse_before("2026-11-19") == datetime(2026, 11, 19, tzinfo=timezone.utc)
    assert archive.parse_before("2026-11-19T02:00") == datetime(2026, 11, 19, 2, tzinfo=timezone.utc)
    assert archive.parse_before("2026-11-19T02:00+01:00") == datetime(2026, 11, 19, 1, tzinfo=timezone.utc)
    assert archive.parse_before("2026-11-19T02:00Z") == datetime(2026, 11, 19, 2, tzinfo=timezone.utc)
    with pytest.raises(InvalidInput) as caught:
        archive.parse_before("last tuesday")
    assert caught.value.field == "before" and "--before" in str(caught.value)


def test_a_bad_before_option_gets_a_plain_message(world) -> None:
    stores, _pbx = world
    result = cli("--data", str(stores.data.root), "--before", "yesterday-ish")
    assert result.returncode == 1 and "--before 'yesterday-ish'" in result.stderr and "Traceback" not in result.stderr


def test_archive_names_are_dated_numbered_and_shell_safe() -> None:
    def candidate(name: str, started: datetime | None) -> archive.Candidate:
        return archive.Candidate(42, 1, "pending_archive", "/x/" + name, name, name, started, 1, "0" * 64)

    t = datetime(2026, 11, 19, 23, 30, tzinfo=timezone.utc)
    assert archive.archive_relpath(candidate("[Sam Patel]_102-104_20261119233000(8).wav", t)) == (
        "2026/11/19/42-[Sam_Patel]_102-104_20261119233000(8).wav")
    assert archive.archive_relpath(candidate("a b;$(rm -rf)\n.wav", None)) == "undated/42-a_b_(rm_-rf)_.wav"
    long = archive.archive_relpath(candidate("x" * 400 + ".wav", t))
    assert long.endswith(".wav") and len(long.rsplit("/", 1)[1]) <= 3 + 160


def test_source_option_never_leaves_the_folder() -> None:
    evil = archive.Candidate(1, 1, "pending_archive", "/r/../../etc/passwd", "../../etc/passwd", "passwd", None, 1, "0")
    assert archive.source_file(evil, Path("/mnt/rec")) is None


def test_last_run_is_json_readable(world) -> None:
    stores, _pbx = world
    assert archive.last_run(stores) is None
    archive.run(stores)
    record = json.loads((stores.data.archive_dir / archive.LAST_RUN_FILE).read_text())
    assert record["finished_at"] >= record["started_at"] and record["failed"] == 0


# ------------------------------------------------------------------------------------------ running it nightly


def _replace_data(args: list[str], data: Path) -> list[str]:
    return [str(data) if i and args[i - 1] == "--data" else a for i, a in enumerate(args)]


def test_the_documented_cron_line_runs_the_job(world) -> None:
    stores, _pbx = world
    doc = (ROOT / "docs" / "archive.md").read_text()
    [line] = [x for x in doc.splitlines() if re.match(r"^\d+ \d+ \* \* \* \w+ /", x)]
    command = shlex.split(line.split(">>")[0])[6:]  # minute hour day month weekday user
    assert command[0].endswith("/bin/dimnb") and command[1] == "archive" and "--data" in command
    result = subprocess.run([sys.executable, "-m", "dimnb", *_replace_data(command[1:], stores.data.root)],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert pending(stores) == [] and "\r" not in result.stderr  # --no-progress: no bar in the log


def test_the_systemd_units_run_the_job_every_night(world) -> None:
    stores, _pbx = world
    service = (ROOT / "contrib" / "dimnb-archive.service").read_text().splitlines()
    timer = (ROOT / "contrib" / "dimnb-archive.timer").read_text().splitlines()
    settings = [x.split("=", 1) for x in service if "=" in x and not x.startswith("#")]
    [exec_start] = [v for k, v in settings if k == "ExecStart"]
    [environment] = [v for k, v in settings if k == "Environment"]
    assert ("Type", "oneshot") in [tuple(s) for s in settings] and environment.startswith("DIMNB_DATA=")
    command = shlex.split(exec_start)
    assert command[0].endswith("/bin/dimnb") and command[1] == "archive"
    result = subprocess.run([sys.executable, "-m", "dimnb", *command[1:]], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "DIMNB_DATA": str(stores.data.root)})
    assert result.returncode == 0, result.stderr
    assert pending(stores) == []
    assert "OnCalendar=*-*-* 02:30:00" in timer and "Unit=dimnb-archive.service" in timer
    assert "WantedBy=timers.target" in timer
