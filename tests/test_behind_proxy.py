"""`dimnb serve --ip` and `--behind-proxy`: forwarded headers are trusted only with the flag.

Behind a proxy the scheme and the client's address come from X-Forwarded-Proto / X-Forwarded-For, so the
login cookie is Secure and the audit trail records the real listener; without the flag the same headers
are ignored (any client could send them).
"""

from __future__ import annotations

import http.cookiejar
import re
import socket
import uuid
from pathlib import Path

import pytest

from dimnb import audit
from dimnb.demo.setup import demo_password
from dimnb.store.stores import Stores
from proxy_fixtures import playable_recording, start_serve
from server_fixtures import Client, Server, demo_data, server, stop_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}


@pytest.fixture(scope="module")
def proxied(demo_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    # another loopback address than the default, to see that --ip is honoured
    running = start_serve(demo_data, tmp_path_factory.mktemp("proxied") / "serve.log", "--behind-proxy",
                          ip="127.0.0.2")
    yield running
    stop_server(running)


def _sign_in(client: Client, login: str, headers: dict[str, str]) -> http.cookiejar.Cookie:
    """Sign in sending ``headers`` as a proxy would; the session cookie as the server set it.

    Cookies go back by hand: urllib keeps a Secure cookie for https only, and this hop is plain http.
    """
    page = client.request("/login", headers=headers)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    resp = client.request("/login?next=/dashboard", headers={**headers, "Cookie": client.cookie_header()},
                          data={"_xsrf": xsrf, "username": login, "password": demo_password(login)})
    assert resp.status == 302, resp.text[-500:]
    return next(c for c in client.jar if c.name == "dimnb-session")


def _play_and_read_client(server: Server, client: Client, headers: dict[str, str]) -> str:
    """Play one of maria's recordings; the client address the audit trail recorded for it."""
    recording = playable_recording(server.data, "maria")
    resp = client.request(f"/dimnb/audio/{recording}?play={uuid.uuid4().hex}",
                          headers={**headers, "Range": "bytes=0-99", "Cookie": client.cookie_header()})
    assert resp.status == 206
    stores = Stores.open(str(server.data))
    try:
        event = audit.read_events(stores.state)[-1]
    finally:
        stores.close()
    assert (event.login, event.kind, event.recording_id) == ("maria", "play", recording)
    return event.client


def test_behind_a_proxy_the_cookie_is_secure_and_the_forwarded_client_is_audited(proxied: Server) -> None:
    client = proxied.client()
    cookie = _sign_in(client, "maria", FORWARDED)
    assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly")
    assert _play_and_read_client(proxied, client, FORWARDED) == "198.51.100.7"


def test_ip_chooses_the_listening_address(proxied: Server) -> None:
    assert proxied.base.startswith("http://127.0.0.2:")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxied.port), timeout=2).close()


def test_without_the_flag_forwarded_headers_are_ignored(server: Server) -> None:
    client = server.client()
    assert not _sign_in(client, "maria", FORWARDED).secure
    assert _play_and_read_client(server, client, FORWARDED) == "127.0.0.1"
