"""The seam between the widgets and the audit log.

Every play start and every download that the kernel serves itself (the byte
fallback, without the dimnb server) is recorded through ``record``. URL plays
are audited by the server that streams them, not here.

``dimnb.audit.record`` is called when that module exists, with the state store
first and keywords matching the ``audit_events`` columns::

    record(state, kind=..., login=..., recording_id=..., call_id=..., rule=..., client=..., detail=...)

Until then an event is only logged. If the audit module is there but fails,
the error propagates: the caller refuses to play rather than play unaudited.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from typing import Any

from dimnb.access import Actor, PlayDecision
from dimnb.store.stores import Stores

log = logging.getLogger("dimnb.widgets.audit")

PLAY = "play"
DOWNLOAD = "download"

AuditFunction = Callable[..., Any]


def default_recorder() -> AuditFunction | None:
    """``dimnb.audit.record`` if this build has it, else None."""
    if importlib.util.find_spec("dimnb.audit") is None:
        return None
    return getattr(importlib.import_module("dimnb.audit"), "record", None)


def record(stores: Stores, actor: Actor, kind: str, decision: PlayDecision, *, client: str = "kernel",
           detail: str | None = None, recorder: AuditFunction | None = None) -> None:
    """Record one play start or download; raises if the audit log exists but refuses the event."""
    fn = recorder if recorder is not None else default_recorder()
    if fn is None:
        log.info("audit (no dimnb.audit in this build): %s %s recording %s of call %s (%s)",
                 actor.login, kind, decision.recording_id, decision.call_id, decision.reason.rule)
        return
    fn(stores.state, kind=kind, login=actor.login, recording_id=decision.recording_id, call_id=decision.call_id,
       rule=decision.reason.rule, client=client, detail=detail)
