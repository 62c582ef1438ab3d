"""`dimnb listen 3cx`: real listener processes on 127.0.0.1, real sockets, real spool files and call store.

The crash harness (sender that resends what was not acknowledged, random
SIGKILLs, the exactly-once check) lives in bench/listen_crash.py, which runs
the long campaign (50+ kills); here it runs a few kills.
"""

from __future__ import annotations

import importlib.util
import random
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT
from directory_fixtures import give_extensions
from dimnb.cli import main
from dimnb.ingest import feed_spool, threecx_feed
from dimnb.store.stores import Stores
from dimnb.workbench import Workbench

_spec = importlib.util.spec_from_file_location("listen_crash", ROOT / "bench" / "listen_crash.py")
crash = importlib.util.module_from_spec(_spec)
sys.modules["listen_crash"] = crash
_spec.loader.exec_module(crash)

UNIT = ROOT / "contrib" / "dimnb-listen-3cx.service"
TARGET_SECONDS = 30  # a call is in the Call List this long after its record arrived, at most
BAD_LINE = b"Call 9,broken-record,00:00:10\r\n"


def _wait_for(predicate, timeout: float = TARGET_SECONDS, what: str = "it"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def _send(port: int, data: bytes, *, acks: int | None = None) -> None:
    """Send ``data``; with ``acks`` wait until the listener says that many lines are on disk."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        received = b""
        while acks is not None and acks not in [int(n) for n in received.split(b"\n")[:-1]]:
            chunk = sock.recv(1024)
            assert chunk, f"the listener closed before acknowledging {acks} lines: {received!r}"
            received += chunk


def _listed(data: Path, login: str, source_id: str) -> bool:
    stores = Stores.open(str(data))
    try:
        stored = stores.calls.query("SELECT call_id FROM calls WHERE source_id = $s", {"s": source_id})
        listed = Workbench(stores, login).calls(start="2026-01-01", end="2027-01-01")
        return bool(stored) and stored[0][0] in {int(c) for c in listed["call_id"]}
    finally:
        stores.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A data directory whose directory has ann (extension 101, the feed's calls) and bob (102)."""
    base = tmp_path_factory.mktemp("listen")
    world = crash.make_world(base, batch_seconds=0.5, batch_lines=500)
    stores = Stores.open(str(world.data))
    give_extensions(stores, base, {"ann": "101", "bob": "102"})
    stores.close()
    return world


@pytest.fixture(scope="module")
def listener(world):  # type: ignore[no-untyped-def]
    proc = crash.start_listener(world)
    yield proc
    if proc.poll() is None:
        crash.stop(proc)


# ---------------------------------------------------------------------------------------------- live feed


def test_a_pushed_call_is_in_the_call_list_of_who_may_see_it_within_the_target(world, listener) -> None:
    sent = time.monotonic()
    _send(world.port, crash.call_line(1), acks=1)
    _wait_for(lambda: _listed(world.data, "ann", crash.call_id(1)), what="the call in ann's Call List")
    assert time.monotonic() - sent < TARGET_SECONDS
    assert not _listed(world.data, "bob", crash.call_id(1))  # bob took no part: his Own Calls do not list it


def test_a_malformed_line_is_quarantined_and_the_feed_goes_on(world, listener) -> None:
    _send(world.port, BAD_LINE + crash.call_line(2), acks=2)
    _wait_for(lambda: _listed(world.data, "ann", crash.call_id(2)), what="the good call after the bad line")
    store = Stores.open(str(world.data))
    try:
        rows = store.calls.query("SELECT file, line, reason, raw FROM quarantine")
    finally:
        store.close()
    assert len(rows) == 1
    file, line, reason, raw = rows[0]
    assert Path(file).parent == world.data / "feeds" / "3cx" and line == 2  # line 1 is the segment's header
    assert reason == "too few fields: 27 fields expected, 3 found"
    assert raw.startswith("Call 9,broken-record")
    log = world.logs[-1].read_text()
    assert f"{Path(file).name} line 2 quarantined: too few fields" in log
    assert listener.poll() is None


def test_passive_mode_reads_3cx_and_sigterm_loads_what_was_spooled(world, listener) -> None:
    """A tiny server plays 3CX's passive socket: it sends two records to whoever connects (cut across two
    writes, the second without a line end) and closes. Batches are hours apart: only SIGTERM loads them."""
    records = crash.call_line(5) + crash.call_line(6).rstrip(b"\r\n")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    answers: list[bytes] = []
    acknowledged = threading.Event()

    def play_3cx() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(records[:400])
            time.sleep(0.05)
            conn.sendall(records[400:])
            conn.shutdown(socket.SHUT_WR)
            while chunk := conn.recv(100):
                answers.append(chunk)
                if b"".join(answers).endswith(b"2\n"):
                    acknowledged.set()

    threading.Thread(target=play_3cx, daemon=True).start()
    log = world.base / "passive.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dimnb", "listen", "3cx", "--data", str(world.data), "--passive", f"127.0.0.1:{port}",
         "--batch-seconds", "3600", "--ack",
         "--spool", str(world.base / "passive-spool")], env=crash._env(), stderr=open(log, "wb"), start_new_session=True)
    try:
        assert acknowledged.wait(60), log.read_text()
        assert not _listed(world.data, "ann", crash.call_id(5))
        assert crash.stop(proc) == 0
    finally:
        server.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _listed(world.data, "ann", crash.call_id(5)) and _listed(world.data, "ann", crash.call_id(6))
    text = log.read_text()
    assert f"connected to 3CX at 127.0.0.1:{port}" in text and "stopping: loading what was spooled" in text


# ---------------------------------------------------------------------------------------------- crashes


def test_killed_at_random_moments_every_acknowledged_call_is_loaded_once(tmp_path: Path) -> None:
    world = crash.make_world(tmp_path)
    result = crash.campaign(world, 2, random.Random(7), rate=100, seed=7, max_alive=1.5)
    outcome = result.outcome
    assert outcome is not None and outcome.acked > 0
    assert (outcome.lost, outcome.duplicated, outcome.unexpected, outcome.quarantined) == (0, 0, 0, 0)
    assert result.final_exit == 0
    # The check can fail: a call acknowledged but not in the store counts as lost.
    assert crash.check(world, outcome.acked + 1).lost == 1


def test_the_spool_cuts_a_line_a_crash_left_half_written(tmp_path: Path) -> None:
    header = threecx_feed.header_line(threecx_feed.FeedOptions().columns)
    spool = feed_spool.Spool(tmp_path, header)
    spool.append([crash.call_line(1).replace(b"\r\n", b"\n")])
    spool.close()
    opened = tmp_path / feed_spool.segment_name(1, closed=False)
    with open(opened, "ab") as handle:
        handle.write(crash.call_line(2)[:40])  # a write cut by a power loss
    again = feed_spool.Spool(tmp_path, header)
    try:
        (closed,) = again.unloaded()
        assert closed.read_bytes() == (header + "\n").encode() + crash.call_line(1).replace(b"\r\n", b"\n")
        with pytest.raises(feed_spool.SpoolBusy):
            feed_spool.Spool(tmp_path, header)  # one listener per spool
        again.mark_loaded(closed)
        assert again.unloaded() == []
        assert again.rotate() is None  # nothing arrived: no empty segment
    finally:
        again.close()
    assert sorted(p.name for p in tmp_path.glob("seg-*")) == [closed.name]


def test_a_failed_load_keeps_its_segments_for_the_next_try(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    world = crash.make_world(tmp_path)
    stores = Stores.open(str(world.data))
    options = threecx_feed.FeedOptions()
    spool = feed_spool.Spool(tmp_path / "spool", threecx_feed.header_line(options.columns))
    try:
        loader = threecx_feed.BatchLoader(stores, spool, options)
        spool.append([crash.call_line(1)])
        first = spool.rotate()

        def disk_trouble(con, unit):  # type: ignore[no-untyped-def]
            raise OSError("No space left on device")

        stage, loader._threecx.stage = loader._threecx.stage, disk_trouble  # type: ignore[method-assign]
        loader.load_pending()
        assert spool.unloaded() == [first] and loader.retry_due() is False  # it waits before trying again
        # A whole unit stops on a full disk (the loader says so in its words, with DuckDB's or the OS's).
        assert f"not loaded ({first.name})" in caplog.text and "No space left on device" in caplog.text
        loader._threecx.stage = stage  # type: ignore[method-assign]
        spool.append([crash.call_line(2)])
        spool.rotate()
        loader.load_pending()
        assert spool.unloaded() == []
        assert stores.calls.query("SELECT count(*) FROM calls")[0][0] == 2
    finally:
        spool.close()
        stores.close()


def test_lines_are_split_whole_and_clean() -> None:
    splitter = threecx_feed.LineSplitter()
    assert splitter.feed(b"\xef\xbb\xbfa,b\r\n\r\nc,") == [b"a,b\n"]
    assert splitter.feed(b"d\ne") == [b"c,d\n"]
    assert splitter.finish() == b"e\n" and splitter.finish() is None


def test_only_allowed_peers_may_send(tmp_path: Path) -> None:
    spool = feed_spool.Spool(tmp_path, threecx_feed.header_line(threecx_feed.FeedOptions().columns))
    receiver = threecx_feed.ActiveReceiver(spool, "127.0.0.1", 0, ack=True,
                                           peers=threecx_feed.Peers.parse(["192.0.2.0/24"]))
    receiver.start()
    try:
        port = int(receiver.address.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(crash.call_line(1))
            try:
                answer = sock.recv(100)
            except ConnectionResetError:  # closed before it read what we sent
                answer = b""
            assert answer == b""  # no acknowledgement
        assert spool.open_lines == 0
    finally:
        receiver.stop()
        spool.close()
    assert threecx_feed.Peers.parse(["127.0.0.1"]).permits("127.0.0.1")
    assert threecx_feed.parse_endpoint("[::1]:5000") == ("::1", 5000)


def test_the_command_wants_a_port_or_a_3cx_to_connect_to(world) -> None:
    for args in ([], ["--port", "5000", "--passive", "192.0.2.10:5000"]):
        result = CliRunner().invoke(main, ["listen", "3cx", "--data", str(world.data), *args])
        assert result.exit_code == 2 and "give either --port" in result.output
    result = CliRunner().invoke(main, ["listen", "3cx", "--data", str(world.data), "--passive", "192.0.2.10"])
    assert result.exit_code == 1 and "expected HOST:PORT" in result.output


# ---------------------------------------------------------------------------------------------- deployment


def test_the_listen_unit_runs_options_the_command_has() -> None:
    line = next(l for l in UNIT.read_text().splitlines() if l.startswith("ExecStart="))
    command = shlex.split(line.removeprefix("ExecStart="))
    assert Path(command[0]).name == "dimnb" and command[1:3] == ["listen", "3cx"]
    options = {o for param in main.commands["listen"].commands["3cx"].params for o in param.opts}
    assert {arg for arg in command[3:] if arg.startswith("-")} <= options


def test_systemd_accepts_the_listen_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/dimnb/.venv/bin/dimnb", str(Path(sys.executable).with_name("dimnb"))))
    run = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert [l for l in (run.stdout + run.stderr).splitlines() if UNIT.name in l] == []

