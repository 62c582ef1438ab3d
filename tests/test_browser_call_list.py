"""The Call List in the real dashboard (`dimnb serve`), driven by headless Chromium through the documented selectors.

Maria signs in; sorting, paging, quick filters, a mistake in a filter, saving a filter, opening sessions and
moving around while the one docked player keeps playing.
"""

from __future__ import annotations

import time

import pytest

from browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from dimnb.store.stores import Stores
from dimnb.workbench import Workbench
from server_fixtures import DEMO_NOW, Server, demo_data, server  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _ids(page) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all("tr.dimnb-call-row", "rows => rows.map(r => r.dataset.callId)")]


def _wait_ids(page, expected: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _ids(page) == expected:
            return
        time.sleep(0.2)
    assert _ids(page) == expected


def test_filter_sort_page_open_a_session_and_keep_playing(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DIMNB_NOW", DEMO_NOW)  # what the server's kernels see too
    wb = Workbench(Stores.open(str(server.data)), "maria")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(server.base + "/login")
        page.fill("#username", "maria")
        page.fill("#password", "maria-demo")
        page.click("#login_submit")
        page.wait_for_selector("div.dimnb-calls tr.dimnb-call-row", timeout=120_000)
        assert str(wb.count()) in page.inner_text(".dimnb-total")
        assert page.inner_text(".dimnb-user") == "Maria Keller"
        assert page.get_attribute("a.dimnb-logout", "href") == "/logout"
        assert page.locator("a.dimnb-link", has_text="Audit").count() == 0  # not an auditor
        _wait_ids(page, wb.page().call_ids)

        # sort by a header, then page
        page.click("th[data-sort='duration_seconds'] button")
        _wait_ids(page, wb.page(sort="duration_seconds").call_ids)
        page.click(".dimnb-page-next")
        _wait_ids(page, wb.page(sort="duration_seconds", page=2).call_ids)

        # quick filters: a period and a direction; the total follows
        page.select_option(".dimnb-f-period", "last_7_days")
        page.select_option(".dimnb-f-direction", "inbound")
        _wait_ids(page, wb.page(period="last_7_days", direction="inbound", sort="duration_seconds").call_ids)
        page.wait_for_function(f"document.querySelector('.dimnb-total').dataset.total === "
                               f"'{wb.count(period='last_7_days', direction='inbound')}'")
        # a mistake: a plain message naming the field, the list unchanged
        page.fill(".dimnb-f-min-duration", "soon")
        page.press(".dimnb-f-min-duration", "Enter")
        page.wait_for_selector(".dimnb-filters-message.dimnb-msg-error")
        assert page.inner_text(".dimnb-filters-message").startswith("Shortest:")  # the bar's word, not min_duration
        assert page.get_attribute(".dimnb-f-min-duration", "aria-invalid") == "true"
        page.fill(".dimnb-f-min-duration", "")
        page.press(".dimnb-f-min-duration", "Enter")
        page.wait_for_selector(".dimnb-filters-message", state="hidden")

        # save it, and it is in the picker
        page.click(".dimnb-saved-save-as")
        page.fill(".dimnb-saved-name", "Inbound this week")
        page.click(".dimnb-saved-ok")
        page.wait_for_selector(".dimnb-saved-picker option:has-text('Inbound this week')", state="attached")
        assert wb.saved.get("Inbound this week").direction == ("inbound",)

        # a Start Time opens the session; a recording plays
        recorded = page.locator("tr.dimnb-call-row:has(.dimnb-rec-playable)").first
        call_id = int(recorded.get_attribute("data-call-id"))
        recorded.locator("a.dimnb-open-session").click()
        page.wait_for_selector(f"div.dimnb-session[data-call-id='{call_id}']")
        assert page.locator("div.dimnb-calls").is_hidden()
        page.locator(".dimnb-rec.dimnb-playable").first.click()
        page.wait_for_function("() => { const a = document.querySelector('audio.dimnb-audio');"
                               " return a && !a.paused && a.currentTime > 0.3; }", timeout=30_000)
        page.evaluate("window.__dimnbAudio = document.querySelector('audio.dimnb-audio')")

        # back to the list, another filter, another session: the same player keeps playing
        page.click(".dimnb-back")
        page.wait_for_selector("div.dimnb-calls", state="visible")
        page.select_option(".dimnb-f-direction", "outbound")
        _wait_ids(page, wb.page(period="last_7_days", direction="outbound", sort="duration_seconds").call_ids)
        page.locator("a.dimnb-open-session").nth(1).click()
        page.wait_for_selector("div.dimnb-session:not([data-call-id=''])")
        page.click(".dimnb-back")
        before = page.evaluate("window.__dimnbAudio.currentTime")
        page.wait_for_timeout(800)
        state = page.evaluate("() => ({same: document.querySelectorAll('audio.dimnb-audio').length === 1 &&"
                              " document.querySelector('audio.dimnb-audio') === window.__dimnbAudio,"
                              " paused: window.__dimnbAudio.paused, t: window.__dimnbAudio.currentTime})")
        assert state["same"] and not state["paused"] and state["t"] > before
        # the player is docked: at the bottom of the window while the list scrolls under it
        box = page.locator("div.dimnb-player").bounding_box()
        assert box is not None and box["y"] + box["height"] <= 768 and box["y"] > 768 - 200
        browser.close()
