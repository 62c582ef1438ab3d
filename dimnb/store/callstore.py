"""The call store: DuckDB files published in immutable generations, each a shared base plus its own delta.

A DuckDB file opened for writing cannot be opened by any other process, not
even read-only, and Voilà runs one kernel process per viewer. So nothing ever
writes a file readers use. A generation is ``calls-000042.duckdb`` (a hard
link to a *base*: a checkpointed DuckDB file shared by many generations) plus
``calls-000042.duckdb.wal`` (its *delta*: DuckDB's own write-ahead log of
every change since that base). DuckDB replays the WAL when it opens the file,
read-only too, so a reader sees base + delta as one database.

A writer links the current base under the next name, copies the current
delta beside it, opens it with checkpoints and optimistic writes off (so
DuckDB appends to the WAL only and never writes the shared base), runs its
changes and closes. The cost is the delta's size, not the store's. It
publishes by atomically replacing the ``CURRENT`` symlink; readers resolve
the link on every query (one ``readlink``) and reopen read-only when it moved.
When the delta has grown past a share of the base, the next publish is
followed by a *compaction*: a full copy checkpointed into a new base.
A small store (below ``DIMNB_DELTA_ABOVE_BYTES``) is always copied whole and
checkpointed: copying it costs less than replaying a delta.

Each generation has its own file name because DuckDB's Python client caches
database instances by path: reconnecting to a replaced file at the same path
would return the old instance. See docs/architecture.md for the measurements.
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
WAL_SUFFIX = ".wal"
# Writers' files, never published under these names: a delta being written, and the base's twin.
WRITING_PREFIX = ".writing-"
TWIN_PREFIX = ".base-twin-"
_GENERATION_RE = re.compile(r"^calls-(\d{6,})\.duckdb$")
# A retired generation is removed only after this long, so a reader that has
# just resolved the link can still open it.
DEFAULT_GRACE_SECONDS = 600.0
# A load of a million CDRs must stay within 1 GiB: DuckDB spills what does not fit (measured by bench/ingest.py).
WRITER_MEMORY_LIMIT = os.environ.get("DIMNB_WRITER_MEMORY", "600MB")
# Below this base size a writer copies the whole file and checkpoints (cheaper than a delta); above, it
# writes a delta. A delta grown past COMPACT_SHARE of its base (and COMPACT_MIN_BYTES) is due for compaction,
# which the nightly archive job does (``compact_if_due``): a compaction copies the whole base, so it stays out
# of the appends. Only a delta past COMPACT_NOW_SHARE (nobody ran the job) is compacted by the write itself,
# to bound what every reader replays when it opens the generation.
DELTA_ABOVE_BYTES = 64 << 20
COMPACT_MIN_BYTES = 32 << 20
COMPACT_SHARE = 0.02
COMPACT_NOW_SHARE = 0.25
# What keeps a delta writer off the shared base: no checkpoint (by size, by commit size, on close) and no
# optimistic writes (large appends written into the database file before commit).
_DELTA_CONFIG: dict[str, Any] = {
    "checkpoint_threshold": "1TB",
    "auto_checkpoint_skip_wal_threshold": 1 << 62,
    "enable_optimistic_write": False,
}


def generation_name(number: int) -> str:
    return f"calls-{number:06d}.duckdb"


def generation_number(name: str) -> int | None:
    match = _GENERATION_RE.match(name)
    return int(match.group(1)) if match else None


def wal_path(path: Path) -> Path:
    return Path(str(path) + WAL_SUFFIX)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _delta_above_bytes() -> int:
    return int(os.environ.get("DIMNB_DELTA_ABOVE_BYTES", DELTA_ABOVE_BYTES))


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET TimeZone = 'UTC'")


class BaseChanged(RuntimeError):
    """A delta writer changed the base that older generations share (a DuckDB behaviour we rule out)."""


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
                if not self._is_whole(con, name):
                    # Its delta was removed between opening the base and reading the delta: base only, stale.
                    con.close()
                    time.sleep(0.005 * (attempt + 1))
                    continue
                _configure(con)
                old, self._reader, self._reader_name = self._reader, con, name
                if old is not None:
                    old.close()
                return con
        raise RuntimeError(f"could not open the current call-store generation in {self.directory}")

    @staticmethod
    def _is_whole(con: duckdb.DuckDBPyConnection, name: str) -> bool:
        """Every published generation records its own number last: a base without its delta lacks it."""
        row = con.execute("SELECT max(value) FROM meta WHERE key = 'generation'").fetchone()
        return row is not None and row[0] is not None and int(row[0]) == generation_number(name)

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
        """Yield a writable connection to the next generation; publish it on success if anything changed.

        If the block raises (or the process dies) nothing is published and the
        new files are removed; readers never see a partial change. A block that
        changes nothing (say, a re-load of files already loaded) publishes no
        generation.
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
            delta = current is not None and _size(self.directory / current) >= _delta_above_bytes()
            # A delta is written against the base's twin: readers hold DuckDB's lock on the base's inode.
            work = self.directory / f"{WRITING_PREFIX}{generation_name(number)}" if delta else target
            twin_before = self._prepare(current, work, delta=delta)
            con = self._open_writer(work, delta=delta)
            try:
                found = callschema.migrate(con)
                before = self._files_state(work)
                yield con
                # Every committed change reaches the WAL (or, in a copy, a checkpoint into the file itself).
                changed = found < callschema.SCHEMA_VERSION or self._files_state(work) != before
                if changed:
                    con.execute("DELETE FROM meta WHERE key = 'generation'")
                    con.execute("INSERT INTO meta VALUES ('generation', $g)", {"g": str(number)})
                    if not delta:
                        con.execute("CHECKPOINT")
                con.close()
                if delta and twin_before != self._base_identity(work):
                    unlink_quietly(work)
                    self._remove_twins(keep=None)
                    raise BaseChanged(f"a delta write changed the base twin it was written against ({work})")
            except BaseException:
                con.close()
                self._discard(work)
                raise
            if not changed:
                self._discard(work)
                return
            if delta:
                assert current is not None
                os.link(self.directory / current, target)  # the readers' base, under the new name
                os.replace(wal_path(work), wal_path(target))
                unlink_quietly(work)
            self._sync(target)
            self._publish(target.name)
            if delta and self._needs_compaction(target, COMPACT_NOW_SHARE):
                self._compact(target)
            self.cleanup()
        finally:
            lock.release()
            node_guard.__exit__(None, None, None)

    def _twin(self, base: Path) -> Path:
        """A private copy of ``base`` that writers open: byte for byte the base, so its WAL fits the base."""
        twin = self.directory / f"{TWIN_PREFIX}{base.stat().st_ino}.duckdb"
        if not twin.exists():
            self._remove_twins(keep=None)
            partial = self.directory / f"{WRITING_PREFIX}twin.tmp"
            shutil.copyfile(base, partial)
            fsync_path(partial)
            os.replace(partial, twin)
        return twin

    def _remove_twins(self, *, keep: Path | None) -> None:
        for entry in os.listdir(self.directory):
            if entry.startswith(TWIN_PREFIX) and (keep is None or entry != keep.name):
                unlink_quietly(self.directory / entry)

    def _prepare(self, current: str | None, work: Path, *, delta: bool) -> tuple[int, int, int] | None:
        """Lay down the files to write: a link to the base's twin and a copy of the delta, or a full copy."""
        if current is None:
            return None
        source = self.directory / current
        if delta:
            os.link(self._twin(source), work)
        else:
            shutil.copyfile(source, work)
        if wal_path(source).exists():
            shutil.copyfile(wal_path(source), wal_path(work))
        return self._base_identity(work) if delta else None

    @staticmethod
    def _files_state(target: Path) -> tuple[tuple[int, int] | None, ...]:
        def state(path: Path) -> tuple[int, int] | None:
            try:
                st = path.stat()
            except FileNotFoundError:
                return None
            return st.st_size, st.st_mtime_ns

        return state(target), state(wal_path(target))

    @staticmethod
    def _base_identity(path: Path) -> tuple[int, int, int]:
        st = path.stat()
        return st.st_ino, st.st_size, st.st_mtime_ns

    @staticmethod
    def _open_writer(target: Path, *, delta: bool) -> duckdb.DuckDBPyConnection:
        config: dict[str, Any] = {"memory_limit": WRITER_MEMORY_LIMIT, "temp_directory": str(target.parent / ".spill")}
        if delta:
            config.update(_DELTA_CONFIG)
        con = duckdb.connect(str(target), config=config)
        try:
            if delta:
                con.execute("PRAGMA disable_checkpoint_on_shutdown")
            _configure(con)
        except BaseException:
            con.close()
            raise
        return con

    @staticmethod
    def _discard(target: Path) -> None:
        unlink_quietly(target)
        unlink_quietly(wal_path(target))

    def _sync(self, target: Path) -> None:
        fsync_path(target)
        if wal_path(target).exists():
            fsync_path(wal_path(target))
        fsync_path(self.directory)

    @staticmethod
    def _needs_compaction(target: Path, share: float) -> bool:
        wal = _size(wal_path(target))
        return wal > max(COMPACT_MIN_BYTES, share * _size(target))

    def compaction_due(self) -> bool:
        """Whether the current generation's delta has grown past COMPACT_SHARE of its base."""
        current = self.current_name()
        return current is not None and self._needs_compaction(self.directory / current, COMPACT_SHARE)

    def compact_if_due(self, *, timeout: float = 600.0) -> bool:
        """``compact()`` when ``compaction_due()``: what the nightly archive job runs last. Whether it compacted."""
        return self.compaction_due() and self.compact(timeout=timeout)

    def _compact(self, source: Path) -> None:
        """Publish the same content as one checkpointed file: the new base (the old one goes with its last link)."""
        target = self.directory / generation_name(generation_number(source.name) + 1)  # type: ignore[operator]
        try:
            shutil.copyfile(source, target)
            shutil.copyfile(wal_path(source), wal_path(target))
            con = self._open_writer(target, delta=False)
            try:
                con.execute("DELETE FROM meta WHERE key = 'generation'")
                con.execute("INSERT INTO meta VALUES ('generation', $g)",
                            {"g": str(generation_number(target.name))})
                con.execute("CHECKPOINT")
            finally:
                con.close()
            self._sync(target)
        except BaseException:
            self._discard(target)
            raise
        self._publish(target.name)
        self._twin(target)  # the next append's, made now rather than in its time

    def compact(self, *, timeout: float = 600.0) -> bool:
        """Fold the current delta into a new base now; returns whether there was a delta to fold."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._lock_path))
        try:
            lock.acquire(timeout=timeout)
        except Timeout as exc:
            raise StoreBusy(f"another dimnb process is writing the call store in {self.directory}") from exc
        try:
            self._remove_unpublished()
            current = self.current_name()
            if current is None or not wal_path(self.directory / current).exists():
                return False
            self._compact(self.directory / current)
            self.cleanup()
            return True
        finally:
            lock.release()

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
                self._discard(self.directory / generation_name(number))
        for entry in os.listdir(self.directory):
            if entry.startswith(WRITING_PREFIX):
                unlink_quietly(self.directory / entry)  # a writer's files, left by one that died
                continue
            main = entry.removesuffix(WAL_SUFFIX)
            if main != entry and generation_number(main) is not None and not (self.directory / main).exists():
                unlink_quietly(self.directory / entry)  # a delta whose generation is gone

    def _retired_at(self, number: int) -> float | None:
        """When generation ``number`` was published (a linked base keeps its first mtime: the delta tells)."""
        path = self.directory / generation_name(number)
        try:
            times = [path.stat().st_mtime]
        except FileNotFoundError:
            return None
        try:
            times.append(wal_path(path).stat().st_mtime)
        except FileNotFoundError:
            pass
        return max(times)

    def cleanup(self, *, keep: int = 2) -> list[str]:
        """Remove retired generations: beyond the newest ``keep`` and retired for longer than the grace period."""
        current = self.current_generation()
        if current is None:
            return []
        numbers = sorted(n for n in self._generation_numbers() if n <= current)
        removed = []
        now = time.time()
        for index, number in enumerate(numbers[:-keep] if keep else numbers):
            retired_at = self._retired_at(numbers[index + 1])
            if retired_at is not None and now - retired_at >= self.grace_seconds:
                path = self.directory / generation_name(number)
                unlink_quietly(path)  # the base first: a reader then fails to open, rather than missing the delta
                unlink_quietly(wal_path(path))
                removed.append(path.name)
        return removed
