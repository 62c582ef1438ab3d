"""Filters as values: validation that names the field, time zones and periods, round trips, the SQL they add."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dimnb import model
from dimnb.errors import InvalidInput
from dimnb.filters import PERIODS, Filters, Party, number_digits, party_condition, split_party, words

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(("raw", "field"), [
    ({"start": "yesterday-ish"}, "start"),
    ({"end": "2026-13-01"}, "end"),
    ({"start": 20261101}, "start"),
    ({"start": "2026-11-05", "end": "2026-11-04"}, "end"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": 5}, "timezone"),
    ({"direction": "sideways"}, "direction"),
    ({"direction": ["inbound", 3]}, "direction"),
    ({"direction": {"a": 1}}, "direction"),
    ({"outcome": "won"}, "outcome"),
    ({"min_duration": "abc"}, "min_duration"),
    ({"min_duration": -1}, "min_duration"),
    ({"min_duration": float("nan")}, "min_duration"),
    ({"max_duration": 10**9}, "max_duration"),
    ({"min_duration": True}, "min_duration"),
    ({"min_duration": "1:75"}, "min_duration"),
    ({"min_duration": 60, "max_duration": 30}, "max_duration"),
    ({"party": 42}, "party"),
    ({"party": "x" * 65}, "party"),
    ({"party": "user:"}, "party"),
    ({"group": ["Sales"]}, "group"),
    ({"with_recordings": "maybe"}, "with_recordings"),
    ({"with_recordings": 2}, "with_recordings"),
    ({"period": "last_century"}, "period"),
    ({"period": "last_7_days", "start": "2026-11-01"}, "period"),
    ({"queue": "800"}, "queue"),
    ({"Direction": "inbound"}, "Direction"),
])
def test_bad_input_names_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Filters.parse(raw)
    assert caught.value.field == field
    text = str(caught.value).lower()  # in the filter bar's words ("Longest", "Until"), or the key's own name
    assert field.lower() in text or words(field).lower() in text
    assert "Traceback" not in str(caught.value)


def test_loose_input_is_normalised() -> None:
    f = Filters.parse({"direction": "Inbound, outbound", "outcome": ["ANSWERED", "answered"], "party": "  Olivia \n",
                       "group": " Sales ", "min_duration": "1:30", "max_duration": "1:02:03", "with_recordings": "yes",
                       "timezone": "Europe/Paris"})
    assert f.direction == ("inbound", "outbound") and f.outcome == ("answered",)
    assert f.party == "Olivia" and f.group == "Sales"
    assert f.min_duration == 90 and f.max_duration == 3723 and f.with_recordings is True
    assert Filters.parse({"with_recordings": "off"}).with_recordings is False
    assert Filters.parse({"direction": ""}).direction == ()


def test_a_bare_date_is_local_midnight_and_an_end_date_includes_its_day() -> None:
    f = Filters.parse({"start": "2026-11-10", "end": "2026-11-10", "timezone": "America/New_York"})
    assert f.start == utc(2026, 11, 10, 5) and f.end == utc(2026, 11, 11, 5)
    g = Filters.parse({"start": "2026-11-10T09:00", "end": "2026-11-10T12:30", "timezone": "America/New_York"})
    assert g.start == utc(2026, 11, 10, 14) and g.end == utc(2026, 11, 10, 17, 30)  # a date-time end is exclusive
    h = Filters.parse({"start": "2026-11-10T09:00+01:00", "timezone": "America/New_York"})  # an explicit offset wins
    assert h.start == utc(2026, 11, 10, 8)
    assert Filters.parse({"start": date(2026, 11, 10), "timezone": "Asia/Tokyo"}).start == utc(2026, 11, 9, 15)


def test_a_date_range_across_a_clock_change() -> None:
    # Europe/London leaves summer time at 01:00 UTC on 25 October 2026: the 25th has 25 hours.
    f = Filters.parse({"start": "2026-10-25", "end": "2026-10-25", "timezone": "Europe/London"})
    assert f.start == utc(2026, 10, 24, 23) and f.end == utc(2026, 10, 26, 0)
    assert (f.end - f.start).total_seconds() == 25 * 3600


@pytest.mark.parametrize(("period", "first", "after"), [
    ("today", utc(2026, 11, 20, 5), utc(2026, 11, 21, 5)),
    ("yesterday", utc(2026, 11, 19, 5), utc(2026, 11, 20, 5)),
    ("last_7_days", utc(2026, 11, 14, 5), utc(2026, 11, 21, 5)),
    ("last_30_days", utc(2026, 10, 22, 4), utc(2026, 11, 21, 5)),  # New York was on summer time on 22 October
    ("this_month", utc(2026, 11, 1, 4), utc(2026, 12, 1, 5)),
    ("last_month", utc(2026, 10, 1, 4), utc(2026, 11, 1, 4)),
])
def test_periods_are_whole_local_days_resolved_when_run(period: str, first: datetime, after: datetime) -> None:
    now = utc(2026, 11, 20, 15)  # 10:00 in New York
    f = Filters.parse({"period": period, "timezone": "America/New_York"})
    assert f.bounds(now) == (first, after)
    assert f.start is None and f.end is None  # nothing absolute is stored: a saved period keeps moving
    assert set(PERIODS) >= {period}


def test_period_follows_the_report_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMNB_NOW", "2026-11-20T00:00:00Z")
    assert Filters.parse({"period": "yesterday"}).bounds() == (utc(2026, 11, 19), utc(2026, 11, 20))


def test_with_keeps_wall_clock_bounds_when_the_zone_changes() -> None:
    f = Filters.parse({"start": "2026-11-10T09:00", "timezone": "UTC"})
    g = f.with_(timezone="Europe/Berlin")
    assert g.start == utc(2026, 11, 10, 8) and g.timezone == "Europe/Berlin"
    assert f.with_(period="today").start is None
    assert f.with_(period="today").with_(start="2026-11-01").period is None


def test_describe_reads_like_a_sentence() -> None:
    f = Filters.parse({"period": "last_7_days", "timezone": "Europe/London", "direction": "inbound",
                       "outcome": ["answered", "missed"], "party": "olivia", "group": "Sales",
                       "min_duration": 60, "with_recordings": True})
    assert f.describe() == ("last 7 days (Europe/London) · inbound · answered or missed · party 'olivia' · "
                            "group Sales · 60–∞ s · with recordings")
    assert Filters().describe() == "all calls" and Filters().is_empty()


# ------------------------------------------------------------------------------------------ round trips

zones = st.sampled_from(["UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1))
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(zone=zones, start=st.none() | moments, hours=st.integers(1, 2000), period=st.none() | st.sampled_from(list(PERIODS)),
       direction=st.lists(st.sampled_from(model.DIRECTIONS), max_size=3),
       outcome=st.lists(st.sampled_from(model.OUTCOMES), max_size=5), party=st.none() | texts,
       group=st.none() | texts, low=st.none() | st.floats(0, 5000), span=st.none() | st.floats(0, 5000),
       with_recordings=st.booleans())
def test_to_dict_and_json_round_trip(zone: str, start: datetime | None, hours: int, period: str | None,
                                     direction: list[str], outcome: list[str], party: str | None, group: str | None,
                                     low: float | None, span: float | None, with_recordings: bool) -> None:
    raw: dict[str, Any] = {"timezone": zone, "direction": direction, "outcome": outcome, "party": party,
                           "group": group, "min_duration": low,
                           "max_duration": None if span is None or low is None else low + span,
                           "with_recordings": with_recordings}
    if period:
        raw["period"] = period
    elif start:
        raw["start"] = start.isoformat()
        raw["end"] = start.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC).isoformat().replace(
            "+00:00", "Z") if hours % 2 else None
    try:
        f = Filters.parse(raw)
    except InvalidInput as exc:  # only inputs a person could get wrong are refused, and the field is named
        assert exc.field in ("party", "group", "end")
        return
    assert Filters.parse(f.to_dict()) == f
    import json

    assert Filters.parse(json.loads(f.to_json())) == f


# ------------------------------------------------------------------------------------------ SQL


def test_the_condition_binds_every_value_as_a_parameter() -> None:
    evil = "x'); DROP TABLE calls; --"
    f = Filters.parse({"party": evil, "group": evil, "direction": "inbound"})
    cond = f.condition(Party("text", evil))
    assert evil.lower() not in cond.sql and "DROP" not in cond.sql
    assert evil.lower() in cond.params.values() and evil in cond.params.values()
    assert Filters().condition().sql == "TRUE"


def test_party_kinds() -> None:
    assert split_party("ext:101") == ("extension", "101")
    assert split_party("User: olivia") == ("user", "olivia")
    assert split_party("number:0207") == ("text", "0207")
    assert split_party("olivia") == (None, "olivia")
    assert number_digits("+44 (0)20 7946-0589") == "+440207946" + "0589"
    assert number_digits("Olivia") is None
    # a number is matched by its significant digits (no +, no leading zeros)
    assert party_condition(Party("text", "020 7946 0589")).params == {"f_party_text": "2079460589"}
    assert party_condition(Party("text", "0044 20 7946")).params == {"f_party_text": "44207946"}
    assert party_condition(Party("text", "Laura")).params == {"f_party_text": "laura"}
    assert "participant_logins" in party_condition(Party("user", "olivia")).sql
    assert "segments" in party_condition(Party("extension", "101")).sql
