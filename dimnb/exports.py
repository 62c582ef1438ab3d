"""Exports to CSV and XLSX that stream from DuckDB: no row passes through pandas or a Python loop.

CSV is DuckDB's own ``COPY … TO``. XLSX is a zip of XML parts: DuckDB writes
the worksheet's ``<row>`` elements (one per line, escaped in SQL) with the
same ``COPY``, and Python only wraps them with the fixed parts and deflates
the result (zlib, level 1) in 1 MB chunks. DuckDB cannot write XLSX itself
here (its excel extension is not bundled and nothing can be installed), and
xlsxwriter, even in constant-memory mode, spends microseconds of Python per
cell: tens of seconds for a million calls (docs/reports.md, "Exports").

Both formats show the same text: times as ISO 8601 with the offset of the
export's time zone, durations rounded to a tenth of a second, empty cells
for no value. A file appears whole or not at all (written beside, then
renamed).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb

from dimnb import access, reports
from dimnb.actions import EXPORT_CALLS
from dimnb.errors import InvalidInput, NotFound
from dimnb.sql import Fragment
from dimnb.store.callstore import CallStore

FORMATS = ("csv", "xlsx")
XLSX_MAX_ROWS = 1_048_576  # Excel's limit, the header row included
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "FLOAT", "DOUBLE", "DECIMAL")


def check_format(fmt: object) -> str:
    if fmt not in FORMATS:
        raise InvalidInput(f"format: {fmt!r} is not one of {', '.join(FORMATS)}", field="format")
    return str(fmt)


def _column_types(cur: duckdb.DuckDBPyConnection, query: Fragment) -> list[tuple[str, str]]:
    cur.execute(f"DESCRIBE ({query.sql})", query.params)
    return [(str(r[0]), str(r[1])) for r in cur.fetchall()]


def _iso(column: str) -> str:
    """A TIMESTAMPTZ as ISO 8601 text in the zone ``$x_tz`` with its offset (``2026-11-03T14:00:00+01:00``)."""
    local = f"timezone($x_tz, {column})"
    offset = f"CAST(round(epoch({local}) - epoch({column})) AS BIGINT)"
    return (f"strftime({local}, '%Y-%m-%dT%H:%M:%S') || CASE WHEN {offset} < 0 THEN '-' ELSE '+' END"
            f" || lpad(CAST(abs({offset}) // 3600 AS VARCHAR), 2, '0') || ':'"
            f" || lpad(CAST(abs({offset}) % 3600 // 60 AS VARCHAR), 2, '0')")


def _text(column: str, kind: str) -> str:
    """A column as the text both formats show (NULL stays NULL)."""
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        return _iso(column)
    if kind in ("DOUBLE", "FLOAT"):
        return f"CAST(round({column}, 1) AS VARCHAR)"
    if kind == "BOOLEAN":
        return f"CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' END"
    if kind.endswith("[]"):
        return f"array_to_string({column}, ', ')"
    return f"CAST({column} AS VARCHAR)"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _described(cur: duckdb.DuckDBPyConnection, query: Fragment, labels: dict[str, str],
               columns: Sequence[str] | None) -> list[tuple[str, str, str]]:
    """(name, label, DuckDB type) of the columns to write: ``columns`` in that order, else all of the query's."""
    types = _column_types(cur, query)
    known = dict(types)
    names = list(columns) if columns is not None else [n for n, _ in types]
    return [(n, labels.get(n, n), known[n]) for n in names]


def _xml_text(expression: str) -> str:
    """Text escaped for XML (and characters XML 1.0 cannot hold dropped)."""
    cleaned = f"regexp_replace({expression}, '[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F]', '', 'g')"
    return f"replace(replace(replace({cleaned}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"


def _xml_cell(name: str, kind: str) -> str:
    column = f"q.{_quoted(name)}"
    if kind in ("FLOAT", "DOUBLE"):
        value = f"CAST(round({column}, 1) AS VARCHAR)"
    elif kind.split("(")[0] in _NUMERIC:
        value = f"CAST({column} AS VARCHAR)"
    elif kind == "BOOLEAN":
        return f"CASE WHEN {column} IS NULL THEN '<c/>' WHEN {column} THEN '<c t=\"b\"><v>1</v></c>' " \
               f"ELSE '<c t=\"b\"><v>0</v></c>' END"
    else:
        # an ISO 8601 time is digits and -:+T, nothing to escape (escaping was a third of the export's work)
        text = _text(column, kind) if kind.startswith("TIMESTAMP") else _xml_text(_text(column, kind))
        return f"CASE WHEN {column} IS NULL THEN '<c/>' ELSE '<c t=\"inlineStr\"><is><t xml:space=\"preserve\">' " \
               f"|| {text} || '</t></is></c>' END"
    return f"CASE WHEN {column} IS NULL THEN '<c/>' ELSE '<c><v>' || {value} || '</v></c>' END"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '</Types>')
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>')
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>')
_SHEET_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def _workbook(sheet: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook {_SHEET_NS} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{_escape(sheet[:31])}" sheetId="1" r:id="rId1"/></sheets></workbook>')


def _write_csv(cur: duckdb.DuckDBPyConnection, query: Fragment, columns: list[tuple[str, str, str]],
               zone: str, target: Path) -> int:
    select = ", ".join(f"{_text(f'q.{_quoted(n)}', kind)} AS {_quoted(label)}" for n, label, kind in columns)
    cur.execute(f"COPY (SELECT {select} FROM ({query.sql}) q) TO '{_path_literal(target)}' (FORMAT csv, HEADER)",
                {**query.params, **_zone_param(select, zone)})
    return int(cur.fetchone()[0])


def _write_xlsx(cur: duckdb.DuckDBPyConnection, query: Fragment, columns: list[tuple[str, str, str]],
                zone: str, target: Path, sheet: str) -> int:
    cells = " || ".join(_xml_cell(n, kind) for n, _label, kind in columns) or "''"
    row_xml = f"'<row>' || {cells} || '</row>'"
    header = "<row>" + "".join(f'<c t="inlineStr"><is><t>{_escape(label)}</t></is></c>'
                               for _n, label, _k in columns) + "</row>"
    with tempfile.TemporaryDirectory(prefix="dimnb-xlsx-", dir=target.parent) as scratch:
        body = Path(scratch) / "rows.xml"
        # One text column, never quoted (QUOTE ''), its delimiter a character the XML cannot contain.
        cur.execute(f"COPY (SELECT {row_xml} FROM ({query.sql}) q) TO '{_path_literal(body)}' "
                    "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01')",
                    {**query.params, **_zone_param(row_xml, zone)})
        rows = int(cur.fetchone()[0])
        if rows + 1 > XLSX_MAX_ROWS:
            raise InvalidInput(_too_many_for_xlsx(f"{rows:,} rows"), field="format")
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
            book.writestr("[Content_Types].xml", _CONTENT_TYPES)
            book.writestr("_rels/.rels", _ROOT_RELS)
            book.writestr("xl/workbook.xml", _workbook(sheet))
            book.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
            book.writestr("xl/styles.xml", _STYLES)
            with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out, open(body, "rb") as rows_in:
                out.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_SHEET_NS}>'
                          f"<sheetData>{header}".encode())
                shutil.copyfileobj(rows_in, out, 1 << 20)
                out.write(b"</sheetData></worksheet>")
    return rows


def _too_many_for_xlsx(how_many: str) -> str:
    return (f"format: {how_many} do not fit in an XLSX sheet ({XLSX_MAX_ROWS - 1:,} at most); export CSV, "
            "or narrow the filters")


def _path_literal(path: Path) -> str:
    """A path as a SQL string literal (COPY takes no parameter for its target). Our own temp/target paths only."""
    text = str(path)
    if any(c in text for c in "\0\n\r"):
        raise InvalidInput("path: not a usable file name", field="path")
    return text.replace("'", "''")


def _zone_param(sql: str, zone: str) -> dict[str, str]:
    return {"x_tz": zone} if "$x_tz" in sql else {}


def export_query(cur: duckdb.DuckDBPyConnection, query: Fragment, path: str | os.PathLike[str], fmt: str, *,
                 zone: str = "UTC", labels: dict[str, str] | None = None, columns: Sequence[str] | None = None,
                 sheet: str = "Export") -> int:
    """Write a query's rows to ``path`` as CSV or XLSX (header row of ``labels``); returns the rows written."""
    fmt = check_format(fmt)
    target = Path(path)
    described = _described(cur, query, labels or {}, columns)
    partial = target.with_name(target.name + ".partial")
    try:
        if fmt == "csv":
            written = _write_csv(cur, query, described, zone, partial)
        else:
            written = _write_xlsx(cur, query, described, zone, partial, sheet)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return written


# ---------------------------------------------------------------------------- the Call List


def call_list_query(actor: access.Actor, resolved: reports.Resolved, *, sort: str = "start_time",
                    descending: bool = True, now: datetime | None = None) -> Fragment:
    """Every matching call in the list's order, with the Call List's columns (``reports.iter_batches``' query)."""
    where, play = reports._where(actor, resolved, now)
    order = reports._order(sort, descending)
    sql = f"""
        WITH rows AS (
            SELECT c.*{reports._sort_columns(sort, play)} FROM calls c WHERE {where.sql}
            ORDER BY {order}
        )
        {reports._select(play)}
        FROM rows c
        ORDER BY {order}
    """
    return Fragment(sql, {**where.params, **play.params})


def export_calls(calls: CallStore, actor: access.Actor, resolved: reports.Resolved, path: str | os.PathLike[str],
                 fmt: str = "csv", *, sort: str = "start_time", descending: bool = True,
                 now: datetime | None = None) -> int:
    """The scoped, filtered Call List as CSV or XLSX (the columns and labels of the list); returns the calls written."""
    if not access.allowed(actor, EXPORT_CALLS):
        raise NotFound("nothing to export")
    if fmt == "xlsx":  # refused before writing, not after: past a million rows the XML alone is gigabytes
        fits = XLSX_MAX_ROWS - 1
        if reports.count_calls_upto(calls, actor, resolved, cap=fits, now=now).capped:
            raise InvalidInput(_too_many_for_xlsx(f"more than {fits:,} calls"), field="format")
    query = call_list_query(actor, resolved, sort=sort, descending=descending, now=now)
    return export_query(calls.cursor(), query, path, fmt, zone=resolved.filters.timezone,
                        labels=reports.COLUMN_LABELS, columns=reports.COLUMNS, sheet="Calls")
