"""Linking Asterisk and FreeSWITCH recordings to the legs a load just staged.

Two ways, both looking only inside one recordings folder (a CDR never
points dimnb at a file elsewhere):

- the CDR names the file (FreePBX's ``recordingfile`` column; a
  ``recordingfile`` column in a custom layout): only its file name counts,
  looked up in ``YYYY/MM/DD/`` by the local date in the name
  (``<mode>-<target>-<from>-<YYYYMMDD-HHMMSS>-<uniqueid>.wav``) or of the
  call, then in the folder itself;
- a name pattern holding the leg's id: ``*{uniqueid}.*`` by default for
  Asterisk (which FreePBX's names also fit), ``*{uuid}*`` for FreeSWITCH,
  ``{linkedid}`` for one recording of the whole call. ``*`` and ``?`` are
  wildcards; the pattern matches file names in the folder and below.

There is no archive step for these systems: a file that is there is
``available`` at once; a file the CDR names that is not there is
``missing``. Audio files in the folder that no call explains are listed in
``unmatched_files``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

import duckdb

from dimnb import model
from dimnb.errors import InvalidInput
from dimnb.ingest.recording_files import AUDIO_SUFFIXES, insert_staged, probe_rows

PLACEHOLDERS = {
    "uniqueid": r"(?<![0-9.])(?P<uniqueid>[0-9]{9,10}\.[0-9]+)",
    "linkedid": r"(?<![0-9.])(?P<linkedid>[0-9]{9,10}\.[0-9]+)",
    "uuid": r"(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})",
}
# What each placeholder is compared with on the legs.
_MATCH_SQL = {
    "uniqueid": "regexp_extract(l.source_id, '([0-9]{9,10}\\.[0-9]+)$', 1) = f.id",
    "linkedid": "regexp_extract(l.key, '([0-9]{9,10}\\.[0-9]+)$', 1) = f.id",
    "uuid": "lower(l.source_id) = lower(f.id)",
}
_TOKEN = re.compile(r"\{(\w*)\}|\*|\?|[^{*?]+|\{")
NAME_TIME = re.compile(r"(?<![0-9])(\d{8})-(\d{6})(?![0-9])")


@dataclass(frozen=True)
class NamePattern:
    text: str
    regex: re.Pattern[str]
    placeholder: str


def compile_pattern(pattern: str) -> NamePattern:
    """``--recording-pattern``: a file name with one of {uniqueid}, {linkedid}, {uuid}; ``*`` and ``?`` wildcards."""
    if "/" in pattern or "\\" in pattern:
        raise InvalidInput("--recording-pattern matches file names, not paths: leave the folders out",
                           field="recording_pattern")
    parts: list[str] = []
    found: list[str] = []
    for match in _TOKEN.finditer(pattern):
        token = match.group(0)
        if match.group(1) is not None or token == "{":
            name = match.group(1) or ""
            if name not in PLACEHOLDERS:
                raise InvalidInput(
                    f"--recording-pattern: unknown placeholder {{{name}}} (use {{uniqueid}}, {{linkedid}} or {{uuid}})",
                    field="recording_pattern",
                )
            found.append(name)
            parts.append(PLACEHOLDERS[name])
        elif token == "*":
            parts.append(".*")
        elif token == "?":
            parts.append(".")
        else:
            parts.append(re.escape(token))
    if len(found) != 1:
        raise InvalidInput("--recording-pattern needs exactly one of {uniqueid}, {linkedid} or {uuid}",
                           field="recording_pattern")
    return NamePattern(pattern, re.compile("^" + "".join(parts) + "$"), found[0])


def check_options(folder: Path | None, pattern: str) -> None:
    """Refuse a bad ``--recording-pattern`` or ``--recordings`` before anything is read."""
    compile_pattern(pattern)
    if folder is not None and not folder.is_dir():
        raise InvalidInput(f"{folder}: not a folder", field="recordings")


def _name_time(name: str, zone: str) -> datetime | None:
    match = NAME_TIME.search(name)
    if not match:
        return None
    try:
        local = datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return local.replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)


def audio_files(root: Path) -> list[Path]:
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in sorted(files):
            if Path(name).suffix.lower() in AUDIO_SUFFIXES:
                found.append(Path(folder) / name)
    return sorted(found)


_SEGS = "(SELECT * FROM _legs_ordered WHERE is_segment AND NOT is_dup)"
_BEST_SEGMENT = f"""
    SELECT key,
        arg_min(seq, {{'other': NOT (kind = 'talk' AND answered), 'seq': seq}}) AS best_seq,
        arg_min(coalesce(answer_time, start_time), {{'other': NOT (kind = 'talk' AND answered), 'seq': seq}})
            AS best_start
    FROM {_SEGS} GROUP BY key
"""


def stage(
    con: duckdb.DuckDBPyConnection,
    *,
    system: str,
    root: Path | None,
    pattern: NamePattern,
    zone: str,
    notes: list[str],
    progress: bool = False,
) -> int:
    """Stage recordings for the legs in ``_legs_ordered`` (see pbxcsv.order_legs); returns how many were staged."""
    if root is None and not con.execute(
        "SELECT count(*) FROM _legs_ordered WHERE recordingfile IS NOT NULL"
    ).fetchone()[0]:
        return 0
    named = con.execute(
        f"""
        SELECT l.key, l.file, l.line, l.recordingfile, l.local_day, coalesce(s.seq, b.best_seq),
               coalesce(s.answer_time, s.start_time, b.best_start)
        FROM (SELECT * FROM _legs_ordered WHERE NOT is_dup) l
        LEFT JOIN {_SEGS} s ON s.key = l.key AND s.line = l.line
        LEFT JOIN ({_BEST_SEGMENT}) b ON b.key = l.key
        WHERE l.recordingfile IS NOT NULL
        ORDER BY l.file, l.line
        """
    ).fetchall()
    if root is None:
        if named:
            notes.append(f"{len(named)} CDR rows name a recording file; give --recordings (the folder holding "
                         "YYYY/MM/DD/) to link them")
        return 0
    root = root.resolve()
    known = {r[0] for r in con.execute("SELECT source_path FROM recordings WHERE system = $s", {"s": system}).fetchall()}
    claimed: set[str] = set()
    items: list[tuple[dict, Path]] = []
    for key, file, line, recordingfile, local_day, seq, seg_start in named:
        name = PurePosixPath(recordingfile.replace("\\", "/")).name
        if name in ("", ".", "..") or "\x00" in name:
            continue
        when = _name_time(name, zone)
        days = [d for d in (when.astimezone(ZoneInfo(zone)).strftime("%Y/%m/%d") if when else None, local_day) if d]
        candidates = [root.joinpath(*day.split("/"), name) for day in dict.fromkeys(days)] + [root / name]
        path = next((c for c in candidates if c.is_file()), candidates[0])
        if str(path) in claimed:
            continue
        claimed.add(str(path))
        if str(path) not in known:
            items.append(({"key": key, "segment_seq": seq, "start_time": when or seg_start,
                           "source_file": file, "source_line": line}, path))

    files = audio_files(root) if root.is_dir() else []
    loose = []
    for path in files:
        if str(path) in claimed or str(path) in known:
            continue
        match = pattern.regex.match(path.name)
        if match:
            loose.append((str(path), match.group(pattern.placeholder)))
    matched: set[str] = set()
    if loose:
        import pandas as pd  # here, not at the top: importing pandas costs a load 0.3 s

        con.register("_recfiles", pd.DataFrame(loose, columns=["path", "id"]))
        try:
            whole_call = pattern.placeholder == "linkedid"
            rows = con.execute(
                f"""
                SELECT f.path, l.key, {'b.best_seq' if whole_call else 'coalesce(s.seq, b.best_seq)'},
                       {'b.best_start' if whole_call else 'coalesce(s.answer_time, s.start_time, b.best_start)'},
                       l.file, l.line
                FROM _recfiles f
                JOIN (SELECT * FROM _legs_ordered WHERE NOT is_dup) l ON {_MATCH_SQL[pattern.placeholder]}
                LEFT JOIN {_SEGS} s ON s.key = l.key AND s.line = l.line
                LEFT JOIN ({_BEST_SEGMENT}) b ON b.key = l.key
                QUALIFY row_number() OVER (
                    PARTITION BY f.path
                    ORDER BY s.seq IS NULL, NOT coalesce(s.kind = 'talk' AND s.answered, false), l.file, l.line) = 1
                """
            ).fetchall()
        finally:
            con.unregister("_recfiles")
        for path, key, seq, seg_start, file, line in rows:
            matched.add(path)
            items.append(({"key": key, "segment_seq": seq, "start_time": _name_time(Path(path).name, zone) or seg_start,
                           "source_file": file, "source_line": line}, Path(path)))

    unmatched = [(str(p), "no loaded call matches it" if pattern.regex.match(p.name)
                  else f"its name does not follow {pattern.text}")
                 for p in files if str(p) not in claimed and str(p) not in known and str(p) not in matched]
    con.execute("DELETE FROM unmatched_files WHERE system = $s AND starts_with(path, $root)",
                {"s": system, "root": str(root) + os.sep})
    if unmatched:
        con.executemany(f"INSERT INTO unmatched_files VALUES ('{system}', $1, $2, now())", unmatched)
    insert_staged(con, probe_rows(items, state=model.AVAILABLE, progress=progress))
    return len(items)
