"""What the Asterisk and FreeSWITCH loaders share: reading CSV with rescue passes, local times, legs → calls.

Both systems write one CSV row per *leg* (a pair of channels), in local time
unless configured otherwise, with a column order the administrator chooses.
A system module reads its rows (``read_rows``), types them (``timed_select``
for the times), quarantines bad calls (``quarantine_bad_calls``) and defines
the view ``_legs`` (one row per input row, see ``stage_legs``), which
``stage_legs`` turns into ``stg_segments``, ``stg_calls`` and ``stg_call_rows``.

Reading (``read_rows``): DuckDB parses the file with the layout of its first
lines. Two kinds of rows it rejects are read again instead of quarantined:

- rows that are not valid UTF-8 (a Latin-1 caller name, a truncated byte):
  the file is read once more as Latin-1, which never fails; each field that
  was valid UTF-8 gets its text back and any other field shows its bytes as
  ``\\xNN`` escapes, so nothing is lost and nothing unprintable reaches a screen;
- rows with another field count that the format knows (Asterisk's optional
  columns switched on in the middle of a ``Master.csv``): read once more with
  the layout of that width.

Only files with such rows are read more than once.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from dimnb.errors import InvalidInput
from dimnb.ingest import csvread
from dimnb.sql import quote_identifier

# Time texts: Asterisk (cdr_csv, cdr_custom, FreePBX), FreeSWITCH, and what a spreadsheet leaves of them.
TIME_FORMATS = [
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M",
]
# An external number: 7+ digits, maybe with a leading +. Anything shorter (or a name) is internal.
EXTERNAL_NUMBER_RE = r"\+?[0-9]{7,}"
# A device named like an extension number (PJSIP/101-...): never a trunk, whatever was dialled.
EXTENSION_NUMBER_RE = r"[0-9]{1,6}"
# What the directory accepts as an extension (dimnb.directory).
EXTENSION_TOKEN_RE = r"[0-9A-Za-z*#+]{1,32}"

# DuckDB's own default is 80% of the machine; a load keeps to this and spills the rest to disk, so that the
# process stays under 1 GiB whatever the file's size (a 1M-row Asterisk load peaks near 840 MiB; unbounded,
# near 970 MiB; at 640MB it takes 5% longer). DIMNB_LOAD_MEMORY_LIMIT overrides it.
LOAD_MEMORY_LIMIT = "768MB"
_MEMORY_RE = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def limit_memory(con: duckdb.DuckDBPyConnection) -> None:
    """Bound the write connection's memory for the rest of this load (the connection is closed after it)."""
    limit = os.environ.get("DIMNB_LOAD_MEMORY_LIMIT", LOAD_MEMORY_LIMIT).strip()
    if not _MEMORY_RE.match(limit):
        raise InvalidInput(f"DIMNB_LOAD_MEMORY_LIMIT: {limit!r} is not a size like 640MB or 2GB",
                           field="DIMNB_LOAD_MEMORY_LIMIT")
    con.execute(f"SET memory_limit = '{limit}'")


# ------------------------------------------------------------------------------------------ time zones


def local_zone() -> str:
    """The IANA name of this machine's time zone (``TZ``, then /etc/localtime, then /etc/timezone), else UTC."""
    candidates = []
    if os.environ.get("TZ"):
        candidates.append(os.environ["TZ"].lstrip(":"))
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    for name in candidates:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"


def resolve_zone(name: str | None) -> str:
    """``--timezone``: an IANA name, ``UTC``, or ``local`` / None for this machine's zone."""
    if name is None or name.strip().lower() == "local":
        return local_zone()
    try:
        ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {name!r} (use a name like Europe/Paris, UTC, or local)", field="timezone"
        ) from None
    return name.strip()


def is_utc(zone: str) -> bool:
    return zone in ("UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu")


def zone_note(zone: str, *, given: bool) -> str:
    read = "times read as UTC" if is_utc(zone) else f"times read as {zone} local time"
    return read if given else f"{read} (this machine's zone; set --timezone to the PBX's)"


def time_params(zone: str, date_order: str | None = None) -> dict[str, object]:
    params: dict[str, object] = {"fmts": date_formats(date_order) + TIME_FORMATS}
    if not is_utc(zone):
        params["tz"] = zone
    return params


# ------------------------------------------------------------------------------------------ date orders

# ``--date-order``: how a spreadsheet wrote the dates it re-saved (``1/9/2017 16:33:01``).
DATE_ORDERS = ("dmy", "mdy", "ymd")
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})[ T]\d{1,2}:\d{2}")


def date_formats(order: str | None) -> list[str]:
    """The time formats a date order adds in front of ``TIME_FORMATS`` (year-first ones are always read)."""
    if order not in ("dmy", "mdy"):
        return []
    day_month = "%d{s}%m{s}%Y" if order == "dmy" else "%m{s}%d{s}%Y"
    return [day_month.format(s=sep) + clock for sep in "/.-" for clock in (" %H:%M:%S", " %H:%M", "T%H:%M:%S")]


def check_date_order(order: str | None) -> str | None:
    if order is None:
        return None
    if order.strip().lower() not in DATE_ORDERS:
        raise InvalidInput(f"--date-order: {order!r} is not one of {', '.join(DATE_ORDERS)}", field="date_order")
    return order.strip().lower()


def choose_date_order(path: Path, time_columns: Sequence[int], *, skip: int, delimiter: str,
                      given: str | None) -> str | None:
    """The order of a file's day-and-month-first dates: ``given``, else what its dates prove, else refuse.

    Only a file whose first and last lines hold such dates is read through (spreadsheet exports are small);
    a date whose first number is above 12 proves day-first, whose second is, month-first. A file whose
    dates fit both is refused with an example line rather than read one way at random.
    """
    if given is not None or not time_columns:
        return given
    sample = sample_rows(path, delimiter=delimiter)
    if not any(_NUMERIC_DATE.match(r[i]) for r in sample for i in time_columns if i < len(r)):
        return None
    day_first = month_first = example = None
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
            if number <= skip:
                continue
            for i in time_columns:
                found = _NUMERIC_DATE.match(row[i]) if i < len(row) else None
                if not found:
                    continue
                first, second = int(found.group(1)), int(found.group(2))
                example = example or (number, row[i].strip())
                if first > 12 and day_first is None:
                    day_first = (number, row[i].strip())
                if second > 12 and month_first is None:
                    month_first = (number, row[i].strip())
    if day_first and month_first:
        raise InvalidInput(
            f"{path}: dates are written day first ('{day_first[1]}', line {day_first[0]}) and month first "
            f"('{month_first[1]}', line {month_first[0]}); give --date-order dmy or mdy", field="date_order")
    if day_first or month_first:
        return "dmy" if day_first else "mdy"
    assert example is not None
    raise InvalidInput(
        f"{path}: dates like '{example[1]}' (line {example[0]}) could be day/month or month/day, and no date in the "
        "file tells which; give --date-order dmy or mdy", field="date_order")


# ------------------------------------------------------------------------------------------ looking at files


def sample_rows(path: Path, *, delimiter: str = ",", count: int = 40) -> list[list[str]]:
    """The first and last ``count`` lines of a file, split as CSV (for recognising a layout; never for loading)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(65536)
        tail = b""
        if size > 65536:
            handle.seek(max(65536, size - 65536))
            tail = handle.read()
    head_lines = head.decode("utf-8-sig", errors="replace").splitlines()
    if size > 65536:
        head_lines = head_lines[:-1]  # maybe cut in the middle
    tail_lines = tail.decode("utf-8", errors="replace").splitlines()[1:] if tail else []
    lines = [line for line in head_lines[:count] + tail_lines[-count:] if line.strip()]
    return [row for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)]


def first_line(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(65536)
    text = head.decode("utf-8-sig", errors="replace")
    return text.splitlines()[0] if text.strip() else ""


def header_delimiter(line: str) -> str:
    """The separator a line uses: comma unless ``;``, ``|`` or a tab is more frequent (custom templates, exports)."""
    counts = {d: line.count(d) for d in (",", ";", "|", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def normalize_name(name: str) -> str:
    return name.strip().strip('"').lstrip("\ufeff").strip().lower().replace("-", "_").replace(" ", "_")


def header_columns(line: str, known: Sequence[str]) -> list[str] | None:
    """The column list a header line declares (names not in ``known`` become ``_``), or None when it is data."""
    delimiter = header_delimiter(line)
    names = [normalize_name(n) for n in next(csv.reader([line], delimiter=delimiter), [])]
    while names and names[-1] == "":
        names.pop()
    if names and sum(1 for n in names if n in known) >= max(3, len(names) // 2):
        return [n if n in known else "_" for n in names]
    return None


def parse_column_list(spec: str | Sequence[str], known: Sequence[str], system: str) -> list[str]:
    """A ``--columns`` list checked against ``known`` (``_`` skips a column)."""
    names = [normalize_name(n) for n in (spec.split(",") if isinstance(spec, str) else spec)]
    while names and names[-1] == "":
        names.pop()
    unknown = [n or "(empty)" for n in names if n not in known and n != "_"]
    if unknown:
        raise InvalidInput(
            f"unknown {system} CDR field(s): {', '.join(unknown)}. Known fields: {', '.join(known)} "
            "(use _ to skip a column)",
            field="columns",
        )
    seen = [n for n in names if n != "_"]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise InvalidInput(f"{system} CDR field(s) listed twice: {', '.join(dupes)}", field="columns")
    return names


def physical_columns(columns: Sequence[str]) -> list[str]:
    return [c if c != "_" else f"_skip{i}" for i, c in enumerate(columns)]


def trimmed(expr: str) -> str:
    """``nullif(trim(expr), '')``, trimming only a value that begins or ends with something other than printable
    ASCII (trim, which strips Unicode spaces, costs twice this test; field values are rarely padded)."""
    # Ranges, not an IN list: DuckDB runs a long IN list as a join, and a join in a read loses the rows' order.
    return (f"CASE WHEN ascii({expr}) NOT BETWEEN 33 AND 126 OR ascii(right({expr}, 1)) NOT BETWEEN 33 AND 126 "
            f"THEN nullif(trim({expr}), '') ELSE nullif({expr}, '') END")


# ------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class Typed:
    """One file's rows, typed as they were read: ``table`` (to update or delete from) and ``view`` (adds ``line``
    and ``_rowid``, the row's rowid in ``table``)."""

    table: str
    view: str
    tables: tuple[str, ...]
    rows: int
    rescued_encoding: int
    rescued_width: int

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"DROP VIEW IF EXISTS {self.view}")
        for table in self.tables:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def drop_typed(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop what ``read_typed(..., name=name)`` made for a previous file (kept until its merge)."""
    con.execute(f"DROP VIEW IF EXISTS {name}")
    for table in (f"{name}_rows", f"{name}_all"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


# typed(source) -> a SELECT over the FROM item ``source``, one row out per row in (see read_typed).
TypedSelect = Callable[[str], str]

_FOUND_RE = re.compile(r"Found: (\d+)")


def _fix_latin1(column: str) -> str:
    # The field was read as Latin-1, one character per byte: its bytes again, as UTF-8 when they are valid,
    # else with every byte outside printable ASCII written as \xNN (``_fix_latin1_text`` does the same in Python).
    as_bytes = (f"unhex(array_to_string(list_transform(string_split({column}, ''), "
                f"lambda ch: lpad(hex(unicode(ch)), 2, '0')), ''))")
    escaped = (f"array_to_string(list_transform(string_split({column}, ''), lambda ch: "
               f"CASE WHEN unicode(ch) BETWEEN 32 AND 126 THEN ch ELSE '\\x' || lpad(hex(unicode(ch)), 2, '0') END), '')")
    return (f"CASE WHEN {column} IS NULL OR NOT regexp_matches({column}, '[^\\x00-\\x7F]') THEN {column} "
            f"ELSE coalesce(try(decode({as_bytes})), {escaped}) END")


def _source(read: str, layout: Sequence[str], fields: Sequence[str], fix: bool) -> str:
    """The read as a FROM item: ``filename`` and every field of ``fields`` (NULL when the layout lacks it)."""
    present = dict(zip(columns_of(layout), physical_columns(layout)))
    parts = ["filename"]
    for name in fields:
        expr = quote_identifier(present[name]) if name in present else None
        parts.append(f"{(_fix_latin1(expr) if fix else expr) if expr else 'NULL::VARCHAR'} AS {quote_identifier(name)}")
    return f"(SELECT {', '.join(parts)} FROM {read})"


def read_typed(
    con: duckdb.DuckDBPyConnection,
    file: str,
    columns: Sequence[str],
    fields: Sequence[str],
    typed: TypedSelect,
    params: Mapping[str, object],
    *,
    skip: int = 0,
    delimiter: str = ",",
    widths: Mapping[int, Sequence[str]] | None = None,
    name: str = "_typed",
) -> Typed:
    """Read one CDR file, typing its rows as DuckDB parses them (nothing is copied first).

    ``typed(source)`` gives the SELECT, which must keep ``filename``:
    ``source`` has ``filename`` and every field of ``fields`` (VARCHAR, NULL
    when the layout lacks it). Only the columns it selects are kept: the
    text of a row headed for quarantine is read back from the file
    (``raw_texts``). Rows DuckDB rejects are rescued where the format allows
    (see the module's docstring), else quarantined.
    """

    def select(layout: Sequence[str], fix: bool) -> Callable[[str], str]:
        return lambda read: typed(_source(read, layout, fields, fix))

    main = csvread.read_csv_into(con, f"{name}_rows", [file], physical_columns(columns), select(columns, False)("{csv}"),
                                 dict(params), skip=skip, delimiter=delimiter)
    rows = main.rows
    rejected = con.execute(
        "SELECT line, reason FROM stg_quarantine WHERE file = $f ORDER BY line", {"f": file}
    ).fetchall() if main.rejected else []
    passes: dict[tuple[int, str], list[int]] = {}
    for line, reason in rejected:
        if reason.startswith("not UTF-8 text"):
            passes.setdefault((len(columns), "latin-1"), []).append(line)
        elif widths and reason.startswith(("too few fields", "too many fields")):
            found = _FOUND_RE.search(reason)
            if found and int(found.group(1)) in widths and int(found.group(1)) != len(columns):
                passes.setdefault((int(found.group(1)), "utf-8"), []).append(line)
    if not passes and not main.rejected:
        # One file, nothing refused: a row's line follows from its rowid.
        first = con.execute(f"SELECT min(first_rowid) FROM {main.files_table}").fetchone()[0] or 0
        con.execute(f"DROP TABLE {main.files_table}")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *, rowid + {int(skip) + 1 - int(first)} AS line, "
                    f"rowid AS _rowid FROM {main.name}")
        return Typed(main.name, name, (main.name,), rows, 0, 0)
    if not passes:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT r.*, {main.line_sql} AS line, r.rowid AS _rowid "
                    f"FROM {csvread.join_files(main)}")
        return Typed(main.name, name, (main.name, main.files_table), rows, 0, 0)

    # Rare: some rows are read again, as Latin-1 or with another width; the rows then get their line stored.
    table = f"{name}_all"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT r.*, {main.line_sql} AS line "
                f"FROM {csvread.join_files(main)}")
    csvread.drop(con, main)
    rescued = {"latin-1": 0, "utf-8": 0}
    for (width, encoding), lines in passes.items():
        layout = list(columns) if width == len(columns) else list(widths[width])  # type: ignore[index]
        last = con.execute("SELECT coalesce(max(rowid), -1) FROM stg_quarantine").fetchone()[0]
        again = csvread.read_csv_raw(con, [file], physical_columns(layout), skip=skip, delimiter=delimiter,
                                     encoding=encoding, transform=select(layout, encoding == "latin-1"), params=params)
        con.execute("DELETE FROM stg_quarantine WHERE rowid > $last", {"last": last})  # this pass's own rejects
        got = [r[0] for r in con.execute(
            f"INSERT INTO {table} SELECT * FROM (SELECT r.*, {again.line_sql} AS line FROM {csvread.join_files(again)}) "
            "WHERE list_contains($lines, line) RETURNING line",
            {"lines": lines},
        ).fetchall()]
        csvread.drop(con, again)
        con.execute("DELETE FROM stg_quarantine WHERE file = $f AND list_contains($lines, line)",
                    {"f": file, "lines": got})
        rescued[encoding] += len(got)
        rows += len(got)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *, rowid AS _rowid FROM {table}")
    return Typed(table, name, (table,), rows, rescued["latin-1"], rescued["utf-8"])


def columns_of(names: Sequence[str]) -> list[str]:
    """Layout names with ``_`` made unique (so a dict can map them to their physical column)."""
    return [n if n != "_" else f"_{i}" for i, n in enumerate(names)]


def raw_texts(file: str, lines: Iterable[int], delimiter: str = ",") -> dict[int, str]:
    """The text of some rows of a file (for quarantine), as their fields joined by ``delimiter``.

    Read back from the file (one row per line, as ``line`` counts them), each
    field decoded as the reads decode it: UTF-8, or for a field that is not,
    its bytes as ``\\xNN`` (``_fix_latin1``).
    """
    wanted = set(lines)
    found: dict[int, str] = {}
    if not wanted:
        return found
    last = max(wanted)
    with open(file, "rb") as handle:
        for number, data in enumerate(handle, start=1):
            if number in wanted:
                if number == 1:
                    data = data.removeprefix(b"\xef\xbb\xbf")
                text = data.rstrip(b"\r\n").decode("latin-1")
                fields = next(csv.reader([text], delimiter=delimiter), [])
                found[number] = delimiter.join(_fix_latin1_text(f) for f in fields)
            if number >= last:
                break
    return found


def fill_raw_texts(con: duckdb.DuckDBPyConnection, file: str, lines: Sequence[int], delimiter: str = ",") -> None:
    """Give the quarantined rows ``lines`` of ``file`` their text (``raw_texts``)."""
    texts = raw_texts(file, lines, delimiter)
    if texts:
        con.execute(
            "UPDATE stg_quarantine SET raw = t.raw FROM (SELECT unnest($lines) AS line, unnest($texts) AS raw) t "
            "WHERE stg_quarantine.file = $file AND stg_quarantine.line = t.line AND stg_quarantine.raw IS NULL",
            {"file": file, "lines": list(texts), "texts": list(texts.values())},
        )


def _fix_latin1_text(field: str) -> str:
    """A field read as Latin-1 (one character per byte), as ``_fix_latin1`` gives it back."""
    if field.isascii():
        return field
    data = field.encode("latin-1")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(ch if 32 <= ord(ch) <= 126 else f"\\x{ord(ch):02X}" for ch in field)


# ------------------------------------------------------------------------------------------ times


def timed_select(inner: str, zone: str, *, start_name: str, answer_name: str, end_name: str,
                 has_answer: bool) -> str:
    """Wrap ``inner`` (a SELECT with the columns below) to add the leg's times in UTC and what is wrong with them.

    ``inner`` gives ``start_text``, ``answer_text``, ``end_text`` (NULL when
    absent), ``start_exact``/``answer_exact``/``end_exact`` (TIMESTAMPTZ from
    epoch columns, or NULL), ``duration_s``, ``billsec_s`` and
    ``answered_hint`` (the system says the leg was answered). Added:
    ``start_local`` (wall-clock TIMESTAMP), ``t_start``, ``t_answer``,
    ``t_end``, ``minute_only`` and ``time_problem`` (NULL when the times
    make sense). Uses ``$fmts`` (and ``$tz`` unless the zone is UTC).

    When the text has no seconds (a spreadsheet's doing) or there is no end
    (FreePBX's table has ``calldate`` only), the end is start + duration and
    the answer end - billsec: Asterisk and FreeSWITCH compute those two from
    the same clock, so that is exact to the second; with minutes only it is
    marked ``estimated`` (see ``time_quality_sql``).
    """

    def utc(local: str, text: str) -> str:
        wall = f"{local}::TIMESTAMPTZ" if is_utc(zone) else f"timezone($tz, {local})"
        # Epoch seconds (${CDR(start,f)}) are UTC already; > 1e8 keeps "0" from meaning 1970. Only a text that is
        # no wall-clock time is cast: DuckDB may evaluate the cast for every row, and a failing cast is slow.
        epoch = f"TRY_CAST(CASE WHEN {local} IS NULL THEN {text} END AS DOUBLE)"
        return f"coalesce({wall}, CASE WHEN {epoch} > 1e8 THEN to_timestamp({epoch}) END)"

    answer_derived = ("(answered_hint OR billsec_s > 0)" if not has_answer
                      else "(answer_text IS NOT NULL AND minute_only)")
    return f"""
    SELECT *,
        CASE
            WHEN start_text IS NULL AND t_start IS NULL THEN '{start_name} is empty'
            WHEN t_start IS NULL THEN '{start_name} ''' || start_text || ''' is not a time'
            WHEN answer_text IS NOT NULL AND a_parsed IS NULL AND answer_exact IS NULL
                THEN '{answer_name} ''' || answer_text || ''' is not a time'
            WHEN end_text IS NOT NULL AND e_parsed IS NULL AND end_exact IS NULL
                THEN '{end_name} ''' || end_text || ''' is not a time'
            WHEN t_end IS NULL THEN '{end_name} is empty and duration is not a number'
            WHEN t_end < t_start THEN '{end_name} is before {start_name}'
            WHEN t_answer IS NOT NULL AND (t_answer < t_start OR t_answer > t_end)
                THEN '{answer_name} is outside the call (before its start or after its end)'
        END AS time_problem
    FROM (
        SELECT *,
            CASE WHEN answer_exact IS NOT NULL THEN answer_exact
                 WHEN {answer_derived} AND t_end IS NOT NULL
                     THEN greatest(t_start, t_end - to_seconds(coalesce(billsec_s, 0)))
                 ELSE a_parsed END AS t_answer
        FROM (
            SELECT *,
                CASE WHEN end_exact IS NOT NULL THEN end_exact
                     WHEN (end_text IS NULL OR minute_only) AND duration_s IS NOT NULL
                         THEN t_start + to_seconds(duration_s)
                     ELSE e_parsed END AS t_end
            FROM (
                SELECT *,
                    coalesce(start_exact, {utc('start_local', 'start_text')}) AS t_start,
                    {utc('try_strptime(answer_text, $fmts)', 'answer_text')} AS a_parsed,
                    {utc('try_strptime(end_text, $fmts)', 'end_text')} AS e_parsed
                FROM (
                    SELECT *, try_strptime(start_text, $fmts) AS start_local,
                        start_exact IS NULL AND start_text LIKE '%:%' AND start_text NOT LIKE '%:%:%' AS minute_only
                    FROM ({inner})
                )
            )
        )
    )
    """


def time_quality_sql() -> str:
    return "CASE WHEN minute_only THEN 'estimated' ELSE 'exact' END"


# ------------------------------------------------------------------------------------------ legs -> calls


# Within a call, legs in this order; ``line`` makes it total.
_LEG_ORDER = "start_time, leg_order, row_hash, line"


def order_legs(con: duckdb.DuckDBPyConnection, base: int) -> None:
    """Number the rows of the view ``_legs`` within their calls, and the calls from ``base`` (then ``stage_legs``).

    ``_legs`` (one row per input row, defined by the system module) has:
    ``rid`` (unique, increasing in file order); ``file, line, key``;
    ``rank`` (0 for the row that describes the call, e.g. FreeSWITCH's
    A-leg; 1 for the others); ``leg_order`` (tie-break after the start
    time); ``row_hash`` (equal for repeated rows); ``source_id``;
    ``start_time, answer_time, end_time, time_quality``; ``from_party,
    from_type, from_ext, from_name, to_party, to_type, to_ext, to_name``;
    ``dialled`` (the call's "to" when this row describes it); ``kind,
    answered, failure``; ``is_segment`` (false for rows that are no
    connection of their own); ``recordingfile, local_day``.

    A row repeating an earlier one of its call (same ``row_hash``) counts as
    a duplicate. Segments are the other ``is_segment`` rows in start order.
    A call's id is ``base`` plus the position of its earliest leg in the
    file, so that segments read in file order are (nearly) in call order.

    Only the numbers are computed, from a few columns, into the table
    ``_legs_order(rid, is_dup, ord, seq, call_id, legs)`` (``legs``: the
    call's rows, repeats included); the view ``_legs_ordered`` joins them to
    ``_legs``. (A window over every column would carry them all through its
    sort, at several times the cost.)
    """
    first = con.execute("SELECT min(rid) FROM _legs").fetchone()[0] or 0
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _legs_order AS
        SELECT rid,
            coalesce(lag(row_hash) OVER w = row_hash, false) AS is_dup,
            row_number() OVER w AS ord,
            count(*) FILTER (WHERE is_segment) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)::INTEGER AS seq,
            $base + first_value(rid) OVER w - $first AS call_id,
            count(*) OVER (PARTITION BY key) AS legs
        FROM _legs
        WINDOW w AS (PARTITION BY key ORDER BY {_LEG_ORDER})
        """,
        {"base": base, "first": first},
    )
    if con.execute("SELECT count(*) FROM _legs_order WHERE is_dup").fetchone()[0]:
        # Rare: number again without the repeats (they stay in the table for the row counts).
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _legs_order AS
            SELECT rid, is_dup,
                row_number() OVER w AS ord,
                count(*) FILTER (WHERE is_segment) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)::INTEGER
                    AS seq,
                call_id, legs
            FROM _legs JOIN _legs_order USING (rid)
            WINDOW w AS (PARTITION BY key, is_dup ORDER BY {_LEG_ORDER})
            """
        )
    con.execute("CREATE OR REPLACE TEMP VIEW _legs_ordered AS SELECT * FROM _legs JOIN _legs_order USING (rid)")


# What a call is, from its legs (a subquery ``per_call``, one row per call). A call of one row is that row
# (most calls; no aggregate needed); see _PER_CALL_AGGREGATE for the others.
_CALL_COLUMNS = """
    SELECT key, start_time, answer_time, end_time,
        CASE WHEN first_from_type = 'external' THEN 'inbound'
             WHEN reaches_external THEN 'outbound'
             ELSE 'internal' END,
        from_party, from_ext, from_name, to_party, to_ext, final_party, final_ext, final_name,
        CASE WHEN answer_time IS NOT NULL THEN 'answered'
             WHEN reached_voicemail THEN 'voicemail'
             WHEN last_failed THEN 'failed'
             WHEN last_kind IN ('queue', 'ivr') THEN 'abandoned'
             ELSE 'missed' END,
        file, line, call_id, segment_count
    FROM per_call
"""
_ONE_ROW_CALL = """
    SELECT call_id, key, start_time, end_time,
        CASE WHEN answered AND is_segment AND kind IN ('talk', 'conference', 'ivr') THEN answer_time END AS answer_time,
        from_party, from_ext, from_name, from_type AS first_from_type,
        coalesce(dialled, to_party) AS to_party, to_ext,
        CASE WHEN is_segment THEN to_party END AS final_party,
        CASE WHEN is_segment THEN to_ext END AS final_ext,
        CASE WHEN is_segment THEN to_name END AS final_name,
        to_type = 'external' AS reaches_external,
        kind = 'voicemail' AND answered AS reached_voicemail,
        CASE WHEN is_segment THEN kind END AS last_kind,
        CASE WHEN is_segment THEN failure END AS last_failed,
        file, line, is_segment::INTEGER AS segment_count
    FROM _legs_ordered WHERE legs = 1
"""
# The call runs from its first start to its last end; it was answered when a talk or conference segment was, or
# when its last segment is an IVR or announcement that answered (the PBX answered it: only a caller who hangs up
# before any answer abandons);
# its caller and dialled number come from the row that describes it (lowest rank, then earliest), each from the
# first row that has one (arg_min skips NULLs); the final party from the last answered talk segment, else the
# last segment (``final_pos`` ranks answered talk segments above the others: one arg_max instead of two).
_PER_CALL_AGGREGATE = """
    SELECT call_id, any_value(key) AS key,
        min(start_time) AS start_time, max(end_time) AS end_time,
        coalesce(
            min(answer_time) FILTER (WHERE answered AND is_segment AND kind IN ('talk', 'conference')),
            -- answered by the PBX itself: the call ended in an IVR or announcement that answered it
            CASE WHEN max(ord) FILTER (WHERE is_segment AND kind = 'ivr' AND answered) = max(ord) FILTER (WHERE is_segment)
                 THEN arg_max(answer_time, ord) FILTER (WHERE is_segment AND kind = 'ivr' AND answered) END
        ) AS answer_time,
        arg_min(from_party, pos) AS from_party, arg_min(from_ext, pos) AS from_ext,
        arg_min(from_name, pos) AS from_name, arg_min(from_type, pos) AS first_from_type,
        arg_min(coalesce(dialled, to_party), pos) AS to_party, arg_min(to_ext, pos) AS to_ext,
        arg_max(to_party, final_pos) FILTER (WHERE is_segment) AS final_party,
        arg_max(to_ext, final_pos) FILTER (WHERE is_segment) AS final_ext,
        arg_max(to_name, final_pos) FILTER (WHERE is_segment) AS final_name,
        bool_or(to_type = 'external') AS reaches_external,
        bool_or(kind = 'voicemail' AND answered) AS reached_voicemail,
        arg_max(kind, ord) FILTER (WHERE is_segment) AS last_kind,
        arg_max(failure, ord) FILTER (WHERE is_segment) AS last_failed,
        any_value(file) AS file, arg_min(line, pos) AS line,
        (count(*) FILTER (WHERE is_segment))::INTEGER AS segment_count
    FROM (SELECT *, rank * 4294967296 + ord AS pos,
              coalesce(kind = 'talk' AND answered, false)::BIGINT * 4294967296 + ord AS final_pos
          FROM _legs_ordered WHERE legs > 1 AND NOT is_dup)
    GROUP BY call_id
"""


def stage_legs(con: duckdb.DuckDBPyConnection) -> None:
    """Stage the legs in ``_legs_ordered`` (see ``order_legs``): ``stg_calls`` (numbered, in a table),
    ``stg_segments`` (a view: the merge reads it once) and ``stg_call_rows``."""
    con.execute("DROP TABLE stg_segments")
    con.execute(
        """
        CREATE TEMP VIEW stg_segments AS
        SELECT key, seq, source_id, kind, start_time, answer_time, end_time, time_quality,
               from_party, from_type, from_ext, from_name, to_party, to_type, to_ext, to_name,
               answered AND kind IN ('talk', 'conference', 'voicemail', 'ivr') AS answered, NULL::VARCHAR AS reason,
               call_id
        FROM _legs_ordered WHERE is_segment AND NOT is_dup
        """
    )
    # One file per staging: every call's rows are in it. Each part is sorted by itself (two sorted runs keep the
    # stored calls' zone maps narrow, as one sort would; the merge inserts them as they are).
    con.execute(f"INSERT INTO stg_calls WITH per_call AS ({_ONE_ROW_CALL}) {_CALL_COLUMNS} ORDER BY call_id")
    con.execute(f"INSERT INTO stg_calls WITH per_call AS ({_PER_CALL_AGGREGATE}) {_CALL_COLUMNS} ORDER BY call_id")
    if con.execute("SELECT count(*) FROM _legs_order WHERE is_dup").fetchone()[0]:
        con.execute(
            """
            INSERT INTO stg_call_rows
            SELECT file, key, count(*), count(*) FILTER (WHERE is_dup) FROM _legs_ordered GROUP BY file, key
            """
        )
    else:
        con.execute("INSERT INTO stg_call_rows SELECT file, key, legs, 0 FROM _legs_ordered WHERE ord = 1")


def drop_legs(con: duckdb.DuckDBPyConnection) -> None:
    """Drop what a previous file's staging left (the staging views read it until the merge)."""
    for view in ("_legs_ordered", "_legs"):
        con.execute(f"DROP VIEW IF EXISTS {view}")
    con.execute("DROP TABLE IF EXISTS _legs_order")


def quarantine_bad_calls(con: duckdb.DuckDBPyConnection, typed: Typed, what: str, file: str,
                         delimiter: str = ",") -> int:
    """Quarantine rows with a ``reason`` and the other rows of their calls; returns how many rows had a reason.

    A call missing one of its legs would mislead (a transfer without its
    second half), so a call with a bad row is not loaded at all. The rows'
    text is read back from the file (``raw_texts``).
    """
    bad = int(con.execute(f"SELECT count(*) FROM {typed.table} WHERE reason IS NOT NULL").fetchone()[0])
    if not bad:
        return 0
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _bad_keys AS
        SELECT DISTINCT key FROM {typed.table} WHERE reason IS NOT NULL AND key IS NOT NULL
        """
    )
    lines = con.execute(
        f"""
        INSERT INTO stg_quarantine
        SELECT filename, line,
               coalesce(reason, 'another row of this call (' || $what || ' ' || key || ') is invalid, '
                                || 'so the call is not loaded'), NULL
        FROM {typed.view} WHERE reason IS NOT NULL OR key IN (SELECT key FROM _bad_keys)
        RETURNING line
        """,
        {"what": what},
    ).fetchall()
    fill_raw_texts(con, file, [line for line, in lines], delimiter)
    con.execute(f"DELETE FROM {typed.table} WHERE reason IS NOT NULL OR key IN (SELECT key FROM _bad_keys)")
    con.execute("DROP TABLE _bad_keys")
    return bad
