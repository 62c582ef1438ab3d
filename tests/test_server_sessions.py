"""Sign-in sessions of a real `dimnb serve`: server-side sessions, logout by POST only, lockouts that lock one account.

The server here runs with short session limits (idle 4.2 s, lifetime 14.4 s)
so the timeouts can be watched. The lock and session rules themselves are
also checked on their own with a fake clock.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from dimnb.demo.setup import setup_demo
from dimnb.server import login_sessions
from dimnb.server.lockout import LoginGuard
from dimnb.store.stores import Stores
from server_fixtures import DEMO_NOW, ROOT, Client, Server, free_port, stop_process, wait_http

IDLE_MINUTES = 0.07  # 4.2 s
LIFETIME_HOURS = 0.004  # 14.4 s

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("sessions") / "data"
    setup_demo(data)
    log = data.parent / "serve.log"
    port = free_port()
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIMNB_NOW": DEMO_NOW}
    env.pop("DIMNB_USER", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dimnb", "serve", "--data", str(data), "--port", str(port),
         "--session-idle-minutes", str(IDLE_MINUTES), "--session-hours", str(LIFETIME_HOURS)],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/login", process, log)
        yield Server(base, port, data, process, log)
    finally:
        stop_process(process)


def _signed_in(client: Client) -> bool:
    """The root page sends a signed-in user to the dashboard and anyone else to the login page."""
    resp = client.request("/")
    assert resp.status == 302
    return resp.headers["Location"] == "/dashboard"


def _xsrf(page: str) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)


def _logout(client: Client) -> None:
    page = client.request("/logout")
    assert page.status == 200 and 'method="post"' in page.text
    done = client.request("/logout", data={"_xsrf": _xsrf(page.text)})
    assert done.status == 200 and "You are signed out." in done.text


def _copy_of(server: Server, client: Client) -> Client:
    thief = server.client()
    for cookie in client.jar:
        thief.jar.set_cookie(cookie)
    return thief


# ------------------------------------------------------------------------------------------ sessions


def test_a_copied_cookie_stops_working_at_logout(server: Server) -> None:
    maria = server.client()
    assert maria.login("maria").status == 302
    thief = _copy_of(server, maria)
    assert _signed_in(maria) and _signed_in(thief)
    _logout(maria)
    assert not _signed_in(maria)
    assert not _signed_in(thief)  # the session is closed on the server, not just forgotten by one browser
    assert thief.request("/dimnb/audio/1").status == 302


def test_logout_by_get_or_without_the_xsrf_token_signs_nobody_out(server: Server) -> None:
    sam = server.client()
    sam.login("sam")
    page = sam.request("/logout")  # what a link or an <img src> on another site would do
    assert page.status == 200 and "Sign out" in page.text and _signed_in(sam)
    forged = sam.request("/logout", data={})  # a cross-site form cannot know the token
    assert forged.status == 403 and _signed_in(sam)
    assert "Traceback" not in forged.text
    wrong = sam.request("/logout", data={"_xsrf": "2|00000000|" + "0" * 32 + "|1"})
    assert wrong.status == 403 and _signed_in(sam)
    _logout(sam)
    assert not _signed_in(sam)


def test_the_cookie_lives_as_long_as_the_session(server: Server) -> None:
    olivia = server.client()
    resp = olivia.login("olivia")
    set_cookie = resp.headers["Set-Cookie"]
    expires = parsedate_to_datetime(re.search(r"expires=([^;]+)", set_cookie, re.I).group(1))
    sent = parsedate_to_datetime(resp.headers["Date"])
    assert 0 < (expires - sent).total_seconds() <= LIFETIME_HOURS * 3600 + 2


def test_an_idle_session_ends_on_the_server(server: Server) -> None:
    olivia = server.client()
    olivia.login("olivia")
    thief = _copy_of(server, olivia)
    assert _signed_in(olivia)
    time.sleep(IDLE_MINUTES * 60 + 1.5)
    assert not _signed_in(thief) and not _signed_in(olivia)


def test_a_busy_session_still_ends_at_its_lifetime(server: Server) -> None:
    alex = server.client()
    alex.login("alex")
    started = time.monotonic()
    lifetime = LIFETIME_HOURS * 3600
    while time.monotonic() - started < lifetime - 2:
        assert _signed_in(alex)  # never idle ...
        time.sleep(1)
    time.sleep(3)
    assert not _signed_in(alex)  # ... and still signed out when the session is over


# ------------------------------------------------------------------------------------------ lockouts


def test_five_wrong_passwords_lock_that_account_only(server: Server) -> None:
    attacker = server.client()
    for _ in range(5):
        resp = attacker.login("paul", "guess-again")
        assert resp.status in (401, 429)
    assert "Too many failed sign-ins" in resp.text
    locked = server.client().login("paul")  # paul himself, right password, same address
    assert locked.status == 429 and "Too many failed sign-ins" in locked.text and "Traceback" not in locked.text
    alex = server.client()
    assert alex.login("alex").status == 302 and _signed_in(alex)  # same address: alex is not affected
    unknown = server.client()
    for _ in range(5):
        last = unknown.login("no-such-user", "x")
    assert "Too many failed sign-ins" in last.text  # a lock says nothing about whether the account exists


def test_a_noisy_address_is_slowed_down_but_locks_nobody_out(server: Server) -> None:
    # Last in this module: the address stays slow for a while.
    baseline_started = time.monotonic()
    assert server.client().login("nina").status == 302
    baseline = time.monotonic() - baseline_started
    noisy = server.client()
    for i in range(40):  # many accounts, under five tries each: no account lock, until the address is slowed
        started = time.monotonic()
        assert noisy.login(f"sprayed-{i // 4}", "Winter2026!").status == 401
        if time.monotonic() - started > baseline + 1:
            break
    else:
        pytest.fail("40 failed sign-ins from one address and no slow-down")
    started = time.monotonic()
    nina = server.client()
    assert nina.login("nina").status == 302 and _signed_in(nina)  # the right password still signs in
    assert time.monotonic() - started > baseline + 1  # after a wait
    log = server.log.read_text()
    assert "failed login for 'sprayed-0'" in log


# ------------------------------------------------------------------------------------------ the rules on their own


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_account_locks_grow_and_end() -> None:
    clock = Clock()
    guard = LoginGuard(clock=clock, first_lock=30, max_lock=120)
    for _ in range(4):
        guard.failed("paul", "10.0.0.1")
    assert guard.locked_for("paul") == 0
    guard.failed("paul", "10.0.0.2")  # from anywhere: the account counts
    assert guard.locked_for("paul") == 30 and guard.locked_for("alex") == 0
    clock.now += 31
    assert guard.locked_for("paul") == 0
    for _ in range(5):
        guard.failed("paul", "10.0.0.1")
    assert guard.locked_for("paul") == 60  # the second lock is longer
    clock.now += 61
    for _ in range(5):
        guard.failed("paul", "10.0.0.1")
    assert guard.locked_for("paul") == 120
    clock.now += 121
    for _ in range(5):
        guard.failed("paul", "10.0.0.1")
    assert guard.locked_for("paul") == 120  # capped
    clock.now += 121
    guard.succeeded("paul")
    guard.failed("paul", "10.0.0.1")
    assert guard.locked_for("paul") == 0


def test_the_address_limit_only_slows_and_forgets() -> None:
    clock = Clock()
    guard = LoginGuard(clock=clock, address_failures=3, address_window=60, max_delay=5)
    for i in range(3):
        guard.failed(f"user{i}", "10.0.0.9")
    assert guard.delay_for("10.0.0.9") > 0 and guard.delay_for("10.0.0.10") == 0
    assert all(guard.locked_for(f"user{i}") == 0 for i in range(3))
    for i in range(20):
        guard.failed(f"other{i}", "10.0.0.9")
    assert guard.delay_for("10.0.0.9") == 5
    clock.now += 61
    assert guard.delay_for("10.0.0.9") == 0


def test_sessions_end_by_revocation_idle_time_lifetime_and_password_change(tmp_path: Path) -> None:
    from dimnb.directory import set_password

    stores = Stores.open(str(tmp_path / "data"), create=True)
    with stores.state.transaction() as con:
        con.execute("INSERT INTO users (login, name) VALUES ('ann', 'Ann')")
    policy = login_sessions.SessionPolicy(idle_seconds=60, lifetime_seconds=600)
    t0 = 1_000_000.0
    token = login_sessions.open_session(stores.state, "ann", client="192.0.2.1", policy=policy, now=t0)
    assert login_sessions.resolve(stores.state, token, policy, now=t0 + 30) == "ann"
    assert login_sessions.resolve(stores.state, token, policy, now=t0 + 85) == "ann"  # 55 s after the last use
    assert login_sessions.resolve(stores.state, token, policy, now=t0 + 200) is None  # idle too long
    busy = login_sessions.open_session(stores.state, "ann", client=None, policy=policy, now=t0)
    for t in range(0, 600, 30):
        assert login_sessions.resolve(stores.state, busy, policy, now=t0 + t) == "ann"
    assert login_sessions.resolve(stores.state, busy, policy, now=t0 + 601) is None  # lifetime over
    again = login_sessions.open_session(stores.state, "ann", client=None, policy=policy)
    assert login_sessions.resolve(stores.state, again, policy) == "ann"
    assert login_sessions.revoke(stores.state, again) and login_sessions.resolve(stores.state, again, policy) is None
    fresh = login_sessions.open_session(stores.state, "ann", client=None, policy=policy)
    set_password(stores.state, "ann", "a-new-password-123")
    assert login_sessions.resolve(stores.state, fresh, policy) is None
    stored = stores.state.connection().execute("SELECT group_concat(token_hash) FROM web_sessions").fetchone()[0]
    assert fresh not in stored and again not in stored  # only hashes are kept
    assert login_sessions.resolve(stores.state, "x" * 20, policy) is None
