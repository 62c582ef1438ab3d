"""`dimnb serve` over real HTTP and websockets: who gets in, who hears what, and what never leaks."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from dimnb import access, audit
from dimnb.store.stores import Stores
from server_fixtures import Client, Server, demo_data, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


def _recordings(data: Path, login: str) -> tuple[list[int], list[int]]:
    stores = Stores.open(str(data))
    actor = access.load_actor(stores.state, login)
    ids = [r[0] for r in stores.calls.query("SELECT recording_id FROM recordings WHERE state = 'available' ORDER BY 1")]
    mine = [i for i in ids if access.can_play(stores.calls, actor, i)]
    theirs = [i for i in ids if i not in mine]
    stores.close()
    return mine, theirs


def test_no_login_redirects_to_the_login_page(server: Server) -> None:
    client = server.client()
    for path in ("/", "/dashboard", "/audit", "/dimnb/audio/1"):
        resp = client.request(path)
        assert resp.status == 302, path
        assert resp.headers["Location"].startswith("/login?next="), path
    assert client.request("/login").status == 200


def test_the_cookie_secret_is_kept_private_in_the_data_directory(server: Server) -> None:
    secret = server.data / "cookie_secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert len(secret.read_bytes()) >= 32


def test_a_wrong_password_is_refused(server: Server) -> None:
    client = server.client()
    resp = client.login("olivia", "not-her-password")
    assert resp.status == 401
    assert "Wrong username or password." in resp.text
    assert client.cookie("dimnb-session") is None
    assert client.request("/dashboard").status == 302
    # an unknown user gets the same answer
    other = server.client()
    resp = other.login("nobody-at-all", "whatever-password")
    assert resp.status == 401 and "Wrong username or password." in resp.text


def test_login_sets_a_strict_httponly_cookie_and_redirects_only_locally(server: Server) -> None:
    client = server.client()
    resp = client.login("olivia")
    assert resp.status == 302 and resp.headers["Location"] == "/dashboard"
    set_cookie = resp.headers.get("Set-Cookie", "")
    assert "dimnb-session=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    # a signed-in user sent to the login page with a foreign "next" stays on this server
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        resp = client.request("/login?next=" + target)
        assert resp.status == 302 and resp.headers["Location"] == "/", target


def test_another_users_recording_is_404_exactly_like_a_missing_one(server: Server) -> None:
    mine, theirs = _recordings(server.data, "olivia")
    assert mine and theirs
    client = server.client()
    client.login("olivia")
    ok = client.request(f"/dimnb/audio/{mine[0]}?play={uuid.uuid4().hex}")
    assert ok.status == 200 and ok.headers["Content-Type"] == "audio/wav" and ok.body[:4] == b"RIFF"
    forbidden = client.request(f"/dimnb/audio/{theirs[0]}")
    missing = client.request("/dimnb/audio/999999")
    garbage = client.request("/dimnb/audio/..%2F..%2Fstate.sqlite")
    assert forbidden.status == missing.status == garbage.status == 404
    assert forbidden.body == missing.body == garbage.body
    assert "Content-Disposition" not in forbidden.headers


def test_range_head_and_download(server: Server) -> None:
    mine, _ = _recordings(server.data, "paul")
    client = server.client()
    client.login("paul")
    full = client.request(f"/dimnb/audio/{mine[0]}")
    part = client.request(f"/dimnb/audio/{mine[0]}", headers={"Range": "bytes=100-199"})
    assert part.status == 206 and part.body == full.body[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(full.body)}"
    assert client.request(f"/dimnb/audio/{mine[0]}", headers={"Range": "bytes=99999999-"}).status == 416
    head = client.request(f"/dimnb/audio/{mine[0]}", method="HEAD")
    assert head.status == 200 and head.body == b"" and int(head.headers["Content-Length"]) == len(full.body)
    download = client.request(f"/dimnb/audio/{mine[0]}?download=1")
    assert download.body == full.body
    assert re.match(r'attachment; filename="\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ_.+_(seg\d+|conf)\.wav"',
                    download.headers["Content-Disposition"])


def test_plays_are_audited_once_per_play_and_every_download(server: Server) -> None:
    mine, theirs = _recordings(server.data, "maria")
    stores = Stores.open(str(server.data))
    before = len(audit.read_events(stores.state))
    client = server.client()
    client.login("maria")
    play = uuid.uuid4().hex
    for chunk in ("bytes=0-999", "bytes=1000-1999", "bytes=2000-"):
        assert client.request(f"/dimnb/audio/{mine[0]}?play={play}", headers={"Range": chunk}).status == 206
    client.request(f"/dimnb/audio/{mine[0]}?download=1")
    client.request(f"/dimnb/audio/{theirs[0]}?play={play}")
    events = audit.read_events(stores.state)[before:]
    assert [(e.login, e.kind, e.recording_id) for e in events] == [
        ("maria", "play", mine[0]), ("maria", "download", mine[0]), ("maria", "denied", theirs[0])]
    assert events[0].call_id is not None and events[2].call_id is None
    assert audit.verify(stores.state).ok
    stores.close()


def test_a_revoked_grant_stops_playback_on_the_next_request(server: Server) -> None:
    mine, _ = _recordings(server.data, "paul")
    client = server.client()
    client.login("paul")
    assert client.request(f"/dimnb/audio/{mine[0]}", headers={"Range": "bytes=0-9"}).status == 206
    grant = [sys.executable, "-m", "dimnb", "users", "grant", "paul", "--data", str(server.data)]
    subprocess.run(grant + ["--playback", "none"], check=True, capture_output=True)
    try:
        assert client.request(f"/dimnb/audio/{mine[0]}", headers={"Range": "bytes=10-19"}).status == 404
    finally:
        subprocess.run(grant + ["--playback", "primary_group"], check=True, capture_output=True)
    assert client.request(f"/dimnb/audio/{mine[0]}", headers={"Range": "bytes=10-19"}).status == 206


def test_the_audit_dashboard_exists_only_for_auditors(server: Server) -> None:
    olivia = server.client()
    olivia.login("olivia")
    missing = olivia.request("/no-such-page")
    denied = olivia.request("/audit")
    assert denied.status == missing.status == 404 and denied.body == missing.body
    auditor = server.client()
    auditor.login("audrey")
    page = auditor.request("/audit")
    assert page.status == 200 and "Traceback" not in page.text


def test_voila_file_tree_and_jupyter_apis_are_not_served(server: Server) -> None:
    client = server.client()
    client.login("alex")
    for path in ("/voila/tree", "/voila/render/dashboard.ipynb", "/voila/files/dashboard.ipynb",
                 "/voila/api/contents/", "/api/contents", "/api/kernels", "/api/sessions", "/dashboard.ipynb",
                 "/voila/files/../data/state.sqlite"):
        resp = client.request(path)
        assert resp.status in (403, 404, 405), (path, resp.status)
        assert b"Traceback" not in resp.body and b"state.sqlite" not in resp.body, path


def _kernel_id(page: str) -> str:
    return re.search(r'"kernelId": "([0-9a-f-]+)"', page).group(1)


async def _ws(server: Server, client: Client, kernel_id: str):  # type: ignore[no-untyped-def]
    url = f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
    return await websocket_connect(HTTPRequest(url, headers={"Cookie": client.cookie_header()}))


def _message(msg_type: str, content: dict, channel: str = "shell") -> str:
    return json.dumps({
        "header": {"msg_id": uuid.uuid4().hex, "username": "", "session": uuid.uuid4().hex, "msg_type": msg_type,
                   "version": "5.3"},
        "parent_header": {}, "metadata": {}, "content": content, "buffers": [], "channel": channel,
    })


async def _collect(ws, seconds: float) -> list[dict]:  # type: ignore[no-untyped-def]
    messages = []
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return messages
        try:
            raw = await asyncio.wait_for(ws.read_message(), remaining)
        except asyncio.TimeoutError:
            return messages
        if raw is None:
            return messages
        if isinstance(raw, str):
            messages.append(json.loads(raw))


def test_one_users_kernel_refuses_another_users_websocket_and_shutdown(server: Server) -> None:
    olivia, maria = server.client(), server.client()
    olivia.login("olivia")
    maria.login("maria")
    kernel = _kernel_id(olivia.request("/dashboard").text)

    async def scenario() -> None:
        own = await _ws(server, olivia, kernel)
        own.write_message(_message("kernel_info_request", {}))
        replies = await _collect(own, 5)
        assert any(m.get("msg_type") == "kernel_info_reply" or m.get("header", {}).get("msg_type") == "kernel_info_reply"
                   for m in replies)
        own.close()
        with pytest.raises(HTTPClientError) as refused:
            await _ws(server, maria, kernel)
        assert refused.value.code == 403

    asyncio.run(scenario())
    assert maria.request(f"/api/kernels/{kernel}", method="DELETE").status in (403, 404)
    assert maria.request(f"/api/kernels/{kernel}").status in (403, 404)


def test_forged_widget_messages_about_out_of_scope_calls_reveal_nothing(server: Server) -> None:
    stores = Stores.open(str(server.data))
    olivia_actor = access.load_actor(stores.state, "olivia")
    _, theirs = _recordings(server.data, "olivia")
    secret = stores.calls.query(
        "SELECT r.recording_id, r.call_id, r.file_name, c.from_party FROM recordings r JOIN calls c USING (call_id) "
        "WHERE list_contains($ids, r.recording_id) AND c.from_party LIKE '+%' ORDER BY 1 LIMIT 1",
        {"ids": theirs})[0]
    assert access.why(stores.calls, olivia_actor, secret[1], access.VIEW_CALLS) is None
    stores.close()
    client = server.client()
    client.login("olivia")
    kernel = _kernel_id(client.request("/dashboard").text)

    async def scenario() -> list[dict]:
        ws = await _ws(server, client, kernel)
        ws.write_message(_message("comm_info_request", {}))
        replies = await _collect(ws, 5)
        comms = next(m["content"]["comms"] for m in replies if m.get("msg_type") == "comm_info_reply")
        assert comms
        forged = [
            {"type": "play", "recording_id": secret[0], "offset_seconds": 1.0},
            {"type": "play_at", "call_seconds": 3.0},
            {"type": "need_audio", "play_id": "x"},
            {"type": "download", "play_id": "x", "have": False},
            {"type": "open_session", "call_id": secret[1]},
            {"type": "show", "call_id": secret[1]},
        ]
        for comm_id in comms:
            for content in forged:
                ws.write_message(_message("comm_msg", {"comm_id": comm_id,
                                                        "data": {"method": "custom", "content": content}}))
            # and a forged trait update naming the call
            ws.write_message(_message("comm_msg", {"comm_id": comm_id, "data": {
                "method": "update", "state": {"call_id": secret[1], "selected": {"recording_id": secret[0]}},
                "buffer_paths": []}}))
        out = await _collect(ws, 6)
        ws.close()
        return out

    received = json.dumps(asyncio.run(scenario()))
    assert secret[2] not in received  # the recording's file name
    assert str(secret[3]) not in received  # the caller's number
    assert "Traceback" not in received and "Error" not in received.replace("error_", "")
