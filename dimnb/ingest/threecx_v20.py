"""3CX v20 (Update 6 on) CDR export: ``cdroutput`` rows (one per segment) and ``cdrrecordings`` links.

A call is the set of CDRs sharing ``main_call_history_id`` (which joins call
flows, e.g. every leg of a conference); within it, CDRs are ordered by start
time (``continued_in_cdr_id`` links each to its successor). A CDR whose
destination is a conference DN is a conference leg: its source joined at
``cdr_started_at`` and left at ``cdr_ended_at``. Timestamps are UTC.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import duckdb

from dimnb.errors import InvalidInput
from dimnb.ingest import csvread

REQUIRED = ("cdr_id", "call_history_id", "cdr_started_at", "cdr_ended_at")
KNOWN = (
    "cdr_id", "call_history_id", "main_call_history_id", "source_participant_id", "source_entity_type",
    "source_dn_number", "source_dn_type", "source_dn_name", "source_participant_name",
    "source_participant_phone_number", "destination_participant_id", "destination_entity_type",
    "destination_dn_number", "destination_dn_type", "destination_dn_name", "destination_participant_name",
    "destination_participant_phone_number", "creation_method", "creation_forward_reason", "termination_reason",
    "termination_reason_details", "continued_in_cdr_id", "cdr_started_at", "cdr_ended_at", "cdr_answered_at",
)
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def header_columns(first_line: str) -> list[str]:
    names = [n.strip().strip('"').lstrip("\ufeff").lower() for n in first_line.rstrip("\r\n").split(",")]
    return [n if _IDENT.match(n) else f"_col{i}" for i, n in enumerate(names)]


def is_cdroutput_header(columns: Sequence[str]) -> bool:
    return "cdr_id" in columns and "call_history_id" in columns


def is_recordings_header(columns: Sequence[str]) -> bool:
    return "cdr_id" in columns and "recording_url" in columns


def _party_type(entity: str, dn_type: str) -> str:
    return f"""CASE
        WHEN {dn_type} = 'conference' OR {entity} = 'conference' THEN 'conference'
        WHEN {entity} IN ('external_line', 'provider') OR {dn_type} = 'provider' THEN 'external'
        WHEN {entity} = 'extension' OR ({entity} IS NULL AND {dn_type} = 'extension') THEN 'extension'
        WHEN {entity} = 'queue' THEN 'queue'
        WHEN {entity} LIKE 'ring_group%' THEN 'ring_group'
        WHEN {entity} IN ('ivr', 'script', 'inbound_routing') THEN 'ivr'
        WHEN {entity} IN ('voicemail', 'vmail_console') THEN 'voicemail'
        ELSE 'other' END"""


def _time(x: str) -> str:
    """A timestamp as PostgreSQL writes it (``+00`` offset), or as database tools export it, with a space
    before the offset (``2026-03-23 13:14:30.828 +0100``)."""
    return f"try_cast(regexp_replace({x}, '\\s+([+-]\\d\\d(:?\\d\\d)?)$', '\\1') AS TIMESTAMPTZ)"


_BAD_REASON = """CASE
    WHEN width_reason IS NOT NULL THEN width_reason
    WHEN cdr_id IS NULL THEN 'no cdr_id'
    WHEN key IS NULL THEN 'no call_history_id'
    WHEN started IS NULL THEN 'cdr_started_at ' || coalesce('''' || started_text || '''', 'is empty') || ' is not a time'
    WHEN ended IS NULL THEN 'cdr_ended_at ' || coalesce('''' || ended_text || '''', 'is empty') || ' is not a time'
    WHEN ended < started THEN 'cdr_ended_at is before cdr_started_at'
    WHEN answered_text IS NOT NULL AND answered IS NULL THEN 'cdr_answered_at ''' || answered_text || ''' is not a time'
    WHEN answered IS NOT NULL AND (answered < started OR answered > ended)
        THEN 'cdr_answered_at is outside the CDR (before its start or after its end)'
END"""


def stage(con: duckdb.DuckDBPyConnection, file: str, columns: list[str]) -> csvread.RawTable:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InvalidInput(f"{file}: not a 3CX cdroutput export, it lacks column(s) {', '.join(missing)}")

    def c(name: str) -> str:
        return f"nullif(trim(r.{name}), '')" if name in columns else "NULL::VARCHAR"

    # One pass over the file: the columns we use, typed, and for a bad row the reason (no copy of the raw
    # row: quarantine reads the file's own line back).
    query = f"""
    SELECT filename, cdr_id, key, started, ended, answered, {_BAD_REASON} AS bad_reason,
        src_entity, src_dn_type, src_dn, src_name, src_phone, dst_entity, dst_dn_type, dst_dn, dst_name, dst_phone,
        creation_method, termination_reason, termination_details
    FROM (
        SELECT r.filename, {csvread.width_reason_sql(columns)} AS width_reason,
            {c('cdr_id')} AS cdr_id,
            coalesce({c('main_call_history_id')}, {c('call_history_id')}) AS key,
            {c('cdr_started_at')} AS started_text, {c('cdr_ended_at')} AS ended_text,
            {c('cdr_answered_at')} AS answered_text,
            {_time(c('cdr_started_at'))} AS started,
            {_time(c('cdr_ended_at'))} AS ended,
            {_time(c('cdr_answered_at'))} AS answered,
            lower({c('source_entity_type')}) AS src_entity, lower({c('source_dn_type')}) AS src_dn_type,
            {c('source_dn_number')} AS src_dn, coalesce({c('source_participant_name')}, {c('source_dn_name')}) AS src_name,
            {c('source_participant_phone_number')} AS src_phone,
            lower({c('destination_entity_type')}) AS dst_entity, lower({c('destination_dn_type')}) AS dst_dn_type,
            {c('destination_dn_number')} AS dst_dn,
            coalesce({c('destination_participant_name')}, {c('destination_dn_name')}) AS dst_name,
            {c('destination_participant_phone_number')} AS dst_phone,
            lower({c('creation_method')}) AS creation_method,
            lower({c('termination_reason')}) AS termination_reason,
            lower({c('termination_reason_details')}) AS termination_details
        FROM {{csv}} r
    )
    """
    raw = csvread.read_csv_into(con, "_v20", [file], columns, query, {}, skip=1, alias="v", exact_width=True)
    lines = f"FROM _v20 v JOIN {raw.files_table} USING (filename)"
    con.execute(
        f"INSERT INTO stg_quarantine SELECT v.filename, {raw.line_sql}, v.bad_reason, NULL {lines} "
        "WHERE v.bad_reason IS NOT NULL"
    )
    # A call with a bad CDR is quarantined whole: a call missing one of its segments would mislead.
    con.execute("CREATE OR REPLACE TEMP TABLE _v20_bad_keys AS SELECT DISTINCT key FROM _v20 "
                "WHERE bad_reason IS NOT NULL AND key IS NOT NULL")
    has_bad_keys = con.execute("SELECT count(*) FROM _v20_bad_keys").fetchone()[0] > 0
    if has_bad_keys:
        con.execute(
            f"""
            INSERT INTO stg_quarantine
            SELECT v.filename, {raw.line_sql},
                   'another CDR of this call (' || v.key || ') is invalid, so the call is not loaded', NULL
            {lines} WHERE v.bad_reason IS NULL AND v.key IN (SELECT key FROM _v20_bad_keys)
            """
        )
    csvread.fill_raw_lines(con)
    keep = "bad_reason IS NULL" + (" AND key NOT IN (SELECT key FROM _v20_bad_keys)" if has_bad_keys else "")
    repeated = con.execute(f"SELECT count(*) - count(DISTINCT cdr_id) FROM _v20 WHERE {keep}").fetchone()[0]
    once = "QUALIFY row_number() OVER (PARTITION BY cdr_id ORDER BY v.rowid) = 1" if repeated else ""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _v20_seg AS
        SELECT v.* EXCLUDE (bad_reason, filename), v.filename AS file, {raw.line_sql} AS line,
            row_number() OVER (PARTITION BY key ORDER BY started, ended, cdr_id)::INTEGER AS seq,
            {_party_type('src_entity', 'src_dn_type')} AS from_type,
            {_party_type('dst_entity', 'dst_dn_type')} AS to_type
        {lines}
        WHERE {keep}
        {once}
        """
    )
    # One row per CDR, several CDRs per call: the summary counts rows read and calls loaded separately.
    con.execute(
        f"""
        INSERT INTO stg_call_rows
        SELECT filename, key, count(*), count(*) - count(DISTINCT cdr_id) FROM _v20 WHERE {keep} GROUP BY ALL
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _v20_seg2 AS
        SELECT *,
            CASE
                WHEN to_type = 'conference' THEN 'conference'
                WHEN to_type = 'ivr' THEN 'ivr'
                WHEN to_type = 'queue' THEN 'queue'
                WHEN to_type = 'voicemail' THEN 'voicemail'
                WHEN to_type = 'ring_group' THEN 'ringing'
                WHEN answered IS NOT NULL THEN 'talk'
                ELSE 'ringing'
            END AS kind,
            CASE WHEN from_type = 'external' THEN coalesce(src_phone, src_dn) ELSE coalesce(src_dn, src_phone) END AS from_party,
            CASE WHEN from_type = 'extension' THEN src_dn END AS from_ext,
            CASE WHEN to_type = 'external' THEN coalesce(dst_phone, dst_dn) ELSE coalesce(dst_dn, dst_phone) END AS to_party,
            CASE WHEN to_type = 'extension' THEN dst_dn END AS to_ext
        FROM _v20_seg
        """
    )
    con.execute(
        """
        INSERT INTO stg_segments
        SELECT key, seq, cdr_id, kind, started, answered, ended, 'exact',
               from_party, from_type, from_ext, src_name, to_party, to_type, to_ext, dst_name,
               answered IS NOT NULL AND kind IN ('talk', 'conference', 'voicemail'),
               CASE WHEN seq = 1 THEN NULL ELSE creation_method END, NULL
        FROM _v20_seg2
        """
    )
    con.execute(
        """
        INSERT INTO stg_calls
        WITH per_call AS (
            SELECT key,
                min(started) AS start_time, max(ended) AS end_time,
                min(answered) FILTER (WHERE kind IN ('talk', 'conference')) AS answer_time,
                arg_min(from_party, seq) AS from_party, arg_min(from_ext, seq) AS from_ext,
                arg_min(src_name, seq) AS from_name, arg_min(from_type, seq) AS first_from_type,
                arg_min(to_party, seq) AS to_party, arg_min(to_ext, seq) AS to_ext,
                coalesce(arg_max(to_party, seq) FILTER (WHERE kind = 'talk'), arg_max(to_party, seq)) AS final_party,
                coalesce(arg_max(to_ext, seq) FILTER (WHERE kind = 'talk'), arg_max(to_ext, seq)) AS final_ext,
                coalesce(arg_max(dst_name, seq) FILTER (WHERE kind = 'talk'), arg_max(dst_name, seq)) AS final_name,
                bool_or(to_type = 'external') AS reaches_external,
                bool_or(from_type = 'external') AS has_external,
                bool_or(kind = 'conference') AS is_conference,
                bool_or(kind = 'voicemail' AND answered IS NOT NULL) AS reached_voicemail,
                arg_max(kind, seq) AS last_kind,
                arg_max(termination_reason, seq) AS last_termination,
                arg_max(termination_details, seq) AS last_details,
                min(file) AS file, min(line) AS line
            FROM _v20_seg2 GROUP BY key
        )
        SELECT key, start_time, answer_time, end_time,
            CASE WHEN first_from_type = 'external' THEN 'inbound'
                 WHEN is_conference AND has_external THEN 'inbound'
                 WHEN reaches_external THEN 'outbound'
                 ELSE 'internal' END,
            from_party, from_ext, from_name, to_party, to_ext, final_party, final_ext, final_name,
            CASE WHEN answer_time IS NOT NULL THEN 'answered'
                 WHEN reached_voicemail THEN 'voicemail'
                 WHEN last_kind IN ('queue', 'ivr') AND last_termination = 'src_participant_terminated' THEN 'abandoned'
                 WHEN last_termination = 'rejected'
                      OR last_details IN ('no_route', 'busy', 'line_busy', 'not_found', 'not_available',
                                          'invalid_destination', 'destination_prohibited', 'server_error')
                      THEN 'failed'
                 ELSE 'missed' END,
            file, line, NULL, NULL
        FROM per_call
        """
    )
    con.execute(
        """
        INSERT INTO stg_conferences
        SELECT key, key || '/' || coalesce(to_party, '?') AS conf_key, to_party, min(started), max(ended), NULL
        FROM _v20_seg2 WHERE kind = 'conference' GROUP BY key, to_party
        """
    )
    con.execute(
        """
        INSERT INTO stg_conference_members
        SELECT key || '/' || coalesce(to_party, '?'), from_party, from_type, from_ext, src_name,
               coalesce(answered, started), ended
        FROM _v20_seg2 WHERE kind = 'conference'
        """
    )
    for table in ("_v20", "_v20_seg", "_v20_bad_keys", raw.files_table):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return raw
