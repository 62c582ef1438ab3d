"""3CX legacy CDR (v10-v20 "CDR service"): one CSV row per call, columns chosen by the administrator.

Handles one big file (with or without a header, UTF-8 with or without BOM),
one-file-per-call ``cdr-YYMMDDHHMMSS.<historyid>.log`` files and socket-feed
captures (the same lines). Times are UTC.

From one row to segments: the ``chain`` field lists the parties in the order
they were connected (``Chain: +442079460101,Ext.610,Ext.185,``, ``;`` or
quoted commas). The first party is the constant one and each later party gets
a segment with it (``ReplacedDst``: the destination was replaced by a
transfer). With ``ReplacedSrc`` the second party is the constant one and the
source changed. A ``MakeCall`` source (click-to-call) is not a party.

``from-type``/``to-type``/``final-type`` give the types of the parties
numbered in ``from-no``/``to-no``/``final-number``: a queue is a queue wait,
an IVR an ivr segment, voicemail a voicemail segment, a ring group rings, a
``Line`` is an outside party (which decides the direction).

The row only has the call's start, answer and end. Segments waiting for the
answer (queue, ring group, a phone that rang before a forward or pickup) share
start..answer, the answered ones answer..end; a span with one segment has
exact times, a span shared by several (a transfer) is split evenly and marked
``estimated``. Recordings, when linked, give ``derived`` times, stored beside
the estimate (dimnb.ingest.threecx_recordings; sessions show them only to
users who may play those recordings).

Rows whose field count differs from the header or ``--columns`` (one empty
field past the last is allowed) are quarantined with both counts.
"""

from __future__ import annotations

import re
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
    # The exact-width read gives empty fields as '' (NULL means "no such field"): back to NULL at once, as
    # string functions on NULL cost nothing (~25% of the read's CPU time otherwise).
    return f"nullif(r.{name}, '')" if name in columns else "NULL::VARCHAR"


def _blank(x: str) -> str:
    """A field as text, NULL when empty (the exact-width read gives empty fields as '')."""
    return f"nullif(trim({x}), '')"


def _party(x: str) -> str:
    return f"regexp_replace({x}, '^Ext\\.', '')"


def _ext(x: str, kind: str) -> str:
    """The extension behind a party: ``Ext.101``, or a bare number the record calls an extension."""
    return f"CASE WHEN {x} LIKE 'Ext.%' THEN substr({x}, 5) WHEN {kind} = 'extension' THEN {x} END"


# 3CX's party types (``from-type``/``to-type``/``final-type``) to the call model's. Versions and exports
# spell them differently (``VoiceMail``, ``Voice Mail``, ``RingGroup``, ``Ring Group``...): compared lowercase.
# ``Internal``/``External`` are what some exports write instead of Extension/Line.
PARTY_TYPES = {
    "extension": "extension", "internal": "extension",
    "line": "external", "external": "external", "external line": "external", "trunk": "external",
    "provider": "external", "gateway": "external",
    "queue": "queue", "call queue": "queue",
    "ivr": "ivr", "digital receptionist": "ivr", "digitalreceptionist": "ivr", "script": "ivr",
    "specialmenu": "ivr", "special menu": "ivr",
    "voicemail": "voicemail", "voice mail": "voicemail", "vmail": "voicemail",
    "ringgroup": "ring_group", "ring group": "ring_group", "ring_group": "ring_group", "huntgroup": "ring_group",
    "conference": "conference", "conferenceroom": "conference", "conference room": "conference",
    "fax": "fax", "parking": "parking", "park": "parking",
}


def _declared(x: str) -> str:
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in PARTY_TYPES.items())
    # The usual spellings first, compared as they are: lower/trim and the long CASE cost a 1M-row load ~10%.
    return (f"CASE WHEN {x} = 'Extension' OR {x} = 'Internal' THEN 'extension' "
            f"WHEN {x} = 'Line' OR {x} = 'External' THEN 'external' "
            f"ELSE CASE lower(trim({x})) {cases} END END")


def _by_text(x: str) -> str:
    """A party the record declares no type for: ``Ext.`` is an extension, a number an outside party."""
    return f"CASE WHEN {x} LIKE 'Ext.%' THEN 'extension' WHEN regexp_matches({x}, '^[+0-9*#]+$') THEN 'external' ELSE 'other' END"


def _party_type(x: str) -> str:
    """A chain party's type: the one declared for the number it is (from, to or final), else by its text."""
    return (f"CASE WHEN {x} = from_no THEN from_t WHEN {x} = to_no THEN to_t "
            f"WHEN {x} = final_number THEN final_t ELSE {_by_text(x)} END")


def _typed(x: str, declared: str) -> str:
    """The type of a party the record declares one for: a queue, IVR, voicemail... whatever the number looks
    like; else ``Ext.`` means an extension whatever the export says; else the declared extension/external."""
    # Not `IN (...)`: DuckDB may plan an IN list as a join, and the CSV read must stay a plain projection.
    return f"""CASE WHEN {declared} <> 'extension' AND {declared} <> 'external' THEN {declared}
        WHEN {x} LIKE 'Ext.%' THEN 'extension' ELSE coalesce({declared}, {_by_text(x)}) END"""


# Reasons that moved the call on before anyone answered: every party but the last only rang.
_BEFORE_ANSWER = ("Fwd_NoAnswer", "Fwd_Busy", "Fwd_NotRegistered", "Fwd_Unconditional", "Fwd_OutOfOffice",
                  "PickedUp", "QFwdToDNA", "Polling")

def _kind(t: str) -> str:
    return f"CASE WHEN {t} = 'queue' OR {t} = 'ivr' OR {t} = 'voicemail' OR {t} = 'ring_group' THEN {t} ELSE 'person' END"


def _phases(source: str) -> str:
    """Each later chain party's kind and the call's phases, from a query with ``others``, ``other_types``,
    ``t_ans`` and ``reason_changed``.

    The record has the call's start, answer and end: segments waiting for an answer (queue, ring group, a
    phone that rang before a forward or pickup) share start..answer (``n_wait`` of them), the answered ones
    answer..end (``n_talk``, from ``first_answered`` on, 0 when nobody answered).
    """
    before_answer = ", ".join(f"'{r}'" for r in _BEFORE_ANSWER)
    # Comparisons, not `IN (...)` lists: DuckDB may plan those as joins, and the CSV read must stay a projection.
    return f"""
        SELECT *,
            CASE WHEN first_answered = 0 THEN n_seg ELSE first_answered - 1 END AS n_wait,
            n_seg - CASE WHEN first_answered = 0 THEN n_seg ELSE first_answered - 1 END AS n_talk
        FROM (
            SELECT *,
                CASE WHEN t_ans IS NULL THEN 0
                     WHEN n_seg = 1 THEN CASE WHEN kinds[1] = 'queue' OR kinds[1] = 'ring_group' THEN 0 ELSE 1 END
                     ELSE coalesce(list_position(list_transform(kinds, lambda k, i: k = 'queue' OR k = 'ring_group'
                              OR (k = 'person' AND i < n_seg AND list_contains([{before_answer}], reason_changed))),
                          false), 0) END AS first_answered
            FROM (
                SELECT *, len(others) AS n_seg,
                    CASE WHEN len(others) = 1 THEN [{_kind('other_types[1]')}]
                         ELSE list_transform(other_types, lambda t: {_kind('t')}) END AS kinds
                FROM ({source})
            )
        )"""


_BAD_REASON = """
    CASE
        WHEN width_reason IS NOT NULL THEN width_reason
        WHEN key IS NULL THEN 'no call id: callid and historyid are empty'
        WHEN t_start IS NULL THEN 'time_start ' || coalesce(('''' || ts_text || ''''), 'is empty') || ' is not a time'
        WHEN t_end IS NULL THEN 'time_end ' || coalesce(('''' || te_text || ''''), 'is empty') || ' is not a time'
        WHEN ta_text IS NOT NULL AND t_answer IS NULL
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

    One pass over the CSV computes every row's parsed times, parties and
    their types and, for a bad row, the reason; the staging views read that
    table only.
    """
    if len(files) == 1:
        refuse_text_dump(files[0], skip)
    physical = [c if c != "_" else f"_skip{i}" for i, c in enumerate(columns)]

    def c(name: str) -> str:
        return _col(columns, name)

    parsed = f"""
    SELECT *,
        reason_changed = 'ReplacedSrc' AS source_replaced,
        CASE WHEN reason_changed = 'ReplacedSrc' THEN p[2] ELSE p[1] END AS anchor,
        CASE WHEN reason_changed = 'ReplacedSrc' THEN p_types[2] ELSE p_types[1] END AS anchor_type,
        CASE WHEN reason_changed = 'ReplacedSrc' THEN list_concat([p[1]], p[3:]) ELSE p[2:] END AS others,
        CASE WHEN reason_changed = 'ReplacedSrc' THEN list_concat([p_types[1]], p_types[3:])
             ELSE p_types[2:] END AS other_types,
        t_answer IS NOT NULL OR reason_terminated = 'Connected' AS answered,
        coalesce(t_answer, CASE WHEN reason_terminated = 'Connected' THEN t_start END) AS t_ans
    FROM (
    SELECT filename, {_BAD_REASON} AS bad_reason,
        key, t_start, t_answer, t_end, reason_terminated, reason_changed, to_no,
        from_dispname, to_dispname, final_dispname, queue_missed, p,
        -- most calls have two parties: typed without a lambda (the lambda costs a 1M-row load ~1 s)
        CASE WHEN len(p) = 2 THEN [{_party_type('p[1]')}, {_party_type('p[2]')}]
             ELSE list_transform(p, lambda x: {_party_type('x')}) END AS p_types
    FROM (
        SELECT *, CASE WHEN p0[1] = 'MakeCall' AND len(p0) >= 3 THEN p0[2:] ELSE p0 END AS p,
            {_typed('from_no', 'from_decl')} AS from_t, {_typed('to_no', 'to_decl')} AS to_t,
            {_typed('final_number', 'final_decl')} AS final_t
        FROM (
            SELECT *, CASE WHEN len(chain_parties) >= 2 THEN chain_parties
                           ELSE list_filter([from_no, to_no, final_number],
                                            lambda x, i: coalesce(x, '') <> ''
                                                AND NOT list_contains(list_slice([from_no, to_no, final_number], 1, i - 1), x))
                      END AS p0
            FROM (
                SELECT r.filename, {csvread.width_reason_sql(physical)} AS width_reason,
                    coalesce({_blank(c('callid'))}, {_blank(c('historyid'))}) AS key,
                    {_blank(c('time_start'))} AS ts_text, {_blank(c('time_answered'))} AS ta_text,
                    {_blank(c('time_end'))} AS te_text,
                    try_strptime(trim({c('time_start')}), $fmts)::TIMESTAMPTZ AS t_start,
                    try_strptime(trim({c('time_answered')}), $fmts)::TIMESTAMPTZ AS t_answer,
                    try_strptime(trim({c('time_end')}), $fmts)::TIMESTAMPTZ AS t_end,
                    trim({c('reason_terminated')}) AS reason_terminated,
                    trim({c('reason_changed')}) AS reason_changed,
                    trim({c('from_no')}) AS from_no, trim({c('to_no')}) AS to_no,
                    trim({c('final_number')}) AS final_number,
                    {_declared(c('from_type'))} AS from_decl, {_declared(c('to_type'))} AS to_decl,
                    {_declared(c('final_type'))} AS final_decl,
                    {_blank(c('from_dispname'))} AS from_dispname,
                    {_blank(c('to_dispname'))} AS to_dispname,
                    {_blank(c('final_dispname'))} AS final_dispname,
                    {_blank(c('missed_queue_calls'))} IS NOT NULL AS queue_missed,
                    list_filter(list_transform(
                        string_split(replace(replace(coalesce({c('chain')}, ''), 'Chain:', ''), ';', ','), ','),
                        lambda x: trim(x)), lambda x: x <> '') AS chain_parties
                FROM {{csv}} r
            )
        )
    )
    )"""
    query = f"SELECT * FROM ({_phases(parsed)})"
    raw = csvread.read_csv_into(con, "_legacy", files, physical, query, {"fmts": _TIME_FORMATS}, skip=skip,
                                alias="l", exact_width=True)
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
            l.filename, {raw.line_sql} AS line, l.* EXCLUDE (filename, bad_reason)
        {from_legacy}
        WHERE l.bad_reason IS NULL
    """
    if queue_extensions:  # `--queues`: those parties are queues whatever their type says
        ok = _phases(f"""
            SELECT * EXCLUDE (other_types, kinds, n_seg, first_answered, n_wait, n_talk, queues),
                list_transform(other_types, lambda t, i: CASE WHEN list_contains(queues, {_party('others[i]')})
                                                              THEN 'queue' ELSE t END) AS other_types
            FROM (SELECT o.*, q.queues FROM ({ok}) o CROSS JOIN _legacy_params q)""")
    staging.drop_staging_views(con)
    con.execute("DROP TABLE stg_segments")
    con.execute("DROP TABLE stg_calls")
    con.execute(
        f"""
        CREATE TEMP VIEW stg_segments AS
        SELECT key, seq, NULL::VARCHAR AS source_id, kind,
            to_timestamp(seg_start_us / 1e6) AS start_time,
            CASE WHEN seq = first_answered THEN t_ans
                 WHEN waits OR kind IN ('queue', 'ringing') THEN NULL ELSE to_timestamp(seg_start_us / 1e6) END
                AS answer_time,
            to_timestamp(seg_end_us / 1e6) AS end_time,
            CASE WHEN phase_n = 1 THEN 'exact' ELSE 'estimated' END AS time_quality,
            CASE WHEN source_replaced THEN other_party ELSE anchor_party END AS from_party,
            CASE WHEN source_replaced THEN other_type ELSE anchor_type END AS from_type,
            CASE WHEN source_replaced THEN other_ext ELSE anchor_ext END AS from_ext,
            CASE WHEN source_replaced THEN NULL ELSE from_dispname END AS from_name,
            CASE WHEN source_replaced THEN anchor_party ELSE other_party END AS to_party,
            CASE WHEN source_replaced THEN anchor_type ELSE other_type END AS to_type,
            CASE WHEN source_replaced THEN anchor_ext ELSE other_ext END AS to_ext,
            CASE WHEN seq = n_seg THEN final_dispname WHEN seq = 1 THEN to_dispname END AS to_name,
            NOT waits AND kind IN ('talk', 'voicemail') AS answered,
            CASE WHEN seq = 1 THEN NULL ELSE coalesce(reason_changed, 'transfer') END AS reason,
            call_id,
            NULL::TIMESTAMPTZ AS derived_start_time, NULL::TIMESTAMPTZ AS derived_answer_time,
            NULL::TIMESTAMPTZ AS derived_end_time, NULL::VARCHAR AS derived_quality
        FROM (
            SELECT *,
                CASE WHEN waits THEN span_start_us + (span_end_us - span_start_us) * (seq - 1) // n_wait
                     WHEN seq = first_answered THEN span_start_us
                     ELSE ans_us + (end_us - ans_us) * (seq - first_answered) // n_talk END AS seg_start_us,
                CASE WHEN waits THEN span_start_us + (span_end_us - span_start_us) * seq // n_wait
                     ELSE ans_us + (end_us - ans_us) * (seq - first_answered + 1) // n_talk END AS seg_end_us,
                CASE WHEN waits THEN n_wait ELSE n_talk END AS phase_n
            FROM (
                SELECT *,
                    first_answered = 0 OR seq < first_answered AS waits,
                    CASE WHEN first_answered = 0 OR seq < first_answered THEN epoch_us(t_start)
                         WHEN n_wait = 0 THEN epoch_us(t_start) ELSE ans_us END AS span_start_us,
                    CASE WHEN first_answered = 0 THEN end_us ELSE ans_us END AS span_end_us,
                    CASE kind_class WHEN 'person' THEN CASE WHEN first_answered = 0 OR seq < first_answered
                                                            THEN 'ringing' ELSE 'talk' END
                                    WHEN 'ring_group' THEN 'ringing' ELSE kind_class END AS kind,
                    {_party('anchor')} AS anchor_party, {_ext('anchor', 'anchor_type')} AS anchor_ext,
                    {_party('other')} AS other_party, {_ext('other', 'other_type')} AS other_ext
                FROM (SELECT call_id, key, t_start, t_ans, epoch_us(t_ans) AS ans_us, epoch_us(t_end) AS end_us,
                             reason_changed, source_replaced, from_dispname, to_dispname, final_dispname,
                             anchor, anchor_type, n_seg, n_wait, n_talk, first_answered,
                             unnest(generate_series(1, n_seg)) AS seq, unnest(others) AS other,
                             unnest(other_types) AS other_type, unnest(kinds) AS kind_class
                      FROM ({ok}))
            )
        )
        """
    )
    con.execute(
        f"""
        CREATE TEMP VIEW stg_calls AS
        SELECT key, t_start AS start_time, t_answer AS answer_time, t_end AS end_time,
            CASE WHEN p_types[1] = 'external' THEN 'inbound'
                 WHEN list_contains(p_types, 'external') THEN 'outbound'
                 ELSE 'internal' END AS direction,
            {_party('p[1]')} AS from_party, {_ext('p[1]', 'p_types[1]')} AS from_ext, from_dispname AS from_name,
            {_party("coalesce(nullif(to_no, ''), others[1])")} AS to_party,
            {_ext("coalesce(nullif(to_no, ''), others[1])", "other_types[1]")} AS to_ext,
            {_party('others[-1]')} AS final_party, {_ext('others[-1]', 'other_types[-1]')} AS final_ext,
            final_dispname AS final_name,
            CASE
                WHEN answered AND n_talk > 0 AND NOT list_contains(kinds[first_answered:], 'person')
                     AND list_contains(kinds[first_answered:], 'voicemail') THEN 'voicemail'
                WHEN answered THEN 'answered'
                WHEN reason_terminated IN ('Failed', 'NoRouteExists', 'RouteBusy', 'NotAvailable', 'Rejected')
                    THEN 'failed'
                WHEN queue_missed OR kinds[-1] = 'queue' THEN 'abandoned'
                ELSE 'missed'
            END AS outcome,
            filename AS source_file, line AS source_line, call_id, n_seg::INTEGER AS segment_count
        FROM ({ok})
        """
    )
    return raw


_DUMP_SEPARATOR = re.compile(r"^\s*\|?\s*-{3,}(\s*\+\s*-{3,})+")


def refuse_text_dump(file: str, skip: int = 0) -> None:
    """Refuse a table printed as text (psql, DBeaver: ``cdr_id | call_history_id | ...`` padded columns):
    it is not a CSV, and read as one every row would be quarantined as a wrong field count."""
    with open(file, encoding="utf-8-sig", errors="replace") as handle:
        head = [line.rstrip("\r\n") for line, _ in zip(handle, range(3))]
    first = next((line for line in head if line.strip()), "")
    cells = [x.strip() for x in first.strip().strip("|").split("|")]
    if len(cells) < 3 or first.count("|") <= first.count(","):
        return
    separator = any(_DUMP_SEPARATOR.match(line) for line in head)
    if not separator and not any(normalize_field(x) in FIELDS or x.lower() in ("cdr_id", "call_history_id")
                                 for x in cells):
        return
    table = "cdroutput" if any(x.lower() in ("cdr_id", "call_history_id") for x in cells) else "the CDR table"
    raise InvalidInput(
        f"{file}: this is a text table with '|'-separated, padded columns (what psql or DBeaver print), "
        f"not a CSV export. Export {table} as CSV with a header line instead, e.g. in psql: "
        f"\\copy (SELECT * FROM {table if table == 'cdroutput' else 'cdr'}) TO 'cdroutput.csv' WITH CSV HEADER, "
        "or in DBeaver: Export Data > CSV (delimiter ',', header on top)",
        field="path",
    )
