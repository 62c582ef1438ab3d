"""Call List quick filters: validated values, and the SQL condition they add (always parameterised).

A ``Filters`` value is what the filter bar, a saved filter, the CLI and the
Python API all speak. ``Filters.parse`` accepts loose input (strings from a
form, a JSON file or a command line) and raises ``InvalidInput`` naming the
field; it never consults a store. What needs the directory (is that party a
user or an extension? does that group still exist?) is decided by
``dimnb.reports.resolve`` when the filters are run.

Times: ``start`` and ``end`` are stored in UTC. A date or date-time given
without a zone is read in ``timezone`` (a bare end *date* includes that whole
day); ``period`` ("last_7_days", ...) is resolved against the report clock
(``dimnb.clock.now``) in ``timezone`` each time the filters run, so a saved
"last 7 days" stays the last 7 days.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dimnb import model
from dimnb.errors import InvalidInput
from dimnb.sql import TRUE, Fragment

# Sort keys of the Call List and the SQL each sorts by (the alias ``c`` is the calls table).
SORTABLE: dict[str, str] = {
    "start_time": "c.start_time",
    "direction": "c.direction",
    "from_party": "c.from_party",
    "to_party": "c.to_party",
    "final_party": "c.final_party",
    "ring_seconds": "c.ring_seconds",
    "talk_seconds": "c.talk_seconds",
    "duration_seconds": "c.duration_seconds",
    "outcome": "c.outcome",
    "groups": "sort_groups",
    "segment_count": "c.segment_count",
    "recording": "sort_recording",
    "call_id": "c.call_id",
}
MAX_PARTY_LENGTH = 64
MAX_GROUP_LENGTH = 100
MAX_SECONDS = 10**7

PERIODS: dict[str, str] = {
    "today": "Today",
    "yesterday": "Yesterday",
    "last_7_days": "Last 7 days",
    "last_30_days": "Last 30 days",
    "this_month": "This month",
    "last_month": "Last month",
}

PartyKind = Literal["user", "extension", "text"]
_PARTY_PREFIXES: dict[str, PartyKind] = {"user:": "user", "ext:": "extension", "extension:": "extension",
                                         "number:": "text", "text:": "text"}
_NUMBER_LIKE = re.compile(r"^\+?[0-9][0-9 ().\-/]*$")
_TRUE = ("1", "true", "yes", "on")
# What the filter bar calls each field: error messages speak these words, not the field names.
FIELD_WORDS: dict[str, str] = {
    "start": "From", "end": "Until", "period": "Period", "timezone": "Time zone", "direction": "Direction",
    "outcome": "Outcome", "party": "Party", "group": "Group", "min_duration": "Shortest",
    "max_duration": "Longest", "with_recordings": "Only calls with recordings",
}


def words(field_name: str) -> str:
    """A field as the filter bar names it (``min_duration`` → ``Shortest``)."""
    return FIELD_WORDS.get(field_name, field_name)
_FALSE = ("0", "false", "no", "off", "")


def zone(name: Any, field_name: str = "timezone") -> ZoneInfo:
    """A time zone by IANA name (``UTC`` when empty); InvalidInput naming ``field_name`` otherwise."""
    if isinstance(name, ZoneInfo):
        return name
    if name is None or name == "":
        return ZoneInfo("UTC")
    if not isinstance(name, str) or len(name) > 64:
        raise InvalidInput(f"{words(field_name)}: expected a time zone name like Europe/Paris or UTC",
                           field=field_name)
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{words(field_name)}: {name!r} is an unknown time zone (use a name like Europe/Paris "
                           "or UTC)", field=field_name) from None


def _instant(value: Any, tz: ZoneInfo, field_name: str, *, whole_day: bool = False) -> datetime | None:
    """A moment in UTC. A bare date is its midnight in ``tz``; with ``whole_day`` the next midnight (inclusive end)."""
    if value is None or value == "":
        return None
    shift = timedelta(days=1 if whole_day else 0)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value + shift, time.min)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                moment = datetime.combine(date.fromisoformat(text) + shift, time.min)
            else:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            raise InvalidInput(f"{words(field_name)}: {value!r} is not a date (2026-11-03) or date-time "
                               "(2026-11-03T14:00)", field=field_name) from None
    else:
        raise InvalidInput(f"{words(field_name)}: expected a date or date-time", field=field_name)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    try:
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise InvalidInput(f"{words(field_name)}: {value!r} is out of range", field=field_name) from None


def _choices(value: Any, allowed: tuple[str, ...], field_name: str) -> tuple[str, ...]:
    if value is None or value == "" or value == () or value == []:
        return ()
    if isinstance(value, str):
        items: list[Any] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        raise InvalidInput(f"{words(field_name)}: expected one or more of {', '.join(allowed)}", field=field_name)
    cleaned = []
    for item in items:
        if not isinstance(item, str) or item.strip().lower() not in allowed:
            raise InvalidInput(f"{words(field_name)}: {item!r} is not one of {', '.join(allowed)}", field=field_name)
        cleaned.append(item.strip().lower())
    return tuple(sorted(set(cleaned), key=allowed.index))


def _seconds(value: Any, field_name: str) -> float | None:
    """Seconds from a number, ``"90"``, ``"1:30"`` or ``"1:02:03"``."""
    if value is None or value == "":
        return None
    number: float | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if ":" in text:
                parts = [float(p) for p in text.split(":")]
                if len(parts) <= 3 and all(p >= 0 for p in parts) and all(p < 60 for p in parts[1:]):
                    number = 0.0
                    for part in parts:
                        number = number * 60 + part
            else:
                number = float(text)
        except ValueError:
            number = None
    if number is None:
        raise InvalidInput(f"{words(field_name)}: {value!r} is not a duration (seconds, or m:ss)", field=field_name)
    if number != number or number < 0 or number > MAX_SECONDS:
        raise InvalidInput(f"{words(field_name)}: must be between 0 and {MAX_SECONDS:,} seconds", field=field_name)
    return number


def _flag(value: Any, field_name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidInput(f"{words(field_name)}: expected yes or no", field=field_name)


def _text(value: Any, field_name: str, limit: int, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{words(field_name)}: expected {what}", field=field_name)
    text = " ".join(value.split())  # also drops control characters such as newlines and tabs
    if len(text) > limit:
        raise InvalidInput(f"{words(field_name)}: at most {limit} characters", field=field_name)
    return text or None


@dataclass(frozen=True)
class Party:
    """What a party search means: a user (login), an extension, or text (part of a number or a name)."""

    kind: PartyKind
    value: str


def split_party(text: str) -> tuple[PartyKind | None, str]:
    """An explicit ``user:`` / ``ext:`` / ``number:`` prefix, and the rest."""
    lowered = text.lower()
    for prefix, kind in _PARTY_PREFIXES.items():
        if lowered.startswith(prefix):
            return kind, text[len(prefix):].strip()
    return None, text


def number_digits(text: str) -> str | None:
    """``"0207 946-0589"`` → ``"02079460589"`` (a leading ``+`` kept); None for text that is not a number."""
    if not _NUMBER_LIKE.match(text):
        return None
    return ("+" if text.startswith("+") else "") + re.sub(r"[^0-9]", "", text)


@dataclass(frozen=True)
class Filters:
    start: datetime | None = None  # inclusive, UTC
    end: datetime | None = None  # exclusive, UTC
    period: str | None = None  # one of PERIODS, resolved when run (instead of start/end)
    timezone: str = "UTC"  # how dates given by a person are read, periods resolved, and times shown
    direction: tuple[str, ...] = ()
    party: str | None = None
    group: str | None = None
    outcome: tuple[str, ...] = ()
    min_duration: float | None = None
    max_duration: float | None = None
    with_recordings: bool = False

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def parse(cls, raw: dict[str, Any] | Filters | None = None, **overrides: Any) -> Filters:
        """Validate loose input. Unknown keys are an error (a typo must not silently widen a query)."""
        if isinstance(raw, Filters):
            data = raw.to_dict()
        elif raw is None or isinstance(raw, dict):
            data = dict(raw or {})
        else:
            raise InvalidInput("filters: expected a mapping of filter names to values", field="filters")
        data.update(overrides)
        known = cls.field_names()
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise InvalidInput(f"unknown filter(s): {', '.join(unknown)}; known: {', '.join(known)}",
                               field=unknown[0])
        tz = zone(data.get("timezone"))
        period = data.get("period") or None
        if period is not None and period not in PERIODS:
            raise InvalidInput(f"Period: {period!r} is not one of {', '.join(PERIODS)}", field="period")
        start = _instant(data.get("start"), tz, "start")
        end = _instant(data.get("end"), tz, "end", whole_day=True)
        if period and (start or end):
            raise InvalidInput("Give either a period or a From–Until range, not both", field="period")
        if start and end and end < start:
            raise InvalidInput("The end is before the start", field="end")
        if start and end and end == start:
            raise InvalidInput("The end is the same as the start: no call can match", field="end")
        min_d = _seconds(data.get("min_duration"), "min_duration")
        max_d = _seconds(data.get("max_duration"), "max_duration")
        if min_d is not None and max_d is not None and max_d < min_d:
            raise InvalidInput("Longest must not be shorter than shortest", field="max_duration")
        party = _text(data.get("party"), "party", MAX_PARTY_LENGTH, "text")
        if party is not None:
            kind, rest = split_party(party)
            if kind is not None and not rest:
                raise InvalidInput(f"Party: say what to search for after {party!r}", field="party")
        return cls(
            start=start,
            end=end,
            period=period,
            timezone=str(tz.key),
            direction=_choices(data.get("direction"), model.DIRECTIONS, "direction"),
            party=party,
            group=_text(data.get("group"), "group", MAX_GROUP_LENGTH, "a group name"),
            outcome=_choices(data.get("outcome"), model.OUTCOMES, "outcome"),
            min_duration=min_d,
            max_duration=max_d,
            with_recordings=_flag(data.get("with_recordings", False), "with_recordings"),
        )

    # ------------------------------------------------------------------ forms

    def to_dict(self, *, compact: bool = False) -> dict[str, Any]:
        """JSON-able form; ``parse(to_dict())`` gives the same filters back. ``compact`` leaves out defaults."""
        out: dict[str, Any] = {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "period": self.period,
            "timezone": self.timezone,
            "direction": list(self.direction),
            "party": self.party,
            "group": self.group,
            "outcome": list(self.outcome),
            "min_duration": self.min_duration,
            "max_duration": self.max_duration,
            "with_recordings": self.with_recordings,
        }
        if compact:
            out = {k: v for k, v in out.items()
                   if not (v is None or v is False or v == [] or (k == "timezone" and v == "UTC"))}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(compact=True), sort_keys=True)

    def with_(self, **changes: Any) -> Filters:
        """A copy with some fields changed (validated again). Setting ``period`` clears start/end and vice versa."""
        data = self.to_dict()
        if changes.get("period"):
            data.update(start=None, end=None)
        if changes.get("start") or changes.get("end"):
            data.update(period=None)
        if "timezone" in changes and not ({"start", "end"} & set(changes)):
            # Keep the same wall-clock bounds in the new zone (what a person changing the zone means).
            for key in ("start", "end"):
                if data[key]:
                    data[key] = getattr(self, key).astimezone(zone(self.timezone)).replace(tzinfo=None).isoformat()
        data.update(changes)
        return Filters.parse(data)

    def is_empty(self) -> bool:
        return self == Filters(timezone=self.timezone)

    # ------------------------------------------------------------------ time

    def bounds(self, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """The UTC [start, end) this filter selects; a period is resolved against ``now`` (default: the report clock)."""
        if not self.period:
            return self.start, self.end
        from dimnb import clock

        tz = ZoneInfo(self.timezone)
        today = (now or clock.now()).astimezone(tz).date()
        first, last = _period_days(self.period, today)

        def midnight(day: date) -> datetime:
            return datetime.combine(day, time.min).replace(tzinfo=tz).astimezone(timezone.utc)

        return midnight(first), midnight(last)

    def describe(self) -> str:
        """The filters in a line, for people (``"inbound · answered · last 7 days · party 'olivia'"``)."""
        parts: list[str] = []
        tz = ZoneInfo(self.timezone)
        fmt = "%Y-%m-%d %H:%M"
        if self.period:
            parts.append(PERIODS[self.period].lower())
        if self.start:
            parts.append(f"from {self.start.astimezone(tz).strftime(fmt)}")
        if self.end:
            parts.append(f"until {self.end.astimezone(tz).strftime(fmt)}")
        if self.period or self.start or self.end:
            parts[-1] += f" ({self.timezone})"
        if self.direction:
            parts.append(" or ".join(self.direction))
        if self.outcome:
            parts.append(" or ".join(self.outcome))
        if self.party:
            parts.append(f"party {self.party!r}")
        if self.group:
            parts.append(f"group {self.group}")
        if self.min_duration is not None or self.max_duration is not None:
            low = f"{self.min_duration:g}" if self.min_duration is not None else "0"
            high = f"{self.max_duration:g}" if self.max_duration is not None else "∞"
            parts.append(f"{low}–{high} s")
        if self.with_recordings:
            parts.append("with recordings")
        return " · ".join(parts) if parts else "all calls"

    # ------------------------------------------------------------------ SQL

    def condition(self, party: Party | None = None, *, now: datetime | None = None) -> Fragment:
        """The filter part of the WHERE clause on calls ``c`` (reports adds the access rule).

        ``party`` is what ``self.party`` means (``reports.resolve`` asks the
        directory); without it the text is matched every way at once. Groups
        and users are tested on the call row's ``group_tags`` /
        ``participant_logins`` arrays (copies of ``call_tags`` / ``call_users``).
        """
        parts: list[str] = []
        params: dict[str, Any] = {}
        start, end = self.bounds(now)
        if start:
            parts.append("c.start_time >= $f_start")
            params["f_start"] = start
        if end:
            parts.append("c.start_time < $f_end")
            params["f_end"] = end
        if self.direction:
            parts.append(_one_of("c.direction", "f_direction", self.direction, params))
        if self.outcome:
            parts.append(_one_of("c.outcome", "f_outcome", self.outcome, params))
        if self.min_duration is not None:
            parts.append("c.duration_seconds >= $f_min_duration")
            params["f_min_duration"] = self.min_duration
        if self.max_duration is not None:
            parts.append("c.duration_seconds <= $f_max_duration")
            params["f_max_duration"] = self.max_duration
        if self.group:
            parts.append("list_contains(c.group_tags, $f_group)")
            params["f_group"] = self.group
        if self.party:
            fragment = party_condition(party or Party("text", self.party), exhaustive=party is None)
            parts.append(fragment.sql)
            params.update(fragment.params)
        return Fragment(" AND ".join(parts), params) if parts else TRUE


def _one_of(column: str, name: str, values: tuple[str, ...], params: dict[str, Any]) -> str:
    if len(values) == 1:
        params[name] = values[0]
        return f"{column} = ${name}"
    params[name] = list(values)
    return f"list_contains(${name}, {column})"


def party_condition(party: Party, *, exhaustive: bool = False) -> Fragment:
    """Calls ``c`` with that party.

    - user: calls the user took part in (any segment or conference, as the
      directory stood at the call: ``call_users``);
    - extension: calls with that extension in any segment;
    - text: part of the caller's, the dialled or the final party's number or
      name. A number-like text matches as digits: ``020 7946 0589`` finds
      ``+442079460589``. (Call-level columns only: an external number that
      was neither the caller nor the last party reached is not searched;
      scanning every segment's text costs ten times more.)

    ``exhaustive`` (the directory was not asked): a text also matches as a
    login and as an extension.
    """
    user_sql = "list_contains(c.participant_logins, $f_party_login)"
    ext_sql = ("(c.from_ext = $f_party_ext OR c.to_ext = $f_party_ext OR c.final_ext = $f_party_ext"
               " OR c.call_id IN (SELECT s.call_id FROM segments s WHERE s.from_ext = $f_party_ext"
               " OR s.to_ext = $f_party_ext))")
    if party.kind == "user":
        return Fragment(user_sql, {"f_party_login": party.value})
    if party.kind == "extension":
        return Fragment(ext_sql, {"f_party_ext": party.value})
    digits = number_digits(party.value)
    significant = (digits or "").lstrip("+").lstrip("0")
    if len(significant) >= 3:
        # A number: its digits without "+" and trunk/international zeros, so that "020 7946 0589" and
        # "0044 20 7946 0589" both find +442079460589 (and a number stored in national form).
        needle, columns = significant, ("c.from_party", "c.to_party", "c.final_party")
    else:
        needle = party.value.lower()
        columns = tuple(f"lower(c.{name})" for name in ("from_party", "to_party", "final_party", "from_name",
                                                         "final_name"))
    text_sql = " OR ".join(f"contains({column}, $f_party_text)" for column in columns)
    if not exhaustive:
        return Fragment(f"({text_sql})", {"f_party_text": needle})
    return Fragment(f"({text_sql} OR {user_sql} OR {ext_sql})",
                    {"f_party_text": needle, "f_party_login": party.value.lower(), "f_party_ext": party.value})


def _period_days(period: str, today: date) -> tuple[date, date]:
    """[first day, day after the last) of a period, in local dates."""
    if period == "today":
        return today, today + timedelta(days=1)
    if period == "yesterday":
        return today - timedelta(days=1), today
    if period == "last_7_days":
        return today - timedelta(days=6), today + timedelta(days=1)
    if period == "last_30_days":
        return today - timedelta(days=29), today + timedelta(days=1)
    first_of_month = today.replace(day=1)
    if period == "this_month":
        return first_of_month, (first_of_month + timedelta(days=32)).replace(day=1)
    if period == "last_month":
        return (first_of_month - timedelta(days=1)).replace(day=1), first_of_month
    raise ValueError(f"unknown period {period!r}")
