"""The call store: a DuckDB file published in immutable generations.

A DuckDB file opened for writing cannot be opened by any other process, not
even read-only, and Voilà runs one kernel process per viewer. So nothing ever
writes the file readers use. A writer copies the current generation to a new
file (``calls-000042.duckdb``), changes it, checkpoints, closes, and publishes
it by atomically replacing the ``CURRENT`` symlink. Readers resolve the link on
every query (one ``readlink``) and reopen read-only when it moved.

Each generation has its own file name because DuckDB's Python client caches
database instances by path: reconnecting to a replaced file at the same path
would return the old instance.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import duckdb
from filelock import FileLock, Timeout

from dimnb.errors import NotInitialized, StoreBusy
from dimnb.fsutil import fsync_path, unlink_quietly
from dimnb.store import callschema

CURRENT = "CURRENT"
_GENERATION_RE = re.compile(r"^calls-(\d{6,})\.duckdb$")
# A retired generation is removed only after this long, so a reader that has
# just resolved the link can still open it.
DEFAULT_GRACE_SECONDS = 600.0
# A load of a million CDRs must stay within 1 GiB: DuckDB spills what does not fit (measured by bench/ingest.py).
WRITER_MEMORY_LIMIT = os.environ.get("DIMNB_WRITER_MEMORY", "600MB")


def generation_name(number: int) -> str:
    return f"calls-{number:06d}.duckdb"


def generation_number(name: str) -> int | None:
    match = _GENERATION_RE.match(name)
    return int(match.group(1)) if match else None



def _configure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET TimeZone = 'UTC'")


class CallStore:
    """Readers and writers of one call-store directory.

    One instance per process is enough: ``connection()`` is cheap after the
    first call and follows every publish; ``write()`` serialises writers across
    processes on a lock file.
    """

    def __init__(self, directory: Path, *, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        self.directory = Path(directory)
        self.grace_seconds = grace_seconds
        self._lock_path = self.directory / ".write.lock"
        self._reader_lock = threading.Lock()
        self._reader_name: str | None = None
        self._reader: duckdb.DuckDBPyConnection | None = None
        # Set by Stores: the state store's writer lock, one writer across nodes sharing this directory.
        self.writer_guard: Callable[..., AbstractContextManager[None]] = lambda timeout: nullcontext()

    # ------------------------------------------------------------------ reading
    @property
    def current_link(self) -> Path:
        return self.directory / CURRENT

    def current_name(self) -> str | None:
        """The published generation's file name, or None before the first publish."""
        try:
            return os.readlink(self.current_link)
        except FileNotFoundError:
            return None

    def current_generation(self) -> int | None:
        name = self.current_name()
        return generation_number(name) if name else None

    def exists(self) -> bool:
        return self.current_name() is not None

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the current generation (reopened if a newer one was published).

        Use ``cursor()`` instead when several threads query at once.
        """
        for attempt in range(20):
            name = self.current_name()
            if name is None:
                raise NotInitialized(
                    f"no call store in {self.directory.parent} yet: run `dimnb init --data {self.directory.parent}`"
                )
            with self._reader_lock:
                if name == self._reader_name and self._reader is not None:
                    return self._reader
                try:
                    con = duckdb.connect(str(self.directory / name), read_only=True)
                except duckdb.IOException:
                    # Cleaned up between readlink and open: the link has moved on.
                    time.sleep(0.005 * (attempt + 1))
                    continue
                _configure(con)
                old, self._reader, self._reader_name = self._reader, con, name
                if old is not None:
                    old.close()
                return con
        raise RuntimeError(f"could not open the current call-store generation in {self.directory}")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the current generation, safe to use from the calling thread only."""
        cur = self.connection().cursor()
        _configure(cur)
        return cur

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.cursor().execute(sql, params or {}).fetchall()

    def close(self) -> None:
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
            self._reader, self._reader_name = None, None

    # ------------------------------------------------------------------ writing
    @contextmanager
    def write(self, *, timeout: float = 600.0) -> Iterator[duckdb.DuckDBPyConnection]:
        """Copy the current generation, yield a writable connection to the copy, publish on success.

        If the block raises (or the process dies) nothing is published and the
        copy is removed; readers never see a partial change.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        node_guard = self.writer_guard(timeout=timeout)
        node_guard.__enter__()
        lock = FileLock(str(self._lock_path))
        try:
            lock.acquire(timeout=timeout)
        except Timeout as exc:
            node_guard.__exit__(None, None, None)
            raise StoreBusy(f"another dimnb process is writing the call store in {self.directory}") from exc
        try:
            self._remove_unpublished()
            current = self.current_name()
            number = max(self._generation_numbers(), default=0) + 1
            target = self.directory / generation_name(number)
            if current is not None:
                shutil.copyfile(self.directory / current, target)
            con = duckdb.connect(str(target), config={"memory_limit": WRITER_MEMORY_LIMIT,
                                                      "temp_directory": str(self.directory / ".spill")})
            try:
                _configure(con)
                callschema.migrate(con)
                con.execute("DELETE FROM meta WHERE key = 'generation'")
                con.execute("INSERT INTO meta VALUES ('generation', $g)", {"g": str(number)})
                yield con
                con.execute("CHECKPOINT")
            except BaseException:
                con.close()
                unlink_quietly(target)
                unlink_quietly(Path(str(target) + ".wal"))
                raise
            con.close()
            fsync_path(target)
            self._publish(target.name)
            self.cleanup()
        finally:
            lock.release()
            node_guard.__exit__(None, None, None)

    def initialize(self) -> int:
        """Create the first generation (empty schema) if none exists; returns the current generation."""
        if not self.exists():
            with self.write():
                pass
        generation = self.current_generation()
        assert generation is not None
        return generation

    def _publish(self, name: str) -> None:
        tmp = self.directory / f".{CURRENT}.{os.getpid()}.tmp"
        unlink_quietly(tmp)
        os.symlink(name, tmp)
        os.replace(tmp, self.current_link)
        fsync_path(self.directory)

    def _generation_numbers(self) -> list[int]:
        numbers = []
        for entry in os.listdir(self.directory):
            number = generation_number(entry)
            if number is not None:
                numbers.append(number)
        return numbers

    def _remove_unpublished(self) -> None:
        """Drop generations newer than CURRENT: left by a writer that died before publishing."""
        current = self.current_generation() or 0
        for number in self._generation_numbers():
            if number > current:
                path = self.directory / generation_name(number)
                unlink_quietly(path)
                unlink_quietly(Path(str(path) + ".wal"))

    def cleanup(self, *, keep: int = 2) -> list[str]:
        """Remove retired generations: beyond the newest ``keep`` and retired for longer than the grace period."""
        current = self.current_generation()
        if current is None:
            return []
        numbers = sorted(n for n in self._generation_numbers() if n <= current)
        removed = []
        now = time.time()
        for index, number in enumerate(numbers[:-keep] if keep else numbers):
            successor = self.directory / generation_name(numbers[index + 1])
            try:
                retired_at = successor.stat().st_mtime
            except FileNotFoundError:
                continue
            if now - retired_at >= self.grace_seconds:
                path = self.directory / generation_name(number)
                unlink_quietly(path)
                removed.append(path.name)
        return removed

