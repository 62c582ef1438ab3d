"""``dimnb export parquet``: the call store as date-partitioned Parquet, for Spark and other engines.

Layout under the output directory (Hive partitions by the call's start, UTC)::

    calls/year=2026/month=3/data.parquet         one row per call (participant_logins, group_tags included)
    segments/year=…/month=…/data.parquet         every segment
    participants/…                               call_users: who took part, and how (segment / conference)
    group_tags/…                                 call_tags
    conferences/…, conference_members/…
    recordings/…                                 recordings' metadata (no audio)
    directory/users.parquet, groups.parquet, extensions.parquet, memberships.parquet   (history, no credentials)
    manifest.json                                the call-store generation, and each period's fingerprint

Every table of a period is one file, replaced atomically: written beside it
under a hidden name (``.data.parquet.tmp-…``, which Spark, DuckDB globs and
pyarrow datasets skip), flushed to disk, renamed over the old file, and the
directory flushed. A reader sees a period's old file or its new one, never
half of either. A re-run rewrites only the periods whose content changed
(a fingerprint per table and period, computed by DuckDB), and removes the
periods that no longer hold calls. The manifest is rewritten the same way
after each period, so after a kill it still describes every file on disk;
its ``complete`` flag says whether the run finished.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dimnb.errors import DimnbError
from dimnb.fsutil import fsync_path, replaced_atomically, unlink_quietly
from dimnb.store import directory_repo
from dimnb.store.callstore import generation_number
from dimnb.store.stores import Stores

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
DATA_FILE = "data.parquet"
BATCH_ROWS = 100_000

@dataclass(frozen=True)
class _Table:
    """A partitioned table: its rows (alias ``alias``) reached through their call (alias ``c``), and their order."""

    alias: str
    source: str
    order: str

    def period_sql(self) -> str:
        return f"SELECT {self.alias}.* FROM {self.source} WHERE {_PERIOD} ORDER BY {self.order}"

    def fingerprint_sql(self) -> str:
        # hash() of the whole row (a struct): any changed value changes the sum; the count guards cancellation.
        return (f"SELECT year(c.start_time), month(c.start_time), count(*), sum(hash({self.alias})::HUGEINT) "
                f"FROM {self.source} GROUP BY ALL")


_TABLES: dict[str, _Table] = {
    "calls": _Table("c", "calls c", "c.call_id"),
    "segments": _Table("s", "segments s JOIN calls c USING (call_id)", "s.call_id, s.seq"),
    "participants": _Table("u", "call_users u JOIN calls c USING (call_id)", "u.call_id, u.login, u.via"),
    "group_tags": _Table("t", "call_tags t JOIN calls c USING (call_id)", "t.call_id, t.group_name"),
    "conferences": _Table("f", "conferences f JOIN calls c USING (call_id)", "f.call_id, f.conference_id"),
    "conference_members": _Table("m", "conference_members m JOIN calls c USING (call_id)",
                                 "m.call_id, m.conference_id, m.extension, m.party"),
    "recordings": _Table("r", "recordings r JOIN calls c USING (call_id)", "r.recording_id"),
}
_PERIOD = "c.start_time >= $p_start AND c.start_time < $p_end"
# The state store's directory history, without credentials.
_DIRECTORY: dict[str, str] = directory_repo.EXPORT_STATEMENTS


class ExportFailed(DimnbError):
    """The export stopped (disk full, unwritable path); every file on disk is still a whole old or new one."""


@dataclass
class ExportSummary:
    out: Path
    generation: int
    periods: int = 0
    written: list[str] = field(default_factory=list)  # "2026-03" …
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        written = ", ".join(self.written) if len(self.written) <= 6 else f"{len(self.written)} periods"
        return [
            f"exported call-store generation {self.generation} to {self.out}",
            f"periods: {self.periods} ({len(self.written)} written{': ' + written if self.written else ''}, "
            f"{self.unchanged} unchanged, {len(self.removed)} removed)",
            "rows written: " + (", ".join(f"{t} {n:,}" for t, n in self.rows.items() if n) or "none"),
        ]


def _key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def _partition(table: str, year: int, month: int) -> Path:
    return Path(table) / f"year={year}" / f"month={month}"


def _bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


def _fingerprints(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Per period, a fingerprint of each table's rows (order-independent: a count and a sum of row hashes)."""
    result: dict[str, dict[str, str]] = {}
    for name, table in _TABLES.items():
        for year, month, count, total in con.execute(table.fingerprint_sql()).fetchall():
            result.setdefault(_key(year, month), {})[name] = f"{count}:{total}"
    return result


def _write_atomically(target: Path, batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> int:
    """Write a Parquet file beside ``target`` under a hidden name, flush it, rename it over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with replaced_atomically(target) as sink:
        with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
    return rows


def _write_json_atomically(target: Path, data: dict[str, Any]) -> None:
    with replaced_atomically(target, "w") as sink:
        json.dump(data, sink, indent=1, sort_keys=True)
        sink.write("\n")


def read_manifest(out: Path) -> dict[str, Any]:
    """The export's manifest (``{}`` if there is none yet)."""
    try:
        return json.loads((Path(out) / MANIFEST).read_text())
    except FileNotFoundError:
        return {}


def _remove_tmp_leftovers(out: Path) -> None:
    """Hidden temp files a killed run left behind (never visible to readers, but they take space)."""
    if out.exists():
        for leftover in out.rglob(".*.tmp-*"):
            unlink_quietly(leftover)


def _period_batches(con: duckdb.DuckDBPyConnection, table: str, year: int, month: int
                    ) -> tuple[pa.Schema, Iterable[pa.RecordBatch]]:
    start, end = _bounds(year, month)
    reader = con.sql(_TABLES[table].period_sql(), params={"p_start": start, "p_end": end}
                     ).to_arrow_reader(BATCH_ROWS)
    return reader.schema, reader


def _directory_table(stores: Stores, sql: str) -> pa.Table:
    cur = stores.state.connection().execute(sql)
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    return pa.table({name: pa.array([row[i] for row in rows], type=pa.string() if name != "active"
                                    and name != "is_primary" else pa.int64()) for i, name in enumerate(names)})


def _remove_period(out: Path, year: int, month: int) -> None:
    for table in _TABLES:
        folder = out / _partition(table, year, month)
        unlink_quietly(folder / DATA_FILE)
        try:
            folder.rmdir()
            fsync_path(folder.parent)
        except OSError:
            pass


def export(stores: Stores, out: str | Path, *, progress: bool = False) -> ExportSummary:
    """Export the current call-store generation (and the directory) to ``out``; only changed periods are written.

    Raises ExportFailed with a plain message on a full disk or another write
    error; what is on disk then is whole files only (see the module doc).
    """
    from tqdm import tqdm

    out = Path(out)
    name = stores.calls.current_name()
    if name is None:
        stores.calls.connection()  # raises NotInitialized with the usual message
    generation = generation_number(name or "") or 0
    con = duckdb.connect(str(stores.calls.directory / name), read_only=True)  # one generation, all through
    con.execute("SET TimeZone = 'UTC'")
    try:
        out.mkdir(parents=True, exist_ok=True)
        _remove_tmp_leftovers(out)
        manifest = read_manifest(out)
        before: dict[str, dict[str, str]] = manifest.get("periods", {}) if manifest.get("format") == FORMAT_VERSION \
            else {}
        now = _fingerprints(con)
        summary = ExportSummary(out, generation, periods=len(now), rows={t: 0 for t in _TABLES})
        periods = dict(before)
        state = {"format": FORMAT_VERSION, "generation": generation, "complete": False,
                 "previous_generation": manifest.get("generation"), "periods": periods,
                 "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        changed = sorted(k for k, f in now.items() if before.get(k) != f)
        gone = sorted(set(before) - set(now))
        try:
            _write_json_atomically(out / MANIFEST, state)
            for key in gone:
                year, month = (int(x) for x in key.split("-"))
                _remove_period(out, year, month)
                periods.pop(key, None)
                summary.removed.append(key)
                _write_json_atomically(out / MANIFEST, state)
            for key in tqdm(changed, desc="periods", unit="month", disable=not progress):
                year, month = (int(x) for x in key.split("-"))
                for table in _TABLES:
                    schema, batches = _period_batches(con, table, year, month)
                    summary.rows[table] += _write_atomically(out / _partition(table, year, month) / DATA_FILE,
                                                             batches, schema)
                periods[key] = now[key]
                summary.written.append(key)
                _write_json_atomically(out / MANIFEST, state)
            directory = out / "directory"
            for table, sql in _DIRECTORY.items():
                frame = _directory_table(stores, sql)
                _write_atomically(directory / f"{table}.parquet", frame.to_batches(), frame.schema)
            state["complete"] = True
            state["finished_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            _write_json_atomically(out / MANIFEST, state)
        except OSError as exc:
            full = exc.errno == errno.ENOSPC or "No space left" in str(exc)
            reason = "the disk is full" if full else (exc.strerror or str(exc))
            raise ExportFailed(
                f"export to {out} stopped: {reason}. Every period on disk is still complete (old or new); "
                f"{MANIFEST} says which. Free space (or fix the path) and run the same command again."
            ) from exc
        summary.unchanged = len(now) - len(changed)
        return summary
    finally:
        con.close()
