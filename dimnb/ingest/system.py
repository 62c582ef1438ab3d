"""What a phone system's ingest module provides, written down once (docs/adding-a-phone-system.md).

A system turns the files a person gives ``dimnb load <system>`` into
*units* (a file, or a batch of one-call files), and stages each unit into the
``stg_*`` tables (``dimnb.ingest.staging``); ``loader.run_units`` does the
rest for every system alike (hashing, skipping files loaded before, one
transaction per unit, merge, access tables, publish). ``load`` runs it.

Two kinds of module implement ``PhoneSystem``:

- ``dimnb.ingest.threecx`` directly (3CX mixes layouts and batches its
  one-call files into one unit);
- ``LegCsvSystem`` subclasses (``asterisk``, ``freeswitch``): CSV files with
  one row per leg in a column order the administrator chooses, each file
  its own unit, read and turned into calls by ``dimnb.ingest.pbxcsv``. A
  subclass says which fields exist and which column lists are complete,
  recognises a file's layout (``plan_file``) and stages it (``stage_file``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypeVar

import duckdb

from dimnb.ingest import pbxcsv
from dimnb.ingest.loader import LoadSummary, Unit, expand_paths, run_units
from dimnb.store.stores import Stores


class PhoneSystem(Protocol):
    """One phone system's ingest: which files are its records, how each is read, and the facts to report."""

    name: str  # as stored in calls.system and loads.system

    def is_cdr_file(self, candidate: Path, folder: Path) -> bool:
        """Whether a file found below a folder given on the command line is a record file to load."""
        ...

    def plan(self, files: Sequence[Path]) -> list[Unit]:
        """Recognise every file's layout before anything is written; raise ``InvalidInput`` for one it cannot read."""
        ...

    def stage(self, con: duckdb.DuckDBPyConnection, unit: Unit) -> None:
        """Fill the staging tables from one unit (inside the unit's transaction)."""
        ...

    @property
    def notes(self) -> list[str]:
        """Facts the person loading should know, printed before the per-file lines."""
        ...


def load(stores: Stores, system: PhoneSystem, paths: Iterable[str | Path], *, progress: bool = False) -> LoadSummary:
    """Load the files ``paths`` name (folders: every record file below them) into one new generation."""
    units = system.plan(expand_paths(paths, system.is_cdr_file))
    summary = run_units(stores, system.name, units, system.stage, progress=progress)
    summary.notes[:0] = system.notes
    return summary


@dataclass
class LegPlan:
    """How to read one CSV file of legs: its layout and how it writes separators, dates and empty fields."""

    kind: str
    columns: list[str]
    skip: int = 0
    delimiter: str = ","
    widths: dict[int, list[str]] = field(default_factory=dict)  # other row widths the file may hold, with layouts
    date_order: str | None = None  # of day-and-month-first dates (a spreadsheet's), see pbxcsv.choose_date_order
    null_text: bool = False  # the text NULL means an empty field (database and spreadsheet exports)


@dataclass
class LegOptions:
    """What every leg-CSV system is told on the command line (a system's own options extend it)."""

    zone: str
    recordings: Path | None = None
    recording_pattern: str = ""
    date_order: str | None = None
    zone_given: bool = True
    progress: bool = False


OptionsT = TypeVar("OptionsT", bound=LegOptions)


class LegCsvSystem(ABC, Generic[OptionsT]):
    """A system that writes one CSV row per leg, one file per unit (Asterisk, FreeSWITCH)."""

    name: ClassVar[str]
    label: ClassVar[str]  # in messages: "unknown Asterisk CDR field(s)"
    fields: ClassVar[tuple[str, ...]]  # every field name a column list may use
    layouts: ClassVar[dict[str, tuple[str, ...]]]  # layouts ``--columns`` may name

    def __init__(self, options: OptionsT, columns: str | Sequence[str] | None = None) -> None:
        self.options = options
        self.columns = self.parse_columns(columns) if columns else None
        self.staged_notes: list[str] = []
        self._plans: dict[Path, LegPlan] = {}

    # ---- column lists

    @classmethod
    def parse_columns(cls, spec: str | Sequence[str]) -> list[str]:
        """``--columns``: a layout's name, or field names in file order (``_`` skips a column)."""
        if isinstance(spec, str) and spec.strip().lower() in cls.layouts:
            return list(cls.layouts[spec.strip().lower()])
        names = pbxcsv.parse_column_list(spec, cls.fields, cls.label)
        cls.check_columns(names)
        return names

    @classmethod
    def header_columns(cls, line: str) -> list[str] | None:
        """The column list a header line declares (unknown names skipped), or None when the line is data."""
        return pbxcsv.header_columns(line, cls.fields)

    @staticmethod
    @abstractmethod
    def check_columns(names: Sequence[str]) -> None:
        """Refuse a column list that cannot give calls (no start time, nothing to tell calls apart, ...)."""

    # ---- files

    @abstractmethod
    def is_cdr_file(self, candidate: Path, folder: Path) -> bool: ...

    @abstractmethod
    def plan_file(self, path: Path) -> LegPlan:
        """Recognise one file's layout (``self.columns`` when given)."""

    @abstractmethod
    def stage_file(self, con: duckdb.DuckDBPyConnection, file: str, plan: LegPlan) -> None:
        """Stage one file (its absolute path) as ``plan`` says; facts to report go to ``self.staged_notes``."""

    def plan(self, files: Sequence[Path]) -> list[Unit]:
        self._plans = {path: self.plan_file(path) for path in files}
        return [Unit(plan.kind, [path], plan.columns, plan.skip) for path, plan in self._plans.items()]

    def stage(self, con: duckdb.DuckDBPyConnection, unit: Unit) -> None:
        path = unit.files[0]
        self.stage_file(con, str(path.resolve()), self._plans[path])

    @property
    def notes(self) -> list[str]:
        return [pbxcsv.zone_note(self.options.zone, given=self.options.zone_given)] + self.staged_notes

    # ---- helpers the subclasses share

    def plan_dates_and_nulls(self, path: Path, plan: LegPlan, time_fields: Sequence[str]) -> LegPlan:
        """Fill in how ``path`` writes dates (``--date-order``, else what its dates prove) and empty fields."""
        times = [i for i, name in enumerate(plan.columns) if name in time_fields]
        plan.date_order = pbxcsv.choose_date_order(path, times, skip=plan.skip, delimiter=plan.delimiter,
                                                   given=self.options.date_order)
        plan.null_text = any(value == "NULL" for row in pbxcsv.sample_rows(path, delimiter=plan.delimiter)
                             for value in row)
        return plan
