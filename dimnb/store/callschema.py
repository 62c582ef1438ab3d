"""The call store's schema, with its version and forward migrations.

Times are ``TIMESTAMPTZ`` (UTC). Every call, segment, recording... is keyed by
``call_id`` (a BIGINT assigned at load). No PRIMARY KEY constraints: DuckDB's
ART indexes slow bulk loads, and the loaders enforce uniqueness themselves.
"""

from __future__ import annotations

import duckdb

SCHEMA_VERSION = 6

_V1 = """
CREATE TABLE meta (key VARCHAR, value VARCHAR);

CREATE TABLE loads (
    load_id BIGINT, system VARCHAR, kind VARCHAR, file VARCHAR, file_sha256 VARCHAR,
    size_bytes BIGINT, loaded_at TIMESTAMPTZ, rows_read BIGINT, calls_added BIGINT,
    duplicates BIGINT, quarantined BIGINT, recordings_linked BIGINT
);

CREATE TABLE quarantine (
    load_id BIGINT, file VARCHAR, line BIGINT, reason VARCHAR, raw VARCHAR
);

CREATE TABLE calls (
    call_id BIGINT NOT NULL,
    system VARCHAR NOT NULL,            -- 3cx / asterisk / freeswitch
    source_id VARCHAR NOT NULL,         -- the phone system's own call id
    start_time TIMESTAMPTZ NOT NULL,
    answer_time TIMESTAMPTZ,
    end_time TIMESTAMPTZ NOT NULL,
    direction VARCHAR NOT NULL,         -- inbound / outbound / internal
    from_party VARCHAR,                 -- number or extension that started the call
    from_ext VARCHAR,
    from_name VARCHAR,
    to_party VARCHAR,                   -- what was dialled
    to_ext VARCHAR,
    final_party VARCHAR,                -- the party that answered last / was reached last
    final_ext VARCHAR,
    final_name VARCHAR,
    ring_seconds DOUBLE,
    talk_seconds DOUBLE,
    duration_seconds DOUBLE,
    outcome VARCHAR NOT NULL,           -- answered / missed / abandoned / voicemail / failed
    segment_count INTEGER NOT NULL,
    recordings_total INTEGER NOT NULL DEFAULT 0,
    recordings_available INTEGER NOT NULL DEFAULT 0,
    recordings_pending INTEGER NOT NULL DEFAULT 0,
    load_id BIGINT,
    source_file VARCHAR,
    source_line BIGINT
);

CREATE TABLE segments (
    call_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,               -- 1.. in call order
    source_id VARCHAR,                  -- the system's id for this leg (3CX cdr_id, Asterisk uniqueid)
    kind VARCHAR NOT NULL,              -- talk / ringing / queue / ivr / voicemail / hold / conference
    start_time TIMESTAMPTZ,
    answer_time TIMESTAMPTZ,
    end_time TIMESTAMPTZ,
    time_quality VARCHAR NOT NULL,      -- exact / derived (from recordings) / estimated
    from_party VARCHAR, from_type VARCHAR, from_ext VARCHAR, from_name VARCHAR,
    to_party VARCHAR, to_type VARCHAR, to_ext VARCHAR, to_name VARCHAR,
    answered BOOLEAN,
    reason VARCHAR                      -- how this segment began (transfer, divert, ...)
);

CREATE TABLE conferences (
    conference_id BIGINT NOT NULL,
    call_id BIGINT NOT NULL,
    room VARCHAR,
    start_time TIMESTAMPTZ,
    end_time TIMESTAMPTZ
);

CREATE TABLE conference_members (
    conference_id BIGINT NOT NULL,
    call_id BIGINT NOT NULL,
    party VARCHAR,
    party_type VARCHAR,
    extension VARCHAR,
    display_name VARCHAR,
    login VARCHAR,
    join_time TIMESTAMPTZ,
    leave_time TIMESTAMPTZ
);

CREATE TABLE recordings (
    recording_id BIGINT NOT NULL,
    call_id BIGINT NOT NULL,
    segment_seq INTEGER,                -- NULL for a conference recording
    conference_id BIGINT,
    system VARCHAR NOT NULL,
    source_path VARCHAR NOT NULL,       -- where the phone system wrote it (absolute)
    archive_path VARCHAR,               -- relative to the archive store, once archived
    file_name VARCHAR NOT NULL,
    format VARCHAR,
    start_time TIMESTAMPTZ,
    offset_seconds DOUBLE,              -- on the call's clock
    duration_seconds DOUBLE,
    size_bytes BIGINT,
    checksum VARCHAR,                   -- sha256 of the original file
    state VARCHAR NOT NULL,             -- pending_archive / available / missing
    state_changed_at TIMESTAMPTZ
);

-- Derived from participants + the directory history by dimnb.ingest.tagging (also copied into
-- calls.participant_logins / calls.group_tags, schema v2).
CREATE TABLE call_users (call_id BIGINT NOT NULL, login VARCHAR NOT NULL, via VARCHAR NOT NULL);
CREATE TABLE call_tags (call_id BIGINT NOT NULL, group_name VARCHAR NOT NULL);

-- Snapshot of the directory that the derived tables were computed from.
CREATE TABLE dir_extensions (extension VARCHAR, login VARCHAR, valid_from TIMESTAMPTZ, valid_to TIMESTAMPTZ);
CREATE TABLE dir_primary_groups (login VARCHAR, group_name VARCHAR, valid_from TIMESTAMPTZ, valid_to TIMESTAMPTZ);

-- 3CX recording files seen in a recordings folder that no call explains.
CREATE TABLE unmatched_files (system VARCHAR, path VARCHAR, reason VARCHAR, seen_at TIMESTAMPTZ);
"""

# v2: where a recording sits inside the recordings folder it was loaded from (POSIX separators), so the
# archive job can find it again when that folder is mounted somewhere else (`dimnb archive --source`).
_V2 = """
ALTER TABLE recordings ADD COLUMN source_relpath VARCHAR;
"""

# v3: the access rule's per-call arrays (dimnb.access, dimnb.ingest.tagging). A copy of call_users and
# call_tags on the call row, so that a scoped listing is a filter on one table scan instead of a join.
# Filled by rewriting the table in call order (an UPDATE of a LIST column would move every row).
_V3 = """
ALTER TABLE calls ADD COLUMN participant_logins VARCHAR[] DEFAULT [];  -- sorted logins of call_users
ALTER TABLE calls ADD COLUMN group_tags VARCHAR[] DEFAULT [];          -- sorted groups of call_tags
CREATE TEMP TABLE _v3_calls AS
SELECT c.* REPLACE (
    coalesce(u.logins, []) AS participant_logins, coalesce(t.tags, []) AS group_tags
)
FROM calls c
LEFT JOIN (SELECT call_id, list(DISTINCT login ORDER BY login) AS logins FROM call_users GROUP BY call_id) u
    USING (call_id)
LEFT JOIN (SELECT call_id, list(DISTINCT group_name ORDER BY group_name) AS tags FROM call_tags GROUP BY call_id) t
    USING (call_id);
DELETE FROM calls;
INSERT INTO calls BY NAME SELECT * FROM _v3_calls ORDER BY call_id;
DROP TABLE _v3_calls;
"""

# Every party of every call, with the user that extension belonged to at the call's start (a view: the
# facts live in segments and conference_members; the directory history in dir_extensions).
_V4 = """
CREATE VIEW participants AS
WITH parties AS (
    SELECT call_id, seq AS segment_seq, 'caller' AS role, from_type AS party_type, from_party AS number,
           from_ext AS extension, from_name AS display_name
    FROM segments
    UNION ALL
    SELECT call_id, seq, 'callee', to_type, to_party, to_ext, to_name FROM segments
    UNION ALL
    SELECT call_id, NULL, 'conference member', party_type, party, extension, display_name FROM conference_members
)
SELECT p.*, d.login
FROM parties p
JOIN calls c USING (call_id)
LEFT JOIN dir_extensions d ON d.extension = p.extension
    AND (d.valid_from IS NULL OR d.valid_from <= c.start_time)
    AND (d.valid_to IS NULL OR c.start_time < d.valid_to);
"""

# v5: segment times derived from recordings (3CX legacy transfers: the CDR does not say when a transfer
# happened, the recordings do), kept beside the CDR's own (start_time... time_quality, which stay the
# estimate). A session shows the derived ones only to a user who may play those recordings (dimnb.sessions):
# to anyone else they would tell that a recording exists. derived_quality: derived, or estimated for a
# segment without recordings whose neighbours have them.
_V5 = """
ALTER TABLE segments ADD COLUMN derived_start_time TIMESTAMPTZ;
ALTER TABLE segments ADD COLUMN derived_answer_time TIMESTAMPTZ;
ALTER TABLE segments ADD COLUMN derived_end_time TIMESTAMPTZ;
ALTER TABLE segments ADD COLUMN derived_quality VARCHAR;
"""

# v6: a generation is a base file shared by hard links plus its own delta (DuckDB's WAL beside it; see
# dimnb.store.callstore). The tables are unchanged, and a v5 generation is a v6 base without a delta; the bump
# keeps an older dimnb from writing: it would copy the base alone and drop the delta.
_V6 = """
INSERT INTO meta VALUES ('generation_layout', 'base+delta');
"""

MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5, 6: _V6}


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "meta" not in tables:
        return 0
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring a writable call-store connection to ``SCHEMA_VERSION``; returns the version found."""
    found = schema_version(con)
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"this call store has schema version {found}, newer than this dimnb ({SCHEMA_VERSION}); upgrade dimnb"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        con.execute(MIGRATIONS[version])
        con.execute("DELETE FROM meta WHERE key = 'schema_version'")
        con.execute("INSERT INTO meta VALUES ('schema_version', $v)", {"v": str(version)})
    return found
