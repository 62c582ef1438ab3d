"""A crash-safe spool of text lines received from a live feed, kept as numbered CSV segment files.

Lines are appended to the open segment (``seg-000007.open``) and flushed to
disk (``fsync``) before anyone is told they arrived. A segment is closed by
renaming it to ``seg-000007.csv`` (the rename flushed too); closed segments
are what a loader reads, in number order. Which of them were loaded is one
number, the last segment loaded, in the file ``loaded`` (replaced
atomically) — a hint, not the truth: the call store records every file it
loaded with its content hash, so loading a segment again after a crash adds
nothing.

Every segment starts with a header line naming the feed's columns, so a
segment is a CSV file any loader (and ``dimnb load``) reads by itself.

After a kill the open segment may end in a line cut half-way by a disk
write that did not finish (a power cut, not SIGKILL: a write the kernel
accepted survives the process). Opening the spool cuts such a tail off and
closes the segment; the lines before it were the ones flushed.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from pathlib import Path

from dimnb.errors import DimnbError
from dimnb.fsutil import fsync_path, replaced_atomically

_SEGMENT_RE = re.compile(r"^seg-(\d{6,})\.(open|csv)$")
LOADED_FILE = "loaded"
LOCK_FILE = ".lock"


class SpoolBusy(DimnbError):
    """Another process holds this spool (a second listener on the same data directory and feed)."""


def segment_name(number: int, closed: bool) -> str:
    return f"seg-{number:06d}.{'csv' if closed else 'open'}"


class Spool:
    """Segments in ``directory``; one process at a time (a lock file), appends from any thread."""

    def __init__(self, directory: Path, header: str) -> None:
        self.directory = Path(directory)
        self.header = header.rstrip("\r\n") + "\n"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolBusy(f"another process is spooling into {self.directory} (one listener per feed)") from None
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._number = 0
        self.open_lines = 0
        self._recover()

    # ------------------------------------------------------------------ state on disk
    def _segments(self) -> list[tuple[int, bool]]:
        found = []
        for entry in os.listdir(self.directory):
            match = _SEGMENT_RE.match(entry)
            if match:
                found.append((int(match.group(1)), match.group(2) == "csv"))
        return sorted(found)

    def _path(self, number: int, closed: bool) -> Path:
        return self.directory / segment_name(number, closed)

    def _recover(self) -> None:
        """Close what a killed process left open (cut at its last whole line) and start a new open segment."""
        # Never reuse a number recorded as loaded, even if its segment files were deleted since.
        self._number = self.loaded_up_to()
        for number, closed in self._segments():
            self._number = max(self._number, number)
            if not closed:
                self._close_leftover(number)
        self._start_segment()

    def _close_leftover(self, number: int) -> None:
        path = self._path(number, closed=False)
        data = path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) != len(data):
            with open(path, "r+b") as handle:
                handle.truncate(len(whole))
                handle.flush()
                os.fsync(handle.fileno())
        if whole.count(b"\n") <= 1:  # the header alone (or less): nothing arrived
            path.unlink()
        else:
            os.replace(path, self._path(number, closed=True))
        fsync_path(self.directory)

    def _start_segment(self) -> None:
        self._number += 1
        path = self._path(self._number, closed=False)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        os.write(fd, self.header.encode())
        os.fsync(fd)
        fsync_path(self.directory)
        self._fd, self.open_lines = fd, 0

    # ------------------------------------------------------------------ writing
    def append(self, lines: list[bytes]) -> None:
        """Write whole lines (each ending in ``\\n``) to the open segment and flush them to disk."""
        if not lines:
            return
        data = b"".join(lines)
        with self._mutex:
            assert self._fd is not None, "the spool is closed"
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
            self.open_lines += len(lines)

    def rotate(self) -> Path | None:
        """Close the open segment if it holds lines (returns its closed path) and open the next one."""
        with self._mutex:
            if self._fd is None or self.open_lines == 0:
                return None
            number = self._number
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            closed = self._path(number, closed=True)
            os.replace(self._path(number, closed=False), closed)
            fsync_path(self.directory)
            self._start_segment()
            return closed

    def close(self) -> None:
        """Close the open segment for good (an empty one is removed) and release the spool."""
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                path = self._path(self._number, closed=False)
                if self.open_lines == 0:
                    path.unlink(missing_ok=True)
                    fsync_path(self.directory)
        os.close(self._lock_fd)

    # ------------------------------------------------------------------ loading
    def loaded_up_to(self) -> int:
        try:
            return int((self.directory / LOADED_FILE).read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def unloaded(self) -> list[Path]:
        """Closed segments after the last one recorded as loaded, oldest first."""
        mark = self.loaded_up_to()
        return [self._path(n, True) for n, closed in self._segments() if closed and n > mark]

    def mark_loaded(self, segment: Path) -> None:
        """Record that ``segment`` and every segment before it are in the call store."""
        match = _SEGMENT_RE.match(segment.name)
        assert match, segment
        with replaced_atomically(self.directory / LOADED_FILE, "w") as handle:
            handle.write(f"{int(match.group(1))}\n")
