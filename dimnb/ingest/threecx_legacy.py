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
from dimnb.ingest import csvread

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


def stage(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[str],
    columns: list[str],
    *,
    skip: int = 0,
    queue_extensions: Sequence[str] = (),
) -> csvread.RawTable:
    """Read legacy CDR files into the staging tables (calls and segments; bad rows to quarantine)."""
    physical = [c if c != "_" else f"_skip{i}" for i, c in enumerate(columns)]
    raw = csvread.read_csv_raw(con, files, physical, skip=skip)
    c = lambda name: _col(columns, name)  # noqa: E731
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _legacy AS
        SELECT
            r.filename AS file, {raw.line_sql} AS line,
            nullif(trim(coalesce({c('callid')}, {c('historyid')})), '') AS key,
            {c('time_start')} AS time_start_text, {c('time_answered')} AS time_answered_text,
            {c('time_end')} AS time_end_text,
            try_strptime(trim({c('time_start')}), $fmts)::TIMESTAMPTZ AS t_start,
            try_strptime(trim({c('time_answered')}), $fmts)::TIMESTAMPTZ AS t_answer,
            try_strptime(trim({c('time_end')}), $fmts)::TIMESTAMPTZ AS t_end,
            trim({c('reason_terminated')}) AS reason_terminated,
            trim({c('reason_changed')}) AS reason_changed,
            trim({c('from_no')}) AS from_no, trim({c('to_no')}) AS to_no,
            trim({c('final_number')}) AS final_number,
            lower(trim({c('from_type')})) AS from_type, lower(trim({c('to_type')})) AS to_type,
            lower(trim({c('final_type')})) AS final_type,
            nullif(trim({c('from_dispname')}), '') AS from_dispname,
            nullif(trim({c('to_dispname')}), '') AS to_dispname,
            nullif(trim({c('final_dispname')}), '') AS final_dispname,
            nullif(trim({c('missed_queue_calls')}), '') AS missed_queue_calls,
            list_filter(
                list_transform(string_split_regex(regexp_replace(coalesce(trim({c('chain')}), ''), '^Chain:\\s*', ''), '[;,]'),
                               lambda x: trim(x)),
                lambda x: x <> '') AS chain_parties,
            concat_ws(',', {', '.join(f'r.{p}' for p in physical)}) AS raw_text
        FROM {csvread.join_files(raw)}
        """,
        {"fmts": _TIME_FORMATS},
    )
    con.execute(
        """
        INSERT INTO stg_quarantine
        SELECT file, line,
            CASE
                WHEN key IS NULL THEN 'no call id: callid and historyid are empty'
                WHEN t_start IS NULL THEN 'time_start ' || coalesce('''' || time_start_text || '''', 'is empty') || ' is not a time'
                WHEN t_end IS NULL THEN 'time_end ' || coalesce('''' || time_end_text || '''', 'is empty') || ' is not a time'
                WHEN nullif(trim(time_answered_text), '') IS NOT NULL AND t_answer IS NULL
                    THEN 'time_answered ''' || time_answered_text || ''' is not a time'
                WHEN t_end < t_start THEN 'time_end is before time_start'
                WHEN t_answer IS NOT NULL AND (t_answer < t_start OR t_answer > t_end)
                    THEN 'time_answered is outside the call (before its start or after its end)'
                WHEN coalesce(from_no, '') = '' AND len(chain_parties) = 0 THEN 'no calling party: from_no and chain are empty'
                WHEN coalesce(to_no, '') = '' AND len(chain_parties) < 2 THEN 'no called party: to_no and chain are empty'
            END AS reason,
            raw_text
        FROM _legacy
        WHERE key IS NULL OR t_start IS NULL OR t_end IS NULL OR t_end < t_start
           OR (nullif(trim(time_answered_text), '') IS NOT NULL AND t_answer IS NULL)
           OR (t_answer IS NOT NULL AND (t_answer < t_start OR t_answer > t_end))
           OR (coalesce(from_no, '') = '' AND len(chain_parties) = 0)
           OR (coalesce(to_no, '') = '' AND len(chain_parties) < 2)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _legacy_ok AS
        WITH ok AS (
            SELECT * FROM _legacy
            WHERE key IS NOT NULL AND t_start IS NOT NULL AND t_end IS NOT NULL AND t_end >= t_start
              AND NOT (nullif(trim(time_answered_text), '') IS NOT NULL AND t_answer IS NULL)
              AND NOT (t_answer IS NOT NULL AND (t_answer < t_start OR t_answer > t_end))
              AND NOT (coalesce(from_no, '') = '' AND len(chain_parties) = 0)
              AND NOT (coalesce(to_no, '') = '' AND len(chain_parties) < 2)
        ), parties AS (
            SELECT *,
                CASE WHEN len(chain_parties) >= 2 THEN chain_parties
                     ELSE list_filter([from_no, to_no, final_number],
                                      lambda x, i: coalesce(x, '') <> ''
                                          AND NOT list_contains(list_slice([from_no, to_no, final_number], 1, i - 1), x))
                END AS p0
            FROM ok
        ), no_makecall AS (
            SELECT *, CASE WHEN p0[1] = 'MakeCall' AND len(p0) >= 3 THEN p0[2:] ELSE p0 END AS p
            FROM parties
        )
        SELECT *,
            reason_changed = 'ReplacedSrc' AS source_replaced,
            CASE WHEN reason_changed = 'ReplacedSrc' THEN p[2] ELSE p[1] END AS anchor,
            CASE WHEN reason_changed = 'ReplacedSrc' THEN list_concat([p[1]], p[3:]) ELSE p[2:] END AS others,
            t_answer IS NOT NULL OR reason_terminated = 'Connected' AS answered
        FROM no_makecall
        """
    )
    queues = list(queue_extensions)
    con.execute(
        """
        INSERT INTO stg_segments
        SELECT key, seq, NULL AS source_id,
            CASE WHEN list_contains($queues, other_ext) THEN 'queue'
                 WHEN answered THEN 'talk' ELSE 'ringing' END AS kind,
            seg_start, CASE WHEN seq = 1 THEN t_answer WHEN answered THEN seg_start END, seg_end,
            CASE WHEN n_seg = 1 THEN 'exact' ELSE 'estimated' END AS time_quality,
            CASE WHEN source_replaced THEN other_party ELSE anchor_party END,
            CASE WHEN source_replaced THEN other_type ELSE anchor_type END,
            CASE WHEN source_replaced THEN other_ext ELSE anchor_ext END,
            CASE WHEN source_replaced THEN NULL ELSE from_dispname END,
            CASE WHEN source_replaced THEN anchor_party ELSE other_party END,
            CASE WHEN source_replaced THEN anchor_type ELSE other_type END,
            CASE WHEN source_replaced THEN anchor_ext ELSE other_ext END,
            CASE WHEN seq = n_seg THEN final_dispname WHEN seq = 1 THEN to_dispname END,
            answered AND NOT list_contains($queues, other_ext),
            CASE WHEN seq = 1 THEN NULL ELSE coalesce(reason_changed, 'transfer') END
        FROM (
            SELECT *,
                len(others) AS n_seg,
                to_timestamp(epoch(t_start) + epoch(t_end - t_start) * (seq - 1) / len(others)) AS seg_start,
                to_timestamp(epoch(t_start) + epoch(t_end - t_start) * seq / len(others)) AS seg_end,
                regexp_replace(anchor, '^Ext\\.', '') AS anchor_party,
                CASE WHEN anchor LIKE 'Ext.%' THEN 'extension'
                     WHEN regexp_matches(anchor, '^[+0-9*#]+$') THEN 'external' ELSE 'other' END AS anchor_type,
                CASE WHEN anchor LIKE 'Ext.%' THEN substr(anchor, 5) END AS anchor_ext,
                regexp_replace(other, '^Ext\\.', '') AS other_party,
                CASE WHEN other LIKE 'Ext.%' THEN 'extension'
                     WHEN regexp_matches(other, '^[+0-9*#]+$') THEN 'external' ELSE 'other' END AS other_type,
                CASE WHEN other LIKE 'Ext.%' THEN substr(other, 5) END AS other_ext
            FROM (SELECT *, unnest(generate_series(1, len(others))) AS seq, unnest(others) AS other FROM _legacy_ok)
        )
        """,
        {"queues": queues},
    )
    con.execute(
        """
        INSERT INTO stg_calls
        SELECT key, t_start, CASE WHEN t_answer IS NOT NULL THEN t_answer END, t_end,
            CASE
                WHEN caller_type = 'external' THEN 'inbound'
                WHEN list_bool_or(list_transform(p, lambda x: regexp_matches(x, '^[+0-9*#]+$'))) THEN 'outbound'
                ELSE 'internal'
            END AS direction,
            caller_party, caller_ext, from_dispname,
            to_party, to_ext, last_party, last_ext, final_dispname,
            CASE
                WHEN answered THEN 'answered'
                WHEN reason_terminated IN ('Failed', 'NoRouteExists', 'RouteBusy', 'NotAvailable', 'Rejected')
                    THEN 'failed'
                WHEN missed_queue_calls IS NOT NULL THEN 'abandoned'
                ELSE 'missed'
            END AS outcome,
            file, line
        FROM (
            SELECT *,
                regexp_replace(p[1], '^Ext\\.', '') AS caller_party,
                CASE WHEN p[1] LIKE 'Ext.%' THEN substr(p[1], 5) END AS caller_ext,
                CASE WHEN p[1] LIKE 'Ext.%' THEN 'extension'
                     WHEN regexp_matches(p[1], '^[+0-9*#]+$') THEN 'external' ELSE 'other' END AS caller_type,
                regexp_replace(coalesce(nullif(to_no, ''), others[1]), '^Ext\\.', '') AS to_party,
                CASE WHEN coalesce(nullif(to_no, ''), others[1]) LIKE 'Ext.%'
                     THEN substr(coalesce(nullif(to_no, ''), others[1]), 5) END AS to_ext,
                regexp_replace(others[-1], '^Ext\\.', '') AS last_party,
                CASE WHEN others[-1] LIKE 'Ext.%' THEN substr(others[-1], 5) END AS last_ext
            FROM _legacy_ok
        )
        """
    )
    con.execute("DROP TABLE IF EXISTS _legacy")
    return raw
