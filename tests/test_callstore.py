"""The call store publishes immutable generations; readers never see a lock error or a half write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import legacy_row, write_legacy
from dimnb.ingest.loader import load_3cx
from dimnb.store import callschema
from dimnb.store.callstore import CallStore, generation_name, wal_path
from dimnb.store.stores import Stores


def write_row(store: CallStore, n: int) -> None:
    with store.write() as con:
        con.execute("INSERT INTO quarantine VALUES ($n, 'f', 1, 'r', 'x')", {"n": n})


def test_first_generation_has_the_schema(stores: Stores) -> None:
    assert stores.calls.current_name() == generation_name(1)
    assert stores.calls.query("SELECT value FROM meta WHERE key = 'schema_version'") == [(str(callschema.SCHEMA_VERSION),)]


def test_a_write_is_invisible_until_published_and_readers_follow(stores: Stores) -> None:
    reader = CallStore(stores.calls.directory)
    assert reader.query("SELECT count(*) FROM quarantine") == [(0,)]
    with stores.calls.write() as con:
        con.execute("INSERT INTO quarantine VALUES (1, 'f', 1, 'r', 'x')")
        assert reader.query("SELECT count(*) FROM quarantine") == [(0,)]
    assert reader.query("SELECT count(*) FROM quarantine") == [(1,)]
    assert reader.current_generation() == 2


def test_a_failed_write_publishes_nothing_and_leaves_no_file(stores: Stores) -> None:
    before = sorted(os.listdir(stores.calls.directory))
    with pytest.raises(RuntimeError):
        with stores.calls.write() as con:
            con.execute("INSERT INTO quarantine VALUES (1, 'f', 1, 'r', 'x')")
            raise RuntimeError("boom")
    assert sorted(os.listdir(stores.calls.directory)) == before
    assert stores.calls.query("SELECT count(*) FROM quarantine") == [(0,)]


def test_a_generation_left_by_a_dead_writer_is_removed(stores: Stores) -> None:
    orphan = stores.calls.directory / generation_name(7)
    orphan.write_bytes(b"half written")
    wal_path(orphan).write_bytes(b"half written")
    with stores.calls.write() as con:
        con.execute("INSERT INTO quarantine VALUES (1, 'f', 1, 'r', 'x')")
    assert not wal_path(orphan).exists()
    assert not orphan.exists()
    assert stores.calls.current_generation() == 2


@pytest.mark.parametrize("delta", [False, True], ids=["copies", "deltas"])
def test_retired_generations_are_removed_after_the_grace_period(tmp_path: Path, delta: bool,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMNB_DELTA_ABOVE_BYTES", "0" if delta else str(1 << 40))
    store = CallStore(tmp_path / "calls", grace_seconds=0)
    store.initialize()
    for n in range(4):
        write_row(store, n)
    names = sorted(n for n in os.listdir(store.directory) if n.startswith("calls-"))
    last_two = [generation_name(4), generation_name(5)]
    assert names == sorted(last_two + ([wal_path(Path(n)).name for n in last_two] if delta else []))
    assert store.query("SELECT count(*) FROM quarantine") == [(4,)]


def test_a_retired_generation_is_kept_for_the_grace_period(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMNB_DELTA_ABOVE_BYTES", "0")
    store = CallStore(tmp_path / "calls", grace_seconds=3600)
    store.initialize()
    for n in range(4):
        write_row(store, n)
    # a hard link to the base and a delta each: nothing is removed yet, and nothing is copied whole
    assert sorted(n for n in os.listdir(store.directory) if n.startswith("calls-") and n.endswith(".duckdb")) == [
        generation_name(g) for g in range(1, 6)]


@pytest.mark.parametrize("delta", [False, True], ids=["copies", "deltas"])
def test_an_old_generation_stays_readable_by_a_reader_that_holds_it(tmp_path: Path, delta: bool,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMNB_DELTA_ABOVE_BYTES", "0" if delta else str(1 << 40))
    store = CallStore(tmp_path / "calls", grace_seconds=0)
    store.initialize()
    write_row(store, 0)
    reader = CallStore(store.directory)
    con = reader.connection()  # holds generation 2 open
    for n in range(1, 4):
        write_row(store, n)
    # generation 2's files are unlinked, but the open connection still reads its snapshot
    assert con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone() == ("2",)
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (1,)
    assert reader.query("SELECT value FROM meta WHERE key = 'generation'") == [("5",)]
    assert reader.query("SELECT count(*) FROM quarantine") == [(4,)]


def test_schema_newer_than_the_code_is_refused(stores: Stores) -> None:
    with stores.calls.write() as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="newer than this dimnb"):
        with stores.calls.write():
            pass


READER = r"""
import json, sys, time
from dimnb.store.callstore import CallStore
store = CallStore(sys.argv[1])
deadline = time.time() + float(sys.argv[2])
seen, queries, errors, torn, last = set(), 0, [], 0, False
while time.time() < deadline:
    last = open(sys.argv[3]).read().strip() == "done"  # one more read after the writer finished
    try:
        gen, calls, loaded = store.cursor().execute(
            "SELECT (SELECT value FROM meta WHERE key = 'generation'), (SELECT count(*) FROM calls), "
            "(SELECT coalesce(sum(calls_added), 0) FROM loads)").fetchone()
        seen.add(int(gen))
        queries += 1
        if calls != loaded or calls % 50 != 0:
            torn += 1
    except Exception as exc:  # any error at all is a failure
        errors.append(repr(exc))
    if last:
        break
print(json.dumps({"seen": sorted(seen), "queries": queries, "errors": errors[:5], "torn": torn}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("delta", [False, True], ids=["copies", "deltas"])
def test_a_reader_process_never_fails_while_a_writer_publishes_20_loads(stores: Stores, tmp_path: Path, delta: bool,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMNB_DELTA_ABOVE_BYTES", "0" if delta else str(1 << 40))
    flag = tmp_path / "flag"
    flag.write_text("")
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(stores.calls.directory), "120", str(flag)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1.0)
        for batch in range(20):
            rows = [legacy_row(batch * 50 + i) for i in range(50)]
            path = write_legacy(tmp_path / f"batch{batch}.csv", rows)
            summary = load_3cx(stores, [path])
            assert summary.total("calls_added") == 50
        flag.write_text("done")
        out, _ = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    result = json.loads(out)
    assert result["errors"] == []
    assert result["torn"] == 0
    assert result["queries"] > 100
    # the reader followed the publishes (it samples, so it need not see every one)
    assert max(result["seen"]) == stores.calls.current_generation()
    assert len(result["seen"]) >= 5


def test_many_read_only_processes_can_share_a_generation(stores: Stores) -> None:
    path = stores.calls.directory / stores.calls.current_name()
    a = duckdb.connect(str(path), read_only=True)
    b = subprocess.run(
        [sys.executable, "-c", f"import duckdb; print(duckdb.connect({str(path)!r}, read_only=True).execute('select 1').fetchone())"],
        capture_output=True, text=True, check=True,
    )
    assert b.stdout.strip() == "(1,)"
    a.close()
