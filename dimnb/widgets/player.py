"""The docked audio player: one long-lived widget that keeps playing while everything else changes.

Python decides *what* plays; the browser's ``<audio class="dimnb-audio">`` does
the playing, seeking, volume, mute and speed.

Audio source:

- Under the dimnb server (``$DIMNB_AUDIO_BASE`` set, e.g. ``/dimnb/audio/``)
  the source is ``<base><recording_id>?play=<uuid>``, a new uuid per play
  start; the server authenticates, checks ``access.can_play``, audits and
  streams with Range support. Downloads use ``?download=1``.
- Otherwise (a plain kernel, nbval) the browser asks for the bytes and the
  kernel sends them through the widget channel (a binary buffer, never a
  trait). Files over ``max_inline_bytes`` get a plain message instead of a
  frozen page.

Either way every decision goes through the one audio gate,
``audit.authorize_playback`` (as ``widget_playback``): a refused play is
recorded as *denied*; bytes the kernel sends are recorded as a play under
the play's token (again once the token has sent a whole file, as the HTTP
server does) or as a download.

Everything the browser sends is untrusted: every message is validated and
every action re-checks ``can_play`` for the kernel's user, with the user's
grants read afresh. Synced traits are output only, except the listener's own
preferences (volume, muted, rate), which are clamped to their ranges.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from dimnb import access, audit, sessions
from dimnb.actions import PLAY_RECORDING
from dimnb.errors import NotFound
from dimnb.widgets._guard import UNAVAILABLE, as_seconds, guarded

if TYPE_CHECKING:
    from dimnb.workbench import Workbench

log = logging.getLogger("dimnb.widgets.player")

AUDIO_BASE_ENV = "DIMNB_AUDIO_BASE"
MAX_INLINE_BYTES = 50 * 1024 * 1024
TOO_LARGE = "This recording is too large to play without the dimnb server."
STATES = ("idle", "loading", "playing", "paused", "ended", "error")
RATES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
_STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class PlayRequest:
    """What a session view asks the player to do: play this recording from this position."""

    recording_id: int
    offset_seconds: float
    call_id: int | None = None


class Player(anywidget.AnyWidget):
    """The player. ``play(recording_id, offset_seconds)`` starts a recording at a position."""

    _esm = _STATIC / "player.js"
    _css = _STATIC / "player.css"

    # Output (kernel → browser). The browser can overwrite these; the kernel never reads them back.
    source = traitlets.Dict({}).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    # The listener's preferences (two-way; clamped).
    # (``Any`` + a validator: a forged value of the wrong type is coerced, never an exception.)
    volume = traitlets.Any(1.0).tag(sync=True)
    muted = traitlets.Any(False).tag(sync=True)
    rate = traitlets.Any(1.0).tag(sync=True)
    # Reported by the browser, for display elsewhere only (never used for a decision).
    state = traitlets.Any("idle").tag(sync=True)
    # Output: False for a user without a playback grant, who then gets no player at all (the same for every
    # call, so it tells nothing). Set once, when the player is made; every play re-checks the grant anyway.
    enabled = traitlets.Bool(True).tag(sync=True)

    def __init__(self, workbench: Workbench, *, audio_base: str | None = None,
                 max_inline_bytes: int = MAX_INLINE_BYTES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wb = workbench
        base = audio_base if audio_base is not None else os.environ.get(AUDIO_BASE_ENV, "")
        self._audio_base = (base if base.endswith("/") else base + "/") if base else ""
        self._max_inline = max_inline_bytes
        self._current: dict[str, Any] | None = None  # kernel-side truth about what plays
        self.on_msg(self._on_browser_message)
        self.enabled = access.allowed(self._wb.actor, PLAY_RECORDING)

    # ------------------------------------------------------------------ public API

    @property
    def login(self) -> str:
        return self._wb.login

    @property
    def url_mode(self) -> bool:
        """True when the dimnb server streams the audio (``$DIMNB_AUDIO_BASE``)."""
        return bool(self._audio_base)

    @property
    def current_recording_id(self) -> int | None:
        return self._current["recording_id"] if self._current else None

    @guarded("starting playback")
    def play(self, recording_id: int, offset_seconds: float = 0.0) -> bool:
        """Start ``recording_id`` at ``offset_seconds``. False with a message if refused (audited as denied)."""
        play_id = uuid.uuid4().hex
        try:
            decision = audit.widget_playback(self._wb.stores, self._wb.login, recording_id, play_id=play_id,
                                             audit_grant=False)  # the play is recorded when bytes leave
        except NotFound:
            self.message = UNAVAILABLE
            return False
        rid, offset = decision.recording_id, as_seconds(offset_seconds)
        actor = self._wb.actor
        session = sessions.build_session(self._wb.stores.calls, actor, decision.call_id, state=self._wb.stores.state)
        recording = session.recording(rid) if session else None
        if offset is None or session is None or recording is None or not recording.playable:
            self.message = UNAVAILABLE
            return False
        offset = min(offset, max(0.0, recording.duration_seconds - 0.05))
        size = decision.size_bytes
        if not self.url_mode:
            path = sessions.recording_path(self._wb.stores.data, decision)
            try:
                size = path.stat().st_size
            except OSError:
                log.warning("recording %s: file %s is not readable", rid, path)
                self.message = UNAVAILABLE
                return False
            if size > self._max_inline:
                self.message = TOO_LARGE
                return False
        segment = session.segment(recording.segment_seq)
        self._current = {"recording_id": rid, "call_id": decision.call_id, "play_id": play_id,
                         "download_name": recording.download_name, "format": decision.format}
        self.message = ""
        self.source = {
            "play_id": play_id,
            "recording_id": rid,
            "call_id": decision.call_id,
            "url": f"{self._audio_base}{rid}?play={play_id}" if self.url_mode else None,
            "download_url": f"{self._audio_base}{rid}?download=1" if self.url_mode else None,
            "mime": mime_type(decision.format),
            "start_at": round(offset, 3),
            "duration_seconds": round(recording.duration_seconds, 3),
            "size_bytes": size,
            "title": session.recording_title(recording),
            "call": f"Call {session.call_id} · {session.summary.start_local}",
            "segment": recording.label if segment is None else f"Segment {segment.seq} ({segment.kind}): "
                                                                 f"{segment.label}",
            "download_name": recording.download_name,
        }
        return True

    @guarded("starting playback")
    def play_call(self, call_id: int) -> bool:
        """Play a call's first playable recording from its start (what the Call List's Play marker asks).

        The same gate as any play: a call outside the user's scope, or without a recording they may play now,
        gets the same plain message.
        """
        session = sessions.build_session(self._wb.stores.calls, self._wb.actor, call_id, state=self._wb.stores.state)
        first = min(session.playable, key=lambda r: (r.offset_seconds, r.recording_id), default=None) \
            if session is not None else None
        if first is None:
            self.message = UNAVAILABLE
            return False
        return self.play(first.recording_id, 0.0)

    def handle_play_request(self, request: PlayRequest) -> bool | None:
        """The callback a ``SessionView`` calls (the app shell wires them together)."""
        return self.play(request.recording_id, request.offset_seconds)

    def pause(self) -> None:
        self._command("pause")

    def resume(self) -> None:
        self._command("resume")

    def seek(self, seconds: float) -> None:
        value = as_seconds(seconds)
        if value is not None:
            self._command("seek", seconds=value)

    def stop(self) -> None:
        """Stop and forget the current recording."""
        self._current = None
        self.source = {}
        self.message = ""

    def download(self) -> None:
        """Ask the browser to download the current recording (as the download button does)."""
        self._command("download")

    # ------------------------------------------------------------------ validation of the listener's preferences

    @traitlets.validate("volume")
    def _valid_volume(self, proposal: dict[str, Any]) -> float:
        return _clamp(proposal["value"], 0.0, 1.0, 1.0)

    @traitlets.validate("rate")
    def _valid_rate(self, proposal: dict[str, Any]) -> float:
        value = _clamp(proposal["value"], RATES[0], RATES[-1], 1.0)
        return min(RATES, key=lambda r: abs(r - value))

    @traitlets.validate("muted")
    def _valid_muted(self, proposal: dict[str, Any]) -> bool:
        return proposal["value"] is True

    @traitlets.validate("state")
    def _valid_state(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        return value if isinstance(value, str) and value in STATES else "idle"

    # ------------------------------------------------------------------ the browser's messages (untrusted)

    @guarded("answering the player")
    def _on_browser_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "need_audio":
            self._send_audio(content.get("play_id"))
        elif kind == "download":
            self._send_download(content.get("play_id"), bool(content.get("have") is True))
        elif kind == "error":
            log.info("player error in the browser: %.200s", str(content.get("text")))
            self.message = "The browser could not play this recording."

    def _matching(self, play_id: Any) -> dict[str, Any] | None:
        current = self._current
        if current is None or not isinstance(play_id, str) or play_id != current["play_id"]:
            return None
        return current

    def _send_audio(self, play_id: Any) -> None:
        """Bytes for the current play, through the gate under its token (a repeat after a whole file counts)."""
        current = self._matching(play_id)
        if current is None or self.url_mode:
            return
        decision = self._gate(current)
        if decision is None:
            return
        data = self._read(decision)
        if data is not None:
            self._to_browser({"type": "audio", "play_id": current["play_id"], "mime": mime_type(decision.format)},
                             [data])
            audit.count_served(self._wb.stores, self._wb.login, decision, current["play_id"], len(data))

    def _send_download(self, play_id: Any, have: bool) -> None:
        current = self._matching(play_id)
        if current is None or self.url_mode:
            return
        decision = self._gate(current, download=True)
        if decision is None:
            return
        data = None if have else self._read(decision)
        if not have and data is None:
            return
        self._to_browser({"type": "download", "play_id": current["play_id"], "name": current["download_name"],
                          "mime": mime_type(decision.format)}, [data] if data is not None else None)

    def _gate(self, current: dict[str, Any], *, download: bool = False) -> access.PlayDecision | None:
        """The audio gate for bytes the kernel sends; a refusal (audited) stops the player."""
        try:
            return audit.widget_playback(self._wb.stores, self._wb.login, current["recording_id"],
                                         play_id=current["play_id"], download=download)
        except NotFound:
            self.stop()
            self.message = UNAVAILABLE
            return None

    # ------------------------------------------------------------------ helpers

    def _read(self, decision: access.PlayDecision) -> bytes | None:
        path = sessions.recording_path(self._wb.stores.data, decision)
        try:
            if path.stat().st_size > self._max_inline:
                self.message = TOO_LARGE
                return None
            return path.read_bytes()
        except OSError:
            log.warning("recording %s: file %s is not readable", decision.recording_id, path)
            self.message = UNAVAILABLE
            return None

    def _command(self, command: str, **args: Any) -> None:
        if self._current is not None:
            self._to_browser({"type": "command", "command": command, "play_id": self._current["play_id"], **args})

    def _to_browser(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        self.send(content, buffers)


def mime_type(fmt: str | None) -> str:
    from dimnb import audiofiles  # soundfile (and numpy) load with the first recording, not with every dashboard

    return audiofiles.mime_type(fmt)


def _clamp(value: Any, low: float, high: float, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    if number != number:  # NaN
        return default
    return min(high, max(low, number))
