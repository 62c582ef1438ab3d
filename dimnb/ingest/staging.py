"""Every loader fills the same staging tables; this module merges them into the call model.

A loader turns its system's records into ``stg_*`` temp tables (with DuckDB
SQL, not Python loops). ``merge_calls`` then adds the calls not already
present (idempotence: a re-sent record adds nothing), numbers them, and
derives the access tables for exactly the new calls. ``merge_recordings``
links recordings to calls that may have been loaded earlier.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from dimnb.ingest import tagging

STAGING_DDL = """
CREATE OR REPLACE TEMP TABLE stg_calls (
    key VARCHAR, start_time TIMESTAMPTZ, answer_time TIMESTAMPTZ, end_time TIMESTAMPTZ,
    direction VARCHAR, from_party VARCHAR, from_ext VARCHAR, from_name VARCHAR,
    to_party VARCHAR, to_ext VARCHAR, final_party VARCHAR, final_ext VARCHAR, final_name VARCHAR,
    outcome VARCHAR, source_file VARCHAR, source_line BIGINT
);
CREATE OR REPLACE TEMP TABLE stg_segments (
    key VARCHAR, seq INTEGER, source_id VARCHAR, kind VARCHAR,
    start_time TIMESTAMPTZ, answer_time TIMESTAMPTZ, end_time TIMESTAMPTZ, time_quality VARCHAR,
    from_party VARCHAR, from_type VARCHAR, from_ext VARCHAR, from_name VARCHAR,
    to_party VARCHAR, to_type VARCHAR, to_ext VARCHAR, to_name VARCHAR,
    answered BOOLEAN, reason VARCHAR
);
CREATE OR REPLACE TEMP TABLE stg_conferences (
    key VARCHAR, conf_key VARCHAR, room VARCHAR, start_time TIMESTAMPTZ, end_time TIMESTAMPTZ
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
    source_file VARCHAR, source_line BIGINT
);
CREATE OR REPLACE TEMP TABLE stg_quarantine (file VARCHAR, line BIGINT, reason VARCHAR, raw VARCHAR);
-- Optional, for systems that write several rows per call (Asterisk, FreeSWITCH): how many input rows each
-- staged call came from, and how many of those repeated a row already read. Empty: one row per staged call.
CREATE OR REPLACE TEMP TABLE stg_call_rows (source_file VARCHAR, key VARCHAR, rows BIGINT, duplicate_rows BIGINT);
CREATE OR REPLACE TEMP TABLE stg_conf_ids (
    conf_key VARCHAR, call_id BIGINT, room VARCHAR, start_time TIMESTAMPTZ, end_time TIMESTAMPTZ, conference_id BIGINT
);
"""


def create_staging(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(STAGING_DDL)


def next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM loads").fetchone()[0])


@dataclass
class MergeStats:
    rows: int = 0
    calls_added: int = 0
    duplicates: int = 0
    quarantined: int = 0
    recordings_linked: int = 0
    recordings_unmatched: int = 0


def merge_calls(con: duckdb.DuckDBPyConnection, system: str, load_id: int) -> MergeStats:
    """Add staged calls (and their segments and conferences) that the store does not hold yet."""
    stats = MergeStats()
    stats.rows = int(con.execute("SELECT count(*) FROM stg_calls").fetchone()[0])
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_new AS
        WITH firsts AS (
            SELECT * FROM stg_calls
            QUALIFY row_number() OVER (PARTITION BY key ORDER BY source_file, source_line) = 1
        ), fresh AS (
            SELECT f.* FROM firsts f
            WHERE NOT EXISTS (SELECT 1 FROM calls c WHERE c.system = $system AND c.source_id = f.key)
        )
        SELECT fresh.*,
               (SELECT coalesce(max(call_id), 0) FROM calls)
                 + row_number() OVER (ORDER BY start_time, key) AS call_id
        FROM fresh
        """,
        {"system": system},
    )
    stats.calls_added = int(con.execute("SELECT count(*) FROM stg_new").fetchone()[0])
    stats.duplicates = stats.rows - stats.calls_added
    if stats.calls_added:
        con.execute(
            """
            INSERT INTO segments BY NAME
            SELECT n.call_id, s.seq, s.source_id, s.kind, s.start_time, s.answer_time, s.end_time, s.time_quality,
                   s.from_party, s.from_type, s.from_ext, s.from_name, s.to_party, s.to_type, s.to_ext, s.to_name,
                   s.answered, s.reason
            FROM stg_segments s JOIN stg_new n USING (key)
            """
        )
        con.execute(
            """
            INSERT INTO calls BY NAME
            SELECT n.call_id, $system AS system, n.key AS source_id, n.start_time, n.answer_time, n.end_time,
                   n.direction, n.from_party, n.from_ext, n.from_name, n.to_party, n.to_ext,
                   n.final_party, n.final_ext, n.final_name,
                   epoch(coalesce(n.answer_time, n.end_time) - n.start_time) AS ring_seconds,
                   CASE WHEN n.answer_time IS NULL THEN 0 ELSE epoch(n.end_time - n.answer_time) END AS talk_seconds,
                   epoch(n.end_time - n.start_time) AS duration_seconds,
                   n.outcome,
                   coalesce(sc.segment_count, 0) AS segment_count,
                   0 AS recordings_total, 0 AS recordings_available, 0 AS recordings_pending,
                   $load_id AS load_id, n.source_file, n.source_line
            FROM stg_new n
            LEFT JOIN (SELECT key, count(*)::INTEGER AS segment_count FROM stg_segments GROUP BY key) sc USING (key)
            ORDER BY n.call_id
            """,
            {"system": system, "load_id": load_id},
        )
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE stg_conf_ids AS
            SELECT c.conf_key, n.call_id, c.room, c.start_time, c.end_time,
                   (SELECT coalesce(max(conference_id), 0) FROM conferences)
                     + row_number() OVER (ORDER BY c.start_time, c.conf_key) AS conference_id
            FROM stg_conferences c JOIN stg_new n USING (key)
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
            """
        )
        tagging.derive_for_new_calls(con)
    stats.quarantined = _store_quarantine(con, load_id)
    return stats


def merge_recordings(con: duckdb.DuckDBPyConnection, system: str) -> tuple[int, int]:
    """Link staged recordings to their calls (new or loaded earlier). Returns (linked, unmatched).

    Unmatched recordings (their call or segment is not in the store) go to quarantine.
    """
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_rec_resolved AS
        SELECT r.*, coalesce(c.call_id, sg.call_id) AS call_id,
               coalesce(r.segment_seq, sg.seq) AS seq,
               cf.conference_id
        FROM stg_recordings r
        LEFT JOIN calls c ON r.key IS NOT NULL AND c.system = $system AND c.source_id = r.key
        LEFT JOIN (SELECT s.call_id, s.seq, s.source_id FROM segments s JOIN calls c2 USING (call_id)
                   WHERE c2.system = $system AND s.source_id IS NOT NULL) sg
               ON r.segment_source_id IS NOT NULL AND sg.source_id = r.segment_source_id
        LEFT JOIN (SELECT DISTINCT conf_key, conference_id FROM stg_conf_ids) cf ON cf.conf_key = r.conf_key
        """,
        {"system": system},
    )
    # A conference recording found through one leg's segment belongs to that call's conference.
    con.execute(
        """
        UPDATE stg_rec_resolved r SET conference_id = cf.conference_id, seq = NULL
        FROM conferences cf
        WHERE r.conference_id IS NULL AND r.call_id = cf.call_id AND r.seq IS NOT NULL
          AND EXISTS (SELECT 1 FROM segments s WHERE s.call_id = r.call_id AND s.seq = r.seq AND s.kind = 'conference')
        """
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
        WHERE NOT EXISTS (SELECT 1 FROM recordings x WHERE x.call_id = r.call_id AND x.source_path = r.source_path)
        """
    )
    linked = int(con.execute("SELECT count(*) FROM stg_rec_new").fetchone()[0])
    if linked:
        con.execute(
            """
            INSERT INTO recordings BY NAME
            SELECT r.recording_id, r.call_id, r.seq AS segment_seq, r.conference_id, $system AS system,
                   r.source_path, NULL AS archive_path, r.file_name, r.format, r.rec_start AS start_time,
                   epoch(r.rec_start - c.start_time) AS offset_seconds,
                   r.duration_seconds, r.size_bytes, r.checksum, r.state, now() AS state_changed_at
            FROM (
                -- Where the CDR says when the recorded leg began, trust it over the file name (whole seconds).
                SELECT r.*, coalesce(cf.start_time,
                                     CASE WHEN r.segment_source_id IS NOT NULL THEN coalesce(s.answer_time, s.start_time) END,
                                     r.start_time) AS rec_start
                FROM stg_rec_new r
                LEFT JOIN conferences cf ON cf.conference_id = r.conference_id
                LEFT JOIN segments s ON s.call_id = r.call_id AND s.seq = r.seq
            ) r JOIN calls c USING (call_id)
            """,
            {"system": system},
        )
        refresh_recording_counts(con, "SELECT DISTINCT call_id FROM stg_rec_new")
    return linked, unmatched


def refresh_recording_counts(con: duckdb.DuckDBPyConnection, call_ids_sql: str) -> None:
    """Recompute the per-call recording counters for the calls the subquery names."""
    con.execute(
        f"""
        UPDATE calls SET recordings_total = x.total, recordings_available = x.available, recordings_pending = x.pending
        FROM (
            SELECT ids.call_id,
                   count(r.recording_id)::INTEGER AS total,
                   count(r.recording_id) FILTER (WHERE r.state = 'available')::INTEGER AS available,
                   count(r.recording_id) FILTER (WHERE r.state = 'pending_archive')::INTEGER AS pending
            FROM ({call_ids_sql}) ids LEFT JOIN recordings r USING (call_id)
            GROUP BY ids.call_id
        ) x
        WHERE calls.call_id = x.call_id
        """
    )


def _store_quarantine(con: duckdb.DuckDBPyConnection, load_id: int) -> int:
    count = int(con.execute("SELECT count(*) FROM stg_quarantine").fetchone()[0])
    if count:
        con.execute(
            "INSERT INTO quarantine SELECT $load_id, file, line, reason, raw FROM stg_quarantine ORDER BY file, line",
            {"load_id": load_id},
        )
        con.execute("DELETE FROM stg_quarantine")
    return count


def store_quarantine(con: duckdb.DuckDBPyConnection, load_id: int) -> int:
    return _store_quarantine(con, load_id)
