"""The nightly 3CX archive job: pending recordings become playable only once safely archived.

3CX recordings are linked at load time as ``pending_archive``: the file sits in
the 3CX recordings folder, which 3CX's own housekeeping may empty at any time.
This job copies each one into the archive store and only then publishes it as
``available``. Per recording, in this order:

1. copy the source to ``archive/.incoming/<recording_id>.partial`` (created
   exclusively, never visible under its final name);
2. check the copy's sha256 against the checksum the loader computed from the
   original, and flush it to disk (``fsync``; copies are flushed in groups by
   one thread while the workers copy and check the next ones, so the disk and
   the hashing overlap and a group shares the file system's journal commits);
3. rename it into place atomically (``archive/YYYY/MM/DD/<recording_id>-<file name>``,
   the UTC day the recording started) and flush the directory;
4. publish the new state (``available``, ``archive_path``) in a new call-store
   generation, many recordings per generation.

A crash before step 3 leaves at most a partial file in ``.incoming/``, which
the next run clears. A crash between steps 3 and 4 leaves a verified copy in
place that the next run checks again and publishes without copying. A crash
during step 4 publishes nothing of that batch (generations are atomic). So
after any crash every recording is either still pending with its source
untouched (the job never modifies or removes a source) or available with a
verified copy, and nothing half-written ever carries a final name.

A source that is gone (3CX housekeeping) makes the recording ``missing``; a
source whose size or checksum differs from what was loaded is a failure: it is
reported and left pending, never published. Recordings marked missing by an
earlier run are looked for again, so a run against the wrong folder can be
undone by a run against the right one.

One run at a time: a second run finds ``archive/.archive.lock`` held and stops
with ``ArchiveBusy``.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock, Timeout
from tqdm import tqdm

from dimnb import model
from dimnb.audiofiles import sha256_file
from dimnb.errors import DimnbError
from dimnb.fsutil import fsync_path, unlink_quietly
from dimnb.ingest.staging import refresh_recording_counts
from dimnb.store.stores import Stores

INCOMING = ".incoming"
LOCK_FILE = ".archive.lock"
LAST_RUN_FILE = "last-run.json"

# Test hook: "step[:n],..." makes the job announce itself on stderr and sleep at the n-th time (default: first)
# it reaches a named step, so a test can SIGKILL it exactly there. Steps: copy (after a chunk of a copy), fsynced
# (a group of verified copies flushed, not yet renamed), renamed (in place and flushed, not yet published), publish
# (inside the generation being written, before it is published).
# DIMNB_ARCHIVE_TEST_STEP_DELAY=seconds sleeps at every step instead: slow motion, for kills at random times.
PAUSE_ENV = "DIMNB_ARCHIVE_TEST_PAUSE"
PAUSE_SECONDS_ENV = "DIMNB_ARCHIVE_TEST_PAUSE_SECONDS"
STEP_DELAY_ENV = "DIMNB_ARCHIVE_TEST_STEP_DELAY"
PAUSE_MARKER = "dimnb-archive-test-pause"
STEPS = ("copy", "fsynced", "renamed", "publish")

ARCHIVED = "archived"
ALREADY_ARCHIVED = "already_archived"
MISSING = "missing"
STILL_MISSING = "still_missing"
FAILED = "failed"

_CHUNK = 8 << 20
# At most this many recordings are copied and not yet flushed, renamed and handed back (see _Pipeline).
IN_FLIGHT = 48
_UNSAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._+()\[\]-]+")
_MAX_NAME = 160


class ArchiveBusy(DimnbError):
    """Another archive run holds the lock of this data directory."""


# ------------------------------------------------------------------------------------------ what to archive


@dataclass(frozen=True)
class Candidate:
    """A 3CX recording waiting for the archive (or marked missing by an earlier run)."""

    recording_id: int
    call_id: int
    state: str
    source_path: str
    source_relpath: str | None
    file_name: str
    started: datetime | None
    size_bytes: int | None
    checksum: str | None


def candidates(stores: Stores, *, before: datetime | None = None) -> list[Candidate]:
    """3CX recordings pending archive, and missing ones that had a checksum (their source may be back)."""
    params: dict[str, Any] = {}
    before_sql = ""
    if before is not None:
        before_sql = "AND coalesce(r.start_time, c.start_time) < $before"
        params["before"] = _utc(before)
    rows = stores.calls.cursor().execute(
        f"""
        SELECT r.recording_id, r.call_id, r.state, r.source_path, r.source_relpath, r.file_name,
               coalesce(r.start_time, c.start_time) AS started, r.size_bytes, r.checksum
        FROM recordings r JOIN calls c USING (call_id)
        WHERE r.system = '3cx'
          AND (r.state = '{model.PENDING_ARCHIVE}' OR (r.state = '{model.MISSING}' AND r.checksum IS NOT NULL))
          {before_sql}
        ORDER BY started NULLS LAST, r.recording_id
        """,
        params,
    ).fetchall()
    return [Candidate(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]


def archive_relpath(candidate: Candidate) -> str:
    """Where a recording lives inside the archive store: ``YYYY/MM/DD/<recording_id>-<file name>`` (UTC day)."""
    day = candidate.started.astimezone(timezone.utc).strftime("%Y/%m/%d") if candidate.started else "undated"
    name = _UNSAFE_NAME_RE.sub("_", candidate.file_name).strip("_") or "recording"
    if len(name) > _MAX_NAME:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[: _MAX_NAME - len(suffix) - 1] + dot + suffix) if dot and len(suffix) <= 8 else name[:_MAX_NAME]
    return f"{day}/{candidate.recording_id}-{name}"


def source_file(candidate: Candidate, source: Path | None) -> Path | None:
    """The file to copy: where it was loaded from, or the same relative path under ``source``."""
    if source is None:
        return Path(candidate.source_path)
    relative = candidate.source_relpath or _conventional_relpath(candidate.source_path)
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if not parts or parts[0] == "/" or any(p in ("..", "") for p in parts):
        return None  # the loaders never store such a path; refuse to leave --source all the same
    return source.joinpath(*parts)


def _conventional_relpath(source_path: str) -> str:
    # Recordings loaded before the loaders kept source_relpath: 3CX keeps them in <extension>/<file>.
    path = PurePosixPath(source_path.replace("\\", "/"))
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def source_folder(candidate: Candidate, source: Path | None) -> Path | None:
    """The recordings folder the source should be in, when it can be told (to tell "gone" from "not mounted")."""
    if source is not None:
        return source
    relative = candidate.source_relpath
    if not relative or not candidate.source_path.endswith(relative):
        return None
    root = candidate.source_path[: -len(relative)].rstrip("/")
    return Path(root) if root else None


# ------------------------------------------------------------------------------------------ the result


@dataclass
class Failure:
    recording_id: int
    path: str
    reason: str


@dataclass
class ArchiveSummary:
    """What one run did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    considered: int = 0
    archived: int = 0
    already_archived: int = 0
    missing: int = 0
    still_missing: int = 0
    failures: list[Failure] = field(default_factory=list)
    missing_paths: list[str] = field(default_factory=list)
    bytes_copied: int = 0
    seconds: float = 0.0
    generations: list[int] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self, *, limit: int = 20) -> list[str]:
        would = "would be " if self.dry_run else ""
        out = []
        for path in self.missing_paths[:limit]:
            out.append(f"source missing: {path}")
        if len(self.missing_paths) > limit:
            out.append(f"... and {len(self.missing_paths) - limit} more sources missing")
        for failure in self.failures[:limit]:
            out.append(f"FAILED recording {failure.recording_id}: {failure.reason} ({failure.path})")
        if len(self.failures) > limit:
            out.append(f"... and {len(self.failures) - limit} more failures")
        if not self.considered:
            out.append("no 3CX recording waits for the archive")
            return out
        mb = self.bytes_copied / 1e6
        out.append(
            f"{'dry run: ' if self.dry_run else ''}{self.archived} {would}archived ({mb:.1f} MB"
            f"{'' if self.dry_run else f' in {self.seconds:.1f} s'}), {self.already_archived} {would}already archived, "
            f"{self.missing} source missing, {self.failed} failed"
            + (f" ({self.still_missing} still missing from earlier runs)" if self.still_missing else "")
        )
        if self.generations:
            out.append(f"published in {len(self.generations)} call-store generation(s), last {self.generations[-1]}")
        if self.failures:
            out.append("failed recordings stay pending; fix the cause and run `dimnb archive` again")
        return out


@dataclass(frozen=True)
class _Outcome:
    candidate: Candidate
    kind: str
    path: str
    archive_path: str | None = None
    bytes_copied: int = 0
    reason: str = ""


# ------------------------------------------------------------------------------------------ the test hook


class _Pauses:
    """Reads the test hook once; pauses (sleeps) at the chosen occurrence of a step."""

    def __init__(self) -> None:
        self.wanted: dict[str, int] = {}
        for item in filter(None, (os.environ.get(PAUSE_ENV) or "").split(",")):
            step, _, nth = item.strip().partition(":")
            if step not in STEPS:
                raise ValueError(f"{PAUSE_ENV}: unknown step {step!r} (known: {', '.join(STEPS)})")
            self.wanted[step] = int(nth or 1)
        self.seconds = float(os.environ.get(PAUSE_SECONDS_ENV) or 60)
        self.step_delay = float(os.environ.get(STEP_DELAY_ENV) or 0)
        self.seen: dict[str, int] = {}

    def active(self, step: str) -> bool:
        return step in self.wanted or self.step_delay > 0

    def __call__(self, step: str, recording_id: int | None = None) -> None:
        if self.step_delay:
            time.sleep(self.step_delay)
        if step not in self.wanted:
            return
        self.seen[step] = self.seen.get(step, 0) + 1
        if self.seen[step] == self.wanted[step]:
            print(f"{PAUSE_MARKER} {step} {recording_id}", file=sys.stderr, flush=True)
            time.sleep(self.seconds)


# ------------------------------------------------------------------------------------------ file steps



def _ensure_dir(path: Path, root: Path, known: set[Path]) -> None:
    """Create ``path`` (under ``root``) and make each new directory entry durable."""
    if path in known:
        return
    missing = []
    current = path
    while current != root and not current.is_dir():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            pass
        fsync_path(directory.parent)
    known.add(path)



_COPY_FALLBACK_ERRNOS = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM}


def _copy_chunk(fd_in: int, fd_out: int, size: int) -> int:
    """Copy up to ``size`` bytes at the current offsets (in the kernel when it can); 0 at end of file."""
    global _use_copy_file_range
    if _use_copy_file_range:
        try:
            return os.copy_file_range(fd_in, fd_out, size)
        except OSError as exc:
            if exc.errno not in _COPY_FALLBACK_ERRNOS:
                raise
            _use_copy_file_range = False
    data = os.read(fd_in, size)
    view = memoryview(data)
    while view:
        view = view[os.write(fd_out, view):]
    return len(data)


_use_copy_file_range = hasattr(os, "copy_file_range")


def _copy(src: Path, partial: Path, pause: _Pauses, recording_id: int) -> int:
    """Copy ``src`` to the new file ``partial`` (not yet flushed); returns the bytes copied."""
    chunk = 64 << 10 if pause.active("copy") else _CHUNK  # small chunks only so a test can stop mid-copy
    fd_in = os.open(src, os.O_RDONLY)
    try:
        fd_out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            copied = 0
            while n := _copy_chunk(fd_in, fd_out, chunk):
                copied += n
                pause("copy", recording_id)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
    return copied





@dataclass
class _Job:
    """What every worker needs: where things go, and the choices of this run."""

    archive_root: Path
    incoming: Path
    source: Path | None
    dry_run: bool
    pause: _Pauses
    known_dirs: set[Path] = field(default_factory=set)
    reachable: dict[Path, bool] = field(default_factory=dict)

    def folder_reachable(self, folder: Path | None) -> bool:
        if folder is None:
            return True
        if folder not in self.reachable:
            self.reachable[folder] = folder.is_dir()
        return self.reachable[folder]


@dataclass(frozen=True)
class _Copied:
    """A verified copy in ``.incoming/`` waiting to be flushed and renamed into place."""

    candidate: Candidate
    source: Path
    partial: Path
    relative: str
    bytes_copied: int


def _outcome(candidate: Candidate, source: Path | None, kind: str, **kw: Any) -> _Outcome:
    return _Outcome(candidate, kind, str(source) if source else candidate.source_path, **kw)


def _start(job: _Job, candidate: Candidate) -> _Outcome | _Copied:
    """Decide what a recording needs; if a copy, make it in ``.incoming/`` and check its checksum (not flushed yet)."""
    src = source_file(candidate, job.source)
    if src is None:
        return _outcome(candidate, src, FAILED,
                        reason=f"its path {candidate.source_relpath!r} does not stay inside --source")
    if not candidate.checksum:
        return _outcome(candidate, src, FAILED,
                        reason="no checksum was recorded when it was loaded, so a copy cannot be verified")
    relative = archive_relpath(candidate)
    target = job.archive_root / relative
    partial = job.incoming / f"{candidate.recording_id}.partial"
    try:
        if target.is_file():
            # Only verified copies are ever renamed into place: an earlier run died before publishing it.
            if job.dry_run or sha256_file(target) == candidate.checksum:
                return _outcome(candidate, src, ALREADY_ARCHIVED, archive_path=relative)
        try:
            stat = src.stat()
        except FileNotFoundError:
            if candidate.state == model.MISSING:
                return _outcome(candidate, src, STILL_MISSING)
            if not job.folder_reachable(source_folder(candidate, job.source)):
                return _outcome(candidate, src, FAILED, reason="the recordings folder is not reachable (not mounted?)")
            return _outcome(candidate, src, MISSING)
        if candidate.size_bytes is not None and stat.st_size != candidate.size_bytes:
            return _outcome(candidate, src, FAILED, reason=f"the source changed since it was loaded "
                                                           f"({stat.st_size} bytes now, {candidate.size_bytes} then)")
        if job.dry_run:
            return _outcome(candidate, src, ARCHIVED, archive_path=relative, bytes_copied=stat.st_size)
        unlink_quietly(partial)
        copied = _copy(src, partial, job.pause, candidate.recording_id)
        if sha256_file(partial) != candidate.checksum:
            unlink_quietly(partial)
            if sha256_file(src) != candidate.checksum:
                reason = "the source changed since it was loaded (its checksum differs)"
            else:
                reason = "the copy did not verify (checksum differs after copying; disk or I/O error?)"
            return _outcome(candidate, src, FAILED, reason=reason)
        return _Copied(candidate, src, partial, relative, copied)
    except OSError as exc:
        unlink_quietly(partial)
        return _outcome(candidate, src, FAILED, reason=_os_reason(exc))


def _os_reason(exc: OSError) -> str:
    return f"{exc.strerror or exc} ({type(exc).__name__})"


def _flush(copied: _Copied) -> OSError | None:
    try:
        fsync_path(copied.partial)
        return None
    except OSError as exc:
        return exc


def _place(job: _Job, group: Sequence[_Copied], flush_pool: ThreadPoolExecutor) -> list[_Outcome]:
    """Flush a group of verified copies, rename them into place, flush their directories.

    Flushing many files together lets the file system share one journal commit
    among them; write, fsync, write, fsync... would pay a disk flush per file.
    """
    outcomes: list[_Outcome] = []
    flushed: list[_Copied] = []
    for copied, error in zip(group, flush_pool.map(_flush, group), strict=True):
        if error is None:
            flushed.append(copied)
        else:
            unlink_quietly(copied.partial)
            outcomes.append(_outcome(copied.candidate, copied.source, FAILED, reason=_os_reason(error)))
    if not flushed:
        return outcomes
    job.pause("fsynced", flushed[0].candidate.recording_id)
    placed: list[_Copied] = []
    for copied in flushed:
        target = job.archive_root / copied.relative
        try:
            _ensure_dir(target.parent, job.archive_root, job.known_dirs)
            os.replace(copied.partial, target)
            placed.append(copied)
        except OSError as exc:
            unlink_quietly(copied.partial)
            outcomes.append(_outcome(copied.candidate, copied.source, FAILED, reason=_os_reason(exc)))
    failed_dirs: dict[Path, OSError] = {}
    for directory in sorted({(job.archive_root / c.relative).parent for c in placed}):
        try:
            fsync_path(directory)
        except OSError as exc:  # the copies are in place and verified: the next run publishes them
            failed_dirs[directory] = exc
    for copied in placed:
        error = failed_dirs.get((job.archive_root / copied.relative).parent)
        outcomes.append(
            _outcome(copied.candidate, copied.source, FAILED, reason=_os_reason(error)) if error else
            _outcome(copied.candidate, copied.source, ARCHIVED, archive_path=copied.relative,
                     bytes_copied=copied.bytes_copied))
    if placed:
        job.pause("renamed", placed[0].candidate.recording_id)
    return outcomes


class _Pipeline:
    """Workers copy and verify; one flusher thread flushes, renames and hands back what has piled up meanwhile.

    So hashing (CPU) and flushing (disk) overlap, and each flush covers a
    group of files. Outcomes come back in completion order.
    """

    _STOP = object()

    def __init__(self, job: _Job, workers: int) -> None:
        self.job = job
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="archive-copy")
        self.flush_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="archive-fsync")
        self.to_flush: queue.Queue[Any] = queue.Queue()
        self.results: queue.Queue[Any] = queue.Queue()
        self.flusher = threading.Thread(target=self._flush_loop, name="archive-flush", daemon=True)
        self.flusher.start()

    def submit(self, candidate: Candidate) -> None:
        self.pool.submit(self._work, candidate)

    def _work(self, candidate: Candidate) -> None:
        try:
            started = _start(self.job, candidate)
        except BaseException as exc:  # a bug: re-raised by next_outcome in the main thread
            self.results.put(exc)
            return
        (self.to_flush if isinstance(started, _Copied) else self.results).put(started)

    def _flush_loop(self) -> None:
        while True:
            item = self.to_flush.get()
            if item is self._STOP:
                return
            group = [item]
            stop = False
            while len(group) < IN_FLIGHT:
                try:
                    more = self.to_flush.get_nowait()
                except queue.Empty:
                    break
                if more is self._STOP:
                    stop = True
                    break
                group.append(more)
            try:
                for outcome in _place(self.job, group, self.flush_pool):
                    self.results.put(outcome)
            except BaseException as exc:
                self.results.put(exc)
            if stop:
                return

    def next_outcome(self) -> _Outcome:
        item = self.results.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.to_flush.put(self._STOP)
        self.flusher.join()
        self.flush_pool.shutdown(wait=True)


def _prefetch(path: Path | None) -> None:
    """Ask the kernel to start reading a source we will copy soon (overlaps disk reads with hashing)."""
    if path is None or not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------ publishing


def _publish(stores: Stores, outcomes: Sequence[_Outcome], pause: _Pauses) -> int:
    """Publish a batch of outcomes (available / missing) in one new call-store generation."""
    ids = [o.candidate.recording_id for o in outcomes]
    states = [model.MISSING if o.kind == MISSING else model.AVAILABLE for o in outcomes]
    paths = [o.archive_path for o in outcomes]
    with stores.calls.write() as con:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE archive_batch AS
            SELECT unnest($ids::BIGINT[]) AS recording_id, unnest($states::VARCHAR[]) AS state,
                   unnest($paths::VARCHAR[]) AS archive_path
            """,
            {"ids": ids, "states": states, "paths": paths},
        )
        con.execute(
            f"""
            UPDATE recordings SET state = b.state, archive_path = b.archive_path, state_changed_at = now()
            FROM archive_batch b
            WHERE recordings.recording_id = b.recording_id
              AND recordings.state IN ('{model.PENDING_ARCHIVE}', '{model.MISSING}')
            """
        )
        refresh_recording_counts(
            con, "SELECT DISTINCT r.call_id FROM recordings r JOIN archive_batch b USING (recording_id)"
        )
        con.execute("DROP TABLE archive_batch")
        pause("publish", ids[0] if ids else None)
    generation = stores.calls.current_generation()
    assert generation is not None
    return generation


# ------------------------------------------------------------------------------------------ the run


def run(
    stores: Stores,
    *,
    source: Path | None = None,
    before: datetime | None = None,
    dry_run: bool = False,
    progress: bool = False,
    workers: int = 2,
    batch_size: int = 1000,
    batch_seconds: float = 60.0,
) -> ArchiveSummary:
    """Archive the pending 3CX recordings of a data directory; see the module docstring.

    ``source`` replaces the 3CX recordings folder the files were loaded from;
    ``before`` limits the run to recordings that started earlier (naive = UTC).
    A batch of results is published every ``batch_size`` recordings or
    ``batch_seconds``, whichever comes first. Raises ``ArchiveBusy`` when
    another run holds the lock.
    """
    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    archive_root = stores.data.archive_dir
    archive_root.mkdir(parents=True, exist_ok=True)
    job = _Job(archive_root, archive_root / INCOMING, Path(source) if source else None, dry_run, _Pauses())
    summary = ArchiveSummary(dry_run=dry_run)
    lock = FileLock(str(archive_root / LOCK_FILE))
    if not dry_run:
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise ArchiveBusy(
                f"another `dimnb archive` is already running on {stores.data.root} "
                f"(it holds {archive_root / LOCK_FILE}); this run did nothing"
            ) from exc
    try:
        if not dry_run:
            _clear_incoming(job.incoming)
            _clear_stale_last_run(archive_root)
        todo = candidates(stores, before=before)
        summary.considered = len(todo)
        total_bytes = sum(c.size_bytes or 0 for c in todo)
        with tqdm(total=total_bytes, desc="archiving", unit="B", unit_scale=True, unit_divisor=1024,
                  disable=not progress or not todo, file=sys.stderr) as bar:
            batch: list[_Outcome] = []
            last_publish = time.monotonic()

            def publish() -> None:
                nonlocal batch, last_publish
                if batch and not dry_run:
                    summary.generations.append(_publish(stores, batch, job.pause))
                batch, last_publish = [], time.monotonic()

            for result in _each_outcome(job, todo, workers):
                _count(summary, result)
                if result.kind in (ARCHIVED, ALREADY_ARCHIVED, MISSING):
                    batch.append(result)
                bar.update(result.candidate.size_bytes or 0)
                bar.set_postfix(archived=summary.archived + summary.already_archived, missing=summary.missing,
                                failed=summary.failed, refresh=False)
                if len(batch) >= batch_size or time.monotonic() - last_publish >= batch_seconds:
                    publish()
            publish()
        summary.seconds = time.monotonic() - started
        if not dry_run:
            _write_last_run(archive_root, started_at, summary)
        return summary
    finally:
        if lock.is_locked:
            lock.release()


def _each_outcome(job: _Job, todo: Sequence[Candidate], workers: int) -> Iterator[_Outcome]:
    """Archive the candidates through the pipeline, at most IN_FLIGHT at a time, prefetching their sources."""
    if not todo:
        return
    pipeline = _Pipeline(job, workers)
    try:
        submitted = 0
        for returned in range(len(todo)):
            while submitted < len(todo) and submitted - returned < IN_FLIGHT:
                if not job.dry_run:
                    _prefetch(source_file(todo[submitted], job.source))
                pipeline.submit(todo[submitted])
                submitted += 1
            yield pipeline.next_outcome()
    finally:
        pipeline.close()


def _count(summary: ArchiveSummary, result: _Outcome) -> None:
    if result.kind == ARCHIVED:
        summary.archived += 1
        summary.bytes_copied += result.bytes_copied
    elif result.kind == ALREADY_ARCHIVED:
        summary.already_archived += 1
    elif result.kind == MISSING:
        summary.missing += 1
        summary.missing_paths.append(result.path)
    elif result.kind == STILL_MISSING:
        summary.still_missing += 1
    else:
        summary.failures.append(Failure(result.candidate.recording_id, result.path, result.reason))


def _clear_incoming(incoming: Path) -> None:
    """Remove partial copies left by a run that died (we hold the lock, so none is being written)."""
    incoming.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(incoming):
        if entry.is_file(follow_symlinks=False):
            unlink_quietly(Path(entry.path))


def _last_run_tmp(archive_root: Path, pid: int) -> Path:
    return archive_root / f".{LAST_RUN_FILE}.{pid}.tmp"


def _clear_stale_last_run(archive_root: Path) -> None:
    """Remove summaries a killed run was writing (we hold the lock, so no other run is writing one)."""
    for stale in archive_root.glob(f".{LAST_RUN_FILE}.*.tmp"):
        unlink_quietly(stale)


def _write_last_run(archive_root: Path, started_at: datetime, summary: ArchiveSummary) -> None:
    record = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "considered": summary.considered,
        "archived": summary.archived,
        "already_archived": summary.already_archived,
        "missing": summary.missing,
        "still_missing": summary.still_missing,
        "failed": summary.failed,
        "failures": [asdict(f) for f in summary.failures[:100]],
        "bytes_copied": summary.bytes_copied,
        "seconds": round(summary.seconds, 3),
        "generations": summary.generations,
    }
    tmp = _last_run_tmp(archive_root, os.getpid())
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, archive_root / LAST_RUN_FILE)


def last_run(stores: Stores) -> dict[str, Any] | None:
    """The summary of the last finished run (``archive/last-run.json``), or None if none finished yet."""
    try:
        return json.loads((stores.data.archive_dir / LAST_RUN_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def parse_before(text: str) -> datetime:
    """``--before``: an ISO date or date-time; without an offset it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        from dimnb.errors import InvalidInput

        raise InvalidInput(
            f"--before {text!r}: expected an ISO date or date-time such as 2026-11-19 or 2026-11-19T02:00+01:00",
            field="before",
        ) from exc
    return _utc(value)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

