"""The session view and the player in a real JupyterLab, driven by headless Chromium (byte fallback).

Needs Debian's chromium (``apt-get install -y chromium``); Playwright cannot download its own browser here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from browser import (
    AUDIO,
    CHROMIUM,
    CHROMIUM_ARGS,
    check_mute_and_volume,
    check_pause_and_resume,
    require_chromium,
)
from demo_fixtures import demo_built, demo_playable  # noqa: F401  (fixtures)
from server_fixtures import free_port, stop_process, wait_http

from dimnb import access, sessions
from dimnb.store.stores import Stores

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def lab(tmp_path: Path, demo_playable: Path):
    stores = Stores.open(str(demo_playable))
    alex = access.load_actor(stores.state, "alex")
    call_id, other = (r[0] for r in stores.calls.query(
        "SELECT call_id FROM calls WHERE recordings_total >= 2 ORDER BY call_id LIMIT 2"))
    session = sessions.build_session(stores.calls, alex, call_id, state=stores.state)
    stores.close()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from IPython.display import display\n"
            "from dimnb.workbench import open_workbench\n"
            f"wb = open_workbench({str(demo_playable)!r}, user='alex')\n"
            f"view = wb.session_view({call_id})\n"
            "display(view)\n"
            "display(wb.player)"
        ),
        nbformat.v4.new_code_cell(f"view.show({other}); print('other session shown')"),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    work = tmp_path / "lab"
    work.mkdir()
    nbformat.write(notebook, work / "t.ipynb")
    port, token = free_port(), "dimnb-test-token"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    env.pop("DIMNB_AUDIO_BASE", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.open_browser=False",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "wb"), start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", server, tmp_path / "lab.log", what="JupyterLab")
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/t.ipynb?token={token}", "session": session,
               "other": other, "log": tmp_path / "lab.log"}
    finally:
        stop_process(server)




def run_cell(page, index: int) -> None:
    """Run one cell once the kernel is idle; again if the kernel was not listening yet."""
    for _attempt in range(3):
        page.get_by_text("| Idle").first.wait_for(timeout=90_000)
        page.locator(".jp-Cell").nth(index).click()
        page.keyboard.press("Escape")
        page.keyboard.press("Shift+Enter")
        prompt = page.locator(".jp-Cell").nth(index).locator(".jp-InputPrompt").first
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(ch.isdigit() or ch == "*" for ch in prompt.inner_text()):
                return
            time.sleep(0.25)
    raise AssertionError(f"cell {index} never ran")


def test_click_plays_from_that_point_and_the_player_controls_work(lab) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    session = lab["session"]
    rec = session.playable[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(accept_downloads=True, viewport={"width": 1400, "height": 1000})
        try:
            page.goto(lab["url"])
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            run_cell(page, 0)
            bar = page.locator(f".dimnb-rec.dimnb-playable[data-recording-id='{rec.recording_id}']")
            bar.wait_for(timeout=60_000)
            assert page.locator(".dimnb-wave").count() == len(session.playable)  # waveform peaks drawn
            assert page.locator(".dimnb-seg").count() == len(session.segments)

            # click at 40 % of the recording bar: playback starts there
            box = bar.bounding_box()
            bar.click(position={"x": box["width"] * 0.4, "y": box["height"] / 2})
            expected = 0.4 * rec.duration_seconds
            page.wait_for_function(f"() => {AUDIO} && !{AUDIO}.paused && {AUDIO}.currentTime > 0", timeout=30_000)
            start = page.evaluate(f"{AUDIO}.currentTime")
            assert abs(start - expected) < 1.5, (start, expected)
            assert page.locator(".dimnb-player").get_attribute("data-recording-id") == str(rec.recording_id)
            assert str(session.call_id) in page.locator(".dimnb-player-title").inner_text()

            check_pause_and_resume(page)

            # seek with the seek bar
            page.eval_on_selector(".dimnb-player-seek",
                                  "(el) => { el.value = '3'; el.dispatchEvent(new Event('change')); }")
            page.wait_for_function(f"() => Math.abs({AUDIO}.currentTime - 3) < 1")

            # mute, volume, speed
            check_mute_and_volume(page)
            page.select_option(".dimnb-player-rate", "1.5")
            page.wait_for_function(f"() => {AUDIO}.playbackRate === 1.5")

            # download: the original file under its self-explaining name
            with page.expect_download(timeout=30_000) as download:
                page.locator(".dimnb-player-download").click()
            assert download.value.suggested_filename == rec.download_name
            saved = Path(download.value.path())
            assert saved.stat().st_size == rec.size_bytes

            # opening another session does not stop the player
            before = page.evaluate(f"{AUDIO}.currentTime")
            run_cell(page, 1)
            page.wait_for_selector(f".dimnb-session[data-call-id='{lab['other']}']", timeout=30_000)
            page.wait_for_function(f"() => !{AUDIO}.paused && {AUDIO}.currentTime > {before} + 0.5")
            assert page.locator(".dimnb-player").get_attribute("data-recording-id") == str(rec.recording_id)
            page.screenshot(path=str(Path(lab["log"]).with_name("playing.png")))
        except Exception:
            page.screenshot(path=str(Path(lab["log"]).with_suffix(".png")))
            print(Path(lab["log"]).read_text()[-3000:])
            raise
        finally:
            browser.close()
