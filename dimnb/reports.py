"""The Call List report: one row per call in the viewer's scope, filtered, sorted, paged, exported.

Every query here embeds ``access.scope_sql`` for the report scope; the
recording marker and the "only calls with recordings" filter follow the
playback grant (``access.scope_sql(actor, PLAY_RECORDING)``): a manager who
may list Sales' calls but play only their own sees a marker only on their
own calls, and "only calls with recordings" gives only those.

``resolve`` turns ``Filters`` into what runs: it asks the directory what a
party search means (a user, an extension, or text) and, given the state
store, refuses a group that is gone or a user who left, naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dimnb import access
from dimnb.actions import EXPORT_CALLS, PLAY_RECORDING, VIEW_CALLS
from dimnb.errors import InvalidInput, NotFound
from dimnb.filters import SORTABLE, Filters, Party, split_party
from dimnb.sql import Fragment
from dimnb.store import directory_repo
from dimnb.store.callstore import CallStore
from dimnb.store.statestore import StateStore

if TYPE_CHECKING:  # pandas loads only where a DataFrame is asked for: a dashboard kernel lists rows without it
    import pandas as pd

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 10_000
EXPORT_BATCH_ROWS = 50_000
TOTAL_CAP = 10_000  # the Call List counts matches up to this many; past it, it says "more than 10,000 calls"

COLUMNS = [
    "start_time", "direction", "from_party", "to_party", "final_party", "ring_seconds", "talk_seconds",
    "duration_seconds", "outcome", "groups", "segment_count", "recording", "call_id",
]
EXTRA_COLUMNS = ["from_name", "final_name", "from_ext", "final_ext"]
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
GROUPS_SQL = "coalesce(array_to_string(c.group_tags, ', '), '')"  # the call's group tags, sorted
PLAYABLE = "playable"
PENDING = "pending archive"


@dataclass(frozen=True)
class Resolved:
    """Filters as they run: the party's meaning looked up in the directory."""

    filters: Filters
    party: Party | None = None

    def condition(self, now: datetime | None = None) -> Fragment:
        return self.filters.condition(self.party, now=now)


@dataclass(frozen=True)
class CallPage:
    rows: pd.DataFrame
    total: int | None  # None when asked not to count
    page: int
    page_size: int
    sort: str = "start_time"
    descending: bool = True

    @property
    def pages(self) -> int:
        return max(1, -(-(self.total or 0) // self.page_size))

    @property
    def call_ids(self) -> list[int]:
        return [int(x) for x in self.rows["call_id"]] if len(self.rows) else []


@dataclass(frozen=True)
class CallRows:
    """One page of the Call List as plain rows (dicts keyed like ``CallPage.rows``' columns), without pandas."""

    rows: list[dict[str, Any]]
    total: int | None
    page: int
    page_size: int
    sort: str = "start_time"
    descending: bool = True

    @property
    def call_ids(self) -> list[int]:
        return [int(r["call_id"]) for r in self.rows]


# ---------------------------------------------------------------------------- the directory's view of a filter


def active_groups(state: StateStore) -> list[str]:
    return directory_repo.active_group_names(state)


def check_group(state: StateStore, name: str) -> str:
    """The group's name as the directory spells it; InvalidInput naming ``group`` if it is unknown or gone."""
    row = directory_repo.group_any_case(state, name)
    if row is None:
        raise InvalidInput(f"group: there is no group {name!r}", field="group")
    if not row["active"]:
        raise InvalidInput(f"group: {row['name']} no longer exists (it was removed from the directory)",
                           field="group")
    return str(row["name"])


def _user(state: StateStore, login: str) -> str | None:
    """The login if it names an active user, None if no user has it; InvalidInput if that user left."""
    row = directory_repo.by_login_any_case(state, login)
    if row is None:
        return None
    if not row["active"]:
        raise InvalidInput(f"party: {row['login']} is no longer an active user; search by their extension "
                           "or number instead", field="party")
    return str(row["login"])


def check_directory(state: StateStore, filters: Filters) -> Filters:
    """The filters with the group spelled as the directory spells it; InvalidInput for a gone group or user."""
    if filters.group:
        group = check_group(state, filters.group)
        if group != filters.group:
            filters = filters.with_(group=group)
    if filters.party:
        kind, value = split_party(filters.party)
        if kind in (None, "user"):
            _user(state, value)
    return filters


def _party(calls: CallStore, state: StateStore | None, text: str) -> Party:
    kind, value = split_party(text)
    if kind in (None, "user"):
        if state is not None:
            login = _user(state, value)
        else:
            row = calls.cursor().execute("SELECT min(login) FROM dir_primary_groups WHERE lower(login) = $l",
                                         {"l": value.lower()}).fetchone()
            login = row[0] if row else None
        if login is not None:
            return Party("user", login)
        if kind == "user":
            raise InvalidInput(f"party: there is no user {value!r}", field="party")
    if kind in (None, "extension"):
        known = calls.cursor().execute("SELECT count(*) FROM dir_extensions WHERE extension = $x",
                                       {"x": value}).fetchone()[0]
        if known or kind == "extension":
            return Party("extension", value)
    return Party("text", value)


def resolve(calls: CallStore, filters: Filters, *, state: StateStore | None = None) -> Resolved:
    """What the filters mean against this directory. With ``state``: a gone group or user is an InvalidInput."""
    if not isinstance(filters, Filters):
        raise TypeError("resolve() takes Filters (use Filters.parse for loose input)")
    if state is not None:
        filters = check_directory(state, filters)
    party = _party(calls, state, filters.party) if filters.party else None
    return Resolved(filters, party)


def _resolved(calls: CallStore, filters: Filters | Resolved, state: StateStore | None) -> Resolved:
    return filters if isinstance(filters, Resolved) else resolve(calls, filters, state=state)


# ---------------------------------------------------------------------------- SQL


@dataclass(frozen=True)
class Statements:
    """The SQL the Call List runs for one page (for the benchmark's bare-DuckDB baseline, and for tests)."""

    page: Fragment
    count: Fragment
    params: dict[str, Any] = field(default_factory=dict)


def _where(actor: access.Actor, resolved: Resolved, now: datetime | None) -> tuple[Fragment, Fragment]:
    play = access.scope_sql(actor, PLAY_RECORDING)
    if resolved.filters.with_recordings:  # the playback scope is already inside the report scope
        return play & resolved.condition(now) & Fragment("c.recordings_available > 0"), play
    return access.scope_sql(actor, VIEW_CALLS) & resolved.condition(now), play


def _sort_columns(sort: str, play: Fragment) -> str:
    """Extra columns the page's inner query computes (only for the sorts that need them)."""
    if sort == "groups":
        return f", {GROUPS_SQL} AS sort_groups"
    if sort == "recording":
        return (f", CASE WHEN NOT ({play.sql}) THEN 0 WHEN c.recordings_available > 0 THEN 2"
                " WHEN c.recordings_pending > 0 THEN 1 ELSE 0 END AS sort_recording")
    return ""


def _order(sort: Any, descending: bool) -> str:
    if not isinstance(sort, str) or sort not in SORTABLE:
        raise InvalidInput(f"sort: {sort!r} is not a sortable column ({', '.join(SORTABLE)})", field="sort")
    direction = "DESC" if descending else "ASC"
    tiebreak = "" if sort == "call_id" else f", c.call_id {direction}"
    return f"{SORTABLE[sort]} {direction} NULLS LAST{tiebreak}"


def _select(play: Fragment) -> str:
    return f"""
        SELECT c.start_time, c.direction, c.from_party, c.to_party, c.final_party,
               c.ring_seconds, c.talk_seconds, c.duration_seconds, c.outcome,
               {GROUPS_SQL} AS groups,
               c.segment_count,
               CASE WHEN NOT ({play.sql}) THEN ''
                    WHEN c.recordings_available > 0 THEN '{PLAYABLE}'
                    WHEN c.recordings_pending > 0 THEN '{PENDING}'
                    ELSE '' END AS recording,
               c.call_id, c.from_name, c.final_name, c.from_ext, c.final_ext"""


def statements(actor: access.Actor, resolved: Resolved, *, sort: str = "start_time", descending: bool = True,
               page: int = 1, page_size: int = DEFAULT_PAGE_SIZE, now: datetime | None = None) -> Statements:
    page, page_size = _check_page(page, page_size)
    where, play = _where(actor, resolved, now)
    order = _order(sort, descending)
    params: dict[str, Any] = {**where.params, **play.params, "p_limit": page_size,
                              "p_offset": (page - 1) * page_size}
    page_sql = f"""
        WITH page AS (
            SELECT c.*{_sort_columns(sort, play)} FROM calls c WHERE {where.sql}
            ORDER BY {order} LIMIT $p_limit OFFSET $p_offset
        )
        {_select(play)}
        FROM page c
        ORDER BY {order}
        """
    count_sql = f"SELECT count(*) FROM calls c WHERE {where.sql}"
    return Statements(Fragment(page_sql, params), Fragment(count_sql, where.params), params)


def _check_page(page: Any, page_size: Any) -> tuple[int, int]:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1 or page > 10**9:
        raise InvalidInput("page: must be a whole number from 1", field="page")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size: must be between 1 and {MAX_PAGE_SIZE}", field="page_size")
    return page, page_size


# ---------------------------------------------------------------------------- the verbs


def count_calls(calls: CallStore, actor: access.Actor, filters: Filters | Resolved, *,
                state: StateStore | None = None, now: datetime | None = None) -> int:
    """How many calls in the actor's scope match."""
    resolved = _resolved(calls, filters, state)
    where, _play = _where(actor, resolved, now)
    return int(calls.cursor().execute(f"SELECT count(*) FROM calls c WHERE {where.sql}", where.params).fetchone()[0])


@dataclass(frozen=True)
class Total:
    """What the Call List says about how many calls match: exact up to a cap, else "more than" the cap.

    An exact count over millions of calls reads every row of the scope (150 ms at 10M calls); counting
    only up to the cap stops as soon as that many are found.
    """

    count: int
    capped: bool = False  # more than ``count`` calls match

    @property
    def label(self) -> str:
        if self.capped:
            return f"more than {self.count:,} calls"
        return f"{self.count:,} {'call' if self.count == 1 else 'calls'}"


def count_calls_upto(calls: CallStore, actor: access.Actor, filters: Filters | Resolved, *, cap: int | None = None,
                     state: StateStore | None = None, now: datetime | None = None) -> Total:
    """How many calls in the actor's scope match, counted up to ``cap`` (default ``TOTAL_CAP``: what the Call
    List shows)."""
    cap = TOTAL_CAP if cap is None else cap
    built = count_upto_statement(actor, _resolved(calls, filters, state), cap=cap, now=now)
    found = int(calls.cursor().execute(built.sql, built.params).fetchone()[0])
    return Total(cap, True) if found > cap else Total(found)


def count_upto_statement(actor: access.Actor, resolved: Resolved, *, cap: int = TOTAL_CAP,
                         now: datetime | None = None) -> Fragment:
    where, _play = _where(actor, resolved, now)
    return Fragment(f"SELECT count(*) FROM (SELECT 1 FROM calls c WHERE {where.sql} LIMIT $p_cap)",
                    {**where.params, "p_cap": cap + 1})


def list_calls(
    calls: CallStore,
    actor: access.Actor,
    filters: Filters | Resolved,
    *,
    state: StateStore | None = None,
    sort: str = "start_time",
    descending: bool = True,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    with_total: bool = True,
    now: datetime | None = None,
) -> CallPage:
    """One page of the Call List (times in the filters' time zone), with the total unless ``with_total=False``."""
    resolved = _resolved(calls, filters, state)
    built = statements(actor, resolved, sort=sort, descending=descending, page=page, page_size=page_size, now=now)
    cur = calls.cursor()
    frame = cur.execute(built.page.sql, built.page.params).df()
    total = int(cur.execute(built.count.sql, built.count.params).fetchone()[0]) if with_total else None
    return CallPage(localize(frame, resolved.filters.timezone), total, page, page_size, sort, descending)


def list_call_rows(
    calls: CallStore,
    actor: access.Actor,
    filters: Filters | Resolved,
    *,
    state: StateStore | None = None,
    sort: str = "start_time",
    descending: bool = True,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    with_total: bool = True,
    now: datetime | None = None,
) -> CallRows:
    """``list_calls`` as plain rows (the same query, the same localizing): what the dashboard's table shows."""
    resolved = _resolved(calls, filters, state)
    built = statements(actor, resolved, sort=sort, descending=descending, page=page, page_size=page_size, now=now)
    cur = calls.cursor()
    result = cur.execute(built.page.sql, built.page.params)
    names = [d[0] for d in result.description]
    zone = ZoneInfo(resolved.filters.timezone)
    rows = [_localize_row(dict(zip(names, values)), zone) for values in result.fetchall()]
    total = int(cur.execute(built.count.sql, built.count.params).fetchone()[0]) if with_total else None
    return CallRows(rows, total, page, page_size, sort, descending)


def _localize_row(row: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    if row.get("start_time") is not None:
        row["start_time"] = row["start_time"].astimezone(zone)
    for column in ("ring_seconds", "talk_seconds", "duration_seconds"):
        if row.get(column) is not None:
            row[column] = round(float(row[column]), 1)
    return row


def all_calls(calls: CallStore, actor: access.Actor, filters: Filters | Resolved, *,
              state: StateStore | None = None, sort: str = "start_time", descending: bool = True,
              limit: int | None = None, now: datetime | None = None) -> pd.DataFrame:
    """Every matching call (or the first ``limit``), in one DataFrame: for analysis."""
    import pandas as pd

    frames = list(iter_batches(calls, actor, filters, state=state, sort=sort, descending=descending, limit=limit,
                               now=now))
    if frames:
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return list_calls(calls, actor, filters, state=state, page_size=1, with_total=False, now=now).rows.iloc[:0]


def iter_batches(calls: CallStore, actor: access.Actor, filters: Filters | Resolved, *,
                 state: StateStore | None = None, sort: str = "start_time", descending: bool = True,
                 limit: int | None = None, batch_rows: int = EXPORT_BATCH_ROWS,
                 now: datetime | None = None) -> Iterator[pd.DataFrame]:
    """Every matching call, in order, from ONE query (one generation, no OFFSET paging), in DataFrames."""
    resolved = _resolved(calls, filters, state)
    where, play = _where(actor, resolved, now)
    order = _order(sort, descending)
    params = {**where.params, **play.params}
    limit_sql = ""
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInput("limit: must be a whole number from 0", field="limit")
        limit_sql, params["p_limit"] = "LIMIT $p_limit", limit
    sql = f"""
        WITH rows AS (
            SELECT c.*{_sort_columns(sort, play)} FROM calls c WHERE {where.sql}
            ORDER BY {order} {limit_sql}
        )
        {_select(play)}
        FROM rows c
        ORDER BY {order}
    """
    cur = calls.cursor()
    reader = cur.sql(sql, params=params).to_arrow_reader(batch_rows)
    for batch in reader:
        if batch.num_rows:
            yield localize(batch.to_pandas(), resolved.filters.timezone)


def localize(frame: pd.DataFrame, zone: str) -> pd.DataFrame:
    """Start times as timezone-aware timestamps in ``zone``; durations rounded to a tenth of a second."""
    import pandas as pd

    if "start_time" in frame:
        frame["start_time"] = pd.to_datetime(frame["start_time"], utc=True).dt.tz_convert(zone)
    for column in ("ring_seconds", "talk_seconds", "duration_seconds"):
        if column in frame:
            frame[column] = frame[column].round(1)
    return frame


def export_csv(calls: CallStore, actor: access.Actor, filters: Filters | Resolved, path: str | Path, *,
               state: StateStore | None = None, sort: str = "start_time", descending: bool = True,
               now: datetime | None = None) -> int:
    """Write the scoped, filtered Call List to CSV (UTF-8, header row of labels); returns the rows written.

    Start times are ISO 8601 with the offset of the filters' time zone. Streamed by DuckDB (dimnb.exports).
    """
    from dimnb import exports

    return exports.export_calls(calls, actor, _resolved(calls, filters, state), path, "csv", sort=sort,
                                descending=descending, now=now)


def visible_groups(calls: CallStore, state: StateStore, actor: access.Actor) -> list[str]:
    """Groups worth offering this user in a group filter: active groups their scope can show calls of.

    All Calls: every active group. Otherwise the user's own groups and the
    groups tagged on calls in their report scope (those already show in the
    Groups column, so naming them reveals nothing new).
    """
    active = active_groups(state)
    if actor.report_scope == "all":
        return active
    view = access.scope_sql(actor, VIEW_CALLS)
    tagged = {r[0] for r in calls.cursor().execute(
        f"SELECT DISTINCT unnest(c.group_tags) FROM calls c WHERE {view.sql}", view.params).fetchall()}
    return [g for g in active if g in tagged or g in actor.groups]
