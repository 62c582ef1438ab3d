"""Generations as a shared base plus a delta: an append writes what it adds, readers keep consistent snapshots,
a re-load publishes nothing, a crash leaves a consistent store, an old single-file store migrates on open."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from conftest import legacy_row, write_legacy
from dimnb.ingest.threecx import load_3cx
from dimnb.store import callschema, callstore
from dimnb.store.callstore import BaseChanged, CallStore, generation_name, wal_path
from dimnb.store.stores import Stores

BATCH = 50


@pytest.fixture
def delta_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stores:
    """A data directory whose writers write deltas whatever the store's size (the default: above 64 MiB)."""
    monkeypatch.setenv("DIMNB_DELTA_ABOVE_BYTES", "0")
    stores = Stores.open(str(tmp_path / "data"), create=True)
    yield stores
    stores.close()


def batch_file(folder: Path, n: int) -> Path:
    return write_legacy(folder / f"batch{n}.csv", [legacy_row(n * BATCH + i) for i in range(BATCH)])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def consistency(store: CallStore) -> tuple[int, int, int]:
    """(generation, calls, calls the loads say they added), all read from one snapshot."""
    gen, calls, loaded = store.cursor().execute(
        "SELECT (SELECT value FROM meta WHERE key = 'generation'), (SELECT count(*) FROM calls), "
        "(SELECT coalesce(sum(calls_added), 0) FROM loads)").fetchone()
    return int(gen), calls, loaded


def test_an_append_links_the_base_and_writes_only_its_delta(delta_stores: Stores, tmp_path: Path) -> None:
    calls = delta_stores.calls
    load_3cx(delta_stores, [batch_file(tmp_path, 0)])
    first = calls.directory / calls.current_name()
    base = first.stat()
    base_hash = sha256(first)
    load_3cx(delta_stores, [batch_file(tmp_path, 1)])
    second = calls.directory / calls.current_name()
    assert second != first
    now = second.stat()
    # the same inode, untouched: the append wrote its delta only
    assert (now.st_ino, now.st_size, now.st_mtime_ns) == (base.st_ino, base.st_size, base.st_mtime_ns)
    assert sha256(second) == base_hash
    assert wal_path(second).stat().st_size < base.st_size
    assert consistency(calls)[1:] == (2 * BATCH, 2 * BATCH)


HOLDER = r"""
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM calls").fetchone()[0], flush=True)
time.sleep(120)
"""


def test_an_append_publishes_while_another_process_holds_the_base_open(delta_stores: Stores, tmp_path: Path) -> None:
    # DuckDB locks a file's inode: a writer may never open the base that reader processes hold (it opens a twin)
    load_3cx(delta_stores, [batch_file(tmp_path, 0)])
    current = str(delta_stores.calls.directory / delta_stores.calls.current_name())
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, current], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == str(BATCH)
        for n in (1, 2):
            summary = load_3cx(delta_stores, [batch_file(tmp_path, n)])
            assert [r.status for r in summary.results] == ["loaded"], summary.results
        assert consistency(delta_stores.calls)[1:] == (3 * BATCH, 3 * BATCH)
    finally:
        holder.kill()
        holder.wait()


def test_a_reload_of_a_loaded_file_publishes_nothing(delta_stores: Stores, tmp_path: Path) -> None:
    path = batch_file(tmp_path, 0)
    assert load_3cx(delta_stores, [path]).total("calls_added") == BATCH
    generation = delta_stores.calls.current_generation()
    files = sorted(os.listdir(delta_stores.calls.directory))
    summary = load_3cx(delta_stores, [path])
    assert summary.total("calls_added") == 0
    assert delta_stores.calls.current_generation() == generation
    assert sorted(os.listdir(delta_stores.calls.directory)) == files


def test_readers_see_old_or_new_never_a_torn_store_while_appends_publish(delta_stores: Stores, tmp_path: Path) -> None:
    files = [batch_file(tmp_path, n) for n in range(4)]
    reader = CallStore(delta_stores.calls.directory)
    held = CallStore(delta_stores.calls.directory).connection()  # a reader that keeps its snapshot throughout
    held_before = held.execute("SELECT count(*) FROM calls").fetchone()
    done = threading.Event()
    seen, errors, torn, queries = set(), [], [], [0]

    def read() -> None:
        while True:
            last = done.is_set()
            try:
                gen, count, loaded = consistency(reader)
                seen.add(gen)
                queries[0] += 1
                if count != loaded or count % BATCH:
                    torn.append((gen, count, loaded))
            except Exception as exc:  # any error at all is a failure
                errors.append(repr(exc))
            if last:
                return
            time.sleep(0.002)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for path in files:
            assert load_3cx(delta_stores, [path]).total("calls_added") == BATCH
    finally:
        done.set()
        thread.join(60)
    assert errors == [] and torn == []
    assert max(seen) == delta_stores.calls.current_generation() and len(seen) >= 2
    assert held.execute("SELECT count(*) FROM calls").fetchone() == held_before


def test_a_grown_delta_is_due_and_the_nightly_job_compacts_it(delta_stores: Stores, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from dimnb.cli import main

    load_3cx(delta_stores, [batch_file(tmp_path, 0)])
    old_base = (delta_stores.calls.directory / delta_stores.calls.current_name()).stat().st_ino
    assert not delta_stores.calls.compaction_due()  # a small delta: below COMPACT_MIN_BYTES
    monkeypatch.setattr(callstore, "COMPACT_MIN_BYTES", 0)
    load_3cx(delta_stores, [batch_file(tmp_path, 1)])
    current = delta_stores.calls.directory / delta_stores.calls.current_name()
    # the append does not copy the base: the compaction waits for the nightly job
    assert wal_path(current).exists() and current.stat().st_ino == old_base and delta_stores.calls.compaction_due()
    done = CliRunner().invoke(main, ["archive", "--data", str(delta_stores.data.root), "--no-progress"])
    assert done.exit_code == 0, done.output
    assert "call store compacted into a new base" in done.output
    current = delta_stores.calls.directory / delta_stores.calls.current_name()
    assert not wal_path(current).exists() and current.stat().st_ino != old_base
    assert consistency(delta_stores.calls) == (delta_stores.calls.current_generation(), 2 * BATCH, 2 * BATCH)
    assert delta_stores.calls.compact() is False and not delta_stores.calls.compaction_due()  # nothing left


def test_a_delta_nobody_compacted_is_compacted_by_the_write_that_grows_it_too_far(
        delta_stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_3cx(delta_stores, [batch_file(tmp_path, 0)])
    old_base = (delta_stores.calls.directory / delta_stores.calls.current_name()).stat().st_ino
    monkeypatch.setattr(callstore, "COMPACT_MIN_BYTES", 0)
    monkeypatch.setattr(callstore, "COMPACT_NOW_SHARE", 0.0)
    load_3cx(delta_stores, [batch_file(tmp_path, 1)])
    current = delta_stores.calls.directory / delta_stores.calls.current_name()
    assert not wal_path(current).exists() and current.stat().st_ino != old_base
    assert consistency(delta_stores.calls) == (delta_stores.calls.current_generation(), 2 * BATCH, 2 * BATCH)


def test_a_delta_writer_that_would_change_the_base_publishes_nothing(delta_stores: Stores) -> None:
    generation = delta_stores.calls.current_generation()
    with pytest.raises(BaseChanged):
        with delta_stores.calls.write() as con:
            con.execute("INSERT INTO quarantine VALUES (1, 'f', 1, 'r', 'x')")
            con.execute("CHECKPOINT")  # what every delta writer must never do
    assert delta_stores.calls.current_generation() == generation


def test_a_single_file_store_of_schema_5_migrates_on_open_without_a_copy(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMNB_DELTA_ABOVE_BYTES", "0")
    data = tmp_path / "data"
    Stores.open(str(data), create=True).close()  # the state store; its call store is replaced below
    calls_dir = data / "calls"
    shutil.rmtree(calls_dir)
    calls_dir.mkdir()
    old = calls_dir / generation_name(3)
    con = duckdb.connect(str(old))  # what dimnb wrote before schema 6: one checkpointed file per generation
    for version in range(1, 6):
        con.execute(callschema.MIGRATIONS[version])
    con.execute("INSERT INTO meta VALUES ('schema_version', '5'), ('generation', '3')")
    con.execute("INSERT INTO quarantine VALUES (1, 'f', 1, 'r', 'x')")
    con.close()
    os.symlink(old.name, calls_dir / "CURRENT")
    inode = old.stat().st_ino

    stores = Stores.open(str(data))
    try:
        current = calls_dir / stores.calls.current_name()
        assert current.name == generation_name(4) and current.stat().st_ino == inode
        assert stores.calls.query("SELECT value FROM meta WHERE key = 'schema_version'") == [("6",)]
        assert stores.calls.query("SELECT count(*) FROM quarantine") == [(1,)]
        assert duckdb.connect(str(old), read_only=True).execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("5",)
    finally:
        stores.close()


LOADER = r"""
import sys
from dimnb.store.stores import Stores
from dimnb.ingest.threecx import load_3cx
stores = Stores.open(sys.argv[1])
print("ready", flush=True)
for path in sys.argv[2:]:
    load_3cx(stores, [path])
"""


@pytest.mark.slow
def test_a_writer_killed_at_random_points_leaves_a_consistent_store(delta_stores: Stores, tmp_path: Path) -> None:
    load_3cx(delta_stores, [batch_file(tmp_path, 0)])
    base = delta_stores.calls.directory / delta_stores.calls.current_name()
    base_hash = sha256(base)
    files = [str(batch_file(tmp_path, n)) for n in range(1, 16)]
    rng = random.Random(17)
    env = {**os.environ, "DIMNB_DELTA_ABOVE_BYTES": "0"}
    for _kill in range(4):
        proc = subprocess.Popen([sys.executable, "-c", LOADER, str(delta_stores.data.root), *files],
                                env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader = CallStore(delta_stores.calls.directory)
        gen, count, loaded = consistency(reader)
        assert gen == reader.current_generation()
        assert count == loaded and count % BATCH == 0
        reader.close()
        assert sha256(base) == base_hash  # the shared base is never written
    # the next writer removes what a killed one left and completes
    before = consistency(delta_stores.calls)[1]
    assert load_3cx(delta_stores, files).total("calls_added") == 16 * BATCH - before
    gen, count, loaded = consistency(delta_stores.calls)
    assert count == loaded == 16 * BATCH
    newer = [n for n in os.listdir(delta_stores.calls.directory)
             if (callstore.generation_number(n.removesuffix(".wal")) or 0) > gen]
    assert newer == []
