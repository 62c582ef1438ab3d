"""Issue 15: the player and the session at 1366×768, and consistency and words.

In a browser (`dimnb serve` and Debian's Chromium; one server and one browser for the module, maria's page
shared by the tests that play, which leave it on the call list): the Play marker plays without leaving the
list; a playhead moves on the recording bar and the timeline; ±10 s, space and ←/→ drive the player; a drag on
the waveform scrubs; a conference session's recordings fit the screen; errors, the time-zone list and sorting
by the whole header cell. (Nina, without a playback grant, is signed in by tests/test_dashboard_browser.py,
which checks that she gets no Recording column, switch or player.) Without a browser, on the
same demo data: the words of the errors, the zone list, the pending-recording rule, what the Play marker may
ask for, and the demo's pinned "today". With ``$DIMNB_SCREENSHOTS`` set, the README's playhead screenshot is
written there.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser import AUDIO, chromium  # noqa: F401 - chromium: fixture
from server_fixtures import Server, demo_data, server  # noqa: F401  (fixtures)

from dimnb import audit, clock, sessions
from dimnb.datadir import DATA_ENV
from dimnb.demo.setup import demo_today_end
from dimnb.errors import InvalidInput, NotFound
from dimnb.filters import Filters
from dimnb.store.stores import Stores
from dimnb.widgets.call_table import CallTable
from dimnb.widgets.filter_bar import FilterBar, filters_of_form, zone_choices, zone_names
from dimnb.widgets.player import Player
from dimnb.workbench import Workbench

SHOTS = os.environ.get("DIMNB_SCREENSHOTS")
VIEWPORT = {"width": 1366, "height": 768}


def in_browser(test):  # type: ignore[no-untyped-def]
    return pytest.mark.browser(pytest.mark.slow(test))


@pytest.fixture(scope="module")
def stores(demo_data: Path):  # type: ignore[no-untyped-def]
    opened = Stores.open(str(demo_data))
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
    bar = FilterBar(Workbench(stores, "maria"))
    bar._on_browser_message(bar, {"type": "apply", "form": {"min_duration": "90", "max_duration": "1:00"}}, [])
    assert (bar.message, bar.message_kind, bar.error_field) == (
        "Longest must not be shorter than shortest", "error", "max_duration")


def test_the_time_zone_list_has_current_names_only_and_the_users_zone_first(stores: Stores) -> None:
    names = set(zone_names())
    assert {"UTC", "Europe/London", "Europe/Kyiv", "Africa/Asmara", "America/New_York"} <= names
    assert not names & {"Africa/Asmera", "Europe/Kiev", "US/Eastern", "GB", "Etc/GMT+5", "localtime", "Factory"}
    assert zone_choices("Europe/Paris")[:2] == ["Europe/Paris", "UTC"]
    assert zone_choices("Asia/Calcutta")[0] == "Asia/Calcutta"  # an old name a user still has is theirs to keep
    bar = FilterBar(Workbench(stores, "maria"))
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
    table = CallTable(Workbench(stores, "alex"), filters=last_day, page_size=500)
    marked = {r["call_id"] for r in table.rows if r["recording"]}
    assert {r["recording"] for r in table.rows} <= {"playable", ""}
    assert not marked & pending
    assert set(table.call_ids) >= pending  # they are listed, without a marker
    listed = set(CallTable(Workbench(stores, "alex"), filters=last_day.with_(with_recordings=True), page_size=500).call_ids)
    assert listed == marked
    assert wb.count(start=last_day.start, end=last_day.end, with_recordings=True) == len(marked)


def test_the_play_marker_asks_only_for_playable_calls_on_the_page_and_the_player_decides(stores: Stores) -> None:
    table = CallTable(Workbench(stores, "maria"), page_size=100)
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

    player = Player(Workbench(stores, "maria"), audio_base="/dimnb/audio/")
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
    assert Player(Workbench(stores, "nina")).enabled is False
    assert Player(Workbench(stores, "maria")).enabled is True
    keys = [c["key"] for c in CallTable(Workbench(stores, "nina"), page_size=5).columns]
    assert "recording" not in keys and "start" in keys
    assert "recording" in [c["key"] for c in CallTable(Workbench(stores, "maria"), page_size=5).columns]
    assert FilterBar(Workbench(stores, "nina")).options["may_play"] is False
    assert FilterBar(Workbench(stores, "maria")).options["may_play"] is True


def test_the_demo_pins_its_last_day_as_today(demo_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clock.NOW_ENV, raising=False)
    monkeypatch.setenv(DATA_ENV, str(demo_data))
    stores = Stores.open(str(demo_data))
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
    monkeypatch.setenv(DATA_ENV, str(demo_data.parent))  # a data directory without a pin: the real time
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(minutes=5)
    assert demo_today_end({"window": {"end": "2026-11-20T00:00:00Z"}}) == now
    assert os.environ.get(clock.NOW_ENV) is None


# ---------------------------------------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def browser(chromium):  # type: ignore[no-untyped-def]
    return chromium


def _sign_in(browser, server: Server, login: str):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(server.base + "/dashboard")
    page.wait_for_selector("#username")
    page.fill("#username", login)
    page.fill("#password", f"{login}-demo")
    page.click("#login_submit")
    page.wait_for_selector("tr.dimnb-call-row", timeout=120_000)
    return page


@pytest.fixture(scope="module")
def maria(browser, server: Server):  # type: ignore[no-untyped-def]
    page = _sign_in(browser, server, "maria")
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def wb(server: Server):  # type: ignore[no-untyped-def]
    stores = Stores.open(str(server.data))
    yield Workbench(stores, "maria")
    stores.close()


def _now(page) -> float:  # type: ignore[no-untyped-def]
    return float(page.evaluate(f"{AUDIO}.currentTime"))


def _advancing(page, timeout: float = 30_000) -> float:  # type: ignore[no-untyped-def]
    start = _now(page)
    page.wait_for_function(f"() => !{AUDIO}.paused && {AUDIO}.currentTime > {start} + 0.3", timeout=timeout)
    return _now(page)


def _back_to_list(page) -> None:  # type: ignore[no-untyped-def]
    if page.locator(".dimnb-back").count():
        page.locator(".dimnb-back").first.click()
    page.wait_for_selector("tr.dimnb-call-row", state="visible", timeout=60_000)


@in_browser
def test_the_play_marker_plays_without_leaving_the_list(maria, wb: Workbench) -> None:  # type: ignore[no-untyped-def]
    page = maria
    marker = page.locator("tr.dimnb-call-row button.dimnb-rec-play").first
    call_id = int(marker.locator("xpath=ancestor::tr").get_attribute("data-call-id"))
    marker.click()
    page.wait_for_function(f"() => {AUDIO} && !{AUDIO}.paused && {AUDIO}.currentTime > 0.3", timeout=60_000)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / "call-list-playing.png"))
    assert page.locator("tr.dimnb-call-row").first.is_visible()  # still the list
    assert page.locator(".dimnb-session").is_hidden()
    first = min(wb.session(call_id).playable, key=lambda r: (r.offset_seconds, r.recording_id))
    assert page.locator(".dimnb-player").get_attribute("data-recording-id") == str(first.recording_id)
    plays = [e for e in audit.read_events(wb.stores.state) if e.login == "maria" and e.kind == "play"
             and e.recording_id == first.recording_id]
    assert plays, "the play went through the audited audio gate"


@in_browser
def test_playhead_keys_skip_and_scrub_on_a_session(maria, wb: Workbench) -> None:  # type: ignore[no-untyped-def]
    page = maria
    _back_to_list(page)
    rows = [int(i) for i in page.eval_on_selector_all(
        "tr.dimnb-call-row:has(.dimnb-rec-play)", "rows => rows.map(r => r.dataset.callId)")]
    call_id = max(rows, key=lambda i: max(r.duration_seconds for r in wb.session(i).playable))
    page.locator(f"tr.dimnb-call-row[data-call-id='{call_id}'] a.dimnb-open-session").click()
    bar = page.locator(f".dimnb-session[data-call-id='{call_id}'] .dimnb-rec.dimnb-playable").first
    bar.wait_for(timeout=60_000)
    rec = wb.session(call_id).recording(int(bar.get_attribute("data-recording-id")))
    box = bar.bounding_box()
    bar.click(position={"x": box["width"] * 0.1, "y": box["height"] / 2})
    _advancing(page)

    # the playhead moves on the bar and on the timeline
    head = f".dimnb-rec[data-recording-id='{rec.recording_id}'] .dimnb-playhead"
    page.wait_for_selector(head, timeout=10_000)
    line = ".dimnb-timeline-playhead"
    left = lambda sel: page.evaluate(f"document.querySelector(\"{sel}\").getBoundingClientRect().left")  # noqa: E731
    bar_before, line_before = left(head), left(line)
    page.wait_for_function(f"() => document.querySelector(\"{head}\").getBoundingClientRect().left > {bar_before} + 1"
                           f" && document.querySelector('{line}').getBoundingClientRect().left > {line_before} + 1",
                           timeout=30_000)
    if SHOTS:
        page.mouse.move(5, 5)  # no hover tooltip in the picture
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / "session-playhead.png"))

    # keys (focus on the page, not in a field): space pauses and resumes, ←/→ seek 5 s
    page.locator(".dimnb-session-title").click()
    page.keyboard.press("Space")
    page.wait_for_function(f"() => {AUDIO}.paused")
    at = _now(page)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => Math.abs({AUDIO}.currentTime - {at + 5}) < 0.6")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"() => Math.abs({AUDIO}.currentTime - {at}) < 0.6")
    page.keyboard.press("Space")
    _advancing(page)
    # ±10 s buttons
    at = _now(page)
    page.locator(".dimnb-player-fwd10").click()
    page.wait_for_function(f"() => {AUDIO}.currentTime >= {at + 9.5}")
    at = _now(page)
    page.locator(".dimnb-player-back10").click()
    page.wait_for_function(f"() => {AUDIO}.currentTime <= {at - 9}")
    # keys pressed in a field are the field's: space and → on the volume slider leave the playback alone
    page.locator(".dimnb-player-volume").focus()
    at = _now(page)
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    time.sleep(0.3)
    assert page.evaluate(f"!{AUDIO}.paused") and _now(page) < at + 3
    page.locator(".dimnb-session-title").click()

    # a drag on the waveform scrubs the same play (no new request), to where it was let go
    play_id = page.locator(".dimnb-player").get_attribute("data-play-id")
    box = bar.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    for f in (0.3, 0.45, 0.6, 0.7):
        page.mouse.move(box["x"] + box["width"] * f, y)
    page.mouse.up()
    page.wait_for_function(f"() => Math.abs({AUDIO}.currentTime - {rec.duration_seconds * 0.7}) < 1.5",
                           timeout=10_000)
    assert page.locator(".dimnb-player").get_attribute("data-play-id") == play_id
    _advancing(page)
    _back_to_list(page)


@in_browser
def test_a_conference_session_shows_its_recordings_without_scrolling(maria, wb: Workbench) -> None:  # type: ignore[no-untyped-def]
    page = maria
    _back_to_list(page)
    call_id = _biggest_conference(wb)
    session = wb.session(call_id)
    # find it as a user does: the minute it started, as a custom range in maria's zone
    zone = ZoneInfo(wb.actor.timezone or "UTC")
    start = session.summary.start_time.astimezone(zone).replace(second=0, microsecond=0)
    page.select_option(".dimnb-f-period", "custom")
    page.fill(".dimnb-f-start", start.strftime("%Y-%m-%dT%H:%M"))
    page.fill(".dimnb-f-end", (start + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
    page.dispatch_event(".dimnb-f-end", "change")
    link = page.locator(f"tr.dimnb-call-row[data-call-id='{call_id}'] a.dimnb-open-session")
    link.wait_for(timeout=60_000)
    link.click()
    page.wait_for_selector(f".dimnb-session[data-call-id='{call_id}'] .dimnb-rec.dimnb-playable", timeout=60_000)
    assert page.locator(".dimnb-filters").is_hidden()  # the filter bar folds away in a session
    player_top = page.locator(".dimnb-player").bounding_box()["y"]
    bars = page.locator(".dimnb-rec").all()
    assert len(bars) == len(session.recordings) >= 1
    for bar in bars:
        b = bar.bounding_box()
        assert b["y"] >= 0 and b["y"] + b["height"] <= player_top, (b, player_top)
    assert page.evaluate("window.scrollY") == 0
    # the legs are the room's member rows, not segment rows too; segment rows name the agent
    labels = page.eval_on_selector_all(".dimnb-seg-row .dimnb-row-label", "ls => ls.map(l => l.textContent)")
    shown = [g for g in session.segments if g.kind != "conference"]
    assert len(labels) == len(shown)
    for g, label in zip(shown, labels, strict=True):
        agent = g.target if g.target.login else g.source if g.source.login else g.target
        assert label == f"{g.seq}. {agent.label}"
    assert page.locator(".dimnb-member-row").count() == sum(len(c.members) for c in session.conferences)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / "session-conference-1366.png"))
    _back_to_list(page)
    page.locator(".dimnb-f-reset").click()
    page.wait_for_function("() => document.querySelector('.dimnb-f-period').value !== 'custom'", timeout=30_000)


def _biggest_conference(wb: Workbench) -> int:
    """maria's conference call with a playable conference recording and the most segments."""
    candidates = [r[0] for r in wb.stores.calls.query(
        "SELECT c.call_id FROM calls c WHERE c.recordings_available > 0 AND c.call_id IN "
        "(SELECT call_id FROM recordings WHERE conference_id IS NOT NULL) ORDER BY c.segment_count DESC, c.call_id")]
    for call_id in candidates:
        try:
            session = wb.session(call_id)
        except NotFound:
            continue
        if session.conferences and any(r.conference_id is not None and r.playable for r in session.recordings):
            return call_id
    pytest.fail("the demo gives maria a recorded conference")


@in_browser
def test_errors_words_time_zones_and_whole_header_sorting(maria, wb: Workbench) -> None:  # type: ignore[no-untyped-def]
    page = maria
    _back_to_list(page)
    message = page.locator(".dimnb-filters-message")
    page.fill(".dimnb-f-min-duration", "90")
    page.press(".dimnb-f-min-duration", "Enter")
    page.fill(".dimnb-f-max-duration", "30")
    page.press(".dimnb-f-max-duration", "Enter")
    page.wait_for_function("() => document.querySelector('.dimnb-filters-message').textContent"
                           ".startsWith('Longest must not be shorter than shortest')", timeout=30_000)
    assert page.locator(".dimnb-f-max-duration").get_attribute("aria-invalid") == "true"
    page.locator(".dimnb-f-reset").click()
    page.wait_for_function("() => !document.querySelector('.dimnb-filters-message').textContent", timeout=30_000)
    page.select_option(".dimnb-f-period", "custom")
    page.fill(".dimnb-f-start", "2026-11-10T09:00")
    page.fill(".dimnb-f-end", "2026-11-03T09:00")
    page.dispatch_event(".dimnb-f-end", "change")
    page.wait_for_function("() => document.querySelector('.dimnb-filters-message').textContent"
                           ".startsWith('The end is before the start')", timeout=30_000)
    assert "end:" not in message.inner_text() and "start" in message.inner_text()
    page.locator(".dimnb-f-reset").click()
    page.wait_for_function("() => !document.querySelector('.dimnb-filters-message').textContent", timeout=30_000)

    zones = page.eval_on_selector_all(".dimnb-f-timezone option", "os => os.map(o => o.value)")
    assert zones[0] == (wb.actor.timezone or "UTC")
    assert "Europe/Kyiv" in zones and "Africa/Asmara" in zones
    assert not {"Africa/Asmera", "Europe/Kiev", "US/Eastern", "GB"} & set(zones)

    # the whole header cell sorts: a click in the cell, away from its word
    th = page.locator("th[data-sort='talk_seconds']")
    box = th.bounding_box()
    word = th.locator("button.dimnb-sort").bounding_box()
    x = 2 if word["x"] - box["x"] > 4 else box["width"] - 2
    th.click(position={"x": x, "y": box["height"] - 2})
    page.wait_for_selector("th[data-sort='talk_seconds'][aria-sort='descending']", timeout=30_000)
    ids = [int(i) for i in page.eval_on_selector_all("tr.dimnb-call-row", "rs => rs.map(r => r.dataset.callId)")]
    assert ids == list(wb.page(sort="talk_seconds", descending=True).call_ids)[:len(ids)]
    page.locator("th[data-sort='start_time']").click()
    page.wait_for_selector("th[data-sort='start_time'][aria-sort]", timeout=30_000)
