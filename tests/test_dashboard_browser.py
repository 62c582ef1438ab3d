"""The dashboards end to end: `dimnb serve` on 127.0.0.1 and Debian's Chromium driven by Playwright.

For three demo users with different scopes: sign in; the call list shows the
scoped count the API gives; open a session; click a recording's timeline at
half its width and hear it from there; pause, resume, mute, volume, download;
move around the app while it plays; addresses, Back and Forward; the audit
view. With ``$DIMNB_SCREENSHOTS`` set, the screenshots the README shows are
written there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile as sf

from dimnb import access, audit, sessions
from dimnb.demo import tonecode
from dimnb.store.stores import Stores
from dimnb.workbench import Workbench
from browser import AUDIO, check_mute_and_volume, check_pause_and_resume, chromium  # noqa: F401 - chromium: fixture
from server_fixtures import Server, demo_data, server  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = os.environ.get("DIMNB_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser(chromium):  # type: ignore[no-untyped-def]
    return chromium


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def _sign_in(browser, server: Server, login: str):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True).new_page()
    page.goto(server.base + "/dashboard")
    page.wait_for_selector("#username")  # redirected to the login page
    page.fill("#username", login)
    page.fill("#password", f"{login}-demo")
    page.click("#login_submit")
    page.wait_for_selector("tr.dimnb-call-row", timeout=120_000)
    return page


def _total(page) -> int:  # type: ignore[no-untyped-def]
    page.wait_for_function("() => { const t = document.querySelector('.dimnb-total');"
                           " return t && t.dataset.total !== undefined && t.dataset.total !== ''; }", timeout=60_000)
    return int(page.locator(".dimnb-total").get_attribute("data-total"))


@pytest.mark.parametrize("login", ["olivia", "paul", "maria"])
def test_a_user_lists_their_scope_and_plays_from_the_clicked_point(browser, server: Server, login: str) -> None:
    stores = Stores.open(str(server.data))
    wb = Workbench(stores, login)
    page = _sign_in(browser, server, login)
    try:
        assert page.locator(".dimnb-user").inner_text().strip() == wb.actor.name
        assert _total(page) == wb.count()
        _shot(page, f"call-list-{login}")

        # only calls with recordings: the count follows the playback grant
        page.check(".dimnb-f-with-recordings", force=True)
        page.wait_for_function(f"() => document.querySelector('.dimnb-total').dataset.total === "
                               f"'{wb.count(with_recordings=True)}'", timeout=60_000)

        # a transferred call shows more of the timeline; any recorded call will do otherwise
        page.wait_for_selector("tr.dimnb-call-row:has(.dimnb-rec-playable)", timeout=60_000)
        recorded = [int(i) for i in page.eval_on_selector_all(
            "tr.dimnb-call-row:has(.dimnb-rec-playable)", "rows => rows.map(r => r.dataset.callId)")]
        call_id = next((i for i in recorded if len(wb.session(i).segments) >= 3), recorded[0])
        row = page.locator(f"tr.dimnb-call-row[data-call-id='{call_id}']")
        row.locator("a.dimnb-open-session").click()
        page.wait_for_selector(f".dimnb-session[data-call-id='{call_id}'] .dimnb-rec.dimnb-playable", timeout=60_000)
        session = wb.session(call_id)
        bar = page.locator(".dimnb-rec.dimnb-playable").first
        rec = session.recording(int(bar.get_attribute("data-recording-id")))
        box = bar.bounding_box()
        bar.click(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
        page.wait_for_function(f"() => {AUDIO} && !{AUDIO}.paused && {AUDIO}.currentTime > 0", timeout=60_000)
        started = page.evaluate(f"{AUDIO}.currentTime")
        assert abs(started - rec.duration_seconds / 2) < 1.5, (started, rec.duration_seconds)
        assert page.evaluate(f"{AUDIO}.src").endswith(f"/dimnb/audio/{rec.recording_id}" + page.evaluate(
            f"new URL({AUDIO}.src).search"))
        page.wait_for_function(f"() => {AUDIO}.currentTime > {started} + 0.5", timeout=30_000)
        _shot(page, f"session-{login}")

        # what it plays there is that second of that recording (the demo audio's tone code)
        decision = access.can_play(stores.calls, access.load_actor(stores.state, login), rec.recording_id)
        samples, rate = sf.read(sessions.recording_path(stores.data, decision), dtype="int16")
        heard = tonecode.decode_at(samples, rate, started)
        assert heard.second == int(started)
        assert heard.segment_tag == (0 if rec.segment_seq is None else min(rec.segment_seq, 7))

        # pause, resume, mute, volume
        check_pause_and_resume(page)
        check_mute_and_volume(page)

        # download: the original file, under its self-explaining name
        with page.expect_download(timeout=60_000) as download:
            page.locator(".dimnb-player-download").click()
        assert download.value.suggested_filename == rec.download_name
        assert Path(download.value.path()).read_bytes() == sessions.recording_path(stores.data, decision).read_bytes()

        # another report while it plays: back to the list, change a filter, open another session
        before = page.evaluate(f"{AUDIO}.currentTime")
        page.locator(".dimnb-back").first.click()
        page.wait_for_selector("tr.dimnb-call-row", timeout=60_000)
        page.select_option(".dimnb-f-direction", "inbound")
        page.wait_for_function(f"() => document.querySelector('.dimnb-total').dataset.total === "
                               f"'{wb.count(with_recordings=True, direction=['inbound'])}'", timeout=60_000)
        other = page.locator(f"tr.dimnb-call-row:not([data-call-id='{call_id}']) a.dimnb-open-session").first
        other.click()
        page.wait_for_selector(".dimnb-session", timeout=60_000)
        page.wait_for_function(f"() => !{AUDIO}.paused && {AUDIO}.currentTime > {before} + 1", timeout=60_000)
        assert page.locator(".dimnb-player").get_attribute("data-recording-id") == str(rec.recording_id)

        # the play went through the server and was audited once, with the rule that allowed it
        plays = [e for e in audit.read_events(stores.state)
                 if e.login == login and e.recording_id == rec.recording_id and e.kind in ("play", "download")]
        assert {e.kind for e in plays} == {"play", "download"}
        assert all(e.client == "127.0.0.1" and e.rule for e in plays)
    finally:
        page.context.close()
        stores.close()


def test_a_user_without_playback_sees_no_recording_section(browser, server: Server) -> None:
    stores = Stores.open(str(server.data))
    wb = Workbench(stores, "nina")
    page = _sign_in(browser, server, "nina")
    try:
        assert _total(page) == wb.count() > 0
        assert page.locator(".dimnb-rec-marker").count() == 0
        # no Recording column, no "only calls with recordings" switch, no player: the same for every call
        assert page.locator("th.dimnb-col-recording, td.dimnb-col-recording").count() == 0
        assert page.locator(".dimnb-f-with-recordings").is_hidden()
        assert page.locator(".dimnb-player").count() == 1 and page.locator(".dimnb-player").is_hidden()
        recorded = stores.calls.query(
            "SELECT call_id FROM calls WHERE recordings_available > 0 AND list_contains(group_tags, 'Billing') LIMIT 1")
        page.locator("a.dimnb-open-session").first.click()
        page.wait_for_selector(".dimnb-session", timeout=60_000)
        assert page.locator(".dimnb-rec").count() == 0
        assert recorded, "the demo has recorded Billing calls nina can list but not hear"
        _shot(page, "session-nina")
    finally:
        page.context.close()
        stores.close()


# ------------------------------------------------------------------------------------------ addresses, Back, Forward
# A session link pasted while signed out opens that session after signing in; Back and Forward move between the
# list, sessions and a report without stopping the docked player; a link to a call outside your scope looks like a
# link to a call that does not exist; the audit view exists for auditors only.

PLAYING = f"() => {AUDIO} && !{AUDIO}.paused && {AUDIO}.currentTime > 0"


@pytest.fixture(scope="module")
def stores(server: Server):  # type: ignore[no-untyped-def]
    opened = Stores.open(str(server.data))
    yield opened
    opened.close()


def _open(browser, server: Server, login: str, address: str):  # type: ignore[no-untyped-def]
    """A new browser (signed out) opens ``address``, signs in, and is taken to it."""
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    page.goto(server.base + address)
    page.wait_for_selector("#username")
    page.fill("#username", login)
    page.fill("#password", f"{login}-demo")
    page.click("#login_submit")
    page.wait_for_selector("div.dimnb-app-header", timeout=120_000)
    return page


def _advancing(page, timeout: int = 30_000) -> None:  # type: ignore[no-untyped-def]
    """The docked player plays on: its time moves forward from where it is now."""
    now = page.evaluate(f"{AUDIO}.currentTime")
    page.wait_for_function(f"() => !{AUDIO}.paused && {AUDIO}.currentTime > {now} + 0.3", timeout=timeout)


def _session(page, call_id: int) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector(f".dimnb-session-pane .dimnb-session[data-call-id='{call_id}']", timeout=60_000)


def test_back_and_forward_move_between_views_while_the_audio_plays(browser, server: Server, stores) -> None:
    wb = Workbench(stores, "maria")
    recorded = wb.calls(with_recordings=True, limit=2)["call_id"].tolist()
    first, second = (int(c) for c in recorded)

    # a session link pasted while signed out: after signing in, that session
    page = _open(browser, server, "maria", f"/dashboard#/call/{first}")
    try:
        _session(page, first)
        assert page.evaluate("location.hash") == f"#/call/{first}"
        bar = page.locator(".dimnb-rec.dimnb-playable").first
        box = bar.bounding_box()
        bar.click(position={"x": box["width"] * 0.2, "y": box["height"] / 2})
        page.wait_for_function(PLAYING, timeout=60_000)
        playing = page.locator(".dimnb-player").get_attribute("data-play-id")

        # the list (its own address, with its filters), another session, a report: each a history entry
        page.locator(".dimnb-back").first.click()
        page.wait_for_function("() => location.hash.startsWith('#/calls')", timeout=30_000)
        page.select_option(".dimnb-f-direction", "inbound")
        page.wait_for_function("() => location.hash.includes('direction=inbound')", timeout=30_000)
        list_address = page.evaluate("location.hash")
        page.evaluate(f"location.hash = '#/call/{second}'")  # as a link in a report would
        _session(page, second)
        page.evaluate("location.hash = '#/report/agents?period=last_7_days'")
        page.wait_for_selector(".dimnb-report-pane .dimnb-report-tab[data-report='agents']", timeout=30_000)
        _advancing(page)

        # Back: the second session, then the list with its filters; Forward: the session again
        page.go_back()
        _session(page, second)
        _advancing(page)
        page.go_back()
        page.wait_for_function(f"() => location.hash === {list_address!r}", timeout=30_000)
        page.wait_for_selector(".dimnb-list-pane tr.dimnb-call-row", timeout=30_000)
        assert page.locator(".dimnb-f-direction").input_value() == "inbound"
        page.go_forward()
        _session(page, second)
        _advancing(page)
        # one play all along: never restarted, never re-created
        assert page.locator(".dimnb-player").get_attribute("data-play-id") == playing
        assert page.locator("audio.dimnb-audio").count() == 1

        # Copy link: the clipboard, or the address shown to copy by hand
        page.locator(".dimnb-copy-link").click()
        page.wait_for_function("() => document.querySelector('.dimnb-copy-link').textContent.includes('copied')"
                               " || !document.querySelector('input.dimnb-link-text').hidden", timeout=10_000)
        if page.locator("input.dimnb-link-text").is_visible():
            assert page.locator("input.dimnb-link-text").input_value() == page.url
        _shot(page, "navigation-maria")

        # a link to a call outside her scope shows exactly what a link to a call that does not exist shows
        everyone = {int(r[0]) for r in stores.calls.query("SELECT call_id FROM calls")}
        outside = min(everyone - set(int(c) for c in wb.calls()["call_id"]))
        shown = []
        for call_id in (outside, max(everyone) + 1000):
            page.evaluate(f"location.hash = '#/call/{call_id}'")
            page.wait_for_selector(".dimnb-session-pane .dimnb-session-message:has-text('No such call.')",
                                   timeout=60_000)
            shown.append((page.locator(".dimnb-session-pane").inner_text(),
                          page.locator("div.dimnb-app-header").inner_text()))
            page.go_back()
            _session(page, second)
        assert shown[0] == shown[1] and str(outside) not in "".join(shown[0])
        _advancing(page)
    finally:
        page.context.close()


def test_the_audit_view_is_for_auditors_only(browser, server: Server) -> None:
    # not an auditor: the server's page is a 404, and the app's #/audit means nothing, like any unknown address
    # (tests/test_navigation.py: the same, in the kernel, for the app's #/audit)
    client = server.client()
    client.login("maria")
    assert client.request("/audit").status == 404

    # the auditor: the same header, pickers, call numbers that open their sessions, Integrity folded
    page = _open(browser, server, "audrey", "/dashboard")
    try:
        page.locator("a.dimnb-link", has_text="Audit").click()
        page.wait_for_selector(".dimnb-audit .dimnb-audit-body h3", timeout=60_000)
        assert page.evaluate("location.hash").startswith("#/audit")
        assert page.locator(".dimnb-user").count() == 1 and page.locator("a.dimnb-logout").count() == 1
        _shot(page, "audit-audrey")
        assert not page.locator("details.dimnb-audit-integrity pre").is_visible()
        page.locator("details.dimnb-audit-integrity summary").click()
        assert "chain" in page.locator("details.dimnb-audit-integrity pre").inner_text()
        page.select_option(".dimnb-audit-picker select >> nth=0", label="All time")
        page.wait_for_function("() => location.hash === '#/audit?period=all'", timeout=30_000)
        link = page.locator("a.dimnb-audit-call").first
        call_id = int(link.get_attribute("href").rsplit("/", 1)[1])
        link.click()
        _session(page, call_id)
        assert "Traceback" not in page.content()
    finally:
        page.context.close()


# ------------------------------------------------------------------------------------------ the other reports


def _report_list_total(page, expected: int) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector("tr.dimnb-call-row, .dimnb-calls", timeout=60_000)
    page.wait_for_function(f"() => {{ const t = document.querySelector('.dimnb-total');"
                           f" return t && t.dataset.total === '{expected}'; }}", timeout=60_000)


def _open_report(page, name: str) -> None:  # type: ignore[no-untyped-def]
    if not page.locator(".dimnb-reports").is_visible():
        page.locator("a.dimnb-nav-reports").click()
        page.wait_for_selector(".dimnb-reports", state="visible", timeout=60_000)
    page.locator(f"button.dimnb-report-tab[data-report='{name}']").click()
    page.wait_for_selector(f".dimnb-reports[data-report='{name}'] tr.dimnb-report-row", timeout=60_000)


def _report_download(page, button: str) -> bytes:  # type: ignore[no-untyped-def]
    with page.expect_download(timeout=60_000) as download:
        page.locator(button).click()
    return Path(download.value.path()).read_bytes()


def test_each_report_renders_drills_down_to_the_call_list_and_exports_while_audio_plays(
        browser, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports (docs/reports.md) while a recording plays: numbers as the API gives them, drill-downs, exports."""
    import csv
    import io
    import zipfile

    from server_fixtures import DEMO_NOW

    monkeypatch.setenv("DIMNB_NOW", DEMO_NOW)  # "last 7 days" as the server counts them
    stores = Stores.open(str(server.data))
    wb = Workbench(stores, "maria")
    page = _sign_in(browser, server, "maria")
    try:
        # something playing: the first recorded call's first recording
        page.check(".dimnb-f-with-recordings", force=True)
        _report_list_total(page, wb.count(with_recordings=True))
        page.locator("a.dimnb-open-session").first.click()
        page.wait_for_selector(".dimnb-rec.dimnb-playable", timeout=60_000)
        page.locator(".dimnb-rec.dimnb-playable").first.click()
        page.wait_for_function(f"() => {AUDIO} && !{AUDIO}.paused && {AUDIO}.currentTime > 0", timeout=60_000)

        # Agent summary: the API's users, in its order; a user's "missed" opens that many calls
        _open_report(page, "agents")
        agents = wb.report("agents")
        shown = page.eval_on_selector_all(".dimnb-report-row td:first-child", "cells => cells.map(c => c.textContent)")
        assert shown == list(agents["user"])
        row = int(agents.index[agents["missed"] > 0][0])
        link = page.locator(f"a.dimnb-report-link[data-row='{row}'][data-column='missed']")
        assert int(link.inner_text()) == int(agents.loc[row, "missed"])
        link.click()
        _report_list_total(page, int(agents.loc[row, "missed"]))
        started = page.evaluate(f"{AUDIO}.currentTime")

        # Group summary: the answered count of the busiest group
        _open_report(page, "groups")
        groups = wb.report("groups")
        assert page.locator("tr.dimnb-report-row").count() == len(groups)
        _shot(page, "report-groups")
        page.locator("a.dimnb-report-link[data-row='0'][data-column='answered']").click()
        _report_list_total(page, int(groups.loc[0, "answered"]))

        # Missed and abandoned: "N missed or abandoned" opens those N calls
        _open_report(page, "missed")
        missed = wb.report("missed")
        # the tab is marked at once; its rows follow from the kernel
        page.wait_for_function(f"() => document.querySelectorAll('tr.dimnb-report-row').length === {len(missed)}",
                               timeout=60_000)
        page.locator("a.dimnb-report-total").click()
        _report_list_total(page, len(missed))

        # Activity: the charts draw, a day's calls open that day's calls
        _open_report(page, "activity")
        assert page.locator(".dimnb-filters").first.is_hidden()  # a report has its own parameters
        page.select_option(".dimnb-report-period", "last_7_days")
        activity = wb.report("activity", period="last_7_days")
        page.wait_for_function(f"() => document.querySelector('.dimnb-report-count').textContent === "
                               f"'{int(activity['calls'].sum())} calls'", timeout=60_000)
        assert activity["previous_calls"].sum() > 0
        page.wait_for_selector("svg.dimnb-chart-days rect.dimnb-chart-bar", timeout=60_000)
        assert page.locator("svg.dimnb-chart-heat rect.dimnb-heat-cell").count() == 7 * 24
        assert page.locator("svg.dimnb-chart-days rect.dimnb-chart-bar").count() == len(activity)
        _shot(page, "report-activity")
        busiest = int(activity["calls"].idxmax())
        page.locator(f"a.dimnb-report-link[data-row='{busiest}'][data-column='calls']").click()
        _report_list_total(page, int(activity.loc[busiest, "calls"]))

        # exports: the API's rows, as CSV and as XLSX (the period chosen stays chosen across reports)
        _open_report(page, "agents")
        agents = wb.report("agents", period="last_7_days")
        page.wait_for_function(f"() => document.querySelectorAll('tr.dimnb-report-row').length === {len(agents)}",
                               timeout=60_000)
        rows = list(csv.DictReader(io.StringIO(_report_download(page, "button.dimnb-export-csv").decode())))
        assert [r["User"] for r in rows] == list(agents["user"])
        assert [int(r["Calls"]) for r in rows] == list(agents["calls"])
        book = zipfile.ZipFile(io.BytesIO(_report_download(page, "button.dimnb-export-xlsx")))
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        assert sheet.count("<row>") == len(agents) + 1 and all(f">{u}<" in sheet for u in agents["user"])

        # the player never stopped (it is still playing, or played to the end)
        page.wait_for_function(f"() => ({AUDIO}.ended || !{AUDIO}.paused) && {AUDIO}.currentTime > {started}",
                               timeout=30_000)
    finally:
        page.context.close()
        stores.close()
