"""Who took part in each call, and which groups it is tagged with, as the directory stood at the call's start.

The directory lives in the state store; a snapshot of its history (extension
assignments and primary-group periods, with effective dates) is copied into
each call-store generation, and two tables are derived from it:

- ``call_users(call_id, login, via)``: a user took part in a call when an
  extension that was theirs at the call's start was a party to any of its
  segments, or a member of a conference linked to the call. ``via`` is
  'segment' when they were a party to an ordinary segment, else 'conference'
  (a conference leg, ``kind = 'conference'``, or a conference member): only
  ``access.why`` reads it, to say which.
- ``call_tags(call_id, group_name)``: the primary group, at the call's start,
  of every user who took part.
- ``calls.participant_logins`` / ``calls.group_tags``: the same two facts as
  sorted arrays on the call row, which ``access.scope_sql`` filters on (a
  scoped listing is then one table scan, no join). They are written with
  the call (``staging.merge_calls``) or by rewriting the table in call order,
  never by an UPDATE; code that writes call_users / call_tags itself calls
  ``sync_call_arrays`` afterwards.

Because the snapshot keeps effective dates, re-deriving after a directory
change gives old calls their old tags: moving a user to another group changes
only calls after the move.
"""

from __future__ import annotations

import duckdb

from dimnb.store import directory_repo
from dimnb.store.statestore import StateStore


def snapshot_directory(con: duckdb.DuckDBPyConnection, state: StateStore) -> None:
    """Replace the call store's copy of the directory history with the state store's."""
    copies = {
        "dir_extensions": directory_repo.extension_history(state),
        "dir_primary_groups": directory_repo.primary_group_history(state),
    }
    for table, rows in copies.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE _dir_copy AS SELECT * FROM {table} LIMIT 0")
        if rows:  # one statement with list parameters: executemany would run one INSERT per row
            columns = list(zip(*rows))
            con.execute(
                "INSERT INTO _dir_copy SELECT unnest($a), unnest($b), unnest($c)::TIMESTAMPTZ, unnest($d)::TIMESTAMPTZ",
                {"a": list(columns[0]), "b": list(columns[1]), "c": list(columns[2]), "d": list(columns[3])},
            )
        differs = con.execute(
            f"SELECT (SELECT count(*) FROM (FROM {table} EXCEPT ALL FROM _dir_copy))"
            f" + (SELECT count(*) FROM (FROM _dir_copy EXCEPT ALL FROM {table}))"
        ).fetchone()[0]
        if differs:  # only then: rewriting an unchanged copy would make an append publish for nothing
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} FROM _dir_copy")
        con.execute("DROP TABLE _dir_copy")


_PARTIES_OF = """
    SELECT s.call_id, s.from_ext AS extension,
           CASE WHEN s.kind = 'conference' THEN 'conference' ELSE 'segment' END AS via
        FROM segments s WHERE s.from_ext IS NOT NULL AND s.call_id IN ({ids})
    UNION ALL
    SELECT s.call_id, s.to_ext, CASE WHEN s.kind = 'conference' THEN 'conference' ELSE 'segment' END
        FROM segments s WHERE s.to_ext IS NOT NULL AND s.call_id IN ({ids})
    UNION ALL
    SELECT m.call_id, m.extension, 'conference' FROM conference_members m
        WHERE m.extension IS NOT NULL AND m.call_id IN ({ids})
"""

_DERIVE_USERS = """
INSERT INTO call_users
SELECT call_id, login, max(via) AS via   -- 'segment' (a party to an ordinary segment) over 'conference'
FROM (
    SELECT p.call_id, d.login, p.via
    FROM ({parties}) p
    JOIN {calls} c ON c.call_id = p.call_id
    JOIN dir_extensions d ON d.extension = p.extension
        AND (d.valid_from IS NULL OR d.valid_from <= c.start_time)
        AND (d.valid_to IS NULL OR c.start_time < d.valid_to)
)
GROUP BY call_id, login
ORDER BY call_id, login   -- stored in call order: a lookup by call reads one row group, not the table
"""

_DERIVE_TAGS = """
INSERT INTO call_tags
SELECT DISTINCT u.call_id, g.group_name
FROM call_users u
JOIN {calls} c ON c.call_id = u.call_id
JOIN dir_primary_groups g ON g.login = u.login
    AND (g.valid_from IS NULL OR g.valid_from <= c.start_time)
    AND (g.valid_to IS NULL OR c.start_time < g.valid_to)
WHERE u.call_id IN ({ids})
ORDER BY u.call_id, g.group_name   -- in call order, as call_users
"""

_MEMBER_LOGINS = """
UPDATE conference_members m SET login = d.login
FROM {calls} c, dir_extensions d
WHERE c.call_id = m.call_id AND d.extension = m.extension
  AND (d.valid_from IS NULL OR d.valid_from <= c.start_time)
  AND (d.valid_to IS NULL OR c.start_time < d.valid_to)
  AND m.call_id IN ({ids})
"""

# The per-call copy that access.scope_sql filters on: sorted logins and groups.
_ARRAYS = """
SELECT ids.call_id, coalesce(u.logins, []) AS participant_logins, coalesce(t.tags, []) AS group_tags
FROM ({ids}) ids
LEFT JOIN (SELECT call_id, list(login ORDER BY login) AS logins FROM call_users
           WHERE call_id IN ({ids}) GROUP BY call_id) u USING (call_id)
LEFT JOIN (SELECT call_id, list(group_name ORDER BY group_name) AS tags FROM call_tags
           WHERE call_id IN ({ids}) GROUP BY call_id) t USING (call_id)
"""


def _derive(con: duckdb.DuckDBPyConnection, ids: str, calls: str) -> None:
    """call_users, call_tags and conference member logins for the calls ``ids`` names, whose start times are
    in the table ``calls`` (the store's, or the staged calls of a merge)."""
    if not con.execute("SELECT count(*) FROM dir_extensions").fetchone()[0]:
        return
    con.execute(_DERIVE_USERS.format(parties=_PARTIES_OF.format(ids=ids), calls=calls))
    con.execute(_DERIVE_TAGS.format(ids=ids, calls=calls))
    con.execute(_MEMBER_LOGINS.format(ids=ids, calls=calls))


def derive_for_new_calls(con: duckdb.DuckDBPyConnection) -> None:
    """Derive the access facts of the calls a merge is adding (temp table ``stg_calls``, numbered).

    Runs after their segments and conference members are stored and *before*
    the calls themselves: it leaves their per-call arrays in the temp table
    ``stg_call_access(call_id, participant_logins, group_tags)`` for
    ``staging.merge_calls`` to insert with them. (Updating a LIST column
    later would move the rows to the end of the table and lose the call
    order that the zone maps of listings and sessions rely on.)
    """
    ids = "SELECT call_id FROM stg_calls"
    _derive(con, ids, "stg_calls")
    con.execute(f"CREATE OR REPLACE TEMP TABLE stg_call_access AS {_ARRAYS.format(ids=ids)}")


def rederive_all(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild the derived tables for every call (after a directory import)."""
    if not con.execute("SELECT count(*) FROM calls").fetchone()[0]:
        return
    con.execute("DELETE FROM call_users")
    con.execute("DELETE FROM call_tags")
    con.execute("UPDATE conference_members SET login = NULL WHERE login IS NOT NULL")
    _derive(con, "SELECT call_id FROM calls", "calls")
    sync_call_arrays(con)


def sync_call_arrays(con: duckdb.DuckDBPyConnection) -> int:
    """Make every call's ``participant_logins`` / ``group_tags`` match call_users / call_tags; returns how many changed.

    When any changes, the calls table is rewritten in call order (an UPDATE
    of a LIST column would move the changed rows to its end).
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _call_access AS {_ARRAYS.format(ids='SELECT call_id FROM calls')}")
    changed = con.execute(
        """
        SELECT count(*) FROM calls c JOIN _call_access a USING (call_id)
        WHERE c.participant_logins IS DISTINCT FROM a.participant_logins OR c.group_tags IS DISTINCT FROM a.group_tags
        """
    ).fetchone()[0]
    if changed:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _calls_rewritten AS
            SELECT c.* REPLACE (a.participant_logins AS participant_logins, a.group_tags AS group_tags)
            FROM calls c JOIN _call_access a USING (call_id)
            """
        )
        con.execute("DELETE FROM calls")
        con.execute("INSERT INTO calls BY NAME SELECT * FROM _calls_rewritten ORDER BY call_id")
        con.execute("DROP TABLE _calls_rewritten")
    con.execute("DROP TABLE _call_access")
    return int(changed)


def refresh(con: duckdb.DuckDBPyConnection, state: StateStore) -> None:
    """Copy the current directory history and re-derive everything from it."""
    snapshot_directory(con, state)
    rederive_all(con)
