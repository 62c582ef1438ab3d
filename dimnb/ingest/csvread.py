"""Read CDR CSV files with DuckDB, keeping every row's file and line, and quarantining what does not parse.

DuckDB parses (in parallel, typed later in SQL); rows DuckDB rejects (wrong
field count, bad quoting) go to ``stg_quarantine`` with their line and
DuckDB's reason.

By default DuckDB's lenient mode ignores fields past the last column, so a
row with *more* fields than expected loads silently. ``exact_width=True``
(3CX) checks every row's width instead: one trailing empty field (a line
ending with the delimiter) is allowed, any other extra field or a missing one
puts the row in quarantine with "N fields expected, M found". The loader's
query then gets empty fields as ``''`` (not NULL) and must put
``width_reason_sql`` first in its reasons. Good rows keep their position: a raw table's ``rowid`` is
its insertion order, which follows the files' order, so a row's line is its
ordinal in its file plus the skipped lines plus the rejected lines before it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from dimnb.sql import quote_identifier

_counter = itertools.count(1)

# With exact_width, one more column than expected catches a trailing delimiter (or one extra field), and
# empty fields read as '' so that NULL means "this row has no such field" (null padding).
EXTRA_FIELD = "_extra_field"
_NOT_NULL = "\x01dimnb-never-null\x01"
_FOUND_RE = re.compile(r"Found:\s*(\d+)")


def width_reason_sql(columns: Sequence[str], alias: str = "r") -> str:
    """For an ``exact_width`` read: why a row has the wrong number of fields, or NULL (SQL on ``alias``)."""
    expected = len(columns)
    found = " + ".join(f"({alias}.{quote_identifier(c)} IS NOT NULL)::INTEGER" for c in columns)
    extra = f"{alias}.{EXTRA_FIELD}"
    return (f"CASE WHEN {alias}.{quote_identifier(columns[-1])} IS NULL "
            f"THEN 'too few fields: {expected} fields expected, ' || ({found}) || ' found' "
            f"WHEN {extra} <> '' THEN 'too many fields: {expected} fields expected, {expected + 1} found' END")


@dataclass(frozen=True)
class RawTable:
    """A staged CSV read: ``name`` holds the columns plus ``filename``; ``line_sql`` gives a row's line."""

    name: str
    files_table: str
    line_sql: str
    rows: int
    rejected: int


def read_csv_raw(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[str],
    columns: Sequence[str],
    *,
    skip: int = 0,
    delimiter: str = ",",
    quote: str = '"',
    escape: str = '"',
    alias: str = "r",
    encoding: str = "utf-8",
    transform: Callable[[str], str] | None = None,
    params: Mapping[str, object] | None = None,
) -> RawTable:
    """Read ``files`` (same layout) into a temp table of VARCHAR ``columns``; rejects go to quarantine.

    ``transform`` builds the SELECT that fills the table from the read (given
    as a FROM item), so a loader can type rows as DuckDB reads them instead
    of copying them first. It must be a projection only (one row out per row
    in, in order) that keeps ``filename``; ``params`` are its parameters.
    """
    n = next(_counter)
    query = transform("{csv}") if transform else "SELECT * FROM {csv}"
    return read_csv_into(con, f"_raw{n}", files, columns, query, dict(params or {}), skip=skip, delimiter=delimiter,
                         quote=quote, escape=escape, alias=alias, encoding=encoding)


def read_csv_into(
    con: duckdb.DuckDBPyConnection,
    table: str,
    files: Sequence[str],
    columns: Sequence[str],
    query: str,
    params: dict[str, Any],
    *,
    skip: int = 0,
    delimiter: str = ",",
    quote: str = '"',
    escape: str = '"',
    alias: str = "r",
    encoding: str = "utf-8",
    exact_width: bool = False,
) -> RawTable:
    """Create temp ``table`` from ``query`` in one pass over the files.

    ``query`` reads the CSV through the placeholder ``{csv}`` (a ``read_csv``
    call whose VARCHAR ``columns`` and ``filename`` it may use) and must keep
    a ``filename`` column and the files' row order (no ORDER BY, no
    aggregation), so that ``line_sql`` (on ``alias``) gives each row's line.
    Rejected rows go to ``stg_quarantine``. With ``exact_width`` see the module's docstring.
    """
    n = next(_counter)
    rej, scan, files_table, rej_table = f"_rej{n}", f"_scan{n}", f"_files{n}", f"_rejlines{n}"
    declared = [*columns, EXTRA_FIELD] if exact_width else list(columns)
    spec = "{" + ", ".join(f"{_sql_string(c)}: 'VARCHAR'" for c in declared) + "}"
    width = ("strict_mode = true, null_padding = true, nullstr = $csv_nullstr" if exact_width
             else "strict_mode = false, null_padding = false")
    csv = (
        f"read_csv($csv_files, columns = {spec}, header = false, skip = $csv_skip, delim = $csv_delim, "
        f"quote = $csv_quote, escape = $csv_escape, encoding = $csv_encoding, auto_detect = false, filename = true, ignore_errors = true, "
        f"store_rejects = true, rejects_table = '{rej}', rejects_scan = '{scan}', {width})"
    )
    create = f"CREATE OR REPLACE TEMP TABLE {table} AS {query.replace('{csv}', csv)}"
    bound = {**params, "csv_files": list(files), "csv_skip": skip, "csv_delim": delimiter, "csv_quote": quote,
             "csv_escape": escape, "csv_encoding": encoding, **({"csv_nullstr": _NOT_NULL} if exact_width else {})}
    _check_keeps_order(con, create, bound)
    con.execute(create, bound)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {rej_table} AS
        SELECT s.file_path AS filename, e.line, e.error_type, e.error_message, e.csv_line,
               e.line - $skip - row_number() OVER (PARTITION BY s.file_path ORDER BY e.line) AS good_before
        FROM (SELECT DISTINCT ON (scan_id, file_id, line) * FROM {rej}) e
        JOIN {scan} s ON s.scan_id = e.scan_id AND s.file_id = e.file_id
        """,
        {"skip": skip},
    )
    rejected = int(con.execute(f"SELECT count(*) FROM {rej_table}").fetchone()[0])
    if exact_width and rejected:
        _name_too_many(con, rej_table, len(columns))
    con.execute(
        f"""
        INSERT INTO stg_quarantine
        SELECT filename, line,
               CASE error_type
                   WHEN 'MISSING COLUMNS' THEN 'too few fields: '
                   WHEN 'TOO MANY COLUMNS' THEN 'too many fields: '
                   WHEN 'UNQUOTED VALUE' THEN 'bad quoting: '
                   WHEN 'INVALID ENCODING' THEN 'not UTF-8 text: '
                   ELSE lower(error_type::VARCHAR) || ': '
               END || error_message,
               csv_line
        FROM {rej_table}
        """
    )
    # rowids need not start at 0 (inside a transaction they are offset), so measure them.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {files_table} AS SELECT filename, min(rowid) AS first_rowid "
        f"FROM {table} GROUP BY filename"
    )
    rows = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    ordinal = f"({alias}.rowid - {files_table}.first_rowid + 1)"
    line_sql = f"({ordinal} + {int(skip)}"
    if rejected:
        line_sql += (
            f" + (SELECT count(*) FROM {rej_table} x WHERE x.filename = {alias}.filename AND x.good_before < {ordinal})"
        )
    line_sql += ")"
    for t in (rej, scan):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return RawTable(table, files_table, line_sql, rows, rejected)


def _name_too_many(con: duckdb.DuckDBPyConnection, rej_table: str, expected: int) -> None:
    """DuckDB counts the extra column exact_width adds: say what the file's row has against what it should."""
    rows = con.execute(f"SELECT DISTINCT error_message FROM {rej_table} WHERE error_type = 'TOO MANY COLUMNS'").fetchall()
    for (message,) in rows:
        found = _FOUND_RE.search(message or "")
        if found:
            con.execute(f"UPDATE {rej_table} SET error_message = $new WHERE error_message = $old",
                        {"new": f"{expected} fields expected, {found.group(1)} found", "old": message})


def _check_keeps_order(con: duckdb.DuckDBPyConnection, create: str, params: dict[str, Any]) -> None:
    """Refuse a read whose plan has a join: DuckDB may then insert the rows out of the files' order, and every
    row's line would be wrong. (DuckDB runs a long IN list, or list_contains on a parameter, as a join.)"""
    plan = "".join(str(row[1]) for row in con.execute("EXPLAIN " + create, params).fetchall())
    if "JOIN" in plan.upper():
        raise RuntimeError("a CSV read must be a projection of the file (no join, no long IN list): " + create[:200])


def fill_raw_lines(con: duckdb.DuckDBPyConnection) -> None:
    """Put the file's own text into quarantine rows that lack it (rows refused after parsing)."""
    wanted: dict[str, set[int]] = {}
    for file, line in con.execute("SELECT file, line FROM stg_quarantine WHERE raw IS NULL AND line IS NOT NULL").fetchall():
        wanted.setdefault(file, set()).add(int(line))
    found = []
    for file, lines in wanted.items():
        last = max(lines)
        try:
            with open(file, encoding="utf-8-sig", errors="replace", newline="") as handle:
                for number, text in enumerate(handle, start=1):
                    if number in lines:
                        found.append((file, number, text.rstrip("\r\n")[:2000]))
                    if number >= last:
                        break
        except OSError:
            continue
    if found:
        con.executemany("UPDATE stg_quarantine SET raw = $3 WHERE file = $1 AND line = $2 AND raw IS NULL", found)


def join_files(raw: RawTable, alias: str = "r") -> str:
    """``FROM`` clause fragment: the raw table joined to its per-file offsets (for ``line_sql``)."""
    return f"{raw.name} {alias} JOIN {raw.files_table} USING (filename)"


def drop(con: duckdb.DuckDBPyConnection, raw: RawTable) -> None:
    con.execute(f"DROP TABLE IF EXISTS {raw.name}")
    con.execute(f"DROP TABLE IF EXISTS {raw.files_table}")


def _sql_string(text: str) -> str:
    # Column names are validated identifiers from a fixed vocabulary; quote anyway.
    quote_identifier(text)
    return "'" + text.replace("'", "''") + "'"
