"""The other reports: Agent summary, Group summary, Missed and abandoned, Activity by hour and weekday.

Each is one SQL statement over the calls a user may list: the condition is
``access.scope_sql(actor, VIEW_CALLS)`` and the report's filters (period,
group, time zone), exactly what the Call List embeds, so every number a
report shows can be opened as a Call List (``drill``) with the same count.
Definitions (docs/reports.md, "The other reports"):

- *unanswered* (an agent's "missed", the Missed report's rows): outcome
  missed, voicemail or abandoned;
- *wait*: the call's ring time (``ring_seconds``), answered or not;
- *service level*: the share of a group's inbound calls answered within N
  seconds of ringing;
- *recorded*: calls with a recording the user may play now (the Call List's
  "only calls with recordings": it follows the playback grant);
- a *call-back* / *called again*: a later call the user may also list, within
  the window, outbound to / inbound from the missed caller's number (digits
  only, leading zeros dropped).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dimnb import access, reports
from dimnb.actions import PLAY_RECORDING, VIEW_CALLS
from dimnb.errors import InvalidInput
from dimnb.filters import Filters
from dimnb.sql import Fragment
from dimnb.store.callstore import CallStore
from dimnb.store import directory_repo
from dimnb.store.statestore import StateStore
from dimnb.store.stores import Stores

if TYPE_CHECKING:
    import pandas as pd

REPORTS: dict[str, str] = {
    "agents": "Agent summary",
    "groups": "Group summary",
    "missed": "Missed and abandoned",
    "activity": "Activity",
}
UNANSWERED = ("missed", "voicemail", "abandoned")
DEFAULT_SERVICE_LEVEL_SECONDS = 20.0
DEFAULT_WINDOW_HOURS = 24.0
MAX_WINDOW_HOURS = 24 * 31
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
REPORT_FILTER_KEYS = ("period", "start", "end", "timezone", "group")

COLUMN_LABELS: dict[str, str] = {
    "user": "User", "name": "Name", "calls": "Calls", "inbound": "Inbound", "outbound": "Outbound",
    "internal": "Internal", "answered": "Answered", "missed": "Missed", "talk_seconds": "Talk (s)",
    "avg_talk_seconds": "Avg talk (s)", "avg_ring_seconds": "Avg ring (s)", "recorded": "Recorded",
    "recorded_pct": "Recorded %", "group": "Group", "answered_pct": "Answered %", "abandoned": "Abandoned",
    "avg_wait_seconds": "Avg wait (s)", "p90_wait_seconds": "90% wait (s)", "service_level_pct": "Service level %",
    "call_id": "Call", "start_time": "Start Time", "caller": "Caller", "caller_name": "Caller name",
    "outcome": "Outcome", "ring_seconds": "Ring (s)", "groups": "Groups", "called_back": "Called back",
    "called_back_at": "Called back at", "called_back_by": "Called back by", "callback_call_id": "Call-back call",
    "called_again": "Called again", "called_again_at": "Called again at",
    "called_again_call_id": "Call-again call", "called_again_outcome": "Call-again outcome",
    "date": "Date", "previous_date": "Previous date", "previous_calls": "Previous calls",
    "weekday": "Weekday", "hour": "Hour",
}


@dataclass(frozen=True)
class ReportOptions:
    """A report's parameters: the filters it may use (period, group, zone) and its own numbers."""

    filters: Filters
    service_level_seconds: float = DEFAULT_SERVICE_LEVEL_SECONDS
    window_hours: float = DEFAULT_WINDOW_HOURS
    by: str = "day"  # activity: "day" (calls per day) or "hour" (weekday x hour heat map)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.filters.to_dict(compact=True).items() if k in REPORT_FILTER_KEYS}
        out.update(service_level=self.service_level_seconds, window_hours=self.window_hours, by=self.by)
        return out


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"{name}: expected a number", field=name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name}: expected a number, got {value!r}", field=name) from None
    if not low <= number <= high:
        raise InvalidInput(f"{name}: must be between {low:g} and {high:g}", field=name)
    return number


def check_name(name: Any) -> str:
    if not isinstance(name, str) or name not in REPORTS:
        raise InvalidInput(f"report: {name!r} is not one of {', '.join(REPORTS)}", field="report")
    return name


def options(filters: Filters, *, service_level: Any = DEFAULT_SERVICE_LEVEL_SECONDS,
            window_hours: Any = DEFAULT_WINDOW_HOURS, by: Any = "day") -> ReportOptions:
    """Validated report options; the filters keep only what a report uses (period/start/end, group, zone)."""
    extra = sorted(k for k in filters.to_dict(compact=True) if k not in REPORT_FILTER_KEYS)
    if extra:  # a filter a report cannot apply must not be silently dropped
        raise InvalidInput(f"{extra[0]}: reports take only {', '.join(REPORT_FILTER_KEYS)}", field=extra[0])
    kept = {k: v for k, v in filters.to_dict().items() if k in REPORT_FILTER_KEYS}
    if by not in ("day", "hour"):
        raise InvalidInput(f"by: {by!r} is not day or hour", field="by")
    return ReportOptions(Filters.parse(kept), _number(service_level, "service_level", 0, 3600),
                         _number(window_hours, "window_hours", 0, MAX_WINDOW_HOURS), by)


# ---------------------------------------------------------------------------- SQL


def _scope(actor: access.Actor, resolved: reports.Resolved, now: datetime | None) -> Fragment:
    """The calls the report counts: the report scope and the report's filters (what the Call List embeds)."""
    return access.scope_sql(actor, VIEW_CALLS) & resolved.condition(now)


def _number_sql(column: str) -> str:
    """A phone number as digits without leading zeros (so ``+44 20…`` and ``0044 20…`` meet)."""
    return f"ltrim(regexp_replace(coalesce({column}, ''), '[^0-9]', '', 'g'), '0')"


def _agents(actor: access.Actor, where: Fragment, names: dict[str, str]) -> Fragment:
    play = access.scope_sql(actor, PLAY_RECORDING)
    unanswered = ", ".join(f"'{o}'" for o in UNANSWERED)
    # Names join the 1 row per user after the aggregation: joined before it (one row per call and user),
    # DuckDB took 23 s at 1M calls instead of 0.1 s.
    sql = f"""
        WITH per_user AS (
            SELECT u.login AS "user",
                   count(*) AS calls,
                   count(*) FILTER (WHERE c.direction = 'inbound') AS inbound,
                   count(*) FILTER (WHERE c.direction = 'outbound') AS outbound,
                   count(*) FILTER (WHERE c.direction = 'internal') AS internal,
                   count(*) FILTER (WHERE c.outcome = 'answered') AS answered,
                   count(*) FILTER (WHERE c.outcome IN ({unanswered})) AS missed,
                   round(coalesce(sum(c.talk_seconds) FILTER (WHERE c.outcome = 'answered'), 0), 1) AS talk_seconds,
                   round(avg(c.talk_seconds) FILTER (WHERE c.outcome = 'answered'), 1) AS avg_talk_seconds,
                   round(avg(c.ring_seconds) FILTER (WHERE c.outcome = 'answered'), 1) AS avg_ring_seconds,
                   count(*) FILTER (WHERE ({play.sql}) AND c.recordings_available > 0) AS recorded,
                   round(100.0 * count(*) FILTER (WHERE ({play.sql}) AND c.recordings_available > 0) / count(*), 1)
                       AS recorded_pct
            FROM calls c CROSS JOIN unnest(c.participant_logins) AS u(login)
            WHERE {where.sql}
            GROUP BY u.login
        ),
        names AS (
            SELECT unnest(CAST($r_logins AS VARCHAR[])) AS login, unnest(CAST($r_names AS VARCHAR[])) AS name
        )
        SELECT p."user", coalesce(n.name, '') AS name, p.* EXCLUDE ("user")
        FROM per_user p LEFT JOIN names n ON n.login = p."user"
        ORDER BY calls DESC, "user"
    """
    return Fragment(sql, {**where.params, **play.params, "r_logins": list(names), "r_names": list(names.values())})


def _groups(where: Fragment, opts: ReportOptions) -> Fragment:
    only = "AND g.name = $r_group" if opts.filters.group else ""
    sql = f"""
        SELECT g.name AS "group",
               count(*) AS calls,
               count(*) FILTER (WHERE c.outcome = 'answered') AS answered,
               round(100.0 * count(*) FILTER (WHERE c.outcome = 'answered') / count(*), 1) AS answered_pct,
               count(*) FILTER (WHERE c.outcome = 'abandoned') AS abandoned,
               round(avg(coalesce(c.ring_seconds, 0)), 1) AS avg_wait_seconds,
               round(quantile_cont(coalesce(c.ring_seconds, 0), 0.9), 1) AS p90_wait_seconds,
               round(100.0 * count(*) FILTER (WHERE c.outcome = 'answered' AND coalesce(c.ring_seconds, 0) <= $r_sl)
                     / count(*), 1) AS service_level_pct
        FROM calls c, unnest(c.group_tags) AS g(name)
        WHERE {where.sql} AND c.direction = 'inbound' {only}
        GROUP BY g.name
        ORDER BY calls DESC, "group"
    """
    params: dict[str, Any] = {**where.params, "r_sl": opts.service_level_seconds}
    if opts.filters.group:
        params["r_group"] = opts.filters.group
    return Fragment(sql, params)


# (moment, call id) as one orderable number: microseconds since the epoch above 64 bits, the id below.
_AFTER_EVERY_ID = str(2**63 - 1)  # the key just after every call at that moment


def _moment_key(moment: str, call_id: str) -> str:
    return f"(CAST(epoch_us({moment}) AS HUGEINT) * {2**64} + {call_id})"


def _number_key(column: str) -> str:
    """A phone number as one integer (digits only, leading zeros dropped): NULL when there are none or more
    than 19. Integers, not strings: the ASOF joins below partition on it, twice as fast at 1M calls."""
    return f"TRY_CAST(NULLIF({_number_sql(column)}, '') AS UBIGINT)"


def _missed(actor: access.Actor, where: Fragment, opts: ReportOptions, now: datetime | None) -> Fragment:
    view = access.scope_sql(actor, VIEW_CALLS)
    start, end = opts.filters.bounds(now)
    window = timedelta(hours=opts.window_hours)
    later_bounds, params = "", {**where.params, **view.params, "r_window": opts.window_hours * 3600.0}
    if start is not None:
        later_bounds += " AND c.start_time > $r_lo"
        params["r_lo"] = start
    if end is not None:
        later_bounds += " AND c.start_time <= $r_hi"
        params["r_hi"] = end + window
    unanswered = ", ".join(f"'{o}'" for o in UNANSWERED)

    def later(direction: str, party: str) -> str:
        # only what the ASOF join sorts: the labels of the few calls it finds are joined afterwards
        return f"""(SELECT c.call_id, c.start_time, {_number_key(party)} AS number,
                           {_moment_key('c.start_time', 'c.call_id')} AS at_key
                    FROM calls c WHERE ({view.sql}) AND c.direction = '{direction}' {later_bounds})"""

    sql = f"""
        WITH missed AS MATERIALIZED (  -- read three times below: computed once
            SELECT c.call_id, c.start_time, c.from_party AS caller, c.from_name AS caller_name, c.outcome,
                   c.ring_seconds, {reports.GROUPS_SQL} AS groups, {_number_key('c.from_party')} AS number,
                   {_moment_key('c.start_time', _AFTER_EVERY_ID)} AS after_key
            FROM calls c
            WHERE {where.sql} AND c.direction = 'inbound' AND c.outcome IN ({unanswered})
        ),
        -- For each missed call, the first later call with its number: an ASOF join (one sorted pass per side;
        -- a join on the number and the window paired every missed call with every call of a frequent
        -- number: 1.9 s at 1M calls). Its one inequality is on (moment, call id) as one key: strictly
        -- after the missed call's moment, the lower call id first among calls at the same moment.
        back AS (
            SELECT m.call_id AS missed_id, b.call_id, b.start_time AS at
            FROM missed m ASOF JOIN {later('outbound', 'c.to_party')} b
                 ON m.number = b.number AND m.start_time < b.start_time
            WHERE b.start_time <= m.start_time + to_seconds($r_window)
        ),
        again AS (
            SELECT m.call_id AS missed_id, a.call_id, a.start_time AS at
            FROM missed m ASOF JOIN {later('inbound', 'c.from_party')} a
                 ON m.number = a.number AND m.start_time < a.start_time
            WHERE a.start_time <= m.start_time + to_seconds($r_window)
        )
        SELECT m.call_id, m.start_time, m.caller, m.caller_name, m.outcome, round(m.ring_seconds, 1) AS ring_seconds,
               m.groups,
               b.call_id IS NOT NULL AS called_back, b.at AS called_back_at,
               coalesce(bc.from_name, bc.from_ext, bc.from_party) AS called_back_by, b.call_id AS callback_call_id,
               a.call_id IS NOT NULL AS called_again, a.at AS called_again_at, a.call_id AS called_again_call_id,
               ac.outcome AS called_again_outcome
        FROM missed m
             LEFT JOIN back b ON b.missed_id = m.call_id LEFT JOIN calls bc ON bc.call_id = b.call_id
             LEFT JOIN again a ON a.missed_id = m.call_id LEFT JOIN calls ac ON ac.call_id = a.call_id
        ORDER BY m.start_time DESC, m.call_id DESC
    """
    return Fragment(sql, params)


@dataclass(frozen=True)
class ActivitySpan:
    """The local days a period covers, and the equally long period just before it."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> ActivitySpan:
        return ActivitySpan(self.first - timedelta(days=self.days), self.first - timedelta(days=1))


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min).replace(tzinfo=zone).astimezone(timezone.utc)


def activity_span(calls: CallStore, where: Fragment, opts: ReportOptions, now: datetime | None) -> ActivitySpan | None:
    """The period's local days (its bounds, or the first and last call in scope when it has none)."""
    zone = ZoneInfo(opts.filters.timezone)
    start, end = opts.filters.bounds(now)
    if start is None or end is None:
        row = calls.cursor().execute(f"SELECT min(c.start_time), max(c.start_time) FROM calls c WHERE {where.sql}",
                                     where.params).fetchone()
        if row[0] is None:
            return None
        start = start or row[0]
        end = end or row[1] + timedelta(microseconds=1)
    last_moment = end - timedelta(microseconds=1)
    return ActivitySpan(start.astimezone(zone).date(), max(start, last_moment).astimezone(zone).date())


def _activity(actor: access.Actor, opts: ReportOptions, span: ActivitySpan | None) -> Fragment:
    """Calls per local day (``by="day"``) or per weekday and hour (``by="hour"``), this period and the previous one."""
    zone = ZoneInfo(opts.filters.timezone)
    unfiltered = reports.Resolved(Filters(group=opts.filters.group, timezone=opts.filters.timezone))
    where = access.scope_sql(actor, VIEW_CALLS) & unfiltered.condition()
    if span is None:  # nothing in scope: an empty frame of the right shape
        span = ActivitySpan(date(2000, 1, 1), date(2000, 1, 1))
    previous = span.previous()
    params: dict[str, Any] = {
        **where.params, "r_tz": opts.filters.timezone,
        "r_prev_lo": _midnight(previous.first, zone), "r_lo": _midnight(span.first, zone),
        "r_hi": _midnight(span.last + timedelta(days=1), zone),
    }
    local = "timezone($r_tz, c.start_time)"
    if opts.by == "hour":
        sql = f"""
            WITH counted AS (
                SELECT isodow({local}) AS dow, hour({local}) AS hour,
                       count(*) FILTER (WHERE c.start_time >= $r_lo) AS calls,
                       count(*) FILTER (WHERE c.start_time < $r_lo) AS previous_calls
                FROM calls c
                WHERE {where.sql} AND c.start_time >= $r_prev_lo AND c.start_time < $r_hi
                GROUP BY ALL
            )
            SELECT ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][d.dow] AS weekday, h.hour,
                   coalesce(k.calls, 0) AS calls, coalesce(k.previous_calls, 0) AS previous_calls
            FROM (SELECT range AS dow FROM range(1, 8)) d CROSS JOIN (SELECT range AS hour FROM range(24)) h
            LEFT JOIN counted k ON k.dow = d.dow AND k.hour = h.hour
            ORDER BY d.dow, h.hour
        """
        return Fragment(sql, params)
    params.update(r_first=span.first, r_last=span.last, r_days=span.days)
    sql = f"""
        WITH per_day AS (
            SELECT CAST({local} AS DATE) AS day, count(*) AS calls,
                   count(*) FILTER (WHERE c.outcome = 'answered') AS answered
            FROM calls c
            WHERE {where.sql} AND c.start_time >= $r_prev_lo AND c.start_time < $r_hi
            GROUP BY ALL
        ),
        span AS (SELECT CAST(unnest(generate_series(CAST($r_first AS DATE), CAST($r_last AS DATE), INTERVAL 1 DAY))
                             AS DATE) AS day)
        SELECT s.day AS date, coalesce(p.calls, 0) AS calls, coalesce(p.answered, 0) AS answered,
               CAST(s.day - CAST($r_days AS INTEGER) AS DATE) AS previous_date, coalesce(q.calls, 0) AS previous_calls
        FROM span s
        LEFT JOIN per_day p ON p.day = s.day
        LEFT JOIN per_day q ON q.day = CAST(s.day - CAST($r_days AS INTEGER) AS DATE)
        ORDER BY s.day
    """
    return Fragment(sql, params)


def statement(calls: CallStore, actor: access.Actor, name: str, resolved: reports.Resolved, opts: ReportOptions, *,
              state: StateStore | None = None, now: datetime | None = None) -> Fragment:
    """The one SQL statement a report runs (also what the benchmark runs on bare DuckDB)."""
    where = _scope(actor, resolved, now)
    if name == "agents":
        return _agents(actor, where, _names(state))
    if name == "groups":
        return _groups(where, opts)
    if name == "missed":
        return _missed(actor, where, opts, now)
    if name == "activity":
        return _activity(actor, opts, activity_span(calls, where, opts, now))
    raise InvalidInput(f"report: {name!r} is not one of {', '.join(REPORTS)}", field="report")


# ---------------------------------------------------------------------------- running


def _names(state: StateStore | None) -> dict[str, str]:
    """Every user's name by login (the Agent summary shows them; a call's participants may have left since)."""
    if state is None:
        return {}
    return directory_repo.names(state)


def localize(frame: pd.DataFrame, zone: str) -> pd.DataFrame:
    """Moments as timezone-aware timestamps in ``zone`` (dates stay dates)."""
    import pandas as pd

    for column in ("start_time", "called_back_at", "called_again_at"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(zone)
    return frame


def run(calls: CallStore, actor: access.Actor, name: str, resolved: reports.Resolved, opts: ReportOptions, *,
        state: StateStore | None = None, now: datetime | None = None) -> pd.DataFrame:
    """A report as a DataFrame (times in the filters' zone)."""
    check_name(name)
    built = statement(calls, actor, name, resolved, opts, state=state, now=now)
    frame = calls.cursor().execute(built.sql, built.params).df()
    if name == "activity" and opts.by == "day":
        for column in ("date", "previous_date"):
            frame[column] = [d.date() if hasattr(d, "date") else d for d in frame[column]]
    return localize(frame, opts.filters.timezone)


def _checked(stores: Stores, opts: ReportOptions) -> tuple[reports.Resolved, ReportOptions]:
    """The filters checked against the directory (a gone group is an InvalidInput), spelled as it spells them."""
    resolved = reports.resolve(stores.calls, opts.filters, state=stores.state)
    return resolved, replace(opts, filters=resolved.filters)


def report(stores: Stores, actor: access.Actor, name: str, opts: ReportOptions, *,
           now: datetime | None = None) -> pd.DataFrame:
    """``run`` with the report's group checked against the directory (a gone group is an InvalidInput)."""
    resolved, opts = _checked(stores, opts)
    return run(stores.calls, actor, check_name(name), resolved, opts, state=stores.state, now=now)


def export(stores: Stores, actor: access.Actor, name: str, opts: ReportOptions, path: str | os.PathLike[str],
           fmt: str | None = None, *, now: datetime | None = None) -> int:
    """A report streamed to CSV or XLSX (``fmt``, else the file's suffix), as ``report`` shows it."""
    from dimnb import exports

    fmt = fmt or Path(path).suffix.lstrip(".").lower()
    resolved, opts = _checked(stores, opts)
    built = statement(stores.calls, actor, check_name(name), resolved, opts, state=stores.state, now=now)
    return exports.export_query(stores.calls.cursor(), built, path, exports.check_format(fmt),
                                zone=opts.filters.timezone, labels=COLUMN_LABELS, sheet=REPORTS[name])


# ---------------------------------------------------------------------------- numbers as links


def _whole_day(day: Any, opts: ReportOptions) -> Filters:
    text = day.isoformat()[:10]
    return Filters.parse({"start": text, "end": text, "timezone": opts.filters.timezone,
                          "group": opts.filters.group})


def drill(name: str, row: dict[str, Any], column: str, opts: ReportOptions) -> Filters | None:
    """The Call List filters that select exactly the calls a report's number counts (None: not a link)."""
    base = opts.filters
    if name == "agents":
        by_user = base.with_(party=f"user:{row['user']}")
        changes: dict[str, dict[str, Any]] = {
            "calls": {}, "inbound": {"direction": "inbound"}, "outbound": {"direction": "outbound"},
            "internal": {"direction": "internal"}, "answered": {"outcome": "answered"},
            "missed": {"outcome": list(UNANSWERED)}, "recorded": {"with_recordings": True},
        }
        return by_user.with_(**changes[column]) if column in changes else None
    if name == "groups":
        inbound = base.with_(group=row["group"], direction="inbound")
        changes = {"calls": {}, "answered": {"outcome": "answered"}, "abandoned": {"outcome": "abandoned"}}
        return inbound.with_(**changes[column]) if column in changes else None
    if name == "missed":  # the whole list (a row's call opens its session instead)
        return base.with_(direction="inbound", outcome=list(UNANSWERED)) if column == "*" else None
    if name == "activity" and opts.by == "day":
        if column == "calls":
            return _whole_day(row["date"], opts)
        if column == "previous_calls":
            return _whole_day(row["previous_date"], opts)
    return None


LINK_COLUMNS: dict[str, tuple[str, ...]] = {
    "agents": ("calls", "inbound", "outbound", "internal", "answered", "missed", "recorded"),
    "groups": ("calls", "answered", "abandoned"),
    "missed": (),
    "activity": ("calls", "previous_calls"),
}
