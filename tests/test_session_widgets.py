"""The session view and the player as the kernel sees them: traits, messages, re-checks, and forged input.

Messages from the browser go through ipywidgets' own entry point (``_handle_msg``),
exactly as a comm message would; what the kernel sends is read off the comm.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from demo_fixtures import demo_built, demo_pending, demo_playable  # noqa: F401  (fixtures)
from dimnb.audit import read_events
from dimnb import access, audit, sessions
from dimnb.demo import tonecode
from dimnb.directory import set_grants
from dimnb.store.stores import Stores
from dimnb.widgets import Player, PlayRequest, SessionView
from dimnb.widgets._guard import FAILED, UNAVAILABLE
from dimnb.widgets.player import TOO_LARGE
from dimnb.widgets.session_view import NO_SUCH_CALL
from dimnb.workbench import Workbench


class Wire:
    """Everything a widget sends to the browser (state updates and custom messages, with buffers)."""

    def __init__(self, widget: Any) -> None:
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []
        widget.comm.send = self._send

    def _send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.messages.append((data, [bytes(b) for b in buffers or []]))

    def custom(self) -> list[tuple[dict[str, Any], list[bytes]]]:
        return [(d["content"], b) for d, b in self.messages if d.get("method") == "custom"]

    def text(self) -> str:
        return json.dumps([d for d, _ in self.messages], default=str)


def from_browser(widget: Any, content: Any, buffers: list[bytes] | None = None) -> None:
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": buffers or []})


def browser_sets(widget: Any, **state: Any) -> None:
    widget._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}},
                        "buffers": []})


def _events_since(stores: Stores, before: int) -> list[Any]:
    """The real audit trail's events appended since ``before`` (the widgets write to it through the one gate)."""
    return read_events(stores.state)[before:]


def _stores(path: Path) -> Stores:
    return Stores.open(str(path))


def _transferred(stores: Stores) -> int:
    return stores.calls.query(
        """
        SELECT c.call_id FROM calls c
        WHERE (SELECT count(*) FROM recordings r WHERE r.call_id = c.call_id AND r.segment_seq IS NOT NULL) >= 2
          AND EXISTS (SELECT 1 FROM segments s WHERE s.call_id = c.call_id AND s.reason = 'transfer')
        ORDER BY c.call_id LIMIT 1
        """
    )[0][0]


def _not_olivias(stores: Stores) -> int:
    return stores.calls.query(
        "SELECT min(r.call_id) FROM recordings r WHERE r.call_id NOT IN "
        "(SELECT call_id FROM call_users WHERE login = 'olivia')"
    )[0][0]


def _olivias_recorded(stores: Stores) -> int:
    return stores.calls.query(
        "SELECT min(r.call_id) FROM recordings r JOIN call_users u ON u.call_id = r.call_id AND u.login = 'olivia' "
        "WHERE r.segment_seq IS NOT NULL"
    )[0][0]


# ------------------------------------------------------------------------------------------ session view


def test_show_puts_the_session_and_peaks_into_state(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    call_id = _transferred(stores)
    view = SessionView(Workbench(stores, "alex"))
    wire = Wire(view)
    shown = view.show(call_id)
    assert shown is not None and view.current is shown
    assert view.session == shown.to_dict() and view.message == ""
    assert set(view.peaks) == {str(r.recording_id) for r in shown.playable} and view.peaks
    for values in view.peaks.values():
        assert len(values) == 800 and max(values) == 1.0 and min(values) >= 0.0
    assert str(demo_playable) not in wire.text() and "source_path" not in wire.text()
    assert (stores.data.cache_dir / "peaks").is_dir()  # computed once, cached by checksum


def test_out_of_scope_and_nonexistent_look_the_same_and_leak_nothing(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    hidden = _not_olivias(stores)
    source_id = stores.calls.query("SELECT source_id FROM calls WHERE call_id = $c", {"c": hidden})[0][0]
    files = [r[0] for r in stores.calls.query("SELECT file_name FROM recordings WHERE call_id = $c", {"c": hidden})]
    view = SessionView(Workbench(stores, "olivia"))
    view.show(_olivias_recorded(stores))
    wire = Wire(view)
    assert view.show(hidden) is None
    state_hidden = (view.session, view.peaks, view.message)
    assert view.show(10**9) is None
    assert state_hidden == (view.session, view.peaks, view.message) == ({}, {}, NO_SUCH_CALL)
    for forged in ("5", 5.5, True, None, -3, 2**80):
        assert view.show(forged) is None and view.message == NO_SUCH_CALL  # type: ignore[arg-type]
    assert source_id not in wire.text() and not any(f in wire.text() for f in files)


def test_no_recording_section_for_a_user_who_may_play_none(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    call_id = _transferred(stores)
    for login in ("audrey", "nina"):
        view = SessionView(Workbench(stores, login))
        wire = Wire(view)
        if view.show(call_id) is None:
            continue
        assert view.session["recordings"] == [] and view.peaks == {}
        rec_ids = [r[0] for r in stores.calls.query("SELECT recording_id FROM recordings WHERE call_id = $c",
                                                     {"c": call_id})]
        # every recording of the call, forged: refused like a nonexistent one
        for rid in rec_ids + [10**9]:
            from_browser(view, {"type": "play", "recording_id": rid, "offset_seconds": 1.0})
            assert view.message == UNAVAILABLE and view.requests == []
        assert "download_name" not in wire.text() and "file_name" not in wire.text()


def test_a_click_becomes_a_play_request_with_the_offset(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    call_id = _transferred(stores)
    got: list[PlayRequest] = []
    view = SessionView(Workbench(stores, "alex"), on_play_request=got.append)
    session = view.show(call_id)
    rec = session.playable[1]
    from_browser(view, {"type": "play", "recording_id": rec.recording_id, "offset_seconds": 12.25})
    assert got == [PlayRequest(rec.recording_id, 12.25, call_id)]
    assert view.selected == {"recording_id": rec.recording_id, "offset_seconds": 12.25}
    # beyond the end: clamped to the recording
    from_browser(view, {"type": "play", "recording_id": rec.recording_id, "offset_seconds": 10_000})
    assert got[-1].offset_seconds == pytest.approx(rec.duration_seconds, abs=1e-3)
    # a click on the call's clock (a segment bar) plays the recording that covers it
    first = session.playable[0]
    from_browser(view, {"type": "play_at", "call_seconds": first.offset_seconds + 3.0})
    assert got[-1].recording_id == first.recording_id and got[-1].offset_seconds == pytest.approx(3.0, abs=1e-3)
    queue = next(g for g in session.segments if g.kind in ("queue", "ivr"))
    from_browser(view, {"type": "play_at", "call_seconds": queue.start_seconds + 0.5})
    assert len(got) == 3 and "Nothing" in view.message


@pytest.mark.parametrize("content", [
    None, "play", 42, [], {"type": "play"},
    {"type": "play", "recording_id": "1", "offset_seconds": 1},
    {"type": "play", "recording_id": True, "offset_seconds": 1},
    {"type": "play", "recording_id": 1.0, "offset_seconds": 1},
    {"type": "play", "recording_id": -1, "offset_seconds": 1},
    {"type": "play", "recording_id": 2**70, "offset_seconds": 1},
    {"type": "play", "recording_id": "RID", "offset_seconds": float("nan")},
    {"type": "play", "recording_id": "RID", "offset_seconds": float("inf")},
    {"type": "play", "recording_id": "RID", "offset_seconds": -5},
    {"type": "play", "recording_id": "RID", "offset_seconds": "10"},
    {"type": "play", "recording_id": "RID", "offset_seconds": None},
    {"type": "play_at", "call_seconds": "x"},
    {"type": "play_at", "call_seconds": -1},
    {"type": "shell", "cmd": "rm -rf /"},
])
def test_forged_messages_are_refused_quietly(demo_playable: Path, content: Any, caplog: Any) -> None:
    stores = _stores(demo_playable)
    got: list[PlayRequest] = []
    view = SessionView(Workbench(stores, "alex"), on_play_request=got.append)
    session = view.show(_transferred(stores))
    if isinstance(content, dict) and content.get("recording_id") == "RID":
        content = {**content, "recording_id": session.playable[0].recording_id}
    from_browser(view, content)
    assert got == []
    assert view.message in ("", UNAVAILABLE, "Nothing you may play was recorded at that moment.")
    assert "Traceback" not in caplog.text


def test_a_recording_of_another_call_is_refused_even_if_playable(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    got: list[PlayRequest] = []
    view = SessionView(Workbench(stores, "alex"), on_play_request=got.append)
    view.show(_transferred(stores))
    other = stores.calls.query("SELECT min(recording_id) FROM recordings WHERE call_id <> $c",
                               {"c": view.current.call_id})[0][0]
    from_browser(view, {"type": "play", "recording_id": other, "offset_seconds": 1})
    assert got == [] and view.message == UNAVAILABLE


def test_a_revoked_grant_is_honoured_at_the_next_click(demo_playable: Path, tmp_path: Path) -> None:
    stores = _stores(demo_playable)
    call_id = _olivias_recorded(stores)
    got: list[PlayRequest] = []
    view = SessionView(Workbench(stores, "olivia"), on_play_request=got.append)
    rec = view.show(call_id).playable[0]
    set_grants(stores.state, "olivia", playback="none")
    try:
        from_browser(view, {"type": "play", "recording_id": rec.recording_id, "offset_seconds": 1})
        assert got == [] and view.message == UNAVAILABLE
    finally:
        set_grants(stores.state, "olivia", playback="own")


def test_a_failing_callback_is_logged_not_shown(demo_playable: Path, caplog: Any) -> None:
    stores = _stores(demo_playable)

    def broken(request: PlayRequest) -> None:
        raise RuntimeError("secret internals /var/lib/x")

    view = SessionView(Workbench(stores, "alex"), on_play_request=broken)
    view.show(_transferred(stores))
    with caplog.at_level(logging.ERROR):
        from_browser(view, {"type": "play", "recording_id": view.current.playable[0].recording_id,
                            "offset_seconds": 0})
    assert view.message == FAILED and "secret" not in view.message
    assert "secret internals" in caplog.text  # server-side log


# ------------------------------------------------------------------------------------------ player (byte fallback)


def test_play_in_the_kernel_sends_bytes_on_request_and_audits_them(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    before = len(read_events(stores.state))
    player = Player(Workbench(stores, "alex"), audio_base="")  # the real audit log
    wire = Wire(player)
    call_id = _transferred(stores)
    rec = sessions.build_session(stores.calls, access.load_actor(stores.state, "alex"), call_id).playable[1]
    assert player.play(rec.recording_id, 7.5) is True
    src = player.source
    assert src["url"] is None and src["download_url"] is None
    assert src["recording_id"] == rec.recording_id and src["call_id"] == call_id and src["start_at"] == 7.5
    assert src["mime"] == "audio/wav" and src["download_name"] == rec.download_name
    assert f"Segment {rec.segment_seq}" in src["segment"] and f"Call {call_id}" in src["call"]
    assert wire.custom() == [] and _events_since(stores, before) == []  # no bytes, no play yet

    from_browser(player, {"type": "need_audio", "play_id": "not-this-one"})
    assert wire.custom() == []
    from_browser(player, {"type": "need_audio", "play_id": src["play_id"]})
    (content, buffers), = wire.custom()
    assert content == {"type": "audio", "play_id": src["play_id"], "mime": "audio/wav"}
    decision = access.can_play(stores.calls, access.load_actor(stores.state, "alex"), rec.recording_id)
    path = sessions.recording_path(stores.data, decision)
    assert buffers == [path.read_bytes()]
    events = _events_since(stores, before)
    assert [(e.kind, e.login, e.recording_id, e.call_id, e.rule, e.client, e.play_id) for e in events] == [
        ("play", "alex", rec.recording_id, call_id, "all", "kernel", src["play_id"])]

    # the same play asking for the whole file again is a new play (the token already sent one whole file)
    from_browser(player, {"type": "need_audio", "play_id": src["play_id"]})
    assert len(wire.custom()) == 2
    assert [e.kind for e in _events_since(stores, before)] == ["play", "play"]

    # what plays at the start position is that second of that segment (tone code)
    data, rate = sf.read(path, dtype="int16")
    heard = tonecode.decode_at(data, rate, src["start_at"])
    assert heard.second == 7 and heard.segment_tag == min(rec.segment_seq, 7)

    # every play start is a new play (new id, audited when its bytes go)
    player.play(rec.recording_id, 0)
    assert player.source["play_id"] != src["play_id"]
    from_browser(player, {"type": "need_audio", "play_id": player.source["play_id"]})
    assert [e.play_id for e in _events_since(stores, before)][-1] == player.source["play_id"]
    assert "Traceback" not in wire.text()


def test_session_click_to_player_to_position(demo_playable: Path) -> None:
    """The whole path: click at x on a recording bar → offset → player source → the audio at that point."""
    stores = _stores(demo_playable)
    wb = Workbench(stores, "alex")
    view = wb.session_view(_transferred(stores))
    assert wb.player is wb.player and wb.session_view() is not view
    rec = view.current.playable[0]
    fraction = 0.6
    from_browser(view, {"type": "play", "recording_id": rec.recording_id,
                        "offset_seconds": fraction * rec.duration_seconds})
    src = wb.player.source
    assert src["recording_id"] == rec.recording_id
    assert src["start_at"] == pytest.approx(fraction * rec.duration_seconds, abs=1e-3)
    decision = access.can_play(stores.calls, wb.actor, rec.recording_id)
    data, rate = sf.read(sessions.recording_path(stores.data, decision), dtype="int16")
    heard = tonecode.decode_at(data, rate, src["start_at"])
    assert heard.second == math.floor(src["start_at"])
    assert heard.call_code == tonecode.call_code(view.current.summary.source_id)
    # opening another session never touches the player
    before = dict(wb.player.source)
    view.show(_olivias_recorded(stores))
    assert wb.player.source == before


def test_player_refusals_are_audited_as_denied(demo_playable: Path, demo_pending: Path) -> None:
    stores = _stores(demo_playable)
    before = len(read_events(stores.state))
    hidden = stores.calls.query("SELECT min(recording_id) FROM recordings r WHERE r.call_id NOT IN "
                                "(SELECT call_id FROM call_users WHERE login = 'olivia')")[0][0]
    missing = stores.calls.query("SELECT max(recording_id) FROM recordings")[0][0] + 1000
    player = Player(Workbench(stores, "olivia"), audio_base="")
    asked = (hidden, missing, str(hidden), None, True, 1.5, -1)
    for rid in asked:
        assert not player.play(rid, 0)  # type: ignore[arg-type]
        assert player.message == UNAVAILABLE and player.source == {}
    events = _events_since(stores, before)
    assert [(e.kind, e.login, e.client, e.call_id) for e in events] == [("denied", "olivia", "kernel", None)] * 7
    assert [e.recording_id for e in events] == [hidden, missing, hidden, None, None, None, None]
    assert all(e.details["via"] == "widget" for e in events)
    for bad_offset in (float("nan"), -1, "3"):
        assert not player.play(hidden, bad_offset)  # type: ignore[arg-type]
    pending = _stores(demo_pending)
    pending_before = len(read_events(pending.state))
    rid = pending.calls.query("SELECT min(recording_id) FROM recordings WHERE state = 'pending_archive'")[0][0]
    assert not Player(Workbench(pending, "alex"), audio_base="").play(rid, 0)
    assert [(e.kind, e.recording_id) for e in _events_since(pending, pending_before)] == [("denied", rid)]


def test_too_large_for_the_widget_channel_says_so(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    before = len(read_events(stores.state))
    rec = sessions.build_session(stores.calls, access.load_actor(stores.state, "alex"),
                                 _transferred(stores)).playable[0]
    player = Player(Workbench(stores, "alex"), audio_base="", max_inline_bytes=1000)
    assert not player.play(rec.recording_id, 0)
    assert player.message == TOO_LARGE and player.source == {} and _events_since(stores, before) == []


def test_revoked_between_play_and_bytes_sends_nothing_and_is_denied(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    call_id = _olivias_recorded(stores)
    rec = sessions.build_session(stores.calls, access.load_actor(stores.state, "olivia"), call_id).playable[0]
    player = Player(Workbench(stores, "olivia"), audio_base="")
    wire = Wire(player)
    assert player.play(rec.recording_id, 0)
    play_id = player.source["play_id"]
    before = len(read_events(stores.state))
    set_grants(stores.state, "olivia", playback="none")
    try:
        from_browser(player, {"type": "need_audio", "play_id": play_id})
        from_browser(player, {"type": "download", "play_id": play_id, "have": False})
    finally:
        set_grants(stores.state, "olivia", playback="own")
    assert wire.custom() == [] and player.source == {} and player.message == UNAVAILABLE
    assert [(e.kind, e.recording_id) for e in _events_since(stores, before)] == [("denied", rec.recording_id)]


def test_audit_failure_refuses_playback_without_a_traceback(demo_playable: Path, caplog: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    stores = _stores(demo_playable)
    rec = sessions.build_session(stores.calls, access.load_actor(stores.state, "alex"),
                                 _transferred(stores)).playable[0]
    player = Player(Workbench(stores, "alex"), audio_base="")
    wire = Wire(player)
    assert player.play(rec.recording_id, 0)

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(audit, "_append", disk_full)
    with caplog.at_level(logging.ERROR):
        from_browser(player, {"type": "need_audio", "play_id": player.source["play_id"]})
    assert wire.custom() == [] and player.message == FAILED  # no audit, no audio
    assert "disk full" in caplog.text and "Traceback" not in wire.text()


def test_download_in_the_kernel_is_audited_and_named(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    before = len(read_events(stores.state))
    rec = sessions.build_session(stores.calls, access.load_actor(stores.state, "alex"),
                                 _transferred(stores)).playable[0]
    player = Player(Workbench(stores, "alex"), audio_base="")
    wire = Wire(player)
    player.play(rec.recording_id, 0)
    play_id = player.source["play_id"]
    from_browser(player, {"type": "need_audio", "play_id": play_id})
    from_browser(player, {"type": "download", "play_id": play_id, "have": True})
    from_browser(player, {"type": "download", "play_id": play_id, "have": "yes"})  # not True: bytes are sent
    (_, audio), (first, b1), (second, b2) = wire.custom()
    assert first == second == {"type": "download", "play_id": play_id, "name": rec.download_name,
                               "mime": "audio/wav"}
    assert b1 == [] and len(b2) == 1 and len(b2[0]) > 1000
    assert [e.kind for e in _events_since(stores, before)] == ["play", "download", "download"]


def test_python_controls_reach_the_browser(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    rec = sessions.build_session(stores.calls, access.load_actor(stores.state, "alex"),
                                 _transferred(stores)).playable[0]
    player = Player(Workbench(stores, "alex"), audio_base="")
    wire = Wire(player)
    player.pause()
    assert wire.custom() == []  # nothing playing: nothing to command
    player.play(rec.recording_id, 0)
    play_id = player.source["play_id"]
    player.pause()
    player.resume()
    player.seek(12.5)
    player.seek(float("nan"))
    player.download()
    assert [c for c, _ in wire.custom()] == [
        {"type": "command", "command": "pause", "play_id": play_id},
        {"type": "command", "command": "resume", "play_id": play_id},
        {"type": "command", "command": "seek", "play_id": play_id, "seconds": 12.5},
        {"type": "command", "command": "download", "play_id": play_id},
    ]
    player.stop()
    assert player.source == {} and player.current_recording_id is None


def test_listener_preferences_are_clamped_whatever_the_browser_sends(demo_playable: Path) -> None:
    player = Player(Workbench(_stores(demo_playable), "alex"), audio_base="")
    for sent, expected in [(0.3, 0.3), (7, 1.0), (-2, 0.0), ("loud", 1.0), (None, 1.0), (float("nan"), 1.0)]:
        browser_sets(player, volume=sent)
        assert player.volume == expected
    for sent, expected in [(1.5, 1.5), (0.8, 0.75), (9, 2.0), (0, 0.5), ("fast", 1.0)]:
        browser_sets(player, rate=sent)
        assert player.rate == expected
    for sent, expected in [(True, True), ("yes", False), (1, False), (False, False)]:
        browser_sets(player, muted=sent)
        assert player.muted is expected
    for sent, expected in [("playing", "playing"), ("<script>", "idle"), (5, "idle")]:
        browser_sets(player, state=sent)
        assert player.state == expected
    # a forged source changes nothing the kernel does: the bytes follow the kernel's own record
    browser_sets(player, source={"play_id": "x", "recording_id": 1, "url": "http://evil/"})
    wire = Wire(player)
    from_browser(player, {"type": "need_audio", "play_id": "x"})
    assert wire.custom() == []


# ------------------------------------------------------------------------------------------ player (dimnb server)


def test_under_the_server_the_source_is_an_authenticated_url(demo_playable: Path, monkeypatch: Any) -> None:
    stores = _stores(demo_playable)
    before = len(read_events(stores.state))
    rec = sessions.build_session(stores.calls, access.load_actor(stores.state, "alex"),
                                 _transferred(stores)).playable[0]
    monkeypatch.setenv("DIMNB_AUDIO_BASE", "/base/dimnb/audio")
    player = Player(Workbench(stores, "alex"), max_inline_bytes=10)  # URL mode: no size limit applies
    wire = Wire(player)
    assert player.url_mode and player.play(rec.recording_id, 3)
    first = player.source
    assert first["url"] == f"/base/dimnb/audio/{rec.recording_id}?play={first['play_id']}"
    assert len(first["play_id"]) == 32 and int(first["play_id"], 16) >= 0
    assert first["download_url"] == f"/base/dimnb/audio/{rec.recording_id}?download=1"
    player.play(rec.recording_id, 3)
    assert player.source["play_id"] != first["play_id"]
    from_browser(player, {"type": "need_audio", "play_id": player.source["play_id"]})
    from_browser(player, {"type": "download", "play_id": player.source["play_id"]})
    assert wire.custom() == [] and _events_since(stores, before) == []  # the server streams and audits
    hidden = Player(Workbench(stores, "olivia"), audio_base="/dimnb/audio/")
    assert not hidden.play(rec.recording_id, 0) and hidden.source == {}
    assert [(e.kind, e.login) for e in _events_since(stores, before)] == [("denied", "olivia")]  # refused: audited
