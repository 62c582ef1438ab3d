"""Server-side login sessions: the cookie names a session; the state store decides whether it is still open.

A session ends when its user signs out (at once: a copied cookie stops
working), after ``idle_seconds`` without a request, ``lifetime_seconds`` after
sign-in, when the user is deactivated or their password changes. Only a hash
of the session token is stored, so a copy of the state store opens nobody's
session.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from dimnb.store import directory_repo
from dimnb.store.statestore import StateStore


@dataclass(frozen=True)
class SessionPolicy:
    idle_seconds: float = 30 * 60
    lifetime_seconds: float = 12 * 3600

    @property
    def touch_every(self) -> float:
        """How stale ``last_seen`` may get before a request writes it (not one write per Range chunk)."""
        return min(60.0, self.idle_seconds / 4)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(state: StateStore, login: str, *, client: str | None, policy: SessionPolicy,
                 now: float | None = None) -> str:
    """A new session for ``login``; returns the token the cookie carries. Long-dead sessions are swept."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    with state.transaction() as con:
        changed = directory_repo.password_changed_at(con, login)
        con.execute(
            "INSERT INTO web_sessions (token_hash, login, created_at, last_seen, password_changed_at, client) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (_hash(token), login, now, now, changed, (client or "")[:128]),
        )
        con.execute("DELETE FROM web_sessions WHERE created_at < ?", (now - max(policy.lifetime_seconds, 86400) * 2,))
    return token


def resolve(state: StateStore, token: str, policy: SessionPolicy, now: float | None = None, *,
            touch: bool = True) -> str | None:
    """The login of an open session (and note this request unless ``touch`` is false), or None: unknown, signed
    out, idle, too old, user deactivated or password changed since."""
    if not isinstance(token, str) or not 16 <= len(token) <= 128:
        return None
    now = time.time() if now is None else now
    con = state.connection()
    row = con.execute(
        "SELECT s.login, s.created_at, s.last_seen, s.revoked_at, s.password_changed_at AS fingerprint, "
        "u.password_changed_at, u.active FROM web_sessions s JOIN users u ON u.login = s.login "
        "WHERE s.token_hash = ?", (_hash(token),)
    ).fetchone()
    if row is None or row["revoked_at"] is not None or not row["active"]:
        return None
    if (row["fingerprint"] or "") != (row["password_changed_at"] or ""):
        return None
    if now - row["created_at"] > policy.lifetime_seconds or now - row["last_seen"] > policy.idle_seconds:
        return None
    if touch and now - row["last_seen"] >= policy.touch_every:
        with state.transaction() as tx:
            tx.execute("UPDATE web_sessions SET last_seen = max(last_seen, ?) WHERE token_hash = ?",
                       (now, _hash(token)))
    return str(row["login"])


def revoke(state: StateStore, token: str, now: float | None = None) -> bool:
    """Close a session (sign-out); True when an open one was closed."""
    if not isinstance(token, str):
        return False
    now = time.time() if now is None else now
    with state.transaction() as con:
        cur = con.execute("UPDATE web_sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                          (now, _hash(token)))
    return cur.rowcount > 0
