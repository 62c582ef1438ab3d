"""Running a load for any phone system: stage each unit with its system's module, merge, publish.

What a system provides is written down in ``dimnb.ingest.system``; this
module is the part every system shares.

One ``dimnb load`` invocation writes one new call-store generation. Inside
it each unit (a file, or a batch of one-file-per-call files) is its own
transaction: a unit that fails is rolled back and reported while the others
land; if the process dies nothing of the invocation is published. A unit that
runs out of memory (``DIMNB_WRITER_MEMORY``) or disk stops the whole load with
``LoadCannotFinish``: nothing is published, rather than every later row that
needed it (recording links to its calls, say) being quarantined. A file
whose exact content was loaded before is skipped.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from tqdm import tqdm

from dimnb.audiofiles import sha256_file
from dimnb.errors import DimnbError, InvalidInput
from dimnb.ingest import staging, tagging
from dimnb.store.stores import Stores


class LoadCannotFinish(DimnbError):
    """The machine, not the input, stopped a load (memory or disk): nothing of it is published."""


@dataclass
class FileResult:
    path: str
    kind: str
    status: str = "loaded"  # loaded / skipped / failed
    rows: int = 0
    calls_added: int = 0
    duplicates: int = 0
    quarantined: int = 0
    recordings_linked: int = 0
    message: str = ""


@dataclass
class LoadSummary:
    system: str
    results: list[FileResult] = field(default_factory=list)
    generation: int | None = None
    notes: list[str] = field(default_factory=list)  # facts the person loading should know (printed first)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    def total(self, attribute: str) -> int:
        return sum(getattr(r, attribute) for r in self.results)

    @property
    def anything_read(self) -> bool:
        """Whether any file gave something usable (a call, a duplicate, a recording) or was loaded before."""
        return any(r.status == "skipped" or (r.status == "loaded" and r.calls_added + r.duplicates + r.recordings_linked)
                   for r in self.results)

    def lines(self) -> list[str]:
        out = [f"note: {n}" for n in self.notes]
        for r in self.results:
            if r.status == "skipped":
                out.append(f"{r.path}: already loaded, skipped")
            elif r.status == "failed":
                out.append(f"{r.path}: FAILED: {r.message}")
            else:
                detail = f"{r.rows} rows: {r.calls_added} calls loaded, {r.duplicates} duplicates skipped, {r.quarantined} quarantined"
                if r.recordings_linked:
                    detail += f", {r.recordings_linked} recordings linked"
                out.append(f"{r.path} ({r.kind}): {detail}")
        out.append(
            f"total: {self.total('calls_added')} calls loaded, {self.total('duplicates')} duplicates skipped, "
            f"{self.total('quarantined')} quarantined, {self.total('recordings_linked')} recordings linked"
            + (f" (generation {self.generation})" if self.generation else "")
        )
        if self.total("quarantined"):
            out.append("see the quarantined rows with: dimnb quarantine")
        return out


@dataclass
class Unit:
    kind: str
    files: list[Path]
    columns: list[str]
    skip: int = 0


def first_line(path: Path) -> str:
    """A file's first line (for recognising its layout), without a BOM."""
    with open(path, "rb") as handle:
        head = handle.read(65536)
    return head.decode("utf-8-sig", errors="replace").splitlines()[0] if head.strip() else ""


def expand_paths(paths: Iterable[str | Path], wanted: Callable[[Path, Path], bool]) -> list[Path]:
    """The files given, and in each folder given every file below it that ``wanted(file, folder)`` accepts."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(c for c in sorted(path.rglob("*")) if c.is_file() and wanted(c, path))
        elif path.is_file():
            found.append(path)
        else:
            raise InvalidInput(f"{path}: no such file or directory", field="path")
    return found


# Loads that make a file with the same content "already loaded" (a file of recording links with rows whose call
# was not there yet is read again: the calls may have come since).
_COMPLETE_LOAD = "system = $system AND duplicates >= 0 AND NOT (kind LIKE '%-recordings' AND quarantined > 0)"


def _already_loaded(con: duckdb.DuckDBPyConnection, system: str, sha: str) -> bool:
    row = con.execute(f"SELECT count(*) FROM loads WHERE {_COMPLETE_LOAD} AND file_sha256 = $sha",
                      {"system": system, "sha": sha}).fetchone()
    return bool(row[0])


def _size_loaded(con: duckdb.DuckDBPyConnection, system: str, size: int) -> bool:
    row = con.execute(f"SELECT count(*) FROM loads WHERE {_COMPLETE_LOAD} AND size_bytes = $size",
                      {"system": system, "size": size}).fetchone()
    return bool(row[0])


def _record_loads(
    con: duckdb.DuckDBPyConnection,
    system: str,
    unit: Unit,
    load_id: int,
    shas: dict[Path, str],
    merge: staging.MergeStats,
    quarantined: dict[str, int],
    linked: int,
) -> list[FileResult]:
    linked_by_file = {f: int(n) for f, n in con.execute(
        "SELECT source_file, count(*) FROM stg_rec_new GROUP BY 1").fetchall()}
    results = []
    for path in unit.files:
        name = str(path.resolve())
        rows, added = merge.per_file.get(name, (0, 0))
        q = quarantined.get(name, 0)
        duplicates = rows - added
        # Several input rows per call (Asterisk legs): count rows, not calls. Every row of a call the merge
        # dropped is a duplicate; when it dropped none, no join is needed to find them.
        per_row = con.execute(
            "SELECT sum(r.rows), sum(CASE WHEN n.key IS NULL THEN r.rows ELSE r.duplicate_rows END) "
            "FROM stg_call_rows r LEFT JOIN (SELECT DISTINCT key FROM stg_calls) n USING (key) WHERE r.source_file = $f"
            if merge.duplicates else
            "SELECT sum(rows), sum(duplicate_rows) FROM stg_call_rows WHERE source_file = $f",
            {"f": name},
        ).fetchone()
        if per_row[0] is not None:
            rows, duplicates = int(per_row[0]), int(per_row[1])
        recordings = linked_by_file.get(name, 0) if len(unit.files) > 1 or unit.kind.endswith("recordings") else linked
        result = FileResult(str(path), unit.kind, rows=rows + q + (recordings if unit.kind.endswith("recordings") else 0),
                            calls_added=added, duplicates=duplicates, quarantined=q, recordings_linked=recordings)
        con.execute(
            "INSERT INTO loads VALUES ($load, $system, $kind, $file, $sha, $size, now(), $rows, $added, $dupes, $q, $linked)",
            {"load": load_id, "system": system, "kind": unit.kind, "file": name, "sha": shas[path],
             "size": path.stat().st_size, "rows": result.rows, "added": added, "dupes": result.duplicates,
             "q": q, "linked": recordings},
        )
        results.append(result)
    return results


def _dir_fingerprint(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT * FROM (SELECT 'e', extension, login, valid_from, valid_to FROM dir_extensions "
        "UNION ALL SELECT 'g', login, group_name, valid_from, valid_to FROM dir_primary_groups) ORDER BY ALL"
    ).fetchall()


def sync_directory(con: duckdb.DuckDBPyConnection, stores: Stores) -> bool:
    """Bring the generation's directory snapshot up to date; re-derive access tables if it changed."""
    before = _dir_fingerprint(con)
    tagging.snapshot_directory(con, stores.state)
    if _dir_fingerprint(con) != before:
        tagging.rederive_all(con)
        return True
    return False


def _resource_problem(exc: BaseException) -> str | None:
    """What ran out when ``exc`` is the machine's limit rather than a fault of the file, else None."""
    if isinstance(exc, duckdb.OutOfMemoryException):
        return "memory"
    text = str(exc)
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left on device" in text:
        return "disk space"
    return None


def _cannot_finish(con: duckdb.DuckDBPyConnection, problem: str, paths: list[Path], exc: BaseException
                   ) -> LoadCannotFinish:
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    names = ", ".join(str(p) for p in paths)
    advice = (f"raise DIMNB_WRITER_MEMORY (DuckDB's limit, now {limit}) or load the files in smaller parts"
              if problem == "memory" else "free disk space in the data directory (DuckDB spills there) and load again")
    return LoadCannotFinish(f"the load ran out of {problem} while reading {names}: nothing was loaded ({advice}). "
                            f"DuckDB said: {str(exc).splitlines()[0]}")


StageFn = Callable[[duckdb.DuckDBPyConnection, Unit], None]


def run_units(stores: Stores, system: str, units: list[Unit], stage: StageFn, *, progress: bool = False) -> LoadSummary:
    """Stage and merge each unit in its own transaction, all in one new generation."""
    summary = LoadSummary(system)
    if not units:
        return summary
    with stores.calls.write() as con, ThreadPoolExecutor(max_workers=1) as hasher:
        if progress and sys.stderr.isatty():
            con.execute("SET enable_progress_bar = true")
        sync_directory(con, stores)
        for unit in tqdm(units, desc=f"loading {system}", unit="file", disable=not progress or len(units) < 2):
            # Hashing a large file takes a while: it runs alongside the staging, and is waited for first only
            # where a file of that size was loaded before (any other cannot be a file loaded before).
            hashing = {p: hasher.submit(sha256_file, p) for p in unit.files}
            known = {p: hashing[p].result() for p in unit.files if _size_loaded(con, system, p.stat().st_size)}
            fresh = [p for p in unit.files if p not in known or not _already_loaded(con, system, known[p])]
            for path in unit.files:
                if path not in fresh:
                    summary.results.append(FileResult(str(path), unit.kind, status="skipped"))
            if not fresh:
                continue
            unit = Unit(unit.kind, fresh, unit.columns, unit.skip)
            con.execute("BEGIN TRANSACTION")
            try:
                staging.create_staging(con)
                load_id = staging.next_load_id(con)
                stage(con, unit)
                merge = staging.merge_calls(con, system, load_id)
                linked, _unmatched = staging.merge_recordings(con, system)
                quarantined = staging.store_quarantine(con, load_id)
                shas = {p: hashing[p].result() for p in unit.files}
                summary.results.extend(_record_loads(con, system, unit, load_id, shas, merge, quarantined, linked))
                con.execute("COMMIT")
            except (duckdb.Error, DimnbError, OSError, ValueError) as exc:
                con.execute("ROLLBACK")
                problem = _resource_problem(exc)
                if problem:
                    # Going on would report every later row (recording links to these calls, say) as bad.
                    raise _cannot_finish(con, problem, fresh, exc) from exc
                message = str(exc).splitlines()[0]
                summary.results.extend(FileResult(str(p), unit.kind, status="failed", message=message) for p in fresh)
    summary.generation = stores.calls.current_generation()
    return summary


def __getattr__(name: str) -> object:
    # Where load_3cx lived before dimnb.ingest.threecx: older imports keep working.
    if name == "load_3cx":
        from dimnb.ingest.threecx import load_3cx

        return load_3cx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
