"""The time reports call "now", fixable for reproducible runs.

``$DIMNB_NOW`` (ISO-8601 with a time zone, e.g. ``2026-11-20T00:00:00Z``)
pins it: notebooks and reports that resolve relative periods ("the last 7
days") then give the same answer on every run. Audit events are never stamped
from this clock: they always carry the real time (or an explicit ``at``).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from dimnb.errors import InvalidInput

NOW_ENV = "DIMNB_NOW"


def now() -> datetime:
    """The current UTC time, or ``$DIMNB_NOW`` when set."""
    fixed = os.environ.get(NOW_ENV)
    if not fixed:
        return datetime.now(timezone.utc)
    try:
        value = datetime.fromisoformat(fixed.strip())
    except ValueError as exc:
        raise InvalidInput(f"${NOW_ENV} is not an ISO-8601 time: {fixed!r}", field=NOW_ENV) from exc
    if value.tzinfo is None:
        raise InvalidInput(f"${NOW_ENV} needs a time zone (e.g. {fixed}Z): {fixed!r}", field=NOW_ENV)
    return value.astimezone(timezone.utc)
