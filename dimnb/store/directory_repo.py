"""The directory tables' one home: every statement that reads or changes users, groups, extensions or
memberships goes through here.

Callers (access, reports, sessions, the audit report, the sign-in handler,
the directory import, tagging, the Parquet export, the CLI) ask for what they
need by name; the SQL is written once, in the spelling both state-store back
ends run (``dimnb.store.state_postgres`` translates it for PostgreSQL). The
other state tables have one home each too (saved_filters, audit,
login_sessions, lockout): tests/test_state_backends.py keeps it so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dimnb.store.statestore import StateStore

_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
# The directory as ``dimnb export parquet`` writes it (no credentials), table by table.
EXPORT_STATEMENTS: dict[str, str] = {
    "users": "SELECT login, name, report_scope, playback, roles, timezone, active FROM users ORDER BY login",
    "groups": "SELECT name, description, active FROM groups ORDER BY name",
    "extensions": "SELECT extension, login, valid_from, valid_to FROM extensions ORDER BY extension, valid_from",
    "memberships": "SELECT login, group_name, is_primary, valid_from, valid_to FROM memberships "
                   "ORDER BY login, group_name, valid_from",
}


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


def replace_groups(con: Any, groups: dict[str, str | None]) -> None:
    """The directory file's groups become the active ones; groups it no longer names stay, inactive."""
    for name, description in groups.items():
        con.execute("INSERT INTO groups(name, description, active) VALUES (?, ?, 1) "
                    "ON CONFLICT(name) DO UPDATE SET description = excluded.description, active = 1",
                    (name, description))
    placeholders = ",".join("?" * len(groups)) or "''"
    con.execute(f"UPDATE groups SET active = 0 WHERE name NOT IN ({placeholders})", tuple(groups))


def replace_assignments(con: Any, *, extensions: list[tuple[Any, ...]], memberships: list[tuple[Any, ...]]) -> None:
    """Every (extension, login, from, to) and (login, group, primary, from, to): the whole history, replaced."""
    con.execute("DELETE FROM extensions")
    con.execute("DELETE FROM memberships")
    if extensions:
        con.executemany("INSERT INTO extensions(extension, login, valid_from, valid_to) VALUES (?, ?, ?, ?)",
                        extensions)
    if memberships:
        con.executemany("INSERT INTO memberships(login, group_name, is_primary, valid_from, valid_to) "
                        "VALUES (?, ?, ?, ?, ?)", memberships)


def record_import(con: Any, file: str, sha256: str, summary: str) -> None:
    con.execute("INSERT INTO directory_imports(file, sha256, summary) VALUES (?, ?, ?)", (file, sha256, summary))


def deactivate(con: Any, logins: Iterable[str]) -> None:
    """Users the directory no longer lists: kept (their calls and audit events name them), inactive."""
    for login in logins:
        con.execute(f"UPDATE users SET active = 0, updated_at = {_NOW} WHERE login = ?", (login,))


# ---------------------------------------------------------------------------- groups, extensions, memberships


def active_group_names(state: StateStore) -> list[str]:
    return [r[0] for r in state.connection().execute("SELECT name FROM groups WHERE active = 1 ORDER BY name")]


def group_any_case(state: StateStore, name: str) -> Any:
    """(name, active) of the group spelled ``name`` in any case (an active one first), or None."""
    return state.connection().execute(
        "SELECT name, active FROM groups WHERE lower(name) = lower(?) ORDER BY active DESC, name LIMIT 1", (name,)
    ).fetchone()


def extension_history(state: StateStore) -> list[Any]:
    """Every (extension, login, valid_from, valid_to), as the call store's copy of the directory takes it."""
    return state.connection().execute(
        "SELECT extension, login, valid_from, valid_to FROM extensions ORDER BY extension, valid_from").fetchall()


def primary_group_history(state: StateStore) -> list[Any]:
    """Every (login, group_name, valid_from, valid_to) of a primary membership."""
    return state.connection().execute(
        "SELECT login, group_name, valid_from, valid_to FROM memberships WHERE is_primary = 1 "
        "ORDER BY login, valid_from").fetchall()


def memberships_of(state: StateStore, logins: list[str]) -> list[Any]:
    """(login, group_name, is_primary, valid_from, valid_to) of ``logins``, by login and group."""
    if not logins:
        return []
    marks = ", ".join("?" * len(logins))
    return state.connection().execute(
        f"SELECT login, group_name, is_primary, valid_from, valid_to FROM memberships WHERE login IN ({marks}) "
        "ORDER BY login, group_name", logins,
    ).fetchall()
