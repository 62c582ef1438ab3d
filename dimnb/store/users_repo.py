"""The users table's one home: every statement that reads or changes a user row goes through here.

Callers (access, reports, sessions, the audit report, the sign-in handler,
the CLI) ask for what they need by name; the SQL is written once, in the
spelling both state-store back ends run (``dimnb.store.state_postgres``
translates it for PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dimnb.store.statestore import StateStore

_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
# The users as ``dimnb export parquet`` writes them: no credentials.
EXPORT_STATEMENT = "SELECT login, name, report_scope, playback, roles, timezone, active FROM users ORDER BY login"


def active_count(state: StateStore) -> int:
    return int(state.connection().execute("SELECT count(*) FROM users WHERE active = 1").fetchone()[0])


def listing(state: StateStore) -> list[Any]:
    """Every user (active or not) with scopes, roles and whether a password is set, by login."""
    return state.connection().execute(
        "SELECT login, name, report_scope, playback, roles, active, password_hash IS NOT NULL AS has_password "
        "FROM users ORDER BY login"
    ).fetchall()


def names(state: StateStore, logins: Iterable[str] | None = None) -> dict[str, str]:
    """Display names by login: of ``logins``, or of everyone when None."""
    if logins is None:
        return {r["login"]: r["name"] for r in state.connection().execute("SELECT login, name FROM users")}
    wanted = sorted(set(logins))
    if not wanted:
        return {}
    marks = ",".join("?" for _ in wanted)
    rows = state.connection().execute(f"SELECT login, name FROM users WHERE login IN ({marks})", wanted).fetchall()
    return {r[0]: r[1] for r in rows}


def by_login_any_case(state: StateStore, login: str) -> Any:
    """(login, active) of the user whose login matches case-insensitively, or None."""
    return state.connection().execute("SELECT login, active FROM users WHERE lower(login) = ?",
                                      (login.lower(),)).fetchone()


def active_account(state: StateStore, login: str) -> Any:
    """(login, name, password_hash, password_changed_at) of an active user, or None (sign-in)."""
    return state.connection().execute(
        "SELECT login, name, password_hash, password_changed_at FROM users WHERE login = ? AND active = 1", (login,)
    ).fetchone()


def active_grants(state: StateStore, login: str) -> Any:
    """(login, name, report_scope, playback, roles, timezone) of an active user, or None."""
    return state.connection().execute(
        "SELECT login, name, report_scope, playback, roles, timezone FROM users WHERE login = ? AND active = 1",
        (login,),
    ).fetchone()


def current_memberships(state: StateStore, login: str, now: str) -> list[Any]:
    """(group_name, is_primary) of the active groups ``login`` belongs to at ``now`` (ISO UTC)."""
    return state.connection().execute(
        "SELECT group_name, is_primary FROM memberships m JOIN groups g ON g.name = m.group_name "
        "WHERE m.login = ? AND g.active = 1 AND (m.valid_from IS NULL OR m.valid_from <= ?) "
        "AND (m.valid_to IS NULL OR ? < m.valid_to) ORDER BY group_name",
        (login, now, now),
    ).fetchall()


def password_changed_at(con: Any, login: str) -> str | None:
    """When ``login``'s password last changed (None: never set, or no such user), inside the caller's transaction."""
    row = con.execute("SELECT password_changed_at FROM users WHERE login = ?", (login,)).fetchone()
    return row[0] if row else None


def set_password_hash(state: StateStore, login: str, hashed: str) -> bool:
    """Store a new password hash (and when it changed: that ends the user's sign-in sessions); False if no user."""
    with state.transaction() as con:
        cur = con.execute(f"UPDATE users SET password_hash = ?, password_changed_at = {_NOW} WHERE login = ?",
                          (hashed, login))
        return cur.rowcount > 0


def set_grants(state: StateStore, login: str, *, playback: str | None, report_scope: str | None) -> bool:
    """Change either grant (None keeps it); False if no user has ``login``."""
    with state.transaction() as con:
        row = con.execute("SELECT playback, report_scope FROM users WHERE login = ?", (login,)).fetchone()
        if row is None:
            return False
        con.execute(f"UPDATE users SET playback = ?, report_scope = ?, updated_at = {_NOW} WHERE login = ?",
                    (playback or row["playback"], report_scope or row["report_scope"], login))
        return True


# ---------------------------------------------------------------------------- the directory import (in its transaction)


def logins(con: Any) -> set[str]:
    """Every login in the table, active or not."""
    return {r[0] for r in con.execute("SELECT login FROM users").fetchall()}


def upsert(con: Any, *, login: str, name: str, email: str | None, report_scope: str, playback: str, roles: str,
           timezone: str | None, active: bool) -> None:
    """Create or update a user from the directory file (the password and its date are left as they are)."""
    con.execute(
        "INSERT INTO users(login, name, email, report_scope, playback, roles, timezone, active) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(login) DO UPDATE SET name = excluded.name, "
        "email = excluded.email, report_scope = excluded.report_scope, playback = excluded.playback, "
        f"roles = excluded.roles, timezone = excluded.timezone, active = excluded.active, updated_at = {_NOW}",
        (login, name, email, report_scope, playback, roles, timezone, int(active)),
    )


def deactivate(con: Any, logins: Iterable[str]) -> None:
    """Users the directory no longer lists: kept (their calls and audit events name them), inactive."""
    for login in logins:
        con.execute(f"UPDATE users SET active = 0, updated_at = {_NOW} WHERE login = ?", (login,))
