"""The deployment of docs/deploy.md, for real: Debian's nginx with TLS, running contrib/nginx-dimnb.conf, in
front of `dimnb serve --behind-proxy`, and Chromium signing in through https.

It lists calls (the kernel's websocket goes through the proxy), plays a recording (Range requests answered
206 through the proxy) and holds a Secure session cookie.
"""

from __future__ import annotations

import re
import ssl
import urllib.request
from pathlib import Path

import pytest

from browser import AUDIO, CHROMIUM_ARGS, require_chromium
from proxy_fixtures import Proxy, playable_recording, require_nginx, start_nginx, start_serve
from server_fixtures import Client, Server, demo_data, stop_process, stop_server  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def deployment(demo_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_nginx()
    require_chromium()
    folder = tmp_path_factory.mktemp("deploy")
    upstream = start_serve(demo_data, folder / "serve.log", "--behind-proxy")
    try:
        proxy = start_nginx(folder / "nginx", upstream)
    except BaseException:
        stop_server(upstream)
        raise
    yield proxy, upstream
    stop_process(proxy.process)
    stop_server(upstream)


def _https_client(proxy: Proxy) -> Client:
    """The tests' cookie client, over https with the throwaway certificate."""
    client = Client(proxy.base)
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    client.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(client.jar), _NoRedirect(),
                                                urllib.request.HTTPSHandler(context=unverified))
    return client


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def test_plain_http_is_sent_to_https(deployment) -> None:  # type: ignore[no-untyped-def]
    proxy, _ = deployment
    resp = Client(proxy.http_base).request("/dashboard")
    assert resp.status == 301 and resp.headers["Location"].startswith("https://127.0.0.1")


def test_range_requests_come_back_206_through_the_proxy(deployment) -> None:  # type: ignore[no-untyped-def]
    proxy, upstream = deployment
    client = _https_client(proxy)
    resp = client.login("paul")
    assert resp.status == 302
    assert next(c for c in client.jar if c.name == "dimnb-session").secure
    recording = playable_recording(upstream.data, "paul")
    full = client.request(f"/dimnb/audio/{recording}")
    part = client.request(f"/dimnb/audio/{recording}", headers={"Range": "bytes=100-199"})
    assert full.status == 200 and part.status == 206
    assert part.body == full.body[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(full.body)}"


def test_chromium_signs_in_lists_calls_and_plays_audio_through_https(deployment) -> None:  # type: ignore[no-untyped-def]
    proxy, _ = deployment
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1366, "height": 768})
        audio_statuses: list[int] = []
        context.on("response", lambda r: audio_statuses.append(r.status) if "/dimnb/audio/" in r.url else None)
        try:
            page = context.new_page()
            page.goto(proxy.base + "/dashboard")
            page.wait_for_selector("#username")  # redirected to the login page
            page.fill("#username", "maria")
            page.fill("#password", "maria-demo")
            page.click("#login_submit")
            # the call list is drawn by the kernel, over its websocket through nginx
            page.wait_for_selector("tr.dimnb-call-row", timeout=120_000)
            assert page.url.startswith(proxy.base)

            session = next(c for c in context.cookies() if c["name"] == "dimnb-session")
            assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"

            page.wait_for_selector("tr.dimnb-call-row:has(.dimnb-rec-playable)", timeout=60_000)
            page.locator("tr.dimnb-call-row:has(.dimnb-rec-playable) a.dimnb-open-session").first.click()
            bar = page.locator(".dimnb-rec.dimnb-playable").first
            bar.wait_for(timeout=60_000)
            box = bar.bounding_box()
            bar.click(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
            page.wait_for_function(f"() => {AUDIO} && !{AUDIO}.paused && {AUDIO}.currentTime > 0", timeout=60_000)
            src = page.evaluate(f"{AUDIO}.src")
            assert src.startswith(proxy.base + "/dimnb/audio/")
            assert audio_statuses and set(audio_statuses) <= {200, 206}, audio_statuses
            # A demo recording is small enough for Chromium to fetch whole ("bytes=0-" is answered 200), so
            # ask for a part the way a seek into an unbuffered hour-long recording does.
            status, content_range = page.evaluate(
                "async (url) => { const r = await fetch(url, {headers: {Range: 'bytes=100-199'}});"
                " return [r.status, r.headers.get('Content-Range')]; }", src)
            assert status == 206 and re.fullmatch(r"bytes 100-199/\d+", content_range), (status, content_range)
        finally:
            context.close()
            browser.close()
    log = proxy.access_log.read_text()
    assert re.search(r'"GET /dimnb/audio/\S+ HTTP/1\.1" 206 ', log), log[-2000:]
    assert re.search(r'"GET /\S*api/kernels/\S+/channels\S* HTTP/1\.1" 101 ', log), log[-2000:]
