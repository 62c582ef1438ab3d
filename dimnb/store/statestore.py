"""The state store: SQLite in WAL mode, for small transactional data that must take effect at once.

Users, extensions and group memberships (with effective dates), playback
grants, password hashes, saved filters and the audit log. Many processes
(dashboard kernels, the audio server, the CLI) read and write it; every read
sees the last committed state, so a revoked grant is honoured by the next
request.

With ``$DIMNB_STATE_URL`` (``dimnb --state postgresql://…``) the same store
runs on PostgreSQL instead (``dimnb.store.state_postgres``), so several
``dimnb serve`` nodes share it; ``open_state_store`` picks the back end.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from dimnb.store.state_postgres import PostgresStateStore

SCHEMA_VERSION = 4
STATE_URL_ENV = "DIMNB_STATE_URL"

_V1 = """
CREATE TABLE users (
    login TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,
    report_scope TEXT NOT NULL DEFAULT 'own'
        CHECK (report_scope IN ('own', 'primary_group', 'member_groups', 'all')),
    playback TEXT NOT NULL DEFAULT 'none'
        CHECK (playback IN ('none', 'own', 'primary_group', 'member_groups', 'all')),
    roles TEXT NOT NULL DEFAULT '',          -- comma-separated: auditor, admin
    timezone TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    password_hash TEXT,
    password_changed_at TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE groups (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 1
);

-- valid_from inclusive, valid_to exclusive, ISO-8601 UTC; NULL means open-ended.
CREATE TABLE extensions (
    extension TEXT NOT NULL,
    login TEXT NOT NULL REFERENCES users(login),
    valid_from TEXT,
    valid_to TEXT
);
CREATE INDEX extensions_by_login ON extensions(login);

CREATE TABLE memberships (
    login TEXT NOT NULL REFERENCES users(login),
    group_name TEXT NOT NULL REFERENCES groups(name),
    is_primary INTEGER NOT NULL DEFAULT 0,
    valid_from TEXT,
    valid_to TEXT
);
CREATE INDEX memberships_by_login ON memberships(login);

CREATE TABLE directory_imports (
    id INTEGER PRIMARY KEY,
    imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    summary TEXT NOT NULL
);

CREATE TABLE saved_filters (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    filters TEXT NOT NULL,                  -- JSON
    shared_group TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (owner, name)
);

CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    login TEXT,
    kind TEXT NOT NULL,                     -- play / download / denied
    recording_id INTEGER,
    call_id INTEGER,
    rule TEXT,
    client TEXT,
    user_agent TEXT,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
"""

# v2 (dimnb.audit): the play token that makes a play start count once however many Range requests it
# takes, and indexes that keep the hash chain linear (one successor per event) and periods fast.
_V2 = """
ALTER TABLE audit_events ADD COLUMN play_id TEXT;
CREATE UNIQUE INDEX audit_events_chain ON audit_events(prev_hash);
CREATE UNIQUE INDEX audit_events_hash ON audit_events(hash);
CREATE UNIQUE INDEX audit_events_once_per_play ON audit_events(login, recording_id, play_id, kind)
    WHERE play_id IS NOT NULL;
CREATE INDEX audit_events_by_ts ON audit_events(ts);
CREATE TRIGGER audit_events_kind BEFORE INSERT ON audit_events
    WHEN NEW.kind NOT IN ('play', 'download', 'denied')
BEGIN SELECT RAISE(ABORT, 'an audit event is a play, a download or a denied attempt'); END;
"""

# v3 (dimnb.audit, dimnb.server.identity): a play token counts again once it has served a whole file or grown
# old, so the once-per-token rule moves from a unique index to ``play_tokens``; server-side login sessions that
# logout, idle time and lifetime end (the cookie names a session; only the token's hash is stored).
_V3 = """
DROP INDEX audit_events_once_per_play;
CREATE INDEX audit_events_by_play ON audit_events(login, recording_id, play_id, kind) WHERE play_id IS NOT NULL;
CREATE TABLE play_tokens (
    login TEXT NOT NULL,
    recording_id INTEGER NOT NULL,
    play_id TEXT NOT NULL,
    counted_at REAL NOT NULL,               -- unix seconds of the play event that counts it
    bytes_served INTEGER NOT NULL DEFAULT 0, -- since then
    PRIMARY KEY (login, recording_id, play_id)
);
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,            -- sha256 of the cookie's session token
    login TEXT NOT NULL,
    created_at REAL NOT NULL,               -- unix seconds
    last_seen REAL NOT NULL,
    password_changed_at TEXT,
    client TEXT,
    revoked_at REAL
);
CREATE INDEX web_sessions_by_login ON web_sessions(login);
"""

# v4 (dimnb.server.lockout): failed sign-ins per account in the state store, so that with several
# `dimnb serve` nodes on one state store an account locked through one node is locked on all of them.
_V4 = """
CREATE TABLE sign_in_failures (
    login TEXT PRIMARY KEY,                 -- as typed (known or not: a lock says nothing about existence)
    failures INTEGER NOT NULL DEFAULT 0,    -- in a row since the last lock
    locks INTEGER NOT NULL DEFAULT 0,       -- locks so far (each doubles the next)
    locked_until REAL NOT NULL DEFAULT 0,   -- unix seconds
    last_failure REAL NOT NULL DEFAULT 0
);
"""

MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3, 4: _V4}


class StateStore:
    """Connections to the state store, one per thread, in autocommit mode.

    Writes go through ``transaction()`` (``BEGIN IMMEDIATE``), so concurrent
    writers queue on SQLite's lock (up to ``busy_timeout``) instead of failing.
    """

    dialect = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()

    def exists(self) -> bool:
        return self.path.exists()

    def connection(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = FULL")
            con.execute("PRAGMA foreign_keys = ON")
            self._local.con = con
        return con

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        con = self.connection()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def schema_version(self) -> int:
        return int(self.connection().execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> int:
        """Bring the store to ``SCHEMA_VERSION``; returns the version found."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as con:
            found = int(con.execute("PRAGMA user_version").fetchone()[0])
            if found > SCHEMA_VERSION:
                raise RuntimeError(
                    f"this state store has schema version {found}, newer than this dimnb ({SCHEMA_VERSION})"
                )
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in _split_statements(MIGRATIONS[version]):
                    con.execute(statement)
                con.execute(f"PRAGMA user_version = {version}")
        return found

    @contextmanager
    def calls_writer(self, *, timeout: float = 600.0) -> Iterator[None]:
        """An embedded store serves one machine: the call store's own file lock is the whole writer rule."""
        yield

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


AnyStateStore = Union[StateStore, "PostgresStateStore"]


def open_state_store(path: Path, url: str | None = None) -> AnyStateStore:
    """The state store of a data directory: PostgreSQL when a URL is given (or ``$DIMNB_STATE_URL``), else the
    SQLite file at ``path``."""
    from dimnb.store.state_postgres import PostgresStateStore, is_postgres_url

    url = url if url is not None else os.environ.get(STATE_URL_ENV)
    if url:
        if not is_postgres_url(url):
            from dimnb.errors import InvalidInput

            raise InvalidInput(f"--state (${STATE_URL_ENV}) must be a postgresql:// URL, not a {url.split(':')[0]!r} "
                               "one", field="state")
        return PostgresStateStore(url, path)
    return StateStore(path)


def _split_statements(script: str) -> list[str]:
    """Split a migration script into statements (``executescript`` would commit our transaction)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
