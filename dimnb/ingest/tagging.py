"""Who took part in each call, and which groups it is tagged with, as the directory stood at the call's start.

The directory lives in the state store; a snapshot of its history (extension
assignments and primary-group periods, with effective dates) is copied into
each call-store generation, and two tables are derived from it:

- ``call_users(call_id, login, via)``: a user took part in a call when an
  extension that was theirs at the call's start was a party to any of its
  segments (via 'segment'), or was a member of a conference linked to the
  call (via 'conference').
- ``call_tags(call_id, group_name)``: the primary group, at the call's start,
  of every user who took part.

Because the snapshot keeps effective dates, re-deriving after a directory
change gives old calls their old tags: moving a user to another group changes
only calls after the move.
"""

from __future__ import annotations

import duckdb

from dimnb.store.statestore import StateStore


def snapshot_directory(con: duckdb.DuckDBPyConnection, state: StateStore) -> None:
    """Replace the call store's copy of the directory history with the state store's."""
    db = state.connection()
    extensions = [tuple(r) for r in db.execute("SELECT extension, login, valid_from, valid_to FROM extensions")]
    primaries = [
        tuple(r)
        for r in db.execute("SELECT login, group_name, valid_from, valid_to FROM memberships WHERE is_primary = 1")
    ]
    con.execute("DELETE FROM dir_extensions")
    con.execute("DELETE FROM dir_primary_groups")
    if extensions:
        con.executemany(
            "INSERT INTO dir_extensions VALUES ($1, $2, $3::TIMESTAMPTZ, $4::TIMESTAMPTZ)", extensions
        )
    if primaries:
        con.executemany(
            "INSERT INTO dir_primary_groups VALUES ($1, $2, $3::TIMESTAMPTZ, $4::TIMESTAMPTZ)", primaries
        )


_PARTIES_OF = """
    SELECT s.call_id, s.from_ext AS extension, 'segment' AS via FROM segments s
        WHERE s.from_ext IS NOT NULL AND s.call_id IN ({ids})
    UNION ALL
    SELECT s.call_id, s.to_ext, 'segment' FROM segments s
        WHERE s.to_ext IS NOT NULL AND s.call_id IN ({ids})
    UNION ALL
    SELECT m.call_id, m.extension, 'conference' FROM conference_members m
        WHERE m.extension IS NOT NULL AND m.call_id IN ({ids})
"""

_DERIVE_USERS = """
INSERT INTO call_users
SELECT call_id, login, max(via) AS via   -- prefer 'segment' over 'conference' when both apply
FROM (
    SELECT p.call_id, d.login, p.via
    FROM ({parties}) p
    JOIN calls c ON c.call_id = p.call_id
    JOIN dir_extensions d ON d.extension = p.extension
        AND (d.valid_from IS NULL OR d.valid_from <= c.start_time)
        AND (d.valid_to IS NULL OR c.start_time < d.valid_to)
)
GROUP BY call_id, login
"""

_DERIVE_TAGS = """
INSERT INTO call_tags
SELECT DISTINCT u.call_id, g.group_name
FROM call_users u
JOIN calls c ON c.call_id = u.call_id
JOIN dir_primary_groups g ON g.login = u.login
    AND (g.valid_from IS NULL OR g.valid_from <= c.start_time)
    AND (g.valid_to IS NULL OR c.start_time < g.valid_to)
WHERE u.call_id IN ({ids})
"""

_MEMBER_LOGINS = """
UPDATE conference_members m SET login = d.login
FROM calls c, dir_extensions d
WHERE c.call_id = m.call_id AND d.extension = m.extension
  AND (d.valid_from IS NULL OR d.valid_from <= c.start_time)
  AND (d.valid_to IS NULL OR c.start_time < d.valid_to)
  AND m.call_id IN ({ids})
"""


def _derive(con: duckdb.DuckDBPyConnection, ids: str) -> None:
    has_directory = con.execute("SELECT count(*) FROM dir_extensions").fetchone()[0]
    if not has_directory:
        return
    con.execute(_DERIVE_USERS.format(parties=_PARTIES_OF.format(ids=ids)))
    con.execute(_DERIVE_TAGS.format(ids=ids))
    con.execute(_MEMBER_LOGINS.format(ids=ids))


def derive_for_new_calls(con: duckdb.DuckDBPyConnection) -> None:
    """Derive call_users and call_tags for the calls a merge just added (temp table ``stg_calls``)."""
    _derive(con, "SELECT call_id FROM stg_calls")


def rederive_all(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild the derived tables for every call (after a directory import)."""
    con.execute("DELETE FROM call_users")
    con.execute("DELETE FROM call_tags")
    con.execute("UPDATE conference_members SET login = NULL")
    _derive(con, "SELECT call_id FROM calls")


def refresh(con: duckdb.DuckDBPyConnection, state: StateStore) -> None:
    """Copy the current directory history and re-derive everything from it."""
    snapshot_directory(con, state)
    rederive_all(con)
