"""Signed checkpoints of the audit chain, written outside the data directory.

The hash chain (``dimnb.audit``) shows any change *inside* the trail, but
someone who can write the data directory can also delete its newest events or
recompute every hash after a change, and the chain still looks whole. So the
chain head (``seq``, ``hash``) is signed with HMAC-SHA256 under a key that is
kept outside the data directory, and appended as one JSON line to a
checkpoint file outside it too (and to syslog/journald when ``/dev/log``
exists): every ``EVERY`` events, and when the last checkpoint is an hour old.
``verify`` then checks the chain against the newest checkpoint: events removed
from the end, a chain recomputed after a change, or a key that is not the one
the checkpoints were signed with are all named.

Where they live (each overridable by an option or an environment variable):

- the key: ``$DIMNB_AUDIT_KEY``, else ``<data>.audit-key`` next to the data
  directory (created by ``dimnb init`` with mode 0600);
- the checkpoints: ``$DIMNB_AUDIT_CHECKPOINTS``, else
  ``<data>.audit-checkpoints.jsonl`` next to the data directory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import logging.handlers
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

log = logging.getLogger("dimnb.audit")

KEY_ENV: Final = "DIMNB_AUDIT_KEY"
CHECKPOINTS_ENV: Final = "DIMNB_AUDIT_CHECKPOINTS"
EVERY_ENV: Final = "DIMNB_AUDIT_CHECKPOINT_EVERY"
DEFAULT_EVERY: Final = 20
MAX_AGE_SECONDS: Final = 3600
SYSLOG_SOCKET: Final = "/dev/log"
_VERSION: Final = 1
_KEY_BYTES: Final = 32


def key_path(data_root: Path, option: str | os.PathLike[str] | None = None) -> Path:
    """The signing key: ``option``, else ``$DIMNB_AUDIT_KEY``, else ``<data>.audit-key`` beside the data dir."""
    chosen = option or os.environ.get(KEY_ENV)
    return Path(chosen).expanduser().resolve() if chosen else _beside(data_root, ".audit-key")


def checkpoints_path(data_root: Path, option: str | os.PathLike[str] | None = None) -> Path:
    """The checkpoint file: ``option``, else ``$DIMNB_AUDIT_CHECKPOINTS``, else beside the data directory."""
    chosen = option or os.environ.get(CHECKPOINTS_ENV)
    return Path(chosen).expanduser().resolve() if chosen else _beside(data_root, ".audit-checkpoints.jsonl")


def _beside(data_root: Path, suffix: str) -> Path:
    root = Path(data_root).resolve()
    return root.with_name(root.name + suffix)


def _every() -> int:
    try:
        return max(1, int(os.environ.get(EVERY_ENV, DEFAULT_EVERY)))
    except ValueError:
        return DEFAULT_EVERY


# ------------------------------------------------------------------------------------------ the key


def create_key(path: Path) -> bool:
    """Create a new random key (mode 0600) unless one is there; True when it was created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(_KEY_BYTES) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def read_key(path: Path) -> bytes | None:
    """The key's bytes, or None when there is no (usable) key file."""
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        return None
    return key if len(key) >= 16 else None


def key_id(key: bytes) -> str:
    """A public name for a key (which key signed a checkpoint), not the key."""
    return hashlib.sha256(b"dimnb-audit-key-id:" + key).hexdigest()[:16]


def _mac(key: bytes, seq: int, digest: str, ts: str) -> str:
    message = f"dimnb-audit-checkpoint:v{_VERSION}:{seq}:{digest}:{ts}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------------------ writing


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    ts: str
    key_id: str
    mac: str

    def line(self) -> str:
        return json.dumps({"v": _VERSION, "seq": self.seq, "hash": self.hash, "ts": self.ts, "key_id": self.key_id,
                           "mac": self.mac}, sort_keys=True, separators=(",", ":"))


def sign(key: bytes, seq: int, digest: str, at: datetime | None = None) -> Checkpoint:
    ts = (at or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
    return Checkpoint(seq, digest, ts, key_id(key), _mac(key, seq, digest, ts))


def append(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line (O_APPEND: concurrent writers never interleave a line) and flush it to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (checkpoint.line() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    _to_syslog(checkpoint)


_syslog_lock = threading.Lock()
_syslog: logging.Logger | None = None


def _to_syslog(checkpoint: Checkpoint) -> None:
    """A second copy where the data directory's owner usually cannot rewrite it (journald/syslog)."""
    global _syslog
    if not os.path.exists(SYSLOG_SOCKET):
        return
    with _syslog_lock:
        if _syslog is None:
            logger = logging.getLogger("dimnb.audit.syslog")
            logger.propagate = False
            logger.setLevel(logging.INFO)
            try:
                handler = logging.handlers.SysLogHandler(address=SYSLOG_SOCKET,
                                                         facility=logging.handlers.SysLogHandler.LOG_AUTH)
            except OSError:
                return
            handler.setFormatter(logging.Formatter("dimnb-audit: %(message)s"))
            logger.addHandler(handler)
            _syslog = logger
    _syslog.info("checkpoint %s", checkpoint.line())


# When this process last wrote (or found) a checkpoint, per checkpoint file: the hourly rule without a read per event.
_last_written: dict[Path, float] = {}
_warned: set[Path] = set()


def maybe_checkpoint(data_root: Path, seq: int, digest: str) -> Checkpoint | None:
    """After appending event ``seq``: write a checkpoint if ``EVERY`` events or an hour have passed.

    Never raises: a missing key is logged once per process (the trail itself
    is already written; ``dimnb audit verify`` reports unsigned heads).
    """
    path = checkpoints_path(data_root)
    now = time.time()
    if path not in _last_written:
        last = latest_line(path)
        _last_written[path] = float(last.get("_written", 0)) if last else 0.0
    due = seq % _every() == 0 or now - _last_written[path] >= MAX_AGE_SECONDS
    if not due:
        return None
    return write_checkpoint(data_root, seq, digest, quiet=True)


def write_checkpoint(data_root: Path, seq: int, digest: str, *, quiet: bool = False,
                     key_file: Path | None = None, checkpoints_file: Path | None = None) -> Checkpoint | None:
    """Sign ``seq:digest`` and append it; None (logged) when there is no key."""
    kpath = key_file or key_path(data_root)
    path = checkpoints_file or checkpoints_path(data_root)
    key = read_key(kpath)
    if key is None:
        if kpath not in _warned or not quiet:
            log.warning("dimnb audit: no checkpoint key at %s; the audit trail is not checkpointed "
                        "(run `dimnb init` or pass --audit-key)", kpath)
            _warned.add(kpath)
        return None
    checkpoint = sign(key, seq, digest)
    try:
        append(path, checkpoint)
    except OSError:
        log.exception("dimnb audit: could not write a checkpoint to %s", path)
        return None
    _last_written[path] = time.time()
    return checkpoint


def latest_line(path: Path) -> dict[str, Any] | None:
    """The last well-formed line of a checkpoint file (read from its end), with its file time as ``_written``."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            tail = handle.read().decode("utf-8", errors="replace").splitlines()
            written = os.fstat(handle.fileno()).st_mtime
    except FileNotFoundError:
        return None
    for line in reversed(tail):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return {**record, "_written": written}
    return None


# ------------------------------------------------------------------------------------------ checking


@dataclass(frozen=True)
class CheckpointCheck:
    ok: bool
    checkpoints: int
    latest: Checkpoint | None
    problem: str | None = None

    def __str__(self) -> str:
        if not self.ok:
            return f"audit checkpoints: {self.problem}"
        if self.latest is None:
            return "no signed checkpoint yet"
        return f"matches signed checkpoint {self.latest.seq} of {self.latest.ts} ({self.checkpoints} checkpoints)"


def read_checkpoints(path: Path) -> list[dict[str, Any]] | None:
    """Every line of a checkpoint file (None when there is no file); unreadable lines as ``{"_bad": n}``."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    lines: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        lines.append(record if isinstance(record, dict) else {"_bad": number})
    return lines


def check(records: Iterable[Mapping[str, Any]] | None, key: bytes | None,
          hash_at: Mapping[int, str], chain_end: int) -> CheckpointCheck:
    """Check signed checkpoints against the chain: ``hash_at`` maps each checkpoint's seq to the chain's hash there.

    Every checkpoint must carry this key's id and a valid signature, and the
    chain must still reach it with the same hash.
    """
    if key is None:
        return CheckpointCheck(False, 0, None, "no checkpoint key (pass --audit-key or set $DIMNB_AUDIT_KEY)")
    if records is None:
        return CheckpointCheck(True, 0, None)
    own_id = key_id(key)
    count, latest = 0, None
    for record in records:
        if "_bad" in record:
            return CheckpointCheck(False, count, latest, f"line {record['_bad']} of the checkpoint file is not a "
                                                         "checkpoint (the file was edited)")
        try:
            cp = Checkpoint(int(record["seq"]), str(record["hash"]), str(record["ts"]), str(record["key_id"]),
                            str(record["mac"]))
        except (KeyError, TypeError, ValueError):
            return CheckpointCheck(False, count, latest, "a checkpoint line lacks a field (the file was edited)")
        if cp.key_id != own_id:
            return CheckpointCheck(False, count, latest, f"checkpoint {cp.seq} was signed with another key "
                                                         f"({cp.key_id}, this key is {own_id}): the key was replaced")
        if not hmac.compare_digest(cp.mac, _mac(key, cp.seq, cp.hash, cp.ts)):
            return CheckpointCheck(False, count, latest, f"checkpoint {cp.seq} does not carry a valid signature "
                                                         "(forged, or the key was replaced)")
        count += 1
        latest = cp if latest is None or cp.seq >= latest.seq else latest
        if cp.seq > chain_end:
            return CheckpointCheck(False, count, latest, f"the chain ends at event {chain_end}, but event {cp.seq} "
                                                         f"was signed on {cp.ts}: events were removed from the end")
        if hash_at.get(cp.seq) != cp.hash:
            return CheckpointCheck(False, count, latest, f"event {cp.seq} differs from the one signed on {cp.ts}: "
                                                         "the chain was rewritten and its hashes recomputed")
    return CheckpointCheck(True, count, latest)
