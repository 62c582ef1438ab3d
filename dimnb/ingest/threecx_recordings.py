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


LINK_BATCH = 100_000  # link rows read, checked on disk and staged at a time: memory stays bounded at any size


def stage_v20_links(
    con: duckdb.DuckDBPyConnection, file: str, columns: list[str], root: Path, *, progress: bool = False
) -> csvread.RawTable:
    raw = csvread.read_csv_raw(con, [file], columns, skip=1)
    participant = "r.cdr_participant_id" if "cdr_participant_id" in columns else "NULL"
    query = f"""
        SELECT nullif(trim(r.cdr_id), ''), {participant}, nullif(trim(r.recording_url), ''), r.filename, {raw.line_sql}
        FROM {csvread.join_files(raw)}
        WHERE r.rowid - {raw.files_table}.first_rowid >= $first
          AND r.rowid - {raw.files_table}.first_rowid < $first + $batch
        """
    bar = tqdm(total=raw.rows, desc="recordings", unit="file", disable=not progress or raw.rows < 50, leave=False)
    # In batches of the file's rows: millions of links as Python objects at once would take
    # gigabytes outside DuckDB's memory limit.
    for first in range(0, raw.rows, LINK_BATCH):
        rows = con.execute(query, {"first": first, "batch": LINK_BATCH}).fetchall()
        good: list[tuple[dict, Path]] = []
        bad = []
        for cdr_id, _participant, url, source_file, line in rows:
            path = safe_join(root, url) if url else None
            if not cdr_id or path is None:
                reason = ("no cdr_id" if not cdr_id
                          else f"recording_url {url!r} is not a relative path inside the recordings folder")
                bad.append((source_file, line, reason, f"{cdr_id},{url}"))
                continue
            parsed = parse_name(path.name)
            good.append(({"segment_source_id": cdr_id, "start_time": parsed.start if parsed else None,
                          "source_file": source_file, "source_line": line}, path))
        del rows
        if bad:
            con.executemany("INSERT INTO stg_quarantine VALUES ($1, $2, $3, $4)", bad)
        insert_staged(con, probe_rows(good, state=model.PENDING_ARCHIVE, progress=False, root=root))
        bar.update(len(good) + len(bad))
    bar.close()
    return raw


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
