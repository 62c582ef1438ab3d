"""Staging recording files every loader found: their facts read from disk, then rows in ``stg_recordings``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
from tqdm import tqdm

from dimnb import model
from dimnb.audiofiles import probe

AUDIO_SUFFIXES = {".wav", ".mp3", ".ogg", ".opus", ".flac", ".gsm"}

_STG_COLUMNS = ["key", "segment_seq", "segment_source_id", "conf_key", "source_path", "file_name", "format",
                "start_time", "duration_seconds", "size_bytes", "checksum", "state", "source_file", "source_line",
                "source_relpath"]


def probe_rows(items: Iterable[tuple[dict, Path]], *, state: str, progress: bool, root: Path | None = None,
               label: str = "recordings") -> list[dict]:
    """One staging row per ``(link, path)``: ``link``'s fields plus the file's facts; ``state`` for a file that
    is there, ``missing`` for one that is not. With ``root``, the path inside it (``source_relpath``)."""
    items = list(items)
    rows = []
    for base, path in tqdm(items, desc=label, unit="file", disable=not progress or len(items) < 50, leave=False):
        row = dict(base)
        row.update(source_path=str(path), file_name=path.name, format=path.suffix.lower().lstrip(".") or None,
                   source_relpath=path.relative_to(root).as_posix() if root is not None else None)
        if path.is_file():
            facts = probe(path)
            row.update(duration_seconds=facts.duration_seconds, size_bytes=facts.size_bytes,
                       checksum=facts.sha256, state=state)
        else:
            row.update(duration_seconds=None, size_bytes=None, checksum=None, state=model.MISSING)
        rows.append(row)
    return rows


def insert_staged(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """Add ``probe_rows`` rows to ``stg_recordings`` (fields a row lacks are NULL)."""
    if not rows:
        return
    import pandas as pd  # here, not at the top: importing pandas costs a load 0.3 s

    frame = pd.DataFrame(rows).reindex(columns=_STG_COLUMNS)
    frame["start_time"] = pd.to_datetime(frame["start_time"], utc=True)
    con.register("_stg_rec_frame", frame)
    try:
        con.execute(
            """
            INSERT INTO stg_recordings BY NAME
            SELECT key, segment_seq::INTEGER AS segment_seq, segment_source_id::VARCHAR AS segment_source_id,
                   conf_key::VARCHAR AS conf_key, source_path, file_name, format,
                   start_time::TIMESTAMPTZ AS start_time, duration_seconds::DOUBLE AS duration_seconds,
                   size_bytes::BIGINT AS size_bytes, checksum::VARCHAR AS checksum, state, source_file,
                   source_line::BIGINT AS source_line, source_relpath::VARCHAR AS source_relpath
            FROM _stg_rec_frame
            """
        )
    finally:
        con.unregister("_stg_rec_frame")
