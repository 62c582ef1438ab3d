"""The seam between the widgets and the audit log.

Every play start and every download that the kernel serves itself (the byte
fallback, without the dimnb server) is recorded here through
``dimnb.audit.record``. URL plays are audited by the server that streams
them. If the audit log refuses the event the error propagates: the caller
refuses to play rather than play unaudited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dimnb import audit
from dimnb.access import Actor, PlayDecision
from dimnb.store.stores import Stores

PLAY = "play"
DOWNLOAD = "download"

AuditFunction = Callable[..., Any]


def record(stores: Stores, actor: Actor, kind: str, decision: PlayDecision, *, play_id: str | None = None,
           recorder: AuditFunction | None = None) -> None:
    """Record one play start or download; raises if the audit log refuses the event."""
    fn = recorder if recorder is not None else audit.record
    fn(stores.state, kind=kind, login=actor.login, recording_id=decision.recording_id, call_id=decision.call_id,
       rule=decision.reason.rule, client=audit.WIDGET_CLIENT, user_agent=audit.WIDGET_USER_AGENT,
       play_id=play_id, detail={"via": "widget", "why": str(decision.reason)})
