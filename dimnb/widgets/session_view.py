"""The Call Session view: the whole call on one timeline, recordings clickable on the same clock.

``SessionView(workbench)``; ``show(call_id)`` loads a call (or the same
plain message for a call that does not exist and one outside the user's
scope). A click on a recording at a point sends ``{type: "play",
recording_id, offset_seconds}`` (``offset_seconds``: position in the
recording); a click elsewhere on the timeline sends ``{type: "play_at",
call_seconds}`` and plays whichever playable recording covers that moment.
Either way the kernel re-checks ``access.can_play`` for its own user and then
calls the play-request callbacks (``on_play_request``), which the app shell
points at the docked ``Player``.

Widget state holds only what ``sessions.build_session`` returned for the
kernel's user (no file paths), and peaks for the recordings they may play.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from dimnb import access, sessions
from dimnb.widgets._guard import FAILED, UNAVAILABLE, as_id, as_seconds, guarded
from dimnb.widgets.player import PlayRequest

if TYPE_CHECKING:
    from dimnb.workbench import Workbench

log = logging.getLogger("dimnb.widgets.session_view")

NO_SUCH_CALL = "No such call."
PEAK_COLUMNS = 800
_STATIC = Path(__file__).parent / "static"

PlayCallback = Callable[[PlayRequest], Any]


class SessionView(anywidget.AnyWidget):
    """A call's timeline. Connect it to a player with ``on_play_request(player.handle_play_request)``."""

    _esm = _STATIC / "session_view.js"
    _css = _STATIC / "session_view.css"

    # Output only: the kernel never reads these back.
    session = traitlets.Dict({}).tag(sync=True)
    peaks = traitlets.Dict({}).tag(sync=True)  # str(recording_id) -> [0..1] * PEAK_COLUMNS
    message = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.Dict({}).tag(sync=True)  # the last accepted play request

    def __init__(self, workbench: Workbench, *, on_play_request: PlayCallback | None = None,
                 peak_columns: int = PEAK_COLUMNS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wb = workbench
        self._session: sessions.Session | None = None
        self._callbacks: list[PlayCallback] = []
        self._peak_columns = peak_columns
        self.requests: list[PlayRequest] = []  # every accepted play request, newest last (for the app and tests)
        if on_play_request is not None:
            self._callbacks.append(on_play_request)
        self.on_msg(self._on_browser_message)

    # ------------------------------------------------------------------ public API

    @property
    def current(self) -> sessions.Session | None:
        """The session on show (as built for the kernel's user), or None."""
        return self._session

    def on_play_request(self, callback: PlayCallback) -> None:
        """Call ``callback(PlayRequest)`` for every accepted click on a recording."""
        self._callbacks.append(callback)

    @guarded("opening the session")
    def show(self, call_id: int) -> sessions.Session | None:
        """Show a call. Out of scope and nonexistent look the same: an empty view and "No such call."."""
        cid = as_id(call_id)
        try:
            actor = self._wb.actor
            session = self._wb.find_session(cid) if cid is not None else None
            if session is None:
                self.clear()
                self.message = NO_SUCH_CALL
                return None
            data, peak_columns = session.to_dict(), self._peaks(actor, session)
        except Exception:
            self.clear()  # never leave the previous call on show next to an error
            raise
        self._session = session
        self.selected, self.message = {}, ""
        self.peaks = {}
        self.session = data
        self.peaks = peak_columns
        return session

    def clear(self) -> None:
        self._session = None
        self.session, self.peaks, self.selected, self.message = {}, {}, {}, ""

    def request_play(self, recording_id: int, offset_seconds: float = 0.0) -> PlayRequest | None:
        """What a click does, callable from Python: validate, re-check, hand to the callbacks."""
        return self._play(recording_id, offset_seconds)

    # ------------------------------------------------------------------ the browser's messages (untrusted)

    @guarded("answering the session view")
    def _on_browser_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "play":
            self._play(content.get("recording_id"), content.get("offset_seconds"))
        elif kind == "play_at":
            self._play_at(content.get("call_seconds"))

    def _play_at(self, call_seconds: Any) -> PlayRequest | None:
        session, at = self._session, as_seconds(call_seconds)
        if session is None or at is None:
            return None
        found = session.locate(at)
        if found is None:
            self.message = "Nothing you may play was recorded at that moment."
            return None
        recording, position = found
        return self._play(recording.recording_id, position)

    def _play(self, recording_id: Any, offset_seconds: Any) -> PlayRequest | None:
        session = self._session
        rid, offset = as_id(recording_id), as_seconds(offset_seconds)
        recording = session.recording(rid) if session is not None and rid is not None else None
        if recording is None or offset is None or not recording.playable:
            self.message = UNAVAILABLE
            return None
        decision = access.can_play(self._wb.stores.calls, self._wb.actor, recording.recording_id)
        if decision is None or decision.call_id != session.call_id:
            self.message = UNAVAILABLE
            return None
        offset = min(offset, recording.duration_seconds)
        request = PlayRequest(recording.recording_id, round(offset, 3), session.call_id)
        self.requests.append(request)
        self.message = ""
        self.selected = {"recording_id": request.recording_id, "offset_seconds": request.offset_seconds}
        for callback in list(self._callbacks):
            try:
                callback(request)
            except Exception:
                log.exception("a play-request callback failed")
                self.message = FAILED
        return request

    # ------------------------------------------------------------------ helpers

    def _peaks(self, actor: access.Actor, session: sessions.Session) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        if not session.playable:
            return out
        from dimnb import peaks  # numpy and soundfile load with the first waveform, not with every dashboard

        directory = peaks.cache_dir(self._wb.stores.data)
        for recording in session.playable:
            decision = access.can_play(self._wb.stores.calls, actor, recording.recording_id)
            if decision is None:
                continue
            try:
                path = sessions.recording_path(self._wb.stores.data, decision)
                found = peaks.peaks_for(path, decision.checksum, directory)
            except Exception:  # an unreadable file still gets its (flat) bar
                log.warning("no waveform for recording %s", recording.recording_id, exc_info=True)
                continue
            out[str(recording.recording_id)] = found.scaled(self._peak_columns)
        return out
