"""Issue 15's consistency and words, without a browser: error messages in the filter bar's words, the time-zone
list, the pending-recording rule, the demo's pinned "today", and what the Play marker may ask for."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from demo_fixtures import demo_built  # noqa: F401  (fixture)

from dimnb import audit, clock, sessions
from dimnb.datadir import DATA_ENV
from dimnb.demo.setup import demo_today_end
from dimnb.errors import InvalidInput
from dimnb.filters import Filters
from dimnb.store.stores import Stores
from dimnb.widgets.call_table import CallTable
from dimnb.widgets.filter_bar import FilterBar, filters_of_form, zone_choices, zone_names
from dimnb.widgets.player import Player
from dimnb.workbench import Workbench


@pytest.fixture(scope="module")
def stores(demo_built: Path):  # type: ignore[no-untyped-def]  # noqa: F811
    opened = Stores.open(str(demo_built))
    yield opened
    opened.close()


@pytest.mark.parametrize(("form", "words", "field"), [
    ({"min_duration": "60", "max_duration": "30"}, "Longest must not be shorter than shortest", "max_duration"),
    ({"period": "custom", "start": "2026-11-10T09:00", "end": "2026-11-03T09:00"}, "The end is before the start",
     "end"),
    ({"min_duration": "soon"}, "Shortest: 'soon' is not a duration", "min_duration"),
    ({"period": "custom", "start": "yesterday"}, "From: 'yesterday' is not a date", "start"),
    ({"timezone": "Mars/Olympus"}, "Time zone: 'Mars/Olympus' is an unknown time zone", "timezone"),
])
def test_errors_speak_the_filter_bars_words(form: dict, words: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        filters_of_form(form, "UTC")
    assert str(caught.value).startswith(words) and caught.value.field == field
    for name in ("min_duration", "max_duration", "start:", "end:", "timezone:"):
        assert name not in str(caught.value)


def test_the_filter_bar_shows_those_words_and_marks_the_field(stores: Stores) -> None:
    bar = FilterBar(stores, "maria")
    bar._on_browser_message(bar, {"type": "apply", "form": {"min_duration": "90", "max_duration": "1:00"}}, [])
    assert (bar.message, bar.message_kind, bar.error_field) == (
        "Longest must not be shorter than shortest", "error", "max_duration")


def test_the_time_zone_list_has_current_names_only_and_the_users_zone_first(stores: Stores) -> None:
    names = set(zone_names())
    assert {"UTC", "Europe/London", "Europe/Kyiv", "Africa/Asmara", "America/New_York"} <= names
    assert not names & {"Africa/Asmera", "Europe/Kiev", "US/Eastern", "GB", "Etc/GMT+5", "localtime", "Factory"}
    assert zone_choices("Europe/Paris")[:2] == ["Europe/Paris", "UTC"]
    assert zone_choices("Asia/Calcutta")[0] == "Asia/Calcutta"  # an old name a user still has is theirs to keep
    bar = FilterBar(stores, "maria")
    assert bar.options["timezones"][0] == bar.options["user_zone"]
    assert len(bar.options["timezones"]) == len(set(bar.options["timezones"]))


def test_pending_recordings_are_neither_listed_nor_marked(stores: Stores) -> None:
    """Only calls with recordings lists exactly the calls the Recording column marks: playable now."""
    last_day = Filters(start=datetime(2026, 11, 19, tzinfo=timezone.utc), end=datetime(2026, 11, 20, tzinfo=timezone.utc))
    wb = Workbench(stores, "alex")
    pending = {r[0] for r in stores.calls.query(
        "SELECT call_id FROM calls WHERE recordings_pending > 0 AND recordings_available = 0"
        " AND start_time >= $s AND start_time < $e", {"s": last_day.start, "e": last_day.end})}
    assert pending, "the demo's last day waits for the archive run"
    table = CallTable(stores, "alex", filters=last_day, page_size=500)
    marked = {r["call_id"] for r in table.rows if r["recording"]}
    assert {r["recording"] for r in table.rows} <= {"playable", ""}
    assert not marked & pending
    assert set(table.call_ids) >= pending  # they are listed, without a marker
    listed = set(CallTable(stores, "alex", filters=last_day.with_(with_recordings=True), page_size=500).call_ids)
    assert listed == marked
    assert wb.count(start=last_day.start, end=last_day.end, with_recordings=True) == len(marked)


def test_the_play_marker_asks_only_for_playable_calls_on_the_page_and_the_player_decides(stores: Stores) -> None:
    table = CallTable(stores, "maria", page_size=100)
    asked: list[int] = []
    table.on_play(asked.append)
    playable = [r["call_id"] for r in table.rows if r["recording"] == "playable"]
    silent = [r["call_id"] for r in table.rows if not r["recording"]]
    assert playable and silent
    table._on_browser_message(table, {"type": "play", "call_id": playable[0]}, [])
    table._on_browser_message(table, {"type": "play", "call_id": silent[0]}, [])
    table._on_browser_message(table, {"type": "play", "call_id": 10**9}, [])
    table._on_browser_message(table, {"type": "play", "call_id": "1; DROP"}, [])
    assert asked == [playable[0]]

    player = Player(stores, "maria", audio_base="/dimnb/audio/")
    before = len(audit.read_events(stores.state))
    assert player.play_call(playable[0]) is True
    first = min(sessions.build_session(stores.calls, Workbench(stores, "maria").actor, playable[0],
                                       state=stores.state).playable, key=lambda r: (r.offset_seconds, r.recording_id))
    assert player.source["recording_id"] == first.recording_id and player.source["start_at"] == 0
    outside = stores.calls.query("SELECT min(call_id) FROM calls WHERE recordings_available > 0 AND "
                                 "NOT list_contains(group_tags, 'Sales') AND NOT list_contains(group_tags, 'Support')")
    assert player.play_call(outside[0][0]) is False and player.message  # outside maria's scope: a plain message
    assert player.source["recording_id"] == first.recording_id
    assert len(audit.read_events(stores.state)) >= before


def test_no_playback_grant_no_player_no_column_no_toggle(stores: Stores) -> None:
    assert Player(stores, "nina").enabled is False
    assert Player(stores, "maria").enabled is True
    keys = [c["key"] for c in CallTable(stores, "nina", page_size=5).columns]
    assert "recording" not in keys and "start" in keys
    assert "recording" in [c["key"] for c in CallTable(stores, "maria", page_size=5).columns]
    assert FilterBar(stores, "nina").options["may_play"] is False
    assert FilterBar(stores, "maria").options["may_play"] is True


def test_the_demo_pins_its_last_day_as_today(demo_built: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.delenv(clock.NOW_ENV, raising=False)
    monkeypatch.setenv(DATA_ENV, str(demo_built))
    stores = Stores.open(str(demo_built))
    try:
        now = clock.now()
        assert now == datetime(2026, 11, 19, 23, 59, tzinfo=timezone.utc)
        wb = Workbench(stores, "alex")
        assert wb.count(period="today") > 0 and wb.count(period="yesterday") > 0
        assert wb.count(period="last_7_days") > wb.count(period="today")
    finally:
        stores.close()
    monkeypatch.setenv(clock.NOW_ENV, "2026-11-01T00:00:00Z")  # $DIMNB_NOW still wins
    assert clock.now() == datetime(2026, 11, 1, tzinfo=timezone.utc)
    monkeypatch.delenv(clock.NOW_ENV)
    monkeypatch.setenv(DATA_ENV, str(demo_built.parent))  # a data directory without a pin: the real time
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(minutes=5)
    assert demo_today_end({"window": {"end": "2026-11-20T00:00:00Z"}}) == now
    assert os.environ.get(clock.NOW_ENV) is None
