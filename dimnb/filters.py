"""Call List quick filters: validated values, and the SQL condition they add (always parameterised).

A ``Filters`` value is what a filter bar, a saved filter, the CLI and the
Python API all speak. ``Filters.parse`` accepts loose input (strings from a
form or a JSON file) and raises ``InvalidInput`` naming the field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dimnb import model
from dimnb.errors import InvalidInput
from dimnb.sql import Fragment

SORTABLE = {
    "start_time": "c.start_time",
    "direction": "c.direction",
    "from_party": "c.from_party",
    "to_party": "c.to_party",
    "final_party": "c.final_party",
    "ring_seconds": "c.ring_seconds",
    "talk_seconds": "c.talk_seconds",
    "duration_seconds": "c.duration_seconds",
    "outcome": "c.outcome",
    "segment_count": "c.segment_count",
    "call_id": "c.call_id",
}
MAX_PARTY_LENGTH = 64


def _zone(name: str | None, field_name: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r} (use a name like Europe/Paris or UTC)", field=field_name) from None


def _instant(value: Any, zone: ZoneInfo, field_name: str, *, whole_day: bool = False) -> datetime | None:
    """A moment in UTC. A bare date is its midnight; with ``whole_day`` the next midnight (an inclusive end date)."""
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
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{field_name}: {value!r} is not a date (2026-11-03) or date-time (2026-11-03T14:00)",
                               field=field_name) from None
    else:
        raise InvalidInput(f"{field_name}: expected a date or date-time, got {type(value).__name__}", field=field_name)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(timezone.utc)


def _choices(value: Any, allowed: tuple[str, ...], field_name: str) -> tuple[str, ...]:
    if value is None or value == "" or value == ():
        return ()
    items = [value] if isinstance(value, str) else list(value)
    cleaned = []
    for item in items:
        if not isinstance(item, str) or item.strip().lower() not in allowed:
            raise InvalidInput(f"{field_name}: {item!r} is not one of {', '.join(allowed)}", field=field_name)
        cleaned.append(item.strip().lower())
    return tuple(dict.fromkeys(cleaned))


def _seconds(value: Any, field_name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{field_name}: {value!r} is not a number of seconds", field=field_name) from None
    if number < 0 or number != number or number > 10**7:
        raise InvalidInput(f"{field_name}: must be between 0 and 10,000,000 seconds", field=field_name)
    return number


@dataclass(frozen=True)
class Filters:
    start: datetime | None = None  # inclusive, UTC
    end: datetime | None = None  # exclusive, UTC
    timezone: str = "UTC"  # how naive times given by a person are read, and how times are shown
    direction: tuple[str, ...] = ()
    party: str | None = None
    group: str | None = None
    outcome: tuple[str, ...] = ()
    min_duration: float | None = None
    max_duration: float | None = None
    with_recordings: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, raw: dict[str, Any] | "Filters" | None = None, **overrides: Any) -> "Filters":
        """Validate loose input. Unknown keys are an error (a typo must not silently widen a query)."""
        if isinstance(raw, Filters):
            data = raw.to_dict()
        else:
            data = dict(raw or {})
        data.update({k: v for k, v in overrides.items()})
        known = {f.name for f in fields(cls)} - {"extra"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"unknown filter(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                               field=unknown[0])
        zone_name = data.get("timezone") or "UTC"
        zone = _zone(zone_name)
        start = _instant(data.get("start"), zone, "start")
        end = _instant(data.get("end"), zone, "end", whole_day=True)
        if start and end and end <= start:
            raise InvalidInput("end: must be after start", field="end")
        party = data.get("party")
        if party is not None and not isinstance(party, str):
            raise InvalidInput("party: expected text", field="party")
        party = (party or "").strip() or None
        if party and len(party) > MAX_PARTY_LENGTH:
            raise InvalidInput(f"party: at most {MAX_PARTY_LENGTH} characters", field="party")
        group = data.get("group")
        if group is not None and not isinstance(group, str):
            raise InvalidInput("group: expected a group name", field="group")
        min_d = _seconds(data.get("min_duration"), "min_duration")
        max_d = _seconds(data.get("max_duration"), "max_duration")
        if min_d is not None and max_d is not None and max_d < min_d:
            raise InvalidInput("max_duration: must not be below min_duration", field="max_duration")
        with_rec = data.get("with_recordings", False)
        if isinstance(with_rec, str):
            with_rec = with_rec.strip().lower() in ("1", "true", "yes", "on")
        return cls(
            start=start,
            end=end,
            timezone=str(zone.key),
            direction=_choices(data.get("direction"), model.DIRECTIONS, "direction"),
            party=party,
            group=(group or "").strip() or None,
            outcome=_choices(data.get("outcome"), model.OUTCOMES, "outcome"),
            min_duration=min_d,
            max_duration=max_d,
            with_recordings=bool(with_rec),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for saved filters); ``parse(to_dict())`` gives the same filters back."""
        out = asdict(self)
        out.pop("extra", None)
        for key in ("start", "end"):
            out[key] = out[key].isoformat() if out[key] else None
        out["direction"] = list(self.direction)
        out["outcome"] = list(self.outcome)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_(self, **changes: Any) -> "Filters":
        return Filters.parse(replace(self).to_dict() | changes)

    def is_empty(self) -> bool:
        return self == Filters(timezone=self.timezone)

    def condition(self) -> Fragment:
        """The filter part of the WHERE clause on calls ``c`` (the access rule is added by reports)."""
        parts: list[str] = []
        params: dict[str, Any] = {}
        if self.start:
            parts.append("c.start_time >= $f_start")
            params["f_start"] = self.start
        if self.end:
            parts.append("c.start_time < $f_end")
            params["f_end"] = self.end
        if self.direction:
            parts.append("list_contains($f_direction, c.direction)")
            params["f_direction"] = list(self.direction)
        if self.outcome:
            parts.append("list_contains($f_outcome, c.outcome)")
            params["f_outcome"] = list(self.outcome)
        if self.min_duration is not None:
            parts.append("c.duration_seconds >= $f_min_duration")
            params["f_min_duration"] = self.min_duration
        if self.max_duration is not None:
            parts.append("c.duration_seconds <= $f_max_duration")
            params["f_max_duration"] = self.max_duration
        if self.group:
            parts.append("c.call_id IN (SELECT call_id FROM call_tags WHERE group_name = $f_group)")
            params["f_group"] = self.group
        if self.party:
            # A login names a user (all their calls); anything else matches numbers, extensions and names.
            parts.append(
                "(c.call_id IN (SELECT call_id FROM call_users WHERE login = $f_party_exact)"
                " OR c.call_id IN (SELECT call_id FROM segments s WHERE s.from_party = $f_party_exact"
                " OR s.to_party = $f_party_exact)"
                " OR contains(lower(coalesce(c.from_party, '')), $f_party)"
                " OR contains(lower(coalesce(c.to_party, '')), $f_party)"
                " OR contains(lower(coalesce(c.final_party, '')), $f_party)"
                " OR contains(lower(coalesce(c.from_name, '')), $f_party)"
                " OR contains(lower(coalesce(c.final_name, '')), $f_party))"
            )
            params["f_party_exact"] = self.party
            params["f_party"] = self.party.lower()
        return Fragment(" AND ".join(parts) if parts else "TRUE", params)
