"""3CX legacy CDR (v10-v18 "CDR service"): one CSV row per call, columns chosen by the administrator.

Handles one big file (with or without a header, UTF-8 with or without BOM),
one-file-per-call ``cdr-YYMMDDHHMMSS.<historyid>.log`` files and socket-feed
captures (the same lines). Times are UTC.

From one row to segments: the ``chain`` field lists the parties in the order
they were connected (``Chain: 0611360468,Ext.610,Ext.185,``, ``;`` or quoted
commas). The first party is the constant one and each later party gets a
segment with it (``ReplacedDst``: the destination was replaced by a
transfer). With ``ReplacedSrc`` the second party is the constant one and the
source changed. A ``MakeCall`` source (click-to-call) is not a party. The row
only has the call's start, answer and end: the boundaries between a
transferred call's segments are not in the record, so they are split evenly
and marked ``estimated`` (recordings, when linked, replace them with
``derived`` times).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from dimnb.errors import InvalidInput
from dimnb.ingest import csvread, staging

FIELDS = (
    "historyid", "callid", "duration", "time_start", "time_answered", "time_end",
    "reason_terminated", "from_no", "to_no", "from_dn", "to_dn", "dial_no",
    "reason_changed", "final_number", "final_dn", "bill_code", "bill_rate",
    "bill_cost", "bill_name", "chain", "from_type", "to_type", "final_type",
    "from_dispname", "to_dispname", "final_dispname", "missed_queue_calls",
)
DEFAULT_COLUMNS = FIELDS
REQUIRED = ("time_start", "time_end", "from_no", "to_no")
_TIME_FORMATS = ["%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f",
                 "%d/%m/%Y %H:%M:%S"]


def normalize_field(name: str) -> str:
    return name.strip().strip('"').lstrip("\ufeff").lower().replace("-", "_").replace(" ", "_")


def parse_columns(spec: str | Sequence[str]) -> list[str]:
    """``--columns historyid,callid,...`` to a checked list; unknown names are an error, ``_`` skips a column."""
    names = [normalize_field(n) for n in (spec.split(",") if isinstance(spec, str) else spec)]
    names = [n for n in names if n != ""] if isinstance(spec, str) and spec.endswith(",") else names
    unknown = [n for n in names if n not in FIELDS and n != "_"]
    if unknown:
        raise InvalidInput(
            f"unknown 3CX CDR field(s): {', '.join(unknown)}. Known fields: {', '.join(FIELDS)} (use _ to skip a column)",
            field="columns",
        )
    seen = [n for n in names if n != "_"]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise InvalidInput(f"3CX CDR field(s) listed twice: {', '.join(dupes)}", field="columns")
    missing = [n for n in REQUIRED if n not in seen]
    if missing:
        raise InvalidInput(f"the column list must include {', '.join(missing)}", field="columns")
    if "callid" not in seen and "historyid" not in seen:
        raise InvalidInput("the column list must include callid or historyid", field="columns")
    return names


def header_columns(first_line: str) -> list[str] | None:
    """The column list a header line declares, or None when the line is data."""
    names = [normalize_field(n) for n in first_line.rstrip("\r\n").split(",")]
    while names and names[-1] == "":
        names.pop()
    known = sum(1 for n in names if n in FIELDS)
    if known >= max(3, len(names) // 2):
        return [n if n in FIELDS else "_" for n in names]
    return None


def _col(columns: list[str], name: str) -> str:
    return f"r.{name}" if name in columns else "NULL::VARCHAR"


def _party(x: str) -> str:
    return f"regexp_replace({x}, '^Ext\\.', '')"


def _ext(x: str) -> str:
    return f"CASE WHEN {x} LIKE 'Ext.%' THEN substr({x}, 5) END"


def _type(x: str) -> str:
    return (f"CASE WHEN {x} LIKE 'Ext.%' THEN 'extension' "
            f"WHEN regexp_matches({x}, '^[+0-9*#]+$') THEN 'external' ELSE 'other' END")


_BAD_REASON = """
    CASE
        WHEN key IS NULL THEN 'no call id: callid and historyid are empty'
        WHEN t_start IS NULL THEN 'time_start ' || coalesce(('''' || ts_text || ''''), 'is empty') || ' is not a time'
        WHEN t_end IS NULL THEN 'time_end ' || coalesce(('''' || te_text || ''''), 'is empty') || ' is not a time'
        WHEN nullif(trim(ta_text), '') IS NOT NULL AND t_answer IS NULL
            THEN 'time_answered ' || ('''' || ta_text || '''') || ' is not a time'
        WHEN t_end < t_start THEN 'time_end is before time_start'
        WHEN t_answer IS NOT NULL AND (t_answer < t_start OR t_answer > t_end)
            THEN 'time_answered is outside the call (before its start or after its end)'
        WHEN coalesce(from_no, '') = '' AND len(chain_parties) = 0 THEN 'no calling party: from_no and chain are empty'
        WHEN coalesce(to_no, '') = '' AND len(chain_parties) < 2 THEN 'no called party: to_no and chain are empty'
    END"""


def stage(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[str],
    columns: list[str],
    *,
    skip: int = 0,
    queue_extensions: Sequence[str] = (),
) -> csvread.RawTable:
    """Read legacy CDR files into the staging tables (calls and segments; bad rows to quarantine).

    One pass over the CSV computes every row's parsed times, parties and, for
    a bad row, the reason; the staging inserts read that table only.
    """
    physical = [c if c != "_" else f"_skip{i}" for i, c in enumerate(columns)]

    def c(name: str) -> str:
        return _col(columns, name)

    query = f"""
    SELECT filename, {_BAD_REASON} AS bad_reason,
        key, t_start, t_answer, t_end, reason_terminated, reason_changed, to_no,
        from_dispname, to_dispname, final_dispname, queue_missed,
        CASE WHEN p0[1] = 'MakeCall' AND len(p0) >= 3 THEN p0[2:] ELSE p0 END AS p
    FROM (
        SELECT *, CASE WHEN len(chain_parties) >= 2 THEN chain_parties
                       ELSE list_filter([from_no, to_no, final_number],
                                        lambda x, i: coalesce(x, '') <> ''
                                            AND NOT list_contains(list_slice([from_no, to_no, final_number], 1, i - 1), x))
                  END AS p0
        FROM (
            SELECT r.filename,
                nullif(trim(coalesce({c('callid')}, {c('historyid')})), '') AS key,
                {c('time_start')} AS ts_text, {c('time_answered')} AS ta_text, {c('time_end')} AS te_text,
                try_strptime(trim({c('time_start')}), $fmts)::TIMESTAMPTZ AS t_start,
                try_strptime(trim({c('time_answered')}), $fmts)::TIMESTAMPTZ AS t_answer,
                try_strptime(trim({c('time_end')}), $fmts)::TIMESTAMPTZ AS t_end,
                trim({c('reason_terminated')}) AS reason_terminated,
                trim({c('reason_changed')}) AS reason_changed,
                trim({c('from_no')}) AS from_no, trim({c('to_no')}) AS to_no,
                trim({c('final_number')}) AS final_number,
                nullif(trim({c('from_dispname')}), '') AS from_dispname,
                nullif(trim({c('to_dispname')}), '') AS to_dispname,
                nullif(trim({c('final_dispname')}), '') AS final_dispname,
                nullif(trim({c('missed_queue_calls')}), '') IS NOT NULL AS queue_missed,
                list_filter(list_transform(
                    string_split(replace(replace(coalesce({c('chain')}, ''), 'Chain:', ''), ';', ','), ','),
                    lambda x: trim(x)), lambda x: x <> '') AS chain_parties
            FROM {{csv}} r
        )
    )
    """
    raw = csvread.read_csv_into(con, "_legacy", files, physical, query, {"fmts": _TIME_FORMATS}, skip=skip, alias="l")
    base = staging.next_call_id(con)
    from_legacy = f"FROM {raw.name} l JOIN {raw.files_table} USING (filename)"
    con.execute(
        f"INSERT INTO stg_quarantine SELECT l.filename, {raw.line_sql}, l.bad_reason, NULL {from_legacy} "
        "WHERE l.bad_reason IS NOT NULL"
    )
    csvread.fill_raw_lines(con)
    # Views, not copies: the merge reads them once into the call store (staging.materialize makes
    # tables of them when duplicates must be removed or recordings change segment times).
    con.execute("CREATE OR REPLACE TEMP TABLE _legacy_params AS SELECT $base AS base, $queues AS queues",
                {"base": base, "queues": list(queue_extensions)})
    # The row's position gives its call id (gaps where rows were refused are fine).
    ok = f"""
        SELECT (SELECT base FROM _legacy_params) + l.rowid - (SELECT min(first_rowid) FROM {raw.files_table}) AS call_id,
            l.filename, {raw.line_sql} AS line, l.* EXCLUDE (filename, bad_reason),
            reason_changed = 'ReplacedSrc' AS source_replaced,
            CASE WHEN reason_changed = 'ReplacedSrc' THEN p[2] ELSE p[1] END AS anchor,
            CASE WHEN reason_changed = 'ReplacedSrc' THEN list_concat([p[1]], p[3:]) ELSE p[2:] END AS others,
            t_answer IS NOT NULL OR reason_terminated = 'Connected' AS answered
        {from_legacy}
        WHERE l.bad_reason IS NULL
    """
    staging.drop_staging_views(con)
    con.execute("DROP TABLE stg_segments")
    con.execute("DROP TABLE stg_calls")
    con.execute(
        f"""
        CREATE TEMP VIEW stg_segments AS
        SELECT key, seq, NULL::VARCHAR AS source_id,
            CASE WHEN list_contains((SELECT queues FROM _legacy_params), other_ext) THEN 'queue' WHEN answered THEN 'talk' ELSE 'ringing' END AS kind,
            seg_start AS start_time,
            CASE WHEN seq = 1 THEN t_answer WHEN answered THEN seg_start END AS answer_time,
            seg_end AS end_time,
            CASE WHEN n_seg = 1 THEN 'exact' ELSE 'estimated' END AS time_quality,
            CASE WHEN source_replaced THEN other_party ELSE anchor_party END AS from_party,
            CASE WHEN source_replaced THEN other_type ELSE anchor_type END AS from_type,
            CASE WHEN source_replaced THEN other_ext ELSE anchor_ext END AS from_ext,
            CASE WHEN source_replaced THEN NULL ELSE from_dispname END AS from_name,
            CASE WHEN source_replaced THEN anchor_party ELSE other_party END AS to_party,
            CASE WHEN source_replaced THEN anchor_type ELSE other_type END AS to_type,
            CASE WHEN source_replaced THEN anchor_ext ELSE other_ext END AS to_ext,
            CASE WHEN seq = n_seg THEN final_dispname WHEN seq = 1 THEN to_dispname END AS to_name,
            answered AND NOT list_contains((SELECT queues FROM _legacy_params), other_ext) AS answered,
            CASE WHEN seq = 1 THEN NULL ELSE coalesce(reason_changed, 'transfer') END AS reason,
            call_id
        FROM (
            SELECT *,
                len(others) AS n_seg,
                to_timestamp(epoch(t_start) + epoch(t_end - t_start) * (seq - 1) / len(others)) AS seg_start,
                to_timestamp(epoch(t_start) + epoch(t_end - t_start) * seq / len(others)) AS seg_end,
                {_party('anchor')} AS anchor_party, {_type('anchor')} AS anchor_type, {_ext('anchor')} AS anchor_ext,
                {_party('other')} AS other_party, {_type('other')} AS other_type, {_ext('other')} AS other_ext
            FROM (SELECT call_id, key, t_start, t_answer, t_end, answered, reason_changed, source_replaced,
                         from_dispname, to_dispname, final_dispname, anchor, others,
                         unnest(generate_series(1, len(others))) AS seq, unnest(others) AS other
                  FROM ({ok}))
        )
        """
    )
    con.execute(
        f"""
        CREATE TEMP VIEW stg_calls AS
        SELECT key, t_start AS start_time, t_answer AS answer_time, t_end AS end_time,
            CASE WHEN {_type('p[1]')} = 'external' THEN 'inbound'
                 WHEN list_bool_or(list_transform(p, lambda x: regexp_matches(x, '^[+0-9*#]+$'))) THEN 'outbound'
                 ELSE 'internal' END AS direction,
            {_party('p[1]')} AS from_party, {_ext('p[1]')} AS from_ext, from_dispname AS from_name,
            {_party("coalesce(nullif(to_no, ''), others[1])")} AS to_party,
            {_ext("coalesce(nullif(to_no, ''), others[1])")} AS to_ext,
            {_party('others[-1]')} AS final_party, {_ext('others[-1]')} AS final_ext, final_dispname AS final_name,
            CASE
                WHEN answered THEN 'answered'
                WHEN reason_terminated IN ('Failed', 'NoRouteExists', 'RouteBusy', 'NotAvailable', 'Rejected')
                    THEN 'failed'
                WHEN queue_missed THEN 'abandoned'
                ELSE 'missed'
            END AS outcome,
            filename AS source_file, line AS source_line, call_id, len(others)::INTEGER AS segment_count
        FROM ({ok})
        """
    )
    return raw
