"""3CX as a phone system (``dimnb.ingest.system``'s template): which files, which layout each has, how to stage it.

A file is recognised by its first line: a v20 ``cdroutput`` or
``cdrrecordings`` export (``threecx_v20``), else a legacy CDR file with or
without a header (``threecx_legacy``; ``--columns`` gives the order of a file
without one). One-call files (``cdr-YYMMDDHHMMSS.<historyid>.log``) are
batched into one unit. v20 exports are staged first, so that their
recording links find their calls; legacy recordings are matched by 3CX's
file naming (``threecx_recordings``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from dimnb.ingest import csvread, system, threecx_legacy, threecx_recordings, threecx_v20
from dimnb.ingest.loader import LoadSummary, Unit, first_line
from dimnb.store.stores import Stores

PERCALL_RE = re.compile(r"^cdr-\d{12}\..*\.log$", re.IGNORECASE)
_ORDER = {"3cx-v20-cdroutput": 0, "3cx-v20-recordings": 1, "3cx-legacy": 2, "3cx-percall": 3}


def is_cdr_file(candidate: Path, _folder: Path) -> bool:
    return candidate.suffix.lower() in (".csv", ".log", ".txt") and "Recordings" not in candidate.parts


def classify(files: Sequence[Path], columns: list[str] | None) -> list[Unit]:
    """One unit per CDR file (by its first line), and one for all one-call files; v20 exports first."""
    percall: list[Path] = []
    units: list[Unit] = []
    for path in files:
        if PERCALL_RE.match(path.name):
            percall.append(path)
            continue
        first = first_line(path)
        v20 = threecx_v20.header_columns(first)
        if threecx_v20.is_cdroutput_header(v20):
            units.append(Unit("3cx-v20-cdroutput", [path], v20, 1))
        elif threecx_v20.is_recordings_header(v20):
            units.append(Unit("3cx-v20-recordings", [path], v20, 1))
        else:
            declared = threecx_legacy.header_columns(first)
            if declared is not None:
                units.append(Unit("3cx-legacy", [path], columns or threecx_legacy.parse_columns(declared), 1))
            else:
                units.append(Unit("3cx-legacy", [path], columns or list(threecx_legacy.DEFAULT_COLUMNS), 0))
    if percall:
        units.append(Unit("3cx-percall", percall, columns or list(threecx_legacy.DEFAULT_COLUMNS), 0))
    return sorted(units, key=lambda u: _ORDER[u.kind])


class ThreeCX:
    """3CX legacy CDRs (one file, per-call files, socket captures) and v20 ``cdroutput`` / ``cdrrecordings``."""

    name = "3cx"

    def __init__(self, *, columns: str | Sequence[str] | None = None, recordings: Path | None = None,
                 queues: Sequence[str] = (), progress: bool = False) -> None:
        self.columns = threecx_legacy.parse_columns(columns) if columns else None
        self.recordings = recordings
        self.queues = queues
        self.progress = progress

    @property
    def notes(self) -> list[str]:
        return []

    def is_cdr_file(self, candidate: Path, folder: Path) -> bool:
        return is_cdr_file(candidate, folder)

    def plan(self, files: Sequence[Path]) -> list[Unit]:
        return classify(files, self.columns)

    def stage(self, con: duckdb.DuckDBPyConnection, unit: Unit) -> None:
        files = [str(p.resolve()) for p in unit.files]
        # Absolute, so the archive job finds the files whatever directory it runs in.
        root = (Path(self.recordings) if self.recordings else unit.files[0].parent / "Recordings").resolve()
        if unit.kind == "3cx-v20-cdroutput":
            csvread.drop(con, threecx_v20.stage(con, files[0], unit.columns))
            return
        if unit.kind == "3cx-v20-recordings":
            csvread.drop(con, threecx_recordings.stage_v20_links(con, files[0], unit.columns, root,
                                                                 progress=self.progress))
            return
        # The staged views read the raw table until the merge: it is dropped with the next unit's staging.
        threecx_legacy.stage(con, files, unit.columns, skip=unit.skip, queue_extensions=self.queues)
        if root.is_dir():
            threecx_recordings.stage_legacy_matches(con, root, progress=self.progress)


def load_3cx(
    stores: Stores,
    paths: Iterable[str | Path],
    *,
    columns: str | Sequence[str] | None = None,
    recordings: Path | None = None,
    queues: Sequence[str] = (),
    progress: bool = False,
) -> LoadSummary:
    """Load 3CX CDRs (legacy CSV, per-call logs, v20 cdroutput + cdrrecordings) and link recordings."""
    threecx = ThreeCX(columns=columns, recordings=recordings, queues=queues, progress=progress)
    return system.load(stores, threecx, paths, progress=progress)
