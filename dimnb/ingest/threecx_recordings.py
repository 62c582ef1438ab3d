"""Linking 3CX recording files to calls.

3CX writes ``Recordings/<ext>/[<display name>]_<from>-<to>_<YYYYMMDDHHMMSS>(<n>).wav``
(timestamp in UTC). v20 links files to CDRs explicitly (``cdrrecordings``);
for legacy CDRs the loader matches files by extension folder, time and
numbers. Recordings from 3CX stay ``pending_archive`` until the archive job
has copied and verified them; a file already gone is ``missing``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import duckdb
from tqdm import tqdm

from dimnb import model
from dimnb.ingest import csvread, staging
from dimnb.audiofiles import probe
from dimnb.ingest.recording_files import AUDIO_SUFFIXES, insert_staged, probe_rows

NAME_RE = re.compile(
    r"^\[(?P<name>.*)\]_(?P<from>[^_\-\[\]]+)-(?P<to>[^_\[\]]+)_(?P<ts>\d{14})(?:\((?P<n>\d+)\))?"
    r"\.(?P<fmt>wav|mp3|ogg|opus|flac|gsm)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RecordingName:
    display_name: str
    from_number: str
    to_number: str
    start: datetime
    counter: int | None
    fmt: str


def parse_name(file_name: str) -> RecordingName | None:
    match = NAME_RE.match(file_name)
    if not match:
        return None
    try:
        start = datetime.strptime(match["ts"], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return RecordingName(
        match["name"], match["from"], match["to"], start, int(match["n"]) if match["n"] else None, match["fmt"].lower()
    )


def safe_join(root: Path, relative: str) -> Path | None:
    """``root / relative`` when ``relative`` stays inside ``root``; None for absolute or ``..`` paths."""
    text = relative.replace("\\", "/").strip()
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    parts = PurePosixPath(text).parts
    if any(p in ("..", "") for p in parts):
        return None
    return root.joinpath(*parts)


# ------------------------------------------------------------------------------ v20: explicit links


LINK_BATCH = 100_000  # links checked on disk and staged at a time: memory stays bounded at any size


def stage_v20_links(
    con: duckdb.DuckDBPyConnection, file: str, columns: list[str], root: Path, *, progress: bool = False
) -> csvread.RawTable:
    """Stage a ``cdrrecordings`` export: each row's file (checked on disk) linked to its CDR.

    The links are read, checked and split into folder and name in SQL; Python only looks at the disk, a
    batch of files at a time (millions of links as Python objects at once would take gigabytes).
    """
    raw = csvread.read_csv_raw(con, [file], columns, skip=1)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _v20_read AS
        SELECT *, CASE WHEN relpath IS NOT NULL THEN regexp_extract(relpath, '[^/]*$') END AS file_name
        FROM (
            SELECT cdr_id, url, source_file, source_line,
                   CASE WHEN cdr_id IS NULL THEN 'no cdr_id'
                        WHEN relpath IS NULL THEN 'recording_url ' || coalesce('''' || replace(url, '\\', '\\\\') || '''', 'None')
                                                  || ' is not a relative path inside the recordings folder'
                   END AS bad_reason,
                   relpath
            FROM (
                SELECT cdr_id, url, source_file, source_line,
                       -- safe_join: no absolute path, no drive, no '..'; '.' and empty parts fall away
                       CASE WHEN text <> '' AND NOT starts_with(text, '/') AND NOT regexp_matches(text, '^[A-Za-z]:')
                                 AND NOT list_contains(parts, '..') AND len(parts) > 0
                            THEN array_to_string(parts, '/') END AS relpath
                FROM (
                    SELECT nullif(trim(r.cdr_id), '') AS cdr_id, nullif(trim(r.recording_url), '') AS url,
                           r.filename AS source_file, {raw.line_sql} AS source_line,
                           trim(replace(coalesce(nullif(trim(r.recording_url), ''), ''), '\\', '/')) AS text,
                           list_filter(string_split(trim(replace(coalesce(nullif(trim(r.recording_url), ''), ''),
                                                                 '\\', '/')), '/'), lambda x: x <> '' AND x <> '.') AS parts
                    FROM {csvread.join_files(raw)}
                )
            )
        )
        """
    )
    con.execute("INSERT INTO stg_quarantine SELECT source_file, source_line, bad_reason, "
                "coalesce(cdr_id, 'None') || ',' || coalesce(url, 'None') FROM _v20_read WHERE bad_reason IS NOT NULL")
    con.execute("CREATE OR REPLACE TEMP TABLE _v20_links AS SELECT *, row_number() OVER (ORDER BY source_line) AS n "
                "FROM _v20_read WHERE bad_reason IS NULL")
    con.execute("DROP TABLE _v20_read")
    total = int(con.execute("SELECT count(*) FROM _v20_links").fetchone()[0])
    bar = tqdm(total=total, desc="recordings", unit="file", disable=not progress or total < 50, leave=False)
    for first in range(0, total, LINK_BATCH):
        batch = con.execute("SELECT n, relpath FROM _v20_links WHERE n > $first AND n <= $first + $size",
                            {"first": first, "size": LINK_BATCH}).fetchall()
        facts = []
        for n, relpath in batch:
            path = root / relpath
            if path.is_file():
                found = probe(path)
                facts.append((n, found.duration_seconds, found.size_bytes, found.sha256, model.PENDING_ARCHIVE))
            else:
                facts.append((n, None, None, None, model.MISSING))
        _insert_links(con, root, facts)
        bar.update(len(batch))
    bar.close()
    con.execute("DROP TABLE _v20_links")
    return raw


def _insert_links(con: duckdb.DuckDBPyConnection, root: Path, facts: list[tuple]) -> None:
    """Stage the links whose files' facts are ``facts`` (link number n, duration, size, checksum, state)."""
    if not facts:
        return
    import pyarrow as pa

    names = ["n", "duration_seconds", "size_bytes", "checksum", "state"]
    types = (pa.int64(), pa.float64(), pa.int64(), pa.string(), pa.string())
    table = pa.table({name: pa.array([f[i] for f in facts], type=t)
                      for i, (name, t) in enumerate(zip(names, types, strict=True))})
    con.register("_v20_facts", table)
    try:
        con.execute(
            """
            INSERT INTO stg_recordings BY NAME
            SELECT l.cdr_id AS segment_source_id, $root || '/' || l.relpath AS source_path, l.file_name,
                   nullif(lower(regexp_extract(l.file_name, '.[.]([^.]*)$', 1)), '') AS format,
                   try_strptime(regexp_extract(l.file_name, $name_re, 4), '%Y%m%d%H%M%S')::TIMESTAMP AT TIME ZONE 'UTC'
                       AS start_time,
                   f.duration_seconds, f.size_bytes, f.checksum, f.state,
                   l.source_file, l.source_line, l.relpath AS source_relpath
            FROM _v20_facts f JOIN _v20_links l USING (n)
            """,
            {"root": str(root).rstrip("/") if str(root) != "/" else "", "name_re": "(?i)" + NAME_RE.pattern},
        )
    finally:
        con.unregister("_v20_facts")


# ------------------------------------------------------------------------------ legacy: match by name


def scan_folder(root: Path) -> list[tuple[Path, str, RecordingName | None]]:
    """Every audio file under ``root``: (path, extension folder, parsed name or None)."""
    found = []
    if not root.is_dir():
        return found
    for folder, _dirs, files in os.walk(root):
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix.lower() in AUDIO_SUFFIXES:
                ext_folder = path.parent.name if path.parent != root else ""
                found.append((path, ext_folder, parse_name(name)))
    return found


def stage_legacy_matches(con: duckdb.DuckDBPyConnection, root: Path, *, progress: bool = False) -> int:
    """Match files in a 3CX recordings folder to the staged legacy calls; derive segment times from them.

    Returns the number of files matched. Files that match no call (now or
    earlier) are listed in ``unmatched_files``.
    """
    files = scan_folder(root)
    parsed = [(str(p), folder, n.start, n.from_number, n.to_number) for p, folder, n in files if n is not None]
    known = {r[0] for r in con.execute("SELECT source_path FROM recordings WHERE system = '3cx'").fetchall()}
    matched: dict[str, tuple[str, int]] = {}
    if parsed:
        import pandas as pd  # here, not at the top: importing pandas costs a load 0.3 s

        frame = pd.DataFrame(parsed, columns=["path", "folder", "ts", "from_no", "to_no"])
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        con.register("_recfiles", frame)
        try:
            candidates = con.execute(
                """
                WITH cand AS (
                    SELECT f.path, s.key, s.seq, c.start_time,
                           abs(epoch(f.ts::TIMESTAMPTZ - coalesce(s.answer_time, s.start_time))) AS dist,
                           (CASE WHEN f.from_no IN (s.from_party, s.to_party, c.from_party) THEN 1 ELSE 0 END
                            + CASE WHEN f.to_no IN (s.from_party, s.to_party, c.to_party) THEN 1 ELSE 0 END) AS numbers
                    FROM _recfiles f
                    JOIN stg_segments s ON f.folder IN (s.from_ext, s.to_ext)
                    JOIN stg_calls c ON c.key = s.key
                    WHERE f.ts::TIMESTAMPTZ BETWEEN c.start_time - INTERVAL 5 SECOND AND c.end_time + INTERVAL 5 SECOND
                )
                SELECT path, key, seq FROM cand
                QUALIFY row_number() OVER (PARTITION BY path ORDER BY numbers DESC, dist, key, seq) = 1
                """
            ).fetchall()
        finally:
            con.unregister("_recfiles")
        matched = {path: (key, seq) for path, key, seq in candidates}
    by_path = {str(p): n for p, _folder, n in files}
    items = [({"key": key, "segment_seq": seq, "start_time": by_path[path].start if by_path[path] else None,
               "source_file": str(root), "source_line": None}, Path(path))
             for path, (key, seq) in sorted(matched.items())]
    rows = probe_rows(items, state=model.PENDING_ARCHIVE, progress=progress, root=root)
    insert_staged(con, rows)
    _derive_segment_times(con, rows)
    unmatched = [(str(p), "name does not follow 3CX's convention" if n is None else "no call matches it")
                 for p, _f, n in files if str(p) not in matched and str(p) not in known]
    con.execute("DELETE FROM unmatched_files WHERE system = '3cx' AND path LIKE $root || '%'", {"root": str(root)})
    if unmatched:
        con.executemany("INSERT INTO unmatched_files VALUES ('3cx', $1, $2, now())", unmatched)
    return len(rows)


def _derive_segment_times(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """For transferred calls, recordings say when each segment ran: derive segment times from them.

    A segment with recordings runs from its first recording's start to its
    last one's end (the first segment still starts with the call: its
    recording starts when it was answered); segments without recordings fill
    the gaps and stay ``estimated``. The derived times go beside the
    estimate (``derived_*``), never over it: only users who may play the
    recordings see them (dimnb.sessions).
    """
    spans: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        if row["start_time"] is None or row["duration_seconds"] is None:
            continue
        start = row["start_time"].timestamp()
        span = spans.setdefault(row["key"], {}).setdefault(int(row["segment_seq"]), [start, start])
        span[0] = min(span[0], start)
        span[1] = max(span[1], start + row["duration_seconds"])
    if not spans:
        return
    staging.materialize(con)
    keys = list(spans)
    segs = con.execute(
        """
        SELECT s.key, s.seq, epoch(c.start_time), epoch(c.end_time), count(*) OVER (PARTITION BY s.key)
        FROM stg_segments s JOIN stg_calls c USING (key) WHERE list_contains($keys, s.key) ORDER BY s.key, s.seq
        """,
        {"keys": keys},
    ).fetchall()
    by_key: dict[str, list[tuple[int, float, float, int]]] = {}
    for key, seq, call_start, call_end, n in segs:
        by_key.setdefault(key, []).append((seq, call_start, call_end, n))
    updates = []
    for key, seg_list in by_key.items():
        if seg_list[0][3] < 2:
            continue  # a single segment already has exact times from the CDR
        call_start, call_end = seg_list[0][1], seg_list[0][2]
        known = spans[key]
        n = len(seg_list)
        starts: list[float | None] = [None] * n
        ends: list[float | None] = [None] * n
        for i, (seq, *_rest) in enumerate(seg_list):
            if seq in known:
                starts[i] = max(call_start, min(known[seq][0], call_end))
                ends[i] = max(starts[i], min(known[seq][1], call_end))
        for i, (seq, *_rest) in enumerate(seg_list):
            if seq in known:
                begins = call_start if i == 0 else starts[i]
                updates.append((key, seq, begins, starts[i], ends[i], "derived"))
                continue
            previous_end = next((ends[j] for j in range(i - 1, -1, -1) if ends[j] is not None), call_start)
            next_start = next((starts[j] for j in range(i + 1, n) if starts[j] is not None), call_end)
            updates.append((key, seq, previous_end, None, max(previous_end, next_start), "estimated"))
    if updates:
        import pandas as pd  # here, not at the top: importing pandas costs a load 0.3 s

        frame = pd.DataFrame(updates, columns=["key", "seq", "s", "a", "e", "q"])
        con.register("_seg_updates", frame)
        try:
            con.execute(
                """
                UPDATE stg_segments SET derived_start_time = to_timestamp(u.s), derived_end_time = to_timestamp(u.e),
                       derived_quality = u.q,
                       derived_answer_time = CASE WHEN NOT stg_segments.answered THEN NULL
                                                  WHEN u.a IS NOT NULL THEN to_timestamp(u.a)
                                                  ELSE to_timestamp(u.s) END
                FROM _seg_updates u WHERE stg_segments.key = u.key AND stg_segments.seq = u.seq
                """
            )
        finally:
            con.unregister("_seg_updates")
