"""Every loader fills the same staging tables; this module merges them into the call model.

A loader turns its system's records into ``stg_*`` temp tables (with DuckDB
SQL, not Python loops). ``merge_calls`` then adds the calls not already
present (idempotence: a re-sent record adds nothing), numbers them, and
derives the access tables for exactly the new calls. ``merge_recordings``
links recordings to calls that may have been loaded earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from dimnb.ingest import tagging

STAGING_DDL = """
CREATE OR REPLACE TEMP TABLE stg_calls (
    key VARCHAR, start_time TIMESTAMPTZ, answer_time TIMESTAMPTZ, end_time TIMESTAMPTZ,
    direction VARCHAR, from_party VARCHAR, from_ext VARCHAR, from_name VARCHAR,
    to_party VARCHAR, to_ext VARCHAR, final_party VARCHAR, final_ext VARCHAR, final_name VARCHAR,
    outcome VARCHAR, source_file VARCHAR, source_line BIGINT,
    call_id BIGINT, segment_count INTEGER     -- optional: a loader may number calls itself (see _assign_missing_ids)
);
CREATE OR REPLACE TEMP TABLE stg_segments (
    key VARCHAR, seq INTEGER, source_id VARCHAR, kind VARCHAR,
    start_time TIMESTAMPTZ, answer_time TIMESTAMPTZ, end_time TIMESTAMPTZ, time_quality VARCHAR,
    from_party VARCHAR, from_type VARCHAR, from_ext VARCHAR, from_name VARCHAR,
    to_party VARCHAR, to_type VARCHAR, to_ext VARCHAR, to_name VARCHAR,
    answered BOOLEAN, reason VARCHAR,
    call_id BIGINT
);
CREATE OR REPLACE TEMP TABLE stg_conferences (
    key VARCHAR, conf_key VARCHAR, room VARCHAR, start_time TIMESTAMPTZ, end_time TIMESTAMPTZ,
    call_id BIGINT
);
CREATE OR REPLACE TEMP TABLE stg_conference_members (
    conf_key VARCHAR, party VARCHAR, party_type VARCHAR, extension VARCHAR, display_name VARCHAR,
    join_time TIMESTAMPTZ, leave_time TIMESTAMPTZ
);
-- A recording names its call by key, and its segment by seq or by the segment's source id.
CREATE OR REPLACE TEMP TABLE stg_recordings (
    key VARCHAR, segment_seq INTEGER, segment_source_id VARCHAR, conf_key VARCHAR,
    source_path VARCHAR, file_name VARCHAR, format VARCHAR, start_time TIMESTAMPTZ,
    duration_seconds DOUBLE, size_bytes BIGINT, checksum VARCHAR, state VARCHAR,
    source_file VARCHAR, source_line BIGINT,
    source_relpath VARCHAR              -- path inside the recordings folder (3CX: for `dimnb archive --source`)
);
CREATE OR REPLACE TEMP TABLE stg_quarantine (file VARCHAR, line BIGINT, reason VARCHAR, raw VARCHAR);
-- Optional, for systems that write several rows per call (Asterisk, FreeSWITCH): how many input rows each
-- staged call came from, and how many of those repeated a row already read. Empty: one row per staged call.
CREATE OR REPLACE TEMP TABLE stg_call_rows (source_file VARCHAR, key VARCHAR, rows BIGINT, duplicate_rows BIGINT);
CREATE OR REPLACE TEMP TABLE stg_conf_ids (
    conf_key VARCHAR, call_id BIGINT, room VARCHAR, start_time TIMESTAMPTZ, end_time TIMESTAMPTZ, conference_id BIGINT
);
"""


def _staging_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Which of ``stg_calls`` / ``stg_segments`` a loader defined as views (zero-copy staging)."""
    return [name for (name,) in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE temporary AND view_name IN ('stg_calls', 'stg_segments')"
    ).fetchall()]


def drop_staging_views(con: duckdb.DuckDBPyConnection) -> None:
    for name in _staging_views(con):
        con.execute(f"DROP VIEW {name}")


def create_staging(con: duckdb.DuckDBPyConnection) -> None:
    drop_staging_views(con)
    con.execute(STAGING_DDL)


def materialize(con: duckdb.DuckDBPyConnection) -> None:
    """Turn staging views (a loader's zero-copy staging) into tables that can be changed."""
    for name in _staging_views(con):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _mat_{name} AS SELECT * FROM {name}")
        con.execute(f"DROP VIEW {name}")
        con.execute(f"ALTER TABLE _mat_{name} RENAME TO {name}")


def next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM loads").fetchone()[0])


def next_call_id(con: duckdb.DuckDBPyConnection) -> int:
    """The first free call id: loaders that number their calls themselves start here (gaps are fine)."""
    return int(con.execute("SELECT coalesce(max(call_id), 0) + 1 FROM calls").fetchone()[0])


@dataclass
class MergeStats:
    rows: int = 0
    calls_added: int = 0
    duplicates: int = 0
    per_file: dict[str, tuple[int, int]] = field(default_factory=dict)  # file -> (rows, calls added)


def _per_file(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {f: int(n) for f, n in con.execute("SELECT source_file, count(*) FROM stg_calls GROUP BY 1").fetchall()}


def _assign_missing_ids(con: duckdb.DuckDBPyConnection) -> bool:
    """Number staged calls a loader left unnumbered, and point their segments and conferences at them.

    Returns whether it numbered any (then the staged rows are not in call order).
    """
    missing = con.execute("SELECT count(*) FROM stg_calls WHERE call_id IS NULL").fetchone()[0]
    if missing:
        con.execute(
            """
            UPDATE stg_calls SET call_id = n.call_id FROM (
                SELECT key AS k, $base - 1 + row_number() OVER (ORDER BY start_time, key) AS call_id
                FROM stg_calls WHERE call_id IS NULL
            ) n WHERE stg_calls.key = n.k AND stg_calls.call_id IS NULL
            """,
            {"base": max(next_call_id(con),
                         int(con.execute("SELECT coalesce(max(call_id), 0) + 1 FROM stg_calls").fetchone()[0]))},
        )
    for table in ("stg_segments", "stg_conferences"):
        if con.execute(f"SELECT count(*) FROM {table} WHERE call_id IS NULL").fetchone()[0]:
            con.execute(
                f"""
                UPDATE {table} SET call_id = c.call_id
                FROM (SELECT key, min(call_id) AS call_id FROM stg_calls GROUP BY key) c
                WHERE {table}.key = c.key AND {table}.call_id IS NULL
                """
            )
    return bool(missing)


# Times derived from recordings (3CX legacy transfers), kept beside the estimate: sessions show them only to
# users who may play those recordings. Optional staging columns: only the loaders that derive them have them.
DERIVED_SEGMENT_COLUMNS = ("derived_start_time", "derived_answer_time", "derived_end_time", "derived_quality")


def _derived_columns(con: duckdb.DuckDBPyConnection) -> str:
    present = {name for (name,) in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'temp' AND table_name = 'stg_segments'").fetchall()}
    return "".join(f", {c}" for c in DERIVED_SEGMENT_COLUMNS if c in present)


def merge_calls(con: duckdb.DuckDBPyConnection, system: str, load_id: int) -> MergeStats:
    """Add staged calls (and their segments and conferences) that the store does not hold yet.

    Idempotence: a call whose (system, key) is already stored, or that came
    earlier in the same staging, is dropped with its segments.
    """
    stats = MergeStats()
    # Rows are stored in call order, so per-call lookups (sessions) skip by zone maps. A loader that
    # numbers its own calls stages them in that order already (or in a few sorted runs, which serve zone
    # maps as well); otherwise sort on insert.
    in_call_order = not _assign_missing_ids(con)
    rows_by_file = _per_file(con)
    stats.rows = sum(rows_by_file.values())
    dropped = 0
    stored = con.execute("SELECT count(*) FROM calls WHERE system = $system", {"system": system}).fetchone()[0]
    repeated = con.execute("SELECT count(*) - count(DISTINCT key) FROM stg_calls").fetchone()[0]
    if stored or repeated:
        materialize(con)
    if stored:
        dropped += con.execute(
            "DELETE FROM stg_calls WHERE key IN (SELECT source_id FROM calls WHERE system = $system)",
            {"system": system},
        ).fetchone()[0]
    if repeated:
        dropped += con.execute(
            """
            DELETE FROM stg_calls WHERE rowid NOT IN (
                SELECT arg_min(rowid, source_line) FROM stg_calls GROUP BY key
            )
            """
        ).fetchone()[0]
    keep = " WHERE call_id IN (SELECT call_id FROM stg_calls)" if dropped else ""
    added_by_file = _per_file(con) if dropped else rows_by_file
    stats.per_file = {f: (n, added_by_file.get(f, 0)) for f, n in rows_by_file.items()}
    stats.calls_added = stats.rows - dropped
    stats.duplicates = dropped
    if not stats.calls_added:
        return stats
    con.execute(
        f"""
        INSERT INTO segments BY NAME
        SELECT call_id, seq, source_id, kind, start_time, answer_time, end_time, time_quality,
               from_party, from_type, from_ext, from_name, to_party, to_type, to_ext, to_name, answered, reason
               {_derived_columns(con)}
        FROM stg_segments{keep}
        {"" if in_call_order else "ORDER BY call_id, seq"}
        """
    )
    if con.execute("SELECT count(*) FROM stg_calls WHERE segment_count IS NULL").fetchone()[0]:
        con.execute(
            """
            UPDATE stg_calls SET segment_count = coalesce(n.segment_count, 0)
            FROM (SELECT c.call_id, count(s.call_id)::INTEGER AS segment_count
                  FROM stg_calls c LEFT JOIN stg_segments s USING (call_id) GROUP BY c.call_id) n
            WHERE stg_calls.call_id = n.call_id AND stg_calls.segment_count IS NULL
            """
        )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE stg_conf_ids AS
        SELECT conf_key, call_id, room, start_time, end_time,
               (SELECT coalesce(max(conference_id), 0) FROM conferences)
                 + row_number() OVER (ORDER BY start_time, conf_key) AS conference_id
        FROM stg_conferences{keep}
        """
    )
    con.execute(
        "INSERT INTO conferences BY NAME SELECT conference_id, call_id, room, start_time, end_time FROM stg_conf_ids"
    )
    con.execute(
        """
        INSERT INTO conference_members BY NAME
        SELECT i.conference_id, i.call_id, m.party, m.party_type, m.extension, m.display_name,
               NULL AS login, m.join_time, m.leave_time
        FROM stg_conference_members m JOIN stg_conf_ids i USING (conf_key)
        ORDER BY i.call_id, i.conference_id
        """
    )
    # The access facts first: the calls are inserted once, with their per-call arrays, in call order.
    tagging.derive_for_new_calls(con)
    con.execute(
        f"""
        INSERT INTO calls BY NAME
        SELECT call_id, $system AS system, key AS source_id, start_time, answer_time, end_time,
               direction, from_party, from_ext, from_name, to_party, to_ext, final_party, final_ext, final_name,
               -- differences of epoch_us, not epoch(a - b): subtracting TIMESTAMPTZs goes through ICU, 20x slower
               (epoch_us(coalesce(answer_time, end_time)) - epoch_us(start_time)) / 1e6 AS ring_seconds,
               CASE WHEN answer_time IS NULL THEN 0 ELSE (epoch_us(end_time) - epoch_us(answer_time)) / 1e6 END
                   AS talk_seconds,
               (epoch_us(end_time) - epoch_us(start_time)) / 1e6 AS duration_seconds,
               outcome, segment_count,
               0 AS recordings_total, 0 AS recordings_available, 0 AS recordings_pending,
               $load_id AS load_id, source_file, source_line, a.participant_logins, a.group_tags
        FROM stg_calls LEFT JOIN stg_call_access a USING (call_id)
        {"" if in_call_order else "ORDER BY call_id"}
        """,
        {"system": system, "load_id": load_id},
    )
    _remember_added_calls(con)
    return stats


ADDED_CALLS = "_write_added_calls"  # temp table: the calls this writer connection added, for merge_recordings


def _remember_added_calls(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {ADDED_CALLS} (call_id BIGINT)")
    con.execute(f"INSERT INTO {ADDED_CALLS} SELECT call_id FROM stg_calls")


def _added_range(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = $t", {"t": ADDED_CALLS}
    ).fetchone()[0]
    return _call_id_range(con, ADDED_CALLS) if exists else {"lo": 0, "hi": -1}


def _stage_recording_targets(con: duckdb.DuckDBPyConnection, system: str) -> None:
    """The stored calls and segments the staged recordings name, found by their keys alone.

    A recording names its call by key or its segment by the system's segment
    id. Most name a call this write added (in this unit, or in an earlier one
    of the same load: a 3CX v20 export's recordings file follows its CDR
    file): those are looked up only within the added calls' id range, which
    zone maps read alone. Only what is left is looked up across the store, by
    the staged keys (one column each), so an append neither joins nor scans
    the store for recordings that came with their calls.
    """
    added = _added_range(con)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_rec_calls AS
        SELECT call_id, source_id AS key FROM calls
        WHERE call_id BETWEEN $lo AND $hi AND system = $system
          AND source_id IN (SELECT key FROM stg_recordings WHERE key IS NOT NULL)
        """,
        {"system": system, **added},
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _rec_keys_left AS
        SELECT DISTINCT key FROM stg_recordings
        WHERE key IS NOT NULL AND key NOT IN (SELECT key FROM stg_rec_calls)
        """
    )
    if con.execute("SELECT count(*) FROM _rec_keys_left").fetchone()[0]:
        con.execute(
            """
            INSERT INTO stg_rec_calls
            SELECT call_id, source_id FROM calls
            WHERE system = $system AND NOT (call_id BETWEEN $lo AND $hi)
              AND source_id IN (SELECT key FROM _rec_keys_left)
            """,
            {"system": system, **added},
        )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_rec_segments AS
        SELECT call_id, seq, source_id FROM segments
        WHERE call_id BETWEEN $lo AND $hi
          AND source_id IN (SELECT segment_source_id FROM stg_recordings WHERE segment_source_id IS NOT NULL)
        """,
        added,
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _rec_segments_left AS
        SELECT DISTINCT segment_source_id AS source_id FROM stg_recordings
        WHERE segment_source_id IS NOT NULL AND segment_source_id NOT IN (SELECT source_id FROM stg_rec_segments)
        """
    )
    if con.execute("SELECT count(*) FROM _rec_segments_left").fetchone()[0]:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _rec_segments_found AS
            SELECT s.call_id, s.seq, s.source_id FROM segments s
            WHERE NOT (s.call_id BETWEEN $lo AND $hi) AND s.source_id IN (SELECT source_id FROM _rec_segments_left)
            """,
            added,
        )
        con.execute(
            """
            INSERT INTO stg_rec_segments
            SELECT * FROM _rec_segments_found WHERE call_id IN (
                SELECT call_id FROM calls
                WHERE system = $system AND call_id IN (SELECT call_id FROM _rec_segments_found)
            )
            """,
            {"system": system},
        )
        con.execute("DROP TABLE _rec_segments_found")
    con.execute("DROP TABLE _rec_keys_left")
    con.execute("DROP TABLE _rec_segments_left")


def _call_id_range(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    """The smallest and largest call id in ``table``: a range filter that lets scans skip by zone map."""
    lo, hi = con.execute(f"SELECT coalesce(min(call_id), 0), coalesce(max(call_id), -1) FROM {table}").fetchone()
    return {"lo": int(lo), "hi": int(hi)}


def merge_recordings(con: duckdb.DuckDBPyConnection, system: str) -> tuple[int, int]:
    """Link staged recordings to their calls (new or loaded earlier). Returns (linked, unmatched).

    Unmatched recordings (their call or segment is not in the store) go to quarantine.
    Every store table is read only where the batch's calls are (their ids, by zone map).
    """
    if not con.execute("SELECT count(*) FROM stg_recordings").fetchone()[0]:
        con.execute(  # what the loader's per-file counts read: no recording linked
            """
            CREATE OR REPLACE TEMP TABLE stg_rec_new AS
            SELECT *, NULL::BIGINT AS call_id, NULL::INTEGER AS seq, NULL::BIGINT AS conference_id,
                   NULL::BIGINT AS recording_id
            FROM stg_recordings LIMIT 0
            """
        )
        return 0, 0
    _stage_recording_targets(con, system)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_rec_resolved AS
        SELECT r.*, coalesce(c.call_id, sg.call_id) AS call_id,
               coalesce(r.segment_seq, sg.seq) AS seq,
               cf.conference_id
        FROM stg_recordings r
        LEFT JOIN stg_rec_calls c ON r.key IS NOT NULL AND c.key = r.key
        LEFT JOIN stg_rec_segments sg ON r.segment_source_id IS NOT NULL AND sg.source_id = r.segment_source_id
        LEFT JOIN (SELECT DISTINCT conf_key, conference_id FROM stg_conf_ids) cf ON cf.conf_key = r.conf_key
        """
    )
    ids = _call_id_range(con, "stg_rec_resolved")
    # A conference recording found through one leg's segment belongs to that call's conference.
    con.execute(
        """
        UPDATE stg_rec_resolved r SET conference_id = cf.conference_id, seq = NULL
        FROM (SELECT * FROM conferences WHERE call_id BETWEEN $lo AND $hi) cf
        WHERE r.conference_id IS NULL AND r.call_id = cf.call_id AND r.seq IS NOT NULL
          AND EXISTS (SELECT 1 FROM segments s WHERE s.call_id BETWEEN $lo AND $hi
                      AND s.call_id = r.call_id AND s.seq = r.seq AND s.kind = 'conference')
        """,
        ids,
    )
    unmatched = int(con.execute("SELECT count(*) FROM stg_rec_resolved WHERE call_id IS NULL").fetchone()[0])
    con.execute(
        """
        INSERT INTO stg_quarantine
        SELECT source_file, source_line,
               'recording ' || file_name || ': no loaded call or segment matches it (load the CDR first, then this file again)',
               source_path
        FROM stg_rec_resolved WHERE call_id IS NULL
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_rec_new AS
        SELECT r.*, (SELECT coalesce(max(recording_id), 0) FROM recordings)
                      + row_number() OVER (ORDER BY r.call_id, r.seq NULLS FIRST, r.source_path) AS recording_id
        FROM (SELECT * FROM stg_rec_resolved WHERE call_id IS NOT NULL
              QUALIFY row_number() OVER (PARTITION BY call_id, source_path ORDER BY source_line) = 1) r
        WHERE NOT EXISTS (SELECT 1 FROM recordings x WHERE x.call_id BETWEEN $lo AND $hi
                          AND x.call_id = r.call_id AND x.source_path = r.source_path)
        """,
        ids,
    )
    linked = int(con.execute("SELECT count(*) FROM stg_rec_new").fetchone()[0])
    if linked:
        con.execute(
            """
            INSERT INTO recordings BY NAME
            SELECT r.recording_id, r.call_id, r.seq AS segment_seq, r.conference_id, $system AS system,
                   r.source_path, r.source_relpath, NULL AS archive_path, r.file_name, r.format, r.rec_start AS start_time,
                   epoch(r.rec_start - c.start_time) AS offset_seconds,
                   r.duration_seconds, r.size_bytes, r.checksum, r.state, now() AS state_changed_at
            FROM (
                -- Where the CDR says when the recorded leg began, trust it over the file name (whole seconds).
                SELECT r.*, coalesce(cf.start_time,
                                     CASE WHEN r.segment_source_id IS NOT NULL THEN coalesce(s.answer_time, s.start_time) END,
                                     r.start_time) AS rec_start
                FROM stg_rec_new r
                LEFT JOIN (SELECT * FROM conferences WHERE call_id BETWEEN $lo AND $hi) cf
                       ON cf.conference_id = r.conference_id
                LEFT JOIN (SELECT * FROM segments WHERE call_id BETWEEN $lo AND $hi) s
                       ON s.call_id = r.call_id AND s.seq = r.seq
            ) r JOIN (SELECT call_id, start_time FROM calls WHERE call_id BETWEEN $lo AND $hi) c USING (call_id)
            ORDER BY r.recording_id
            """,
            {"system": system, **ids},
        )
        refresh_recording_counts(con, "SELECT DISTINCT call_id FROM stg_rec_new")
    return linked, unmatched


def refresh_recording_counts(con: duckdb.DuckDBPyConnection, call_ids_sql: str) -> None:
    """Recompute the per-call recording counters for the calls the subquery names.

    The ids are collected first, so that calls and recordings are read only
    within their range (zone maps), not across the store.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _refresh_ids AS SELECT DISTINCT call_id FROM ({call_ids_sql}) ids")
    ids = _call_id_range(con, "_refresh_ids")
    con.execute(
        """
        UPDATE calls SET recordings_total = x.total, recordings_available = x.available, recordings_pending = x.pending
        FROM (
            SELECT ids.call_id,
                   count(r.recording_id)::INTEGER AS total,
                   count(r.recording_id) FILTER (WHERE r.state = 'available')::INTEGER AS available,
                   count(r.recording_id) FILTER (WHERE r.state = 'pending_archive')::INTEGER AS pending
            FROM _refresh_ids ids
            LEFT JOIN (SELECT call_id, recording_id, state FROM recordings WHERE call_id BETWEEN $lo AND $hi) r
                   USING (call_id)
            GROUP BY ids.call_id
        ) x
        WHERE calls.call_id = x.call_id AND calls.call_id BETWEEN $lo AND $hi
        """,
        ids,
    )
    con.execute("DROP TABLE _refresh_ids")


def store_quarantine(con: duckdb.DuckDBPyConnection, load_id: int) -> dict[str, int]:
    """Move staged quarantine rows into the store; returns the count per file."""
    counts = {f: int(n) for f, n in con.execute("SELECT file, count(*) FROM stg_quarantine GROUP BY 1").fetchall()}
    if counts:
        con.execute(
            "INSERT INTO quarantine SELECT $load_id, file, line, reason, raw FROM stg_quarantine ORDER BY file, line",
            {"load_id": load_id},
        )
        con.execute("DELETE FROM stg_quarantine")
    return counts
