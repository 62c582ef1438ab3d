"""``dimnb listen 3cx``: the 3CX CDR service's socket feed, spooled to disk and loaded in small batches.

3CX's CDR service sends one CSV line per call as the call ends, in the
field order set in its admin console, either as a TCP client that connects to
us (*active socket*: 3CX is the client) or as a TCP server we connect to
(*passive socket*). Every line is appended to the spool
(``dimnb.ingest.feed_spool``) and flushed to disk before anything else
happens to it. When lines are waiting and the last load began
``batch_seconds`` ago (or ``batch_lines`` lines are waiting) the open
segment is closed and the closed segments are loaded by the 3CX loader
(``ThreeCX.stage`` through ``loader.run_units``), exactly as ``dimnb load 3cx`` loads a file: no second parser,
the same quarantine for malformed rows, the same idempotence (a segment, or a
call, loaded before adds nothing). So a kill at any moment loses no spooled
line and loads none twice; docs/live-feed.md says what TCP itself can lose.

With ``ack`` the listener answers each flush with the number of lines this
connection has spooled so far (``"12\\n"``): a sender that can resend (a
relay, the crash bench) resends what was not acknowledged. 3CX neither
reads nor needs it.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dimnb.errors import DimnbError, InvalidInput
from dimnb.ingest import threecx_legacy
from dimnb.ingest.feed_spool import Spool
from dimnb.ingest.loader import FileResult, Unit, run_units
from dimnb.ingest.threecx import ThreeCX
from dimnb.store.stores import Stores

log = logging.getLogger("dimnb.listen")

# A "line" longer than this without a line end is spooled as it is (the loader quarantines it).
MAX_LINE_BYTES = 1 << 20
# How the call store's list of loaded files names a spool segment's load.
FEED_KIND = "3cx-feed"
_BOM = b"\xef\xbb\xbf"


def spool_directory(stores: Stores) -> Path:
    return stores.data.root / "feeds" / "3cx"


def header_line(columns: Sequence[str]) -> str:
    """The header every spool segment starts with: 3CX's own field names, so the file loads by itself."""
    header = ",".join(c.replace("_", "-") if c != "_" else "_" for c in columns)
    if threecx_legacy.header_columns(header) != list(columns):
        raise InvalidInput("the column list skips too many fields (_) for its segments' header line to name "
                           "them: give at least half of the columns a 3CX field name", field="columns")
    return header


def parse_endpoint(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:5000`` for IPv6) for ``--passive``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"{text!r}: expected HOST:PORT, e.g. 192.0.2.10:5000", field="passive")
    return host, int(port)


class LineSplitter:
    """Bytes from a stream in, whole lines out (each ending in ``\\n``; CRLF, a BOM and blank lines dropped)."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.pending += data
        parts = self.pending.split(b"\n")
        self.pending = parts.pop()
        if len(self.pending) > MAX_LINE_BYTES:
            log.warning("a line of more than %d bytes without a line end: spooled as it is", MAX_LINE_BYTES)
            parts.append(self.pending)
            self.pending = b""
        return [line for line in (self._clean(p) for p in parts) if line]

    def finish(self) -> bytes | None:
        """At a clean end of the stream: what followed the last line end, as a line (or None)."""
        tail, self.pending = self.pending, b""
        return self._clean(tail) or None

    @staticmethod
    def _clean(raw: bytes) -> bytes:
        line = raw.rstrip(b"\r")
        if line.startswith(_BOM):
            line = line[len(_BOM):]
        return line + b"\n" if line.strip() else b""


def pump(sock: socket.socket, spool: Spool, peer: str, *, ack: bool, stopping: threading.Event) -> int:
    """Spool every whole line ``sock`` sends until it closes (or we stop); returns how many were spooled."""
    splitter = LineSplitter()
    spooled = 0
    sock.settimeout(0.5)
    while not stopping.is_set():
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError as exc:
            log.warning("%s: connection lost (%s)%s", peer, exc.strerror or exc, _dropped(splitter))
            return spooled
        if not data:
            tail = splitter.finish()
            if tail is not None:  # 3CX may end a connection's last record without a line end
                spool.append([tail])
                spooled += 1
                _acknowledge(sock, spooled, ack)
            break
        lines = splitter.feed(data)
        if lines:
            spool.append(lines)
            spooled += len(lines)
            _acknowledge(sock, spooled, ack)
    if stopping.is_set() and splitter.pending:
        log.warning("%s: stopping%s", peer, _dropped(splitter))
    return spooled


def _acknowledge(sock: socket.socket, spooled: int, ack: bool) -> None:
    if ack:
        try:
            sock.sendall(f"{spooled}\n".encode())
        except OSError:
            pass  # the lines are spooled; the sender learns at its next read that the connection broke


def _dropped(splitter: LineSplitter) -> str:
    if not splitter.pending:
        return ""
    return f"; {len(splitter.pending)} bytes of a line cut off by it were not kept"


@dataclass
class Peers:
    """Which addresses may send records (``--allow``); empty: any."""

    allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)

    @classmethod
    def parse(cls, specs: Sequence[str]) -> "Peers":
        try:
            return cls([ipaddress.ip_network(s.strip(), strict=False) for s in specs if s.strip()])
        except ValueError as exc:
            raise InvalidInput(f"--allow: {exc}", field="allow") from None

    def permits(self, address: str) -> bool:
        if not self.allowed:
            return True
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.allowed)


class ActiveReceiver:
    """3CX as the client ("3CX CDR service is client / Active Socket"): accept its connections on ip:port."""

    def __init__(self, spool: Spool, ip: str, port: int, *, ack: bool, peers: Peers) -> None:
        self.spool, self.ack, self.peers = spool, ack, peers
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.server = socket.socket(family, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.server.bind((ip, port))
        except OSError as exc:
            self.server.close()
            raise DimnbError(f"cannot listen on {ip}:{port}: {exc.strerror or exc}") from None
        self.server.listen(16)
        self.server.settimeout(0.5)
        self.address = f"{ip}:{self.server.getsockname()[1]}"
        self.stopping = threading.Event()
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._thread = threading.Thread(target=self._accept, name="accept", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, address = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                raise
            peer = f"{address[0]}:{address[1]}"
            if not self.peers.permits(address[0]):
                log.warning("%s: refused (not in --allow)", peer)
                conn.close()
                continue
            worker = threading.Thread(target=self._serve, args=(conn, peer), name=f"conn {peer}", daemon=True)
            self._connections[worker] = conn
            worker.start()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        log.info("%s: connected", peer)
        try:
            spooled = pump(conn, self.spool, peer, ack=self.ack, stopping=self.stopping)
            log.info("%s: closed after %d lines", peer, spooled)
        except Exception:  # noqa: BLE001 - one broken connection must not stop the feed
            log.exception("%s: receiving failed", peer)
        finally:
            conn.close()
            self._connections.pop(threading.current_thread(), None)

    def stop(self) -> None:
        self.stopping.set()
        self._thread.join(timeout=5)
        self.server.close()
        for worker in list(self._connections):
            worker.join(timeout=5)


class PassiveReceiver:
    """3CX as the server ("3CX CDR service is server / Passive Socket"): connect to it and read, reconnecting."""

    def __init__(self, spool: Spool, host: str, port: int, *, ack: bool) -> None:
        self.spool, self.host, self.port, self.ack = spool, host, port, ack
        self.address = f"{host}:{port}"
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="passive", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            try:
                conn = socket.create_connection((self.host, self.port), timeout=10)
            except OSError as exc:
                log.warning("cannot connect to 3CX at %s (%s): retrying in %.0f s", self.address,
                            exc.strerror or exc, delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            log.info("connected to 3CX at %s", self.address)
            try:
                spooled = pump(conn, self.spool, self.address, ack=self.ack, stopping=self.stopping)
            finally:
                conn.close()
            if not self.stopping.is_set():
                log.info("3CX at %s closed the connection after %d lines: reconnecting", self.address, spooled)
                delay = 1.0 if spooled else min(delay * 2, 30.0)
                self.stopping.wait(delay)

    def stop(self) -> None:
        self.stopping.set()
        self._thread.join(timeout=15)


@dataclass
class FeedOptions:
    columns: list[str] = field(default_factory=lambda: list(threecx_legacy.DEFAULT_COLUMNS))
    queues: Sequence[str] = ()
    recordings: Path | None = None
    batch_seconds: float = 10.0
    batch_lines: int = 500
    ack: bool = False


class BatchLoader:
    """Closes the open segment when a batch is due and loads the closed ones with the 3CX loader."""

    def __init__(self, stores: Stores, spool: Spool, options: FeedOptions) -> None:
        self.stores, self.spool, self.options = stores, spool, options
        self._loaded: set[Path] = set()  # loaded by this process (the mark may be held back by a failure)
        self._retry_at = 0.0
        self._failures = 0
        self._last_load = time.monotonic()  # starting counts as a load: a restart loop cannot load non-stop
        self._threecx = ThreeCX(columns=options.columns, recordings=options.recordings, queues=options.queues)

    def due(self) -> bool:
        """Lines are waiting, and the last load began ``batch_seconds`` ago (or ``batch_lines`` are waiting).

        After a quiet spell a call is loaded at once; under a steady stream the loads are ``batch_seconds``
        apart, each taking what came meanwhile.
        """
        waiting = self.spool.open_lines
        if waiting >= self.options.batch_lines:
            return True
        return waiting > 0 and time.monotonic() - self._last_load >= self.options.batch_seconds

    def retry_due(self) -> bool:
        return bool(self._failures) and time.monotonic() >= self._retry_at

    def load_pending(self) -> None:
        """Load every closed segment not loaded yet; record the ones before the first failure as loaded."""
        segments = [s for s in self.spool.unloaded() if s not in self._loaded]
        if not segments:
            return
        started = self._last_load = time.monotonic()
        # One unit for all of them: one transaction (a load's fixed cost is most of a small batch's), and
        # every segment is still recorded as a file loaded (by its content hash), as `dimnb load` records it.
        unit = Unit(FEED_KIND, segments, self.options.columns, skip=1)
        try:
            summary = run_units(self.stores, ThreeCX.name, [unit], self._threecx.stage)
        except (DimnbError, duckdb.Error, OSError) as exc:
            names = ", ".join(segment.name for segment in segments)
            self._failed(f"{len(segments)} segment(s) not loaded ({names}): {exc}")
            return
        by_path = {r.path: r for r in summary.results}
        failed: list[str] = []
        for segment in segments:
            result = by_path.get(str(segment))
            if result is None or result.status == "failed":
                failed.append(f"{segment.name} ({result.message if result else 'no result'})")
                continue
            self._loaded.add(segment)
            if not failed:
                self.spool.mark_loaded(segment)
            self._report(segment, result, summary.generation)
        if failed:
            self._failed(f"not loaded: {', '.join(failed)}")
        else:
            self._failures = 0
        log.debug("batch of %d segment(s) in %.2f s", len(segments), time.monotonic() - started)

    def _failed(self, message: str) -> None:
        self._failures += 1
        delay = min(self.options.batch_seconds * 2 ** self._failures, 300.0)
        self._retry_at = time.monotonic() + delay
        log.error("%s (trying again in %.0f s)", message, delay)

    def _report(self, segment: Path, result: FileResult, generation: int | None) -> None:
        if result.status == "skipped":
            log.info("%s: already loaded", segment.name)
            return
        log.info("%s: %d rows: %d calls loaded, %d duplicates skipped, %d quarantined (generation %s)",
                 segment.name, result.rows, result.calls_added, result.duplicates, result.quarantined, generation)
        if result.quarantined:
            rows = self.stores.calls.query("SELECT line, reason FROM quarantine WHERE file = $f ORDER BY line",
                                           {"f": str(segment.resolve())})
            for line, reason in rows:
                log.warning("%s line %s quarantined: %s (see: dimnb quarantine)", segment.name, line, reason)


def listen(
    stores: Stores,
    options: FeedOptions,
    *,
    ip: str = "127.0.0.1",
    port: int | None = None,
    passive: tuple[str, int] | None = None,
    peers: Peers | None = None,
    spool_dir: Path | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Receive, spool and load until SIGTERM/SIGINT (or ``stop``); then load what was spooled and return."""
    if passive is None and port is None:
        raise InvalidInput("give --port (3CX connects to it) or --passive HOST:PORT", field="port")
    spool = Spool(spool_dir or spool_directory(stores), header_line(options.columns))
    stop = stop or threading.Event()
    receiver: ActiveReceiver | PassiveReceiver
    try:
        if passive is not None:
            receiver = PassiveReceiver(spool, *passive, ack=options.ack)
        else:
            assert port is not None
            receiver = ActiveReceiver(spool, ip, port, ack=options.ack, peers=peers or Peers())
    except BaseException:
        spool.close()
        raise
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    loader = BatchLoader(stores, spool, options)
    receiver.start()
    log.info("%s 3CX CDR lines %s %s; spool %s; loads at most every %g s (at once at %d lines)",
             "reading" if passive else "accepting", "from" if passive else "on", receiver.address, spool.directory,
             options.batch_seconds, options.batch_lines)
    if on_ready:
        on_ready(receiver.address)
    try:
        loader.load_pending()  # segments a killed run closed but did not load
        while not stop.wait(0.2):
            if loader.due():
                spool.rotate()
                loader.load_pending()
            elif loader.retry_due():
                loader.load_pending()
        log.info("stopping: loading what was spooled")
        receiver.stop()
        spool.rotate()
        loader.load_pending()
    finally:
        receiver.stop()
        spool.close()
    log.info("stopped")
