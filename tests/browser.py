"""Debian's Chromium for the browser tests (Playwright cannot download browsers here)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
# The flags this machine needs: no sandbox as root, no GPU, and no background traffic to a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"]


def require_chromium() -> str:
    """The browser's path; skips without one, except in CI (``$DIMNB_REQUIRE_BROWSER``), where it fails."""
    if CHROMIUM is None:
        if os.environ.get("DIMNB_REQUIRE_BROWSER"):
            pytest.fail("Debian's chromium is required (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return CHROMIUM


# The docked player's <audio> element, as page JavaScript.
@pytest.fixture(scope="module")
def chromium():  # type: ignore[no-untyped-def]
    """One headless Chromium for a test module (Debian's, never a downloaded one)."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


AUDIO = "document.querySelector('audio.dimnb-audio')"


def check_pause_and_resume(page) -> None:  # type: ignore[no-untyped-def]
    """The player's play button pauses a playing recording (time stands still) and resumes it."""
    page.locator(".dimnb-player-play").click()
    page.wait_for_function(f"() => {AUDIO}.paused")
    paused_at = page.evaluate(f"{AUDIO}.currentTime")
    time.sleep(0.5)
    assert page.evaluate(f"{AUDIO}.currentTime") == paused_at
    page.locator(".dimnb-player-play").click()
    page.wait_for_function(f"() => !{AUDIO}.paused && {AUDIO}.currentTime > {paused_at}")


def check_mute_and_volume(page) -> None:  # type: ignore[no-untyped-def]
    """Mute toggles the element's mute both ways; the volume slider sets its volume."""
    page.locator(".dimnb-player-mute").click()
    page.wait_for_function(f"() => {AUDIO}.muted === true")
    page.locator(".dimnb-player-mute").click()
    page.wait_for_function(f"() => {AUDIO}.muted === false")
    page.eval_on_selector(".dimnb-player-volume",
                          "(el) => { el.value = '0.3'; el.dispatchEvent(new Event('input')); }")
    page.wait_for_function(f"() => Math.abs({AUDIO}.volume - 0.3) < 1e-6")
