"""Crash safety of `dimnb listen 3cx`: SIGKILL the listener at random moments while a sender pushes calls.

    python bench/listen_crash.py [--kills 50] [--rate 150] [--seed 1] [--quick] [--keep DIR]

A sender process pushes numbered 3CX legacy CDR lines (``feed-000001``, ...)
over TCP to a real listener (``python -m dimnb listen 3cx --ack``, loading
every fraction of a second so kills land in loads too). Some lines go out in
two writes, so that kills also cut lines in half. The sender resends, on a
new connection, every line the listener did not acknowledge (a line is
acknowledged once it is flushed to the spool). The listener is SIGKILLed,
restarted on the same port, again and again: every other kill at a random
moment of its run (on a busy machine mostly during its first load, which
loads what the killed runs left), the others a random moment after the run
loaded its first batch (while it receives, closes a segment or loads again). Then the sender
stops taking new calls, waits until every line it sent is acknowledged, and
the listener is stopped with SIGTERM (which loads what it spooled).

Every acknowledged call must then be in the call store exactly once, and no
row may be quarantined (a cut line must never become a bad row). The last
line: ``metric: lost+duplicated after N kills: 0 (target == 0)``.

``--send PORT`` runs the sender itself (what the bench starts as a process).
The same functions drive tests/test_listen_3cx.py.
"""

from __future__ import annotations

import argparse
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

READY_MARK = "accepting 3CX CDR lines on"
_EPOCH = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)


def call_id(n: int) -> str:
    return f"feed-{n:06d}"


def call_line(n: int) -> bytes:
    """Call number ``n`` as 3CX's CDR service sends it (the usual 27 fields): an outside caller talks to 101."""
    start = _EPOCH + timedelta(seconds=7 * n)
    answered, end = start + timedelta(seconds=4), start + timedelta(seconds=64)
    fmt = "%Y/%m/%d %H:%M:%S"
    caller = f"+44207946{n % 10000:04d}"
    fields = [
        f"Call {n}", call_id(n), "00:01:00", start.strftime(fmt), answered.strftime(fmt), end.strftime(fmt),
        "TerminatedBySrc", caller, "Ext.101", "10000", "101", "101", "", "", "", "", "", "", "",
        f'"Chain: {caller},Ext.101,"', "Line", "Extension", "Extension", "Caller", "Ann Agent", "Ann Agent", "",
    ]
    return (",".join(fields) + "\r\n").encode()


# ---------------------------------------------------------------------------------------------- the sender


class Sender:
    """Sends numbered calls; on a broken connection reconnects and resends every line not acknowledged."""

    def __init__(self, port: int, *, rate: float, seed: int, window: int = 32) -> None:
        self.port, self.rate, self.window = port, rate, window
        self.rng = random.Random(seed)
        self.acked = 0  # calls 1..acked are the listener's
        self.sent = 0  # on this connection: calls 1..sent went out (again, after a reconnect)
        self.written = 0  # the highest call ever written to a connection
        self.stopping = False
        self.connections = 0

    def run(self, report) -> None:  # type: ignore[no-untyped-def]
        """Until stopped (then until every line ever written is acknowledged); ``report(acked)`` after each ack."""
        while not (self.stopping and self.acked >= self.written):
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
            except OSError:
                time.sleep(0.05)
                continue
            self.connections += 1
            try:
                self._session(sock, report)
            except OSError:
                pass
            finally:
                sock.close()

    def _session(self, sock: socket.socket, report) -> None:  # type: ignore[no-untyped-def]
        base, self.sent = self.acked, self.acked  # resend from the first line not acknowledged
        buffer = b""
        next_send = time.monotonic()
        while not (self.stopping and self.acked >= self.written):
            # Once stopping, no new calls: only the ones written before and not acknowledged, again.
            more = self.sent < self.written if self.stopping else True
            if more and self.sent - self.acked < self.window and time.monotonic() >= next_send:
                self._send_line(sock, self.sent + 1)
                self.sent += 1
                self.written = max(self.written, self.sent)
                next_send += 1 / self.rate
            readable, _, _ = select.select([sock], [], [], 0.002)
            if readable:
                data = sock.recv(4096)
                if not data:
                    return
                buffer += data
                *acks, buffer = buffer.split(b"\n")
                if acks:
                    self.acked = base + int(acks[-1])
                    report(self.acked)

    def _send_line(self, sock: socket.socket, n: int) -> None:
        line = call_line(n)
        if self.rng.random() < 0.3:  # in two writes: a kill may come between them
            cut = self.rng.randint(1, len(line) - 1)
            sock.sendall(line[:cut])
            time.sleep(0.002)
            sock.sendall(line[cut:])
        else:
            sock.sendall(line)


def sender_main(port: int, rate: float, seed: int) -> int:
    """The sender process: prints ``acked N`` lines; SIGTERM stops new calls, exit after the last ack."""
    sender = Sender(port, rate=rate, seed=seed)
    signal.signal(signal.SIGTERM, lambda *_: setattr(sender, "stopping", True))
    sender.run(lambda acked: None)
    print(f"acked {sender.acked} written {sender.written} connections {sender.connections}", flush=True)
    return 0


# ---------------------------------------------------------------------------------------------- the listener


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@dataclass
class World:
    base: Path
    port: int
    batch_seconds: float = 0.3
    batch_lines: int = 40
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.base / "data"


def make_world(base: Path, *, batch_seconds: float = 0.3, batch_lines: int = 40) -> World:
    from dimnb.store.stores import Stores

    Stores.open(str(base / "data"), create=True).close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return World(base, port, batch_seconds, batch_lines)


def start_listener(world: World, timeout: float = 60) -> subprocess.Popen:
    """Start the listener and wait until it accepts connections."""
    world.starts += 1
    log = world.base / f"listener-{world.starts:03d}.log"
    world.logs.append(log)
    command = [sys.executable, "-m", "dimnb", "listen", "3cx", "--data", str(world.data), "--port", str(world.port),
               "--batch-seconds", str(world.batch_seconds), "--batch-lines", str(world.batch_lines), "--ack"]
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if READY_MARK in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"the listener exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        time.sleep(0.02)
    proc.kill()
    raise TimeoutError(f"the listener did not start within {timeout} s:\n{log.read_text()[-2000:]}")


def batches_loaded(log: Path) -> int:
    """How many loads a listener run logged (each logs a line per segment; count the distinct generations)."""
    return len({line.rsplit("(generation", 1)[1] for line in log.read_text(errors="replace").splitlines()
                if "(generation" in line})


def _wait_until(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the listener loaded nothing within {timeout} s")
        time.sleep(0.02)


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def stop(proc: subprocess.Popen, timeout: float = 120) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


@dataclass
class Outcome:
    acked: int
    found: int
    lost: int
    duplicated: int
    unexpected: int
    quarantined: int

    @property
    def violations(self) -> int:
        return self.lost + self.duplicated + self.unexpected + self.quarantined


def check(world: World, acked: int) -> Outcome:
    """Compare the call store with the calls 1..acked the listener acknowledged."""
    from dimnb.store.callstore import CallStore

    store = CallStore(world.data / "calls")
    try:
        rows = store.query("SELECT source_id, count(*) FROM calls GROUP BY source_id")
        quarantined = int(store.query("SELECT count(*) FROM quarantine")[0][0])
    finally:
        store.close()
    counts = dict(rows)
    expected = {call_id(n) for n in range(1, acked + 1)}
    return Outcome(
        acked=acked, found=len(counts),
        lost=len(expected - counts.keys()),
        duplicated=sum(n - 1 for n in counts.values()),
        unexpected=len(counts.keys() - expected),
        quarantined=quarantined,
    )


@dataclass
class Campaign:
    kills: int = 0
    after_a_batch: int = 0  # kills of a run that had loaded something (the others came during its first load)
    outcome: Outcome | None = None
    sender_output: str = ""
    final_exit: int | None = None
    seconds: float = 0.0


def campaign(world: World, kills: int, rng: random.Random, *, rate: float = 150, seed: int = 1,
             max_alive: float = 3.0, log=None) -> Campaign:  # type: ignore[no-untyped-def]
    """Kill the listener ``kills`` times at random moments while the sender pushes calls; then check."""
    started = time.monotonic()
    result = Campaign()
    listener = start_listener(world)
    sender = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--send", str(world.port),
                               "--rate", str(rate), "--seed", str(seed)],
                              env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        while result.kills < kills:
            if result.kills % 2:  # at a random moment of the run: on a busy machine mostly its first load
                time.sleep(rng.uniform(0.0, max_alive))
            else:  # once it has loaded a batch: while it receives, closes a segment or loads the next
                _wait_until(lambda: batches_loaded(world.logs[-1]) > 0, timeout=120)
                time.sleep(rng.uniform(0.0, 1.0))
            kill(listener)
            result.kills += 1
            batches = batches_loaded(world.logs[-1])
            result.after_a_batch += batches > 0
            if log:
                log(f"kill {result.kills:3d}: that run had loaded {batches} batch(es)")
            listener = start_listener(world)
        sender.send_signal(signal.SIGTERM)
        result.sender_output, _ = sender.communicate(timeout=120)
        result.final_exit = stop(listener)
    finally:
        for proc in (sender, listener):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    acked = int(result.sender_output.split()[1])
    result.outcome = check(world, acked)
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--rate", type=float, default=150, help="calls a second the sender offers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="4 kills (under a minute)")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument("--send", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.send:
        return sender_main(args.send, args.rate, args.seed)
    kills = 4 if args.quick else args.kills
    base = args.keep or Path(tempfile.mkdtemp(prefix="dimnb-listen-crash-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        world = make_world(base)
        print(f"listener on 127.0.0.1:{world.port}, batches every {world.batch_seconds} s or "
              f"{world.batch_lines} lines, data in {base}", flush=True)
        result = campaign(world, kills, random.Random(args.seed), rate=args.rate, seed=args.seed,
                          log=lambda line: print(line, flush=True))
        segments = len(list((world.data / "feeds" / "3cx").glob("seg-*.csv")))
        outcome = result.outcome
        assert outcome is not None
        print(f"sender: {result.sender_output.strip()}")
        print(f"{result.kills} kills ({result.after_a_batch} after their run had loaded a batch, the others "
              f"before or during its first load), {world.starts} listener starts, {segments} spool segments, "
              f"final SIGTERM exit {result.final_exit}, {result.seconds:.0f} s")
        print(f"acknowledged calls {outcome.acked}, in the store {outcome.found}: lost {outcome.lost}, "
              f"duplicated {outcome.duplicated}, unexpected {outcome.unexpected}, quarantined {outcome.quarantined}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    bad = outcome.lost + outcome.duplicated
    print(f"metric: lost+duplicated after {result.kills} kills: {bad} (target == 0)")
    return 0 if outcome.violations == 0 and result.final_exit == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
