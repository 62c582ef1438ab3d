"""The Call List report: one row per call in the viewer's scope, filtered, sorted, paged, exported.

Every query here embeds ``access.scope_sql``; the recording marker and the
"only calls with recordings" filter follow the playback grant.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dimnb import access
from dimnb.actions import PLAY_RECORDING, VIEW_CALLS
from dimnb.errors import InvalidInput
from dimnb.filters import SORTABLE, Filters
from dimnb.sql import Fragment
from dimnb.store.callstore import CallStore

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 10_000

COLUMNS = [
    "start_time", "direction", "from_party", "to_party", "final_party", "ring_seconds", "talk_seconds",
    "duration_seconds", "outcome", "groups", "segment_count", "recording", "call_id",
]
COLUMN_LABELS = {
    "start_time": "Start Time",
    "direction": "Direction",
    "from_party": "From",
    "to_party": "To",
    "final_party": "Answered / final",
    "ring_seconds": "Ring (s)",
    "talk_seconds": "Talk (s)",
    "duration_seconds": "Duration (s)",
    "outcome": "Outcome",
    "groups": "Groups",
    "segment_count": "Segments",
    "recording": "Recording",
    "call_id": "Call",
}


@dataclass(frozen=True)
class CallPage:
    rows: pd.DataFrame
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _where(actor: access.Actor, filters: Filters) -> tuple[Fragment, Fragment]:
    play = access.scope_sql(actor, PLAY_RECORDING)
    if filters.with_recordings:  # the playback scope already lies inside the report scope
        return play & filters.condition() & Fragment("c.recordings_available > 0"), play
    return access.scope_sql(actor, VIEW_CALLS) & filters.condition(), play


def _order(sort: str, descending: bool) -> str:
    if sort not in SORTABLE:
        raise InvalidInput(f"sort: {sort!r} is not a sortable column ({', '.join(SORTABLE)})", field="sort")
    direction = "DESC" if descending else "ASC"
    return f"{SORTABLE[sort]} {direction} NULLS LAST, c.call_id {direction}"


def count_calls(calls: CallStore, actor: access.Actor, filters: Filters) -> int:
    where, _play = _where(actor, filters)
    return int(calls.cursor().execute(f"SELECT count(*) FROM calls c WHERE {where.sql}", where.params).fetchone()[0])


def list_calls(
    calls: CallStore,
    actor: access.Actor,
    filters: Filters,
    *,
    sort: str = "start_time",
    descending: bool = True,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    with_total: bool = True,
) -> CallPage:
    if not isinstance(page, int) or page < 1:
        raise InvalidInput("page: must be a whole number from 1", field="page")
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size: must be between 1 and {MAX_PAGE_SIZE}", field="page_size")
    where, play = _where(actor, filters)
    order = _order(sort, descending)
    params: dict[str, Any] = {**where.params, **play.params, "p_limit": page_size, "p_offset": (page - 1) * page_size}
    cur = calls.cursor()
    frame = cur.execute(
        f"""
        WITH page AS (
            SELECT c.* FROM calls c WHERE {where.sql}
            ORDER BY {order} LIMIT $p_limit OFFSET $p_offset
        )
        SELECT c.start_time, c.direction, c.from_party, c.to_party, c.final_party,
               c.ring_seconds, c.talk_seconds, c.duration_seconds, c.outcome,
               coalesce(array_to_string(c.group_tags, ', '), '') AS groups,
               c.segment_count,
               CASE WHEN NOT ({play.sql}) THEN ''
                    WHEN c.recordings_available > 0 THEN 'playable'
                    WHEN c.recordings_pending > 0 THEN 'pending archive'
                    ELSE '' END AS recording,
               c.call_id, c.from_name, c.final_name, c.from_ext, c.final_ext
        FROM page c
        ORDER BY {order}
        """,
        params,
    ).df()
    total = count_calls(calls, actor, filters) if with_total else len(frame)
    return CallPage(_localize(frame, filters.timezone), total, page, page_size)


def _localize(frame: pd.DataFrame, zone: str) -> pd.DataFrame:
    if "start_time" in frame:
        frame["start_time"] = pd.to_datetime(frame["start_time"], utc=True).dt.tz_convert(zone)
    for column in ("ring_seconds", "talk_seconds", "duration_seconds"):
        if column in frame:
            frame[column] = frame[column].round(1)
    return frame


def iter_all(
    calls: CallStore, actor: access.Actor, filters: Filters, *, sort: str = "start_time", descending: bool = True,
    chunk: int = 5000,
):
    """Every matching call, in order, a page at a time (for exports)."""
    page = 1
    while True:
        result = list_calls(calls, actor, filters, sort=sort, descending=descending, page=page, page_size=chunk,
                            with_total=False)
        if len(result.rows):
            yield result.rows
        if len(result.rows) < chunk:
            return
        page += 1


def export_csv(calls: CallStore, actor: access.Actor, filters: Filters, path: str | Path, **sort: Any) -> int:
    """Write the scoped, filtered call list to CSV; returns the number of rows written."""
    written = 0
    columns = COLUMNS
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([COLUMN_LABELS[c] for c in columns])
        for frame in iter_all(calls, actor, filters, **sort):
            for row in frame[columns].itertuples(index=False):
                writer.writerow(["" if v is None or (isinstance(v, float) and v != v) else
                                 (v.isoformat() if hasattr(v, "isoformat") else v) for v in row])
                written += 1
    return written
