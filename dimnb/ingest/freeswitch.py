"""FreeSWITCH ``mod_cdr_csv`` files: the "example" template, and any template given as a column list.

One row per leg (``legs="a"``, the default, writes the A-legs only; ``"ab"``
both). A leg's ``uuid`` is its id; an A-leg names the leg it was bridged to
in ``bleg_uuid``. Legs joined that way are one call, keyed by the uuid of its
earliest leg. The A-leg describes the call (who called, what was dialled);
the segments are its B-legs, or the A-leg itself when no B-leg was written.

Templates recognised without ``--columns`` (by field count): "example"
(15 fields), the same without the codecs (13, as in mod_cdr_sqlite's
example), "snom" (20, with ``sofia_record_file``). ``*_stamp`` times are
local; ``*_epoch`` / ``*_uepoch`` columns, when a template has them, are
UTC and win.

A file re-saved by a spreadsheet loads too: quotes gone, times without
seconds (the end and answer then follow from duration and billsec, and are
marked ``estimated``), months without a leading zero. A uuid seen twice is
one leg: the first row counts, the others are reported as duplicates.

Extensions: a ``caller_id_number`` or ``destination_number`` that belongs to
a user in the directory is an extension whatever its length (FreeSWITCH
users are often 8-digit numbers); so is one that ``--extensions`` names (a
regex, or ranges like ``1000-1999,20172519``, for users not yet in the
directory). Any other number is an extension when it looks like one (up to 6
digits, or a name the directory could hold); numbers of 7+ digits, and
callers in the ``public`` context, are external. The summary says how many
numbers each rule decided.

A B-leg's caller id is what its callee was shown (``effective_caller_id_*``,
often the company's number): the caller of the A-leg it was bridged to is
who the callee talked to, so that B-leg's segment starts from the A-leg's
caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dimnb.errors import InvalidInput
from dimnb.ingest import pbx_recordings, pbxcsv, staging, system
from dimnb.ingest.loader import LoadSummary
from dimnb.ingest.system import LegCsvSystem, LegOptions, LegPlan
from dimnb.sql import quote_identifier
from dimnb.store.stores import Stores

EXAMPLE = (
    "caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp", "answer_stamp",
    "end_stamp", "duration", "billsec", "hangup_cause", "uuid", "bleg_uuid", "accountcode", "read_codec",
    "write_codec",
)
SNOM = EXAMPLE + ("sip_user_agent", "call_clientcode", "sip_rtp_rxstat", "sip_rtp_txstat", "sofia_record_file")
TEMPLATES: dict[str, tuple[str, ...]] = {"example": EXAMPLE, "example-nocodecs": EXAMPLE[:13], "snom": SNOM}
FIELDS = SNOM + (
    "start_epoch", "answer_epoch", "end_epoch", "start_uepoch", "answer_uepoch", "end_uepoch",
    "hangup_cause_q850", "direction", "last_app", "last_arg", "sip_hangup_disposition",
    "effective_caller_id_name", "effective_caller_id_number", "network_addr", "recordingfile",
)
# Hangup causes that mean the call could not be put through (Q.850 names as FreeSWITCH writes them).
FAILURE_CAUSES = [
    "USER_BUSY", "CALL_REJECTED", "UNALLOCATED_NUMBER", "NO_ROUTE_DESTINATION", "NO_ROUTE_TRANSIT_NET",
    "NORMAL_TEMPORARY_FAILURE", "NETWORK_OUT_OF_ORDER", "DESTINATION_OUT_OF_ORDER", "INVALID_NUMBER_FORMAT",
    "SERVICE_UNAVAILABLE", "INCOMPATIBLE_DESTINATION", "FACILITY_REJECTED", "SUBSCRIBER_ABSENT",
    "EXCHANGE_ROUTING_ERROR", "GATEWAY_DOWN", "NORMAL_CIRCUIT_CONGESTION", "SWITCH_CONGESTION",
    "MANDATORY_IE_MISSING", "BEARERCAPABILITY_NOTAVAIL", "OUTGOING_CALL_BARRED", "INCOMING_CALL_BARRED",
    "NUMBER_CHANGED", "CHAN_NOT_IMPLEMENTED",
]
# The same as one regex (a list lookup in a read would run as a join, which loses the rows' order).
FAILURE_RE = "|".join(FAILURE_CAUSES)
DEFAULT_RECORDING_PATTERN = "*{uuid}*"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TIME = re.compile(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$"
                   r"|^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}[ T]\d{1,2}:\d{2}(:\d{2})?$")


def check_columns(names: Sequence[str]) -> None:
    if "uuid" not in names:
        raise InvalidInput("the column list must include uuid", field="columns")
    if not {"start_stamp", "start_epoch", "start_uepoch"} & set(names):
        raise InvalidInput("the column list must include start_stamp (or start_epoch / start_uepoch)",
                           field="columns")
    if not {"end_stamp", "end_epoch", "end_uepoch", "duration"} & set(names):
        raise InvalidInput("the column list must include end_stamp (or end_epoch / end_uepoch) or duration",
                           field="columns")


Plan = LegPlan
TIME_FIELDS = ("start_stamp", "answer_stamp", "end_stamp")


def plan_layout(path: Path, columns: list[str] | None) -> Plan:
    """Recognise a file's template (header, or the example/snom templates) unless ``--columns`` says it."""
    line = pbxcsv.first_line(path)
    declared = pbxcsv.header_columns(line, FIELDS) if line else None
    if declared is not None:
        names = columns or declared
        check_columns(names)
        return Plan("freeswitch-header", names, skip=1, delimiter=pbxcsv.header_delimiter(line))
    if columns:
        return Plan("freeswitch-columns", columns, delimiter=pbxcsv.header_delimiter(line) if line else ",")
    rows = pbxcsv.sample_rows(path)
    for name, layout in TEMPLATES.items():
        fitting = [r for r in rows if len(r) == len(layout)]
        fits = sum(1 for r in fitting if _UUID.match(r[10].strip()) and _TIME.match(r[4].strip()))
        if fits and fits * 2 >= len(fitting):  # most rows of that width look like the template (some may be bad)
            return Plan(f"freeswitch-{name}", list(layout))
    if not rows:
        return Plan("freeswitch-example", list(EXAMPLE))
    raise InvalidInput(
        f"{path}: not FreeSWITCH's example template ({len(rows[0])} fields in the first row, uuid and start_stamp "
        "not where it puts them); give the template's variables with --columns",
        field="columns",
    )


@dataclass(frozen=True)
class ExtensionRule:
    """``--extensions``: numbers that are extensions whatever their length (a regex, or ranges and numbers)."""

    text: str
    regex: str | None = None
    ranges: tuple[tuple[str, str], ...] = ()

    def sql(self, column: str) -> tuple[str, dict[str, object]]:
        """A condition on ``column`` and its parameters (names prefixed ``ext_``)."""
        if self.regex is not None:
            return f"coalesce(regexp_full_match({column}, $ext_re), false)", {"ext_re": self.regex}
        parts, params = [], {}
        for i, (low, high) in enumerate(self.ranges):
            params[f"ext_lo{i}"], params[f"ext_hi{i}"] = int(low), int(high)
            params[f"ext_len{i}"], params[f"ext_len_hi{i}"] = len(low), len(high)
            parts.append(f"(strlen({column}) BETWEEN $ext_len{i} AND $ext_len_hi{i} "
                         f"AND TRY_CAST({column} AS HUGEINT) BETWEEN $ext_lo{i} AND $ext_hi{i})")
        return f"coalesce(regexp_full_match({column}, '[0-9]+') AND ({' OR '.join(parts)}), false)", params


_RANGES = re.compile(r"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$")


def parse_extensions(spec: str | None) -> ExtensionRule | None:
    """``--extensions``: ranges and numbers (``1000-1999,20172519``), else a regular expression."""
    if spec is None or not spec.strip():
        return None
    if _RANGES.match(spec):
        ranges = []
        for part in spec.split(","):
            low, _, high = (p.strip() for p in part.partition("-"))
            high = high or low
            if int(high) < int(low):
                raise InvalidInput(f"--extensions: the range {part.strip()} ends before it starts", field="extensions")
            ranges.append((low, high))
        return ExtensionRule(spec.strip(), ranges=tuple(ranges))
    try:
        re.compile(spec)
    except re.error as exc:
        raise InvalidInput(f"--extensions: {spec!r} is neither ranges like 1000-1999,20172519 nor a regular "
                           f"expression ({exc})", field="extensions") from None
    return ExtensionRule(spec.strip(), regex=spec.strip())


@dataclass
class Options(LegOptions):
    extensions: ExtensionRule | None = None


def _epoch(name: str, columns: set[str], scale: float, field_sql: Callable[[str], str]) -> str:
    if name not in columns:
        return "NULL::TIMESTAMPTZ"
    value = f"TRY_CAST(nullif(trim({field_sql(name)}), '') AS DOUBLE)"
    return f"CASE WHEN {value} > 0 THEN to_timestamp({value} / {scale}) END"


def stage(con: duckdb.DuckDBPyConnection, file: str, plan: Plan, options: Options, notes: list[str]) -> None:
    """Read one FreeSWITCH CDR file into the staging tables; link its recordings.

    The staged segments are a view on what the read left (the merge reads them once): it is dropped when the
    next file is staged.
    """
    pbxcsv.limit_memory(con)
    pbxcsv.drop_legs(con)
    pbxcsv.drop_typed(con, "_fs")
    columns = set(plan.columns)

    def field_sql(name: str) -> str:
        return f"nullif({quote_identifier(name)}, 'NULL')" if plan.null_text else quote_identifier(name)

    def v(name: str) -> str:
        return pbxcsv.trimmed(field_sql(name))

    def exact(kind: str) -> str:
        return (f"coalesce({_epoch(kind + '_uepoch', columns, 1e6, field_sql)}, "
                f"{_epoch(kind + '_epoch', columns, 1.0, field_sql)})")

    external = pbxcsv.EXTERNAL_NUMBER_RE
    token = pbxcsv.EXTENSION_TOKEN_RE

    def typed(source: str) -> str:
        inner = f"""
            SELECT filename,
                {v('start_stamp')} AS start_text, {v('answer_stamp')} AS answer_text, {v('end_stamp')} AS end_text,
                {exact('start')} AS start_exact, {exact('answer')} AS answer_exact, {exact('end')} AS end_exact,
                TRY_CAST({v('duration')} AS DOUBLE) AS duration_s, TRY_CAST({v('billsec')} AS DOUBLE) AS billsec_s,
                TRY_CAST({v('billsec')} AS DOUBLE) > 0 AS answered_hint,
                lower({v('uuid')}) AS uuid, lower({v('bleg_uuid')}) AS bleg_uuid,
                {v('caller_id_name')} AS cid_name, {v('caller_id_number')} AS cid_number,
                {v('destination_number')} AS destination, lower({v('context')}) AS context,
                upper({v('hangup_cause')}) AS hangup_cause, lower({v('last_app')}) AS app,
                coalesce({v('recordingfile')}, {v('sofia_record_file')}) AS recordingfile
            FROM {source}
        """
        timed = pbxcsv.timed_select(inner, options.zone, start_name="start_stamp", answer_name="answer_stamp",
                                    end_name="end_stamp",
                                    has_answer=bool({"answer_stamp", "answer_epoch", "answer_uepoch"} & columns))
        return f"""
            SELECT filename, uuid AS key, uuid, bleg_uuid,
                CASE WHEN uuid IS NULL THEN 'no uuid' ELSE time_problem END AS reason,
                t_start, t_answer, t_end, start_local, {pbxcsv.time_quality_sql()} AS time_quality,
                cid_name, cid_number, destination, hangup_cause, recordingfile,
                CASE WHEN context = 'public' OR coalesce(regexp_full_match(cid_number, '{external}'), false)
                         THEN 'external'
                     WHEN coalesce(regexp_full_match(cid_number, '{token}'), false) THEN 'extension'
                     ELSE 'other' END AS from_type,
                CASE WHEN app LIKE '%conference%' THEN 'conference'
                     WHEN app = 'voicemail' THEN 'voicemail'
                     WHEN coalesce(regexp_full_match(destination, '{external}'), false) THEN 'external'
                     WHEN coalesce(regexp_full_match(destination, '{token}'), false) THEN 'extension'
                     ELSE 'other' END AS to_type,
                regexp_full_match(hangup_cause, $failure_re) AS failure,
                false AS repeated, true AS is_segment
            FROM ({timed})
        """

    rows = pbxcsv.read_typed(con, file, plan.columns, FIELDS, typed,
                             {**pbxcsv.time_params(options.zone, plan.date_order), "failure_re": FAILURE_RE},
                             skip=plan.skip, delimiter=plan.delimiter, name="_fs")
    if rows.rescued_encoding:
        notes.append(f"{Path(file).name}: {rows.rescued_encoding} rows hold bytes that are not UTF-8; "
                     "they are loaded with those bytes shown as \\xNN")
    pbxcsv.quarantine_bad_calls(con, rows, "uuid", file, plan.delimiter)
    _decide_extensions(con, rows.table, options.extensions, notes, Path(file).name)
    # One leg per uuid: the first row counts (a spreadsheet or a re-sent line may repeat it).
    repeated = con.execute(
        f"""
        UPDATE {rows.table} SET repeated = true
        WHERE rowid IN (SELECT _rowid FROM {rows.view}
                        QUALIFY row_number() OVER (PARTITION BY uuid ORDER BY line) > 1)
        """
    ).fetchone()[0]
    if repeated:
        _note_differing_repeats(con, rows.view, notes, Path(file).name)
    _join_legs(con, rows.table)
    if repeated:
        con.execute(
            f"""
            INSERT INTO stg_call_rows
            SELECT filename, key, count(*), count(*) FROM {rows.table} WHERE repeated GROUP BY filename, key
            """
        )
        con.execute(f"DELETE FROM {rows.table} WHERE repeated")
    # The A-leg of a call with B-legs is no segment of its own (its B-legs are); uuids are unique by now.
    if con.execute(f"SELECT count(*) FROM {rows.table} WHERE uuid <> key").fetchone()[0]:
        con.execute(f"UPDATE {rows.table} SET is_segment = false "
                    f"WHERE uuid = key AND key IN (SELECT key FROM {rows.table} WHERE uuid <> key)")
        # The B-leg the A-leg was bridged to: its callee talked to the A-leg's caller (its own caller id is only
        # what the callee was shown).
        con.execute(
            f"""
            UPDATE {rows.table} b SET cid_number = a.cid_number, cid_name = a.cid_name, from_type = a.from_type
            FROM (SELECT uuid, bleg_uuid, key, cid_number, cid_name, from_type FROM {rows.table} WHERE uuid = key) a
            WHERE b.uuid = a.bleg_uuid AND b.key = a.key AND b.uuid <> a.uuid
            """
        )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW _legs AS
        SELECT _rowid AS rid, filename AS file, line, key, CASE WHEN uuid = key THEN 0 ELSE 1 END AS rank, 0 AS leg_order,
            hash(uuid) AS row_hash, uuid AS source_id,
            t_start AS start_time, t_answer AS answer_time, t_end AS end_time, time_quality,
            cid_number AS from_party, from_type, CASE WHEN from_type = 'extension' THEN cid_number END AS from_ext,
            cid_name AS from_name,
            destination AS to_party, to_type, CASE WHEN to_type = 'extension' THEN destination END AS to_ext,
            NULL::VARCHAR AS to_name, destination AS dialled,
            CASE WHEN to_type IN ('conference', 'voicemail') THEN to_type
                 WHEN t_answer IS NOT NULL THEN 'talk' ELSE 'ringing' END AS kind,
            t_answer IS NOT NULL AS answered, failure, is_segment,
            recordingfile, strftime(start_local, '%Y/%m/%d') AS local_day
        FROM {rows.view}
        """
    )
    pbxcsv.order_legs(con, staging.next_call_id(con))
    pbxcsv.stage_legs(con)
    pbx_recordings.stage(
        con, system="freeswitch", root=options.recordings,
        pattern=pbx_recordings.compile_pattern(options.recording_pattern), zone=options.zone, notes=notes,
        progress=options.progress,
    )


def _decide_extensions(con: duckdb.DuckDBPyConnection, table: str, rule: ExtensionRule | None, notes: list[str],
                       name: str) -> None:
    """Make every party whose number belongs to a directory user, or that ``--extensions`` names, an extension;
    say how many numbers each rule decided."""
    if rule is None and not con.execute("SELECT count(*) FROM dir_extensions").fetchone()[0]:
        return
    listed, params = rule.sql("number") if rule else ("false", {})
    counts = con.execute(
        f"""
        WITH parties AS (
            SELECT number, kind, number IN (SELECT extension FROM dir_extensions) AS in_directory, {listed} AS listed
            FROM (SELECT cid_number AS number, from_type AS kind FROM {table}
                  UNION SELECT destination, to_type FROM {table})
            WHERE number IS NOT NULL AND kind IN ('extension', 'external', 'other')
        )
        SELECT count(DISTINCT number) FILTER (WHERE in_directory),
               count(DISTINCT number) FILTER (WHERE listed AND NOT in_directory),
               count(DISTINCT number) FILTER (WHERE kind = 'extension' AND NOT in_directory AND NOT listed),
               count(DISTINCT number) FILTER (WHERE kind <> 'extension' AND (in_directory OR listed))
        FROM parties
        """,
        params,
    ).fetchone()
    by_directory, by_rule, by_form, changed = (int(n) for n in counts)
    if changed:
        for number, kind in (("cid_number", "from_type"), ("destination", "to_type")):
            condition, bound = rule.sql(number) if rule else ("false", {})
            con.execute(
                f"""
                UPDATE {table} SET {kind} = 'extension'
                WHERE {kind} IN ('external', 'other')
                  AND ({number} IN (SELECT extension FROM dir_extensions) OR {condition})
                """,
                bound,
            )
    if by_directory or rule is not None:
        parts = [f"by the directory: {by_directory} numbers"]
        if rule is not None:
            parts.append(f"by --extensions {rule.text}: {by_rule}")
        parts.append(f"by their form (up to 6 digits, or a name): {by_form}")
        notes.append(f"{name}: extensions decided {'; '.join(parts)}; other numbers of 7+ digits are external")


def _note_differing_repeats(con: duckdb.DuckDBPyConnection, view: str, notes: list[str], name: str) -> None:
    """Say so when rows repeating a uuid differ (the first is loaded, as for identical repeats)."""
    differing = con.execute(
        f"""
        SELECT count(*), min(line) FROM (
            SELECT uuid, min(line) AS line FROM {view} GROUP BY uuid
            HAVING count(*) > 1 AND count(DISTINCT (cid_name, cid_number, destination, t_start, t_answer, t_end,
                                                    hangup_cause, bleg_uuid)) > 1)
        """
    ).fetchone()
    if differing[0]:
        notes.append(f"{name}: {differing[0]} uuid(s) appear on several rows that differ "
                     f"(first at line {differing[1]}); the first row of each is loaded, the others count as duplicates")


def _join_legs(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Legs joined by ``bleg_uuid`` (either way round) share a key: the uuid of the earliest leg among them."""
    edges = con.execute(
        f"SELECT count(*) FROM {table} a JOIN {table} b ON a.bleg_uuid = b.uuid WHERE a.uuid <> b.uuid"
    ).fetchone()[0]
    if not edges:
        return
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _fs_edges AS
        SELECT a.uuid AS x, b.uuid AS y FROM {table} a JOIN {table} b ON a.bleg_uuid = b.uuid WHERE a.uuid <> b.uuid
        UNION SELECT b.uuid, a.uuid FROM {table} a JOIN {table} b ON a.bleg_uuid = b.uuid WHERE a.uuid <> b.uuid
        """
    )
    # A label sorts by start time, then uuid; each round a leg takes the smallest label of its neighbours.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _fs_label AS
        SELECT uuid, min(strftime(t_start, '%Y%m%d%H%M%S.%f') || uuid) AS label FROM {table} GROUP BY uuid
        """
    )
    for _round in range(50):
        changed = con.execute(
            """
            WITH best AS (
                SELECT e.x AS uuid, min(l.label) AS label FROM _fs_edges e JOIN _fs_label l ON l.uuid = e.y GROUP BY e.x
            )
            UPDATE _fs_label SET label = best.label FROM best
            WHERE _fs_label.uuid = best.uuid AND best.label < _fs_label.label
            """
        ).fetchone()[0]
        if not changed:
            break
    con.execute(f"UPDATE {table} SET key = right(l.label, 36) FROM _fs_label l WHERE l.uuid = {table}.uuid")
    for name in ("_fs_edges", "_fs_label"):
        con.execute(f"DROP TABLE IF EXISTS {name}")


class FreeSwitch(LegCsvSystem[Options]):
    """FreeSWITCH mod_cdr_csv files (``dimnb.ingest.system``'s template)."""

    name = "freeswitch"
    label = "FreeSWITCH"
    fields = FIELDS
    layouts = TEMPLATES

    @staticmethod
    def check_columns(names: Sequence[str]) -> None:
        check_columns(names)

    def is_cdr_file(self, candidate: Path, folder: Path) -> bool:
        return is_cdr_file(candidate, folder)

    def plan_file(self, path: Path) -> Plan:
        return self.plan_dates_and_nulls(path, plan_layout(path, self.columns), TIME_FIELDS)

    def stage_file(self, con: duckdb.DuckDBPyConnection, file: str, plan: Plan) -> None:
        stage(con, file, plan, self.options, self.staged_notes)


parse_columns = FreeSwitch.parse_columns
header_columns = FreeSwitch.header_columns


def is_cdr_file(candidate: Path, _folder: Path) -> bool:
    """In a folder given: ``*.csv`` and rotated ``*.csv.1`` files, not recordings."""
    return ".csv" in candidate.name.lower() and candidate.suffix.lower() not in pbx_recordings.AUDIO_SUFFIXES


def load_freeswitch(
    stores: Stores,
    paths: Iterable[str | Path],
    *,
    columns: str | Sequence[str] | None = None,
    timezone: str | None = None,
    recordings: Path | str | None = None,
    recording_pattern: str | None = None,
    extensions: str | None = None,
    date_order: str | None = None,
    progress: bool = False,
) -> LoadSummary:
    """Load FreeSWITCH mod_cdr_csv files and link their recordings."""
    options = Options(zone=pbxcsv.resolve_zone(timezone), zone_given=timezone is not None,
                      recordings=Path(recordings) if recordings else None,
                      recording_pattern=recording_pattern or DEFAULT_RECORDING_PATTERN,
                      date_order=pbxcsv.check_date_order(date_order), progress=progress,
                      extensions=parse_extensions(extensions))
    pbx_recordings.check_options(options.recordings, options.recording_pattern)
    return system.load(stores, FreeSwitch(options, columns), paths, progress=progress)
