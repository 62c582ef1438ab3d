"""The time reports call "now", fixable for reproducible runs.

``$DIMNB_NOW`` (ISO-8601 with a time zone, e.g. ``2026-11-20T00:00:00Z``)
pins it: notebooks and reports that resolve relative periods ("the last 7
days") then give the same answer on every run. Audit events are never stamped
from this clock: they always carry the real time (or an explicit ``at``).

A data directory may pin its own "now" in a ``pinned-now`` file (the demo
does: its last day is "today", so Today / Yesterday / Last 7 days show calls
whenever the demo runs). It applies where the data directory is
``$DIMNB_DATA`` (``dimnb serve`` and its dashboard kernels); ``$DIMNB_NOW``
still wins.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from dimnb.datadir import DATA_ENV
from dimnb.errors import InvalidInput

NOW_ENV = "DIMNB_NOW"
PIN_FILE = "pinned-now"


def now() -> datetime:
    """The current UTC time, or ``$DIMNB_NOW`` when set, or the ``pinned-now`` of ``$DIMNB_DATA``."""
    fixed = os.environ.get(NOW_ENV) or pinned(os.environ.get(DATA_ENV))
    if not fixed:
        return datetime.now(timezone.utc)
    try:
        value = datetime.fromisoformat(fixed.strip())
    except ValueError as exc:
        raise InvalidInput(f"${NOW_ENV} is not an ISO-8601 time: {fixed!r}", field=NOW_ENV) from exc
    if value.tzinfo is None:
        raise InvalidInput(f"${NOW_ENV} needs a time zone (e.g. {fixed}Z): {fixed!r}", field=NOW_ENV)
    return value.astimezone(timezone.utc)


def pin(data_root: str | os.PathLike[str], moment: datetime) -> Path:
    """Pin a data directory's "now" (the demo's last day); ``now()`` reads it under ``$DIMNB_DATA``."""
    if moment.tzinfo is None:
        raise ValueError("pin() needs an aware datetime")
    path = Path(data_root) / PIN_FILE
    path.write_text(moment.astimezone(timezone.utc).isoformat() + "\n", encoding="utf-8")
    return path


def pinned(data_root: str | os.PathLike[str] | None) -> str | None:
    """The ISO time a data directory pins as "now", if it does."""
    if not data_root:
        return None
    try:
        text = (Path(data_root) / PIN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None
