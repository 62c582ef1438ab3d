"""Asterisk CDRs: ``cdr_csv`` Master.csv, ``cdr_custom`` files, FreePBX ``cdr`` table exports.

Asterisk writes one row per *leg*: a pair of channels, party A (``channel``,
``src``, ``clid``) and party B (``dstchannel``, ``dst``). Rows of one call
share ``linkedid`` (Asterisk 1.8+, cdr_csv with ``newcdrcolumns``); without
it, rows sharing ``uniqueid`` (party A's channel) are one call, and without
either, rows of one channel starting at the same second.

Layouts (recognised from the rows themselves, or given with ``--columns``):

- cdr_csv: ``accountcode, src, dst, dcontext, clid, channel, dstchannel,
  lastapp, lastdata, start, answer, end, duration, billsec, disposition,
  amaflags`` then, as cdr.conf switches them on, ``uniqueid``, ``userfield``
  and ``peeraccount, linkedid, sequence``: 16 to 21 columns. A file whose
  rows change width (an option switched on one day) loads whole.
- cdr_custom: the administrator's template; the sample template writes
  ``clid, src, dst, dcontext, channel, dstchannel, lastapp, lastdata, start,
  answer, end, duration, billsec, disposition, amaflags, accountcode,
  uniqueid, userfield, sequence``.
- FreePBX: its ``cdr`` table exported as CSV with a header; ``calldate`` is
  the start (no answer or end columns: they follow from duration and
  billsec) and ``recordingfile`` names the call's recording.
- PBXware: its ``cdr`` table exported with a header (``AcctId``, then 26
  columns: Asterisk's plus ``tenant``, ``agiuniqueid``, ``trunk``, ``did``,
  ``sipcallid``, ``inboundsipcallid``).

Exports re-saved by a spreadsheet: day-and-month-first dates in the order
the file proves or ``--date-order`` gives (``pbxcsv.choose_date_order``),
``NULL`` cells read as empty.

Parties and extensions: the extension of a party is its device's endpoint
name from the channel (``PJSIP/101-0000002a`` → ``101``), so the directory
lists endpoint names (in FreePBX, the extension numbers). A trunk's side is
external: with ``--trunks`` the named endpoints are trunks; without it, the
side is external when its number has 7+ digits (or came in on a FreePBX
DID) and its endpoint is not named like an extension number. ``Local/``
channels are not parties (``_join_local_halves``). A conference row whose
``dstchannel`` is a phone is that joiner's (``_room_members_as_callers``).
An IVR or announcement row that says ANSWERED was answered by the PBX.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dimnb.errors import InvalidInput
from dimnb.ingest import pbx_recordings, pbxcsv, staging, system
from dimnb.ingest.loader import LoadSummary
from dimnb.ingest.system import LegCsvSystem, LegOptions, LegPlan
from dimnb.sql import quote_identifier
from dimnb.store.stores import Stores

CDR_CSV_BASE = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
    "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)
_NEW = ("peeraccount", "linkedid", "sequence")
# Every width cdr_csv can write; 17 and 20 are ambiguous and told apart by what the extra column holds.
CDR_CSV_LAYOUTS: dict[str, tuple[str, ...]] = {
    "cdr_csv-16": CDR_CSV_BASE,
    "cdr_csv-17": CDR_CSV_BASE + ("uniqueid",),
    "cdr_csv-17-userfield": CDR_CSV_BASE + ("userfield",),
    "cdr_csv-18": CDR_CSV_BASE + ("uniqueid", "userfield"),
    "cdr_csv-19": CDR_CSV_BASE + _NEW,
    "cdr_csv-20": CDR_CSV_BASE + ("uniqueid",) + _NEW,
    "cdr_csv-20-userfield": CDR_CSV_BASE + ("userfield",) + _NEW,
    "cdr_csv-21": CDR_CSV_BASE + ("uniqueid", "userfield") + _NEW,
}
CDR_CUSTOM_DEFAULT = (
    "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata", "start", "answer", "end",
    "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid", "userfield", "sequence",
)
FREEPBX_ONLY = ("calldate", "did", "recordingfile", "cnum", "cnam", "outbound_cnum", "outbound_cnam", "dst_cnam")
# Bicom PBXware's ``cdr`` table: the Asterisk columns plus its own (an export starts with the row's AcctId).
PBXWARE_ONLY = ("acctid", "tenant", "agiuniqueid", "trunk", "sipcallid", "inboundsipcallid")
FIELDS = CDR_CSV_BASE + ("uniqueid", "userfield") + _NEW + FREEPBX_ONLY + PBXWARE_ONLY
NAMED_LAYOUTS = {"cdr_custom": CDR_CUSTOM_DEFAULT, **CDR_CSV_LAYOUTS}

DISPOSITIONS = {"ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"}
AMAFLAGS = {"DOCUMENTATION", "BILLING", "BILL", "OMIT", "IGNORE", "DEFAULT", "UNKNOWN", ""}
# Channel technologies whose name carries the device's endpoint (PJSIP/101-0000002a). DAHDI/1-1 names a port.
DEVICE_TECHS = ["SIP", "PJSIP", "IAX2", "SCCP", "SKINNY", "MGCP", "UNISTIM", "MOTIF", "OOH323", "H323", "WEBRTC"]
# A channel of one of them, whatever the case (a regex: an IN list on upper(split_part(...)) costs 3x more).
DEVICE_RE = "^(?i:" + "|".join(DEVICE_TECHS) + ")/"

DEFAULT_RECORDING_PATTERN = "*{uniqueid}.*"

_TIME = re.compile(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$|^\d{9,10}(\.\d+)?$"
                   r"|^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}[ T]\d{1,2}:\d{2}(:\d{2})?$")
_UID = re.compile(r"^(?:\S*-)?\d{9,10}\.\d+$")
_INT = re.compile(r"^-?\d+$")


# ------------------------------------------------------------------------------------------ layouts


def check_columns(names: Sequence[str]) -> None:
    if "start" not in names and "calldate" not in names:
        raise InvalidInput("the column list must include start (or FreePBX's calldate)", field="columns")
    if not {"linkedid", "uniqueid", "channel"} & set(names):
        raise InvalidInput("the column list must include linkedid, uniqueid or channel (to tell calls apart)",
                           field="columns")
    if "end" not in names and "duration" not in names:
        raise InvalidInput("the column list must include end or duration", field="columns")


def _fit(row: Sequence[str], layout: Sequence[str]) -> int | None:
    """How well a data row fits a layout: None when it cannot be that layout, else a score."""
    f = {name: value.strip() for name, value in zip(layout, row)}
    if not _TIME.match(f["start"]):
        return None
    for name in ("answer", "end"):
        if f.get(name) and not _TIME.match(f[name]):
            return None
    for name in ("duration", "billsec"):
        if not _INT.match(f.get(name, "")):
            return None
    if f["disposition"].upper() not in DISPOSITIONS:
        return None
    score = 1 if f["amaflags"].upper() in AMAFLAGS or f["amaflags"].isdigit() else -1
    score += 1 if "/" in f["channel"] or not f["channel"] else -1
    if "sequence" in f and not _INT.match(f["sequence"]):
        return None
    for name in ("uniqueid", "linkedid"):
        if name in f:
            score += 2 if _UID.match(f[name]) else -2
    if "userfield" in f and _UID.match(f["userfield"]):
        score -= 1  # a uniqueid-looking extra column is the uniqueid
    return score


def _best_layout(rows: Sequence[Sequence[str]], candidates: dict[str, tuple[str, ...]]) -> str | None:
    best: tuple[int, int, str] | None = None
    for name, layout in candidates.items():
        scores = [_fit(r, layout) for r in rows if len(r) == len(layout)]
        fitting = [s for s in scores if s is not None]
        if not fitting:
            continue
        key = (len(fitting), sum(fitting), name)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


Plan = LegPlan
TIME_FIELDS = ("start", "answer", "end", "calldate")


def plan_layout(path: Path, columns: list[str] | None) -> Plan:
    """Recognise a file's layout (header, cdr_csv width, cdr_custom default) unless ``--columns`` says it."""
    line = pbxcsv.first_line(path)
    declared = pbxcsv.header_columns(line, FIELDS) if line else None
    if declared is not None:
        names = columns or declared
        check_columns(names)
        kind = ("asterisk-pbxware" if "tenant" in names or "acctid" in names
                else "asterisk-freepbx" if "calldate" in names or "recordingfile" in names else "asterisk-header")
        return Plan(kind, names, skip=1, delimiter=pbxcsv.header_delimiter(line))
    if columns:
        return Plan("asterisk-columns", columns, delimiter=pbxcsv.header_delimiter(line) if line else ",")
    rows = pbxcsv.sample_rows(path)
    if not rows:
        return Plan("asterisk-cdr_csv", list(CDR_CSV_LAYOUTS["cdr_csv-16"]))
    candidates = {**CDR_CSV_LAYOUTS, "cdr_custom": CDR_CUSTOM_DEFAULT}
    chosen: dict[int, str] = {}
    for width in sorted({len(r) for r in rows}):
        name = _best_layout(rows, {k: v for k, v in candidates.items() if len(v) == width})
        if name:
            chosen[width] = name
    if not chosen:
        seen = ", ".join(str(w) for w, _n in Counter(len(r) for r in rows).most_common())
        raise InvalidInput(
            f"{path}: not an Asterisk cdr_csv file or the default cdr_custom layout ({seen} fields per row); "
            "give its column order with --columns",
            field="columns",
        )
    if any(name == "cdr_custom" for name in chosen.values()):
        return Plan("asterisk-cdr_custom", list(CDR_CUSTOM_DEFAULT))
    # Read with the widest layout seen (DuckDB would cut a wider row short); narrower rows are read again.
    widths = {len(v): list(v) for k, v in CDR_CSV_LAYOUTS.items() if not k.endswith("-userfield")}
    widths.update({w: list(CDR_CSV_LAYOUTS[n]) for w, n in chosen.items()})
    main = max(chosen)
    return Plan("asterisk-cdr_csv", list(CDR_CSV_LAYOUTS[chosen[main]]), widths=widths)


# ------------------------------------------------------------------------------------------ staging


@dataclass
class Options(LegOptions):
    trunks: list[str] = field(default_factory=list)


def trunk_regex(trunks: Sequence[str]) -> str:
    """A regex matching exactly the names ``trunks`` (every character but letters and digits written as
    ``\\x{..}``). A list lookup of five names or more would run as a join, which loses the rows' order."""
    def literal(name: str) -> str:
        return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):X}}}" for c in name)

    return "(?:" + "|".join(literal(t) for t in trunks) + ")"


def _party_sql(source: str, has_trunks: bool) -> str:
    """Both sides of each leg, from channel/src (party A) and dstchannel/dst (party B), over ``source``.

    Uses ``$device_re`` (``DEVICE_RE``) and ``$trunk_re`` (``trunk_regex``) when trunks are given.
    """
    ext_num = pbxcsv.EXTENSION_NUMBER_RE
    external = pbxcsv.EXTERNAL_NUMBER_RE
    token = pbxcsv.EXTENSION_TOKEN_RE
    # PJSIP/101-0000002a -> 101: the hex counter and the '-'s before it dropped, as rtrim(rtrim(name, <hex
    # digits>), '-') would (rtrim with a set of characters costs several times a regex). A name whose last '-'
    # is followed by hex digits only (every channel Asterisk makes) needs one regex that stops at a '-'; any
    # other name with a '-' takes the exact one, which tries every position and costs 3x more.
    def endpoint(name: str, cut: str) -> str:
        return (f"nullif(CASE WHEN strlen({cut}) < strlen({name}) OR NOT contains({name}, '-') THEN {cut} "
                f"ELSE regexp_replace({name}, '-*[0-9a-fA-F]*$', '') END, '')")

    def is_trunk(ep: str) -> str:
        return f"regexp_full_match({ep}, $trunk_re)"

    from_trunk = (f"WHEN f_ep IS NOT NULL THEN {is_trunk('f_ep')}" if has_trunks
                  else f"WHEN f_ep IS NOT NULL AND regexp_full_match(f_ep, '{ext_num}') THEN false")
    to_device = (f"WHEN t_ep IS NOT NULL THEN CASE WHEN {is_trunk('t_ep')} THEN 'external' ELSE 'extension' END"
                 if has_trunks else
                 f"""WHEN t_ep IS NOT NULL AND regexp_full_match(t_ep, '{ext_num}') THEN 'extension'
                     WHEN t_ep IS NOT NULL
                         THEN CASE WHEN coalesce(regexp_full_match(dst, '{external}'), false) THEN 'external'
                                   ELSE 'extension' END""")
    return f"""
        SELECT *,
            CASE WHEN from_type = 'extension'
                 THEN coalesce(f_ep, CASE WHEN regexp_full_match(src, '{token}') THEN src END) END AS from_ext,
            CASE WHEN to_type = 'extension'
                 THEN coalesce(t_ep, CASE WHEN regexp_full_match(t_num, '{token}') THEN t_num END) END AS to_ext
        FROM (
            SELECT *,
                CASE
                    WHEN from_external THEN 'external'
                    WHEN src IS NULL AND (f_ep IS NULL OR NOT regexp_full_match(f_ep, '{ext_num}')) THEN 'other'
                    ELSE 'extension' END AS from_type,
                CASE
                    WHEN app IN ('confbridge', 'meetme') THEN 'conference'
                    WHEN app = 'voicemail' AND (dstchannel IS NULL OR dstchannel LIKE 'Local/%') THEN 'voicemail'
                    WHEN app = 'queue' AND dstchannel IS NULL THEN 'queue'
                    {to_device}
                    WHEN dstchannel IS NOT NULL OR app IS NULL OR app IN ('dial', 'followme', 'page')
                        THEN CASE WHEN coalesce(regexp_full_match(t_num, '{external}'), false) THEN 'external'
                                  WHEN coalesce(regexp_full_match(t_num, '{token}'), false) THEN 'extension'
                                  ELSE 'other' END
                    ELSE 'ivr' END AS to_type
            FROM (
                SELECT *,
                    CASE {from_trunk}
                         ELSE did IS NOT NULL OR coalesce(regexp_full_match(src, '{external}'), false)
                    END AS from_external,
                    CASE WHEN dstchannel LIKE 'Local/%' THEN regexp_extract(dstchannel, '^Local/([^@;]+)', 1)
                         ELSE dst END AS t_num
                FROM (
                    SELECT *, {endpoint('f_name', 'f_cut')} AS f_ep, {endpoint('t_name', 't_cut')} AS t_ep
                    FROM (
                        SELECT *, regexp_replace(f_name, '-+[0-9a-fA-F]*$', '') AS f_cut,
                            regexp_replace(t_name, '-+[0-9a-fA-F]*$', '') AS t_cut
                        FROM (
                            -- a device's name: what follows TECH/
                            SELECT *,
                                CASE WHEN regexp_matches(channel, $device_re) THEN split_part(channel, '/', 2) END
                                    AS f_name,
                                CASE WHEN regexp_matches(dstchannel, $device_re) THEN split_part(dstchannel, '/', 2) END
                                    AS t_name
                            FROM ({source})
                        )
                    )
                )
            )
        )
    """


def stage(con: duckdb.DuckDBPyConnection, file: str, plan: Plan, options: Options, notes: list[str]) -> None:
    """Read one Asterisk CDR file into the staging tables; link its recordings.

    The staged segments are a view on what the read left (the merge reads them once): it is dropped when the
    next file is staged.
    """
    pbxcsv.limit_memory(con)
    pbxcsv.drop_legs(con)
    pbxcsv.drop_typed(con, "_ast")
    columns = set(plan.columns) | {c for w in plan.widths.values() for c in w}
    params: dict[str, object] = {**pbxcsv.time_params(options.zone, plan.date_order), "device_re": DEVICE_RE}
    if options.trunks:
        params["trunk_re"] = trunk_regex(options.trunks)

    def field_sql(name: str) -> str:
        return f"nullif({quote_identifier(name)}, 'NULL')" if plan.null_text else quote_identifier(name)

    def v(name: str) -> str:
        # Asterisk pads nothing; trimming every field would cost a fifth of the load.
        return f"nullif({field_sql(name)}, '')"

    def t(name: str) -> str:
        return pbxcsv.trimmed(field_sql(name))

    def typed(source: str) -> str:
        source = _room_members_as_callers(source, field_sql)
        inner = f"""
            SELECT filename,
                coalesce({t('start')}, {t('calldate')}) AS start_text,
                {t('answer')} AS answer_text, {t('end')} AS end_text,
                NULL::TIMESTAMPTZ AS start_exact, NULL::TIMESTAMPTZ AS answer_exact, NULL::TIMESTAMPTZ AS end_exact,
                TRY_CAST({v('duration')} AS DOUBLE) AS duration_s, TRY_CAST({v('billsec')} AS DOUBLE) AS billsec_s,
                upper({v('disposition')}) = 'ANSWERED' AS answered_hint,
                upper({v('disposition')}) AS disposition,
                {v('clid')} AS clid, {v('src')} AS src, {v('dst')} AS dst,
                {v('channel')} AS channel, {v('dstchannel')} AS dstchannel,
                lower({v('lastapp')}) AS app, {v('lastdata')} AS lastdata,
                {v('uniqueid')} AS uniqueid, {v('linkedid')} AS linkedid,
                TRY_CAST({v('sequence')} AS BIGINT) AS sequence,
                {v('did')} AS did, {v('recordingfile')} AS recordingfile, {v('cnam')} AS cnam,
                {v('dst_cnam')} AS dst_cnam,
                coalesce({v('linkedid')}, {v('uniqueid')},
                         coalesce({v('channel')}, '') || '@' || coalesce({v('start')}, {v('calldate')}, '')) AS key
            FROM {source}
        """
        timed = pbxcsv.timed_select(inner, options.zone, start_name="start" if "start" in columns else "calldate",
                                    answer_name="answer", end_name="end", has_answer="answer" in columns)
        return f"""
            SELECT filename, key, time_problem AS reason,
                -- kept for the Local-channel join and the time zone check
                linkedid IS NOT NULL AS has_linkedid, uniqueid, start_local, t_start, t_end,
                CASE WHEN channel LIKE 'Local/%' THEN regexp_replace(channel, ';[0-9]+$', '') END AS local_channel,
                CASE WHEN dstchannel LIKE 'Local/%' THEN regexp_replace(dstchannel, ';[0-9]+$', '') END
                    AS local_dstchannel,
                CASE WHEN channel LIKE 'Local/%' THEN TRY_CAST(regexp_extract(channel, ';([0-9]+)$', 1) AS INTEGER) END
                    AS local_half,
                dstchannel IS NOT NULL AS has_dstchannel,
                coalesce(sequence, 0) AS leg_order,
                hash(start_text, end_text, disposition, channel, dstchannel, app, uniqueid, sequence) AS row_hash,
                t_answer, {pbxcsv.time_quality_sql()} AS time_quality,
                CASE WHEN from_type = 'extension' THEN coalesce(src, from_ext) ELSE src END AS from_party,
                from_type, from_ext,
                -- "Name" <number>: the name (trim with a set of characters is slow: only for other forms)
                coalesce(cnam, CASE WHEN regexp_matches(clid, '^"[^" <]([^"<]*[^" <])?" <') THEN split_part(clid, '"', 2)
                                    WHEN contains(clid, '<') THEN nullif(trim(split_part(clid, '<', 1), ' "'), '') END)
                    AS from_name,
                CASE WHEN to_type = 'extension' THEN coalesce(to_ext, t_num)
                     WHEN to_type IN ('conference', 'queue', 'voicemail')
                         THEN coalesce(nullif(split_part(split_part(lastdata, ',', 1), '@', 1), ''), dst)
                     ELSE t_num END AS to_party,
                to_type, to_ext, dst_cnam AS to_name, dst AS dialled,
                CASE WHEN to_type IN ('conference', 'voicemail', 'queue', 'ivr') THEN to_type
                     WHEN answered_hint AND t_answer IS NOT NULL THEN 'talk' ELSE 'ringing' END AS kind,
                -- an IVR or announcement that answered (Playback, Background, Record, ...) is the PBX answering
                to_type <> 'queue' AND answered_hint AND t_answer IS NOT NULL AS answered,
                disposition IN ('BUSY', 'FAILED', 'CONGESTION') AS failure,
                recordingfile, NULL::BOOLEAN AS plumbing
            FROM ({_party_sql(timed, bool(options.trunks))})
        """

    rows = pbxcsv.read_typed(con, file, plan.columns, FIELDS, typed, params, skip=plan.skip,
                             delimiter=plan.delimiter, widths=plan.widths or None, name="_ast")
    if rows.rescued_encoding:
        notes.append(f"{Path(file).name}: {rows.rescued_encoding} rows hold bytes that are not UTF-8; "
                     "they are loaded with those bytes shown as \\xNN")
    _check_zone_against_uniqueids(con, rows.table, options.zone, notes, Path(file).name)
    _join_local_halves(con, rows.table)
    pbxcsv.quarantine_bad_calls(con, rows, "linkedid" if "linkedid" in columns else "call", file, plan.delimiter)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW _legs AS
        SELECT _rowid AS rid, filename AS file, line, key,
            CASE WHEN local_half = 1 AND plumbing THEN 1 ELSE 0 END AS rank, leg_order, row_hash, uniqueid AS source_id,
            t_start AS start_time, t_answer AS answer_time, t_end AS end_time, time_quality,
            from_party, from_type, from_ext, from_name, to_party, to_type, to_ext, to_name, dialled,
            kind, answered, failure,
            NOT coalesce(plumbing, false) AS is_segment,
            recordingfile, strftime(start_local, '%Y/%m/%d') AS local_day
        FROM {rows.view}
        """
    )
    pbxcsv.order_legs(con, staging.next_call_id(con))
    pbxcsv.stage_legs(con)
    root = options.recordings
    if root is None and (Path(file).parent / "monitor").is_dir():
        root = Path(file).parent / "monitor"
    pbx_recordings.stage(
        con, system="asterisk", root=root, pattern=pbx_recordings.compile_pattern(options.recording_pattern),
        zone=options.zone, notes=notes, progress=options.progress,
    )


def _room_members_as_callers(source: str, field_sql: Callable[[str], str]) -> str:
    """``source`` with each conference joiner made the calling side of its row.

    PBXware, and ConfBridge/MeetMe setups that dial people into a room, write
    one row per joiner whose ``src``/``dst`` are the room's organiser and
    number and whose ``dstchannel`` is the joiner's phone: the joiner is who
    took part (from that row's start to its end), so their channel becomes
    the row's ``channel`` and the organiser's number and name are dropped.
    """
    joiner = (f"lower({field_sql('lastapp')}) IN ('confbridge', 'meetme') "
              f"AND regexp_matches({field_sql('dstchannel')}, $device_re)")
    replaced = ", ".join(
        f"CASE WHEN _in_room THEN {new} ELSE {quote_identifier(name)} END AS {quote_identifier(name)}"
        for name, new in (("channel", quote_identifier("dstchannel")), ("dstchannel", "NULL"), ("src", "NULL"),
                          ("clid", "NULL"), ("cnam", "NULL"))
    )
    return f"(SELECT * EXCLUDE (_in_room) REPLACE ({replaced}) FROM (SELECT *, coalesce({joiner}, false) AS _in_room FROM {source}))"


def _join_local_halves(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Join the two halves of Local channels into their call, and mark the rows that are only their plumbing.

    Without linkedid each half has its own uniqueid: a ``;2`` half joins the
    call of the row that dialled its ``;1`` half (a ring group's fan-out),
    or of the ``;1`` half's own row (a call file's originate), when they
    name the same Local channel and ran at the same time. Then (``plumbing``:
    no segment of its own):

    - a fan-out row towards ``Local/x;1`` whose ``;2`` half, which dials the
      real phone, is in the call, unless it is the row where the caller
      reached voicemail (``lastapp=VoiceMail`` keeps its row wherever it sits);
    - a ``;2`` half that reached nobody, behind such a voicemail row (FreePBX's
      "press 0 for the operator" way out);
    - an originate's ``;1`` half (it only runs the application) when its
      ``;2`` half is in the call.
    """
    has_local = con.execute(
        f"SELECT count(*) FROM {table} WHERE local_dstchannel IS NOT NULL OR local_channel IS NOT NULL"
    ).fetchone()[0]
    if not has_local:
        return
    overlaps = ("b.t_start BETWEEN a.t_start - INTERVAL 2 SECOND AND coalesce(a.t_end, a.t_start) + INTERVAL 2 SECOND"
                " AND NOT b.has_linkedid")
    if con.execute(f"SELECT count(*) FROM {table} WHERE local_channel IS NOT NULL AND NOT has_linkedid").fetchone()[0]:
        con.execute(
            f"""
            UPDATE {table} b SET key = a.key
            FROM (SELECT local_dstchannel AS base, key, t_start, t_end
                  FROM {table} WHERE local_dstchannel IS NOT NULL AND t_start IS NOT NULL) a
            WHERE b.local_channel = a.base AND {overlaps}
            """
        )
        con.execute(
            f"""
            UPDATE {table} b SET key = a.key
            FROM (SELECT local_channel AS base, key, t_start, t_end
                  FROM {table} WHERE local_half = 1 AND NOT has_linkedid AND t_start IS NOT NULL) a
            WHERE b.local_channel = a.base AND b.local_half = 2 AND b.key <> a.key AND {overlaps}
            """
        )
    con.execute(
        f"""
        UPDATE {table} a SET plumbing = true
        FROM (SELECT DISTINCT key, local_channel AS base FROM {table} WHERE local_channel IS NOT NULL) h
        WHERE h.key = a.key AND h.base = a.local_dstchannel AND a.to_type <> 'voicemail'
        """
    )
    con.execute(
        f"""
        UPDATE {table} b SET plumbing = true
        FROM (SELECT DISTINCT key, local_dstchannel AS base FROM {table}
              WHERE local_dstchannel IS NOT NULL AND to_type = 'voicemail') v
        WHERE v.key = b.key AND v.base = b.local_channel AND b.local_half = 2 AND NOT b.has_dstchannel
        """
    )
    con.execute(
        f"""
        UPDATE {table} a SET plumbing = true
        FROM (SELECT DISTINCT key, local_channel AS base FROM {table} WHERE local_half = 2) h
        WHERE h.key = a.key AND h.base = a.local_channel AND a.local_half = 1 AND NOT a.has_dstchannel
        """
    )


def _check_zone_against_uniqueids(con: duckdb.DuckDBPyConnection, table: str, zone: str, notes: list[str],
                                  name: str) -> None:
    """A uniqueid begins with the Unix time its channel was made: compare it with the start read as local time."""
    row = con.execute(
        f"""
        WITH s AS (
            SELECT epoch(start_local::TIMESTAMPTZ) - TRY_CAST(regexp_extract(uniqueid, '([0-9]{{9,10}})\\.[0-9]+$', 1) AS BIGINT)
                       AS observed,
                   epoch(start_local::TIMESTAMPTZ) - epoch(t_start) AS expected
            FROM {table}
            WHERE uniqueid IS NOT NULL AND start_local IS NOT NULL AND t_start IS NOT NULL
            USING SAMPLE 2000 ROWS
        )
        SELECT count(*), count(*) FILTER (WHERE abs(observed - expected) > 450),
               mode(round(observed / 900) * 900) FILTER (WHERE abs(observed - expected) > 450)
        FROM s WHERE observed IS NOT NULL
        """
    ).fetchone()
    total, off, offset = row
    if total and off > total / 2 and offset is not None:
        sign = "+" if offset >= 0 else "-"
        hours, minutes = divmod(abs(int(offset)) // 60, 60)
        notes.append(
            f"{name}: times were read as {'UTC' if pbxcsv.is_utc(zone) else zone + ' local time'}, but the uniqueids "
            f"(Unix times) say the PBX clock ran at "
            f"UTC{sign}{hours:02d}:{minutes:02d}; if so, load into a new data directory with --timezone set to the "
            "PBX's zone"
        )


# ------------------------------------------------------------------------------------------ the command


class Asterisk(LegCsvSystem[Options]):
    """Asterisk, FreePBX and PBXware CDR files (``dimnb.ingest.system``'s template)."""

    name = "asterisk"
    label = "Asterisk"
    fields = FIELDS
    layouts = NAMED_LAYOUTS

    @staticmethod
    def check_columns(names: Sequence[str]) -> None:
        check_columns(names)

    def is_cdr_file(self, candidate: Path, folder: Path) -> bool:
        return is_cdr_file(candidate, folder)

    def plan_file(self, path: Path) -> Plan:
        return self.plan_dates_and_nulls(path, plan_layout(path, self.columns), TIME_FIELDS)

    def stage_file(self, con: duckdb.DuckDBPyConnection, file: str, plan: Plan) -> None:
        stage(con, file, plan, self.options, self.staged_notes)


parse_columns = Asterisk.parse_columns
header_columns = Asterisk.header_columns


def is_cdr_file(candidate: Path, folder: Path) -> bool:
    """In a folder given: ``*.csv`` and rotated ``*.csv.1`` / ``*.csv-20260301`` files, not recordings."""
    return (".csv" in candidate.name.lower() and candidate.suffix.lower() not in pbx_recordings.AUDIO_SUFFIXES
            and "monitor" not in candidate.relative_to(folder).parts)


def load_asterisk(
    stores: Stores,
    paths: Iterable[str | Path],
    *,
    columns: str | Sequence[str] | None = None,
    timezone: str | None = None,
    recordings: Path | str | None = None,
    recording_pattern: str | None = None,
    trunks: Sequence[str] = (),
    date_order: str | None = None,
    progress: bool = False,
) -> LoadSummary:
    """Load Asterisk CDRs (cdr_csv, cdr_custom, FreePBX and PBXware exports) and link their recordings."""
    options = Options(
        zone=pbxcsv.resolve_zone(timezone), zone_given=timezone is not None,
        recordings=Path(recordings) if recordings else None,
        recording_pattern=recording_pattern or DEFAULT_RECORDING_PATTERN,
        date_order=pbxcsv.check_date_order(date_order), progress=progress,
        trunks=[t.strip() for t in trunks if t.strip()],
    )
    pbx_recordings.check_options(options.recordings, options.recording_pattern)
    return system.load(stores, Asterisk(options, columns), paths, progress=progress)
