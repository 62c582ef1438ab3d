"""The player and the session at 1366×768, in `dimnb serve` with Debian's Chromium (issue 15).

One server and one browser for the module; maria's page is shared by the tests that play (they leave it on the
call list). The Play marker plays without leaving the list; a playhead moves on the recording bar and the
timeline; ±10 s, space and ←/→ drive the player; a drag on the waveform scrubs; a conference session's
recordings fit the screen; nina (no playback grant) gets no column, toggle or player; errors, the time-zone
list and sorting by the whole header cell. With ``$DIMNB_SCREENSHOTS`` set, the README's playhead screenshot
is written there.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from browser import AUDIO, CHROMIUM_ARGS, require_chromium
from server_fixtures import Server, demo_data, server  # noqa: F401  (fixtures)

from dimnb import audit
from dimnb.errors import NotFound
from dimnb.store.stores import Stores
from dimnb.workbench import Workbench

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = os.environ.get("DIMNB_SCREENSHOTS")
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


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


def test_the_play_marker_plays_without_leaving_the_list(maria, wb: Workbench) -> None:  # type: ignore[no-untyped-def]
    page = maria
    marker = page.locator("tr.dimnb-call-row button.dimnb-rec-play").first
    call_id = int(marker.locator("xpath=ancestor::tr").get_attribute("data-call-id"))
    marker.click()
    page.wait_for_function(f"() => {AUDIO} && !{AUDIO}.paused && {AUDIO}.currentTime > 0.3", timeout=60_000)
    assert page.locator("tr.dimnb-call-row").first.is_visible()  # still the list
    assert page.locator(".dimnb-session").is_hidden()
    first = min(wb.session(call_id).playable, key=lambda r: (r.offset_seconds, r.recording_id))
    assert page.locator(".dimnb-player").get_attribute("data-recording-id") == str(first.recording_id)
    plays = [e for e in audit.read_events(wb.stores.state) if e.login == "maria" and e.kind == "play"
             and e.recording_id == first.recording_id]
    assert plays, "the play went through the audited audio gate"


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
    # typing a space into a field types it: the player plays on
    page.evaluate("document.querySelector('.dimnb-player-seek').blur()")
    page.locator(".dimnb-player-rate").focus()
    page.keyboard.press("ArrowLeft")  # a select's own key
    time.sleep(0.3)
    assert page.evaluate(f"!{AUDIO}.paused")

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


def test_a_user_without_playback_gets_no_column_toggle_or_player(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    page = _sign_in(browser, server, "nina")
    try:
        assert page.locator("th.dimnb-col-recording").count() == 0
        assert page.locator("td.dimnb-col-recording").count() == 0
        assert page.locator(".dimnb-f-with-recordings").is_hidden()
        assert page.locator(".dimnb-player").count() == 1 and page.locator(".dimnb-player").is_hidden()
        assert page.locator("audio.dimnb-audio").is_hidden()
    finally:
        page.context.close()
