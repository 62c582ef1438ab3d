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
from server_fixtures import Client, Response, Server, demo_data, server  # noqa: F401  (fixtures)

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


# ------------------------------------------------------------------------------------------ one audio gate


ODD_IDS = ("%C2%B2", "%D9%A4", "%EF%BC%94", "4%00", "+4", "-4", "4.0", "1e3", "0x4", "%20" + "4", "9" * 30, "0",
           "%FF%FE")


def _audio_events(server: Server, before: int) -> list[audit.AuditEvent]:
    stores = Stores.open(str(server.data))
    try:
        return audit.read_events(stores.state)[before:]
    finally:
        stores.close()


def _has(resp: Response, header: str) -> bool:
    return header.lower() in {name.lower() for name in resp.headers}


def _event_count(server: Server) -> int:
    return len(_audio_events(server, 0))


def test_head_answers_exactly_as_get_for_odd_ids(server: Server) -> None:
    alex = server.client()
    alex.login("alex")  # may play everything: an odd id that parsed as a number would find a recording
    for raw in ODD_IDS:
        get = alex.request(f"/dimnb/audio/{raw}")
        head = alex.request(f"/dimnb/audio/{raw}", method="HEAD")
        expected = 400 if raw == "%FF%FE" else 404  # not UTF-8: tornado refuses the URL itself
        assert get.status == head.status == expected, (raw, get.status, head.status)
        assert head.body == b"" and not _has(head, "ETag") and not _has(head, "Accept-Ranges"), raw
        assert "Traceback" not in get.text


def test_a_recording_outside_the_scope_answers_head_like_a_missing_one(server: Server) -> None:
    mine, theirs = _recordings(server.data, "olivia")
    olivia = server.client()
    olivia.login("olivia")
    ok = olivia.request(f"/dimnb/audio/{mine[0]}", method="HEAD")
    assert ok.status == 200 and _has(ok, "ETag") and int(ok.headers["Content-Length"]) > 1000
    hidden = olivia.request(f"/dimnb/audio/{theirs[0]}", method="HEAD")
    missing = olivia.request("/dimnb/audio/999999", method="HEAD")
    assert hidden.status == missing.status == 404  # not 403, not 200: nothing about it leaks
    for name in ("ETag", "Last-Modified", "Accept-Ranges", "Content-Disposition"):
        assert not _has(hidden, name), name
    assert hidden.headers.get("Content-Length") == missing.headers.get("Content-Length")
    assert hidden.headers.get("Content-Type") == missing.headers.get("Content-Type")


def test_head_requests_and_refusals_are_audited(server: Server) -> None:
    mine, theirs = _recordings(server.data, "olivia")
    before = _event_count(server)
    olivia = server.client()
    olivia.login("olivia")
    olivia.request(f"/dimnb/audio/{theirs[0]}", method="HEAD")
    olivia.request("/dimnb/audio/%C2%B2", method="HEAD")
    olivia.request(f"/dimnb/audio/{mine[0]}?play={uuid.uuid4().hex}", method="HEAD")
    events = _audio_events(server, before)
    assert [(e.login, e.kind, e.recording_id) for e in events] == [
        ("olivia", "denied", theirs[0]), ("olivia", "denied", None), ("olivia", "play", mine[0])]
    assert all(e.details.get("method") == "HEAD" for e in events)
    assert events[1].details["asked_id"] == "²"


def test_any_truthy_download_flag_is_a_download(server: Server) -> None:
    mine, _ = _recordings(server.data, "paul")
    paul = server.client()
    paul.login("paul")
    before = _event_count(server)
    for flag in ("on", "yes", "TRUE", "1", "y", "download"):
        resp = paul.request(f"/dimnb/audio/{mine[0]}?download={flag}&play={uuid.uuid4().hex}")
        assert resp.status == 200 and resp.headers["Content-Disposition"].startswith("attachment;"), flag
    for flag in ("0", "false", "off", "no", ""):
        resp = paul.request(f"/dimnb/audio/{mine[0]}?download={flag}&play={uuid.uuid4().hex}")
        assert resp.status == 200 and "Content-Disposition" not in resp.headers, flag
    assert [e.kind for e in _audio_events(server, before)] == ["download"] * 6 + ["play"] * 5


def test_reusing_a_play_token_for_another_whole_file_is_a_new_play(server: Server) -> None:
    mine, _ = _recordings(server.data, "maria")
    maria = server.client()
    maria.login("maria")
    before = _event_count(server)
    token = uuid.uuid4().hex
    whole = maria.request(f"/dimnb/audio/{mine[0]}?play={token}")
    size = len(whole.body)
    again = maria.request(f"/dimnb/audio/{mine[0]}?play={token}")
    third = maria.request(f"/dimnb/audio/{mine[0]}?play={token}", headers={"Range": "bytes=0-99"})
    assert again.body == whole.body and third.status == 206
    plays = [e for e in _audio_events(server, before) if e.kind == "play"]
    assert len(plays) == 3 and {e.play_id for e in plays} == {token}
    other = uuid.uuid4().hex
    before = _event_count(server)
    for chunk in ("bytes=0-999", f"bytes=1000-{size // 2}", f"bytes={size // 2 + 1}-{size - 2}"):
        assert maria.request(f"/dimnb/audio/{mine[0]}?play={other}", headers={"Range": chunk}).status == 206
    assert len(_audio_events(server, before)) == 1  # one play, however many Range requests it takes


# ------------------------------------------------------------------------------------------ nothing leaks


_LEAKS = ("Traceback", 'File "', "site-packages", str(Path(__file__).resolve().parents[1]), ".py\"", "Exception",
          "Error:", "sqlite3", "duckdb", "KeyError", "ValueError", "TypeError")


def _assert_no_leak(text: str, what: str) -> None:
    for marker in _LEAKS:
        assert marker not in text, (what, marker, text[:500])


def test_no_traceback_path_or_exception_text_reaches_the_browser_over_http(server: Server) -> None:
    anonymous = server.client()
    signed_in = server.client()
    signed_in.login("olivia")
    provoked = [
        (anonymous, "/login", {"username": "x", "password": "y"}, None, None),  # no XSRF token
        (signed_in, "/logout", {}, None, None),
        (signed_in, "/dimnb/audio/%FF%FE%00", None, None, None),
        (signed_in, "/dimnb/audio/1", None, {"Range": "bytes=zz-"}, None),
        (signed_in, "/dimnb/audio/1", None, {"Range": "bytes=999999999-"}, None),
        (signed_in, "/dimnb/audio/" + "9" * 400, None, None, None),
        (signed_in, "/voila/api/shutdown/not-a-kernel", {}, None, None),
        (signed_in, "/api/kernels/%00/channels", None, None, None),
        (signed_in, "/dashboard", None, None, "DELETE"),
        (signed_in, "/login?next=%00%ff", None, None, None),
        (anonymous, "/", None, {"Cookie": "dimnb-session=2|1:0|10:1|4:s=xx|5:bad|x"}, None),
        (anonymous, "/", None, {"Cookie": "dimnb-session=" + "A" * 4000}, None),
        (anonymous, "/login", {"_xsrf": "x", "username": "\x00" * 70, "password": "p" * 5000},
         {"Cookie": "_xsrf=x"}, None),
    ]
    for client, path, data, headers, method in provoked:
        resp = client.request(path, data=data, headers=headers, method=method)
        assert resp.status < 500 or resp.status in (500, 501, 502, 503), path
        _assert_no_leak(resp.text, f"{method or ('POST' if data is not None else 'GET')} {path}")


def test_no_traceback_reaches_the_browser_over_the_kernel_websocket(server: Server) -> None:
    client = server.client()
    client.login("maria")
    kernel = _kernel_id(client.request("/dashboard").text)
    weird: list = [None, 5, "text", [1, 2], {"type": None}, {"type": "play", "recording_id": "1; DROP TABLE x"},
                   {"type": "play", "recording_id": 2**70, "offset_seconds": "NaN"},
                   {"type": "open_session", "call_id": {"$gt": 0}}, {"type": "page", "page": -10**30},
                   {"type": "sort", "column": "__class__"}, {"type": "filter", "filters": {"duration_min": "x"}},
                   {"type": "need_audio", "play_id": ["x"]}, {"type": "download", "play_id": None, "have": []}]

    async def scenario() -> list[dict]:
        ws = await _ws(server, client, kernel)
        ws.write_message(_message("comm_info_request", {}))
        replies = await _collect(ws, 5)
        comms = next(m["content"]["comms"] for m in replies if m.get("msg_type") == "comm_info_reply")
        for comm_id in comms:
            for content in weird:
                ws.write_message(_message("comm_msg", {"comm_id": comm_id,
                                                        "data": {"method": "custom", "content": content}}))
            ws.write_message(_message("comm_msg", {"comm_id": comm_id, "data": {
                "method": "update", "state": {name: {"x": [object.__name__]} for name in (
                    "value", "filters", "page", "sort", "selected", "call_id", "volume", "source", "state", "view",
                    "message", "options", "rows")}, "buffer_paths": []}}))
            ws.write_message(_message("comm_msg", {"comm_id": comm_id, "data": "not a dict"}))
        ws.write_message(_message("comm_msg", {"comm_id": "no-such-comm", "data": {"method": "custom"}}))
        out = await _collect(ws, 8)
        ws.write_message("{not json")  # the server drops such a connection; it must not explain why
        out += await _collect(ws, 2)
        ws.close()
        return out

    received = asyncio.run(scenario())
    assert received
    errors = [m for m in received if m.get("msg_type") == "error" or m.get("header", {}).get("msg_type") == "error"]
    assert errors == []
    text = json.dumps(received)
    assert "traceback" not in text.lower() and '"ename"' not in text and '"evalue"' not in text
    _assert_no_leak(text, "websocket")
    assert "a widget message failed (not shown to the browser)" in server.log.read_text()  # details: server log
