"""THE access rule. Every call list, every session and every byte of audio is decided here.

Semantics (README "Who sees and hears what"):

- A user *took part in* a call when an extension that was theirs at the call's
  start was a party to any of its segments, or when they were a member of a
  conference linked to the call (``call_users``, derived at load time from the
  directory history).
- The **report scope** decides which calls a user may list and open; the
  **playback grant** which of those they may play. A recording is playable
  only when its call is inside *both* (nobody hears a call they cannot see)
  and it is ``available`` (3CX recordings only after the archive job).
- Own Calls: calls the user took part in. Primary Group: those plus calls
  tagged with the user's *current* primary group. Member Groups: those plus
  calls tagged with any group the user *currently* belongs to. All Calls:
  every call. No grant: nothing is playable.
- Grants, memberships and the user record are read from the state store on
  every decision (``load_actor``), never cached in a cookie, widget or kernel.
- What a user may not see behaves exactly like what does not exist.

``scope_sql`` gives the condition every listing query embeds; ``can_play``
and ``why`` answer for one recording or call. All three are built from the
same fragments, and tests/test_access_model.py checks them against a
plain-Python reference model on random worlds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dimnb import model
from dimnb.actions import PLAY_RECORDING, VIEW_AS, VIEW_AUDIT, VIEW_CALLS, Action
from dimnb.errors import UnknownUser
from dimnb.sql import FALSE, TRUE, Fragment
from dimnb.store.callstore import CallStore
from dimnb.store.statestore import StateStore


@dataclass(frozen=True)
class Actor:
    """Who is asking, as the state store says right now."""

    login: str
    name: str
    report_scope: str
    playback: str
    roles: frozenset[str]
    primary_group: str | None
    groups: tuple[str, ...]
    timezone: str | None = None

    @property
    def is_auditor(self) -> bool:
        return "auditor" in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def load_actor(state: StateStore, login: str, *, at: datetime | None = None) -> Actor:
    """Read a user's grants and *current* groups from the state store. Raises UnknownUser if inactive or absent."""
    now = (at or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    con = state.connection()
    row = con.execute(
        "SELECT login, name, report_scope, playback, roles, timezone FROM users WHERE login = ? AND active = 1",
        (login,),
    ).fetchone()
    if row is None:
        raise UnknownUser(f"no active user with login {login!r}")
    memberships = con.execute(
        "SELECT group_name, is_primary FROM memberships m JOIN groups g ON g.name = m.group_name "
        "WHERE m.login = ? AND g.active = 1 AND (m.valid_from IS NULL OR m.valid_from <= ?) "
        "AND (m.valid_to IS NULL OR ? < m.valid_to) ORDER BY group_name",
        (login, now, now),
    ).fetchall()
    primary = next((m["group_name"] for m in memberships if m["is_primary"]), None)
    return Actor(
        login=row["login"],
        name=row["name"],
        report_scope=row["report_scope"],
        playback=row["playback"],
        roles=frozenset(r for r in (row["roles"] or "").split(",") if r),
        primary_group=primary,
        groups=tuple(sorted({m["group_name"] for m in memberships})),
        timezone=row["timezone"],
    )


def _scope_of(actor: Actor, action: Action) -> str:
    if action is VIEW_CALLS:
        return actor.report_scope
    if action is PLAY_RECORDING:
        return actor.playback
    raise ValueError(f"{action.name} is not decided by a call scope")


def _actor_params(actor: Actor) -> dict[str, Any]:
    return {"actor_login": actor.login, "actor_primary": actor.primary_group, "actor_groups": list(actor.groups)}


def _scope_fragment(actor: Actor, scope: str, column: str) -> Fragment:
    if scope == model.NONE:
        return FALSE
    if scope == model.ALL:
        return TRUE
    params = _actor_params(actor)
    own = f"{column} IN (SELECT call_id FROM call_users WHERE login = $actor_login)"
    if scope == model.OWN:
        return Fragment(own, params)
    if scope == model.PRIMARY_GROUP:
        return Fragment(
            f"{own} OR {column} IN (SELECT call_id FROM call_tags WHERE group_name = $actor_primary)", params
        )
    if scope == model.MEMBER_GROUPS:
        return Fragment(
            f"{own} OR {column} IN (SELECT call_id FROM call_tags WHERE list_contains($actor_groups, group_name))",
            params,
        )
    raise ValueError(f"unknown scope {scope!r}")


def scope_sql(actor: Actor, action: Action = VIEW_CALLS, column: str = "c.call_id") -> Fragment:
    """The condition on ``column`` (a call id) that every query for ``action`` must embed.

    ``VIEW_CALLS``: the report scope. ``PLAY_RECORDING``: the playback grant
    *and* the report scope (the recording's state is checked separately).
    """
    view = _scope_fragment(actor, actor.report_scope, column)
    if action is VIEW_CALLS:
        return view
    if action is PLAY_RECORDING:
        play = _scope_fragment(actor, actor.playback, column)
        if play is FALSE or view is FALSE:
            return FALSE
        return view & play
    raise ValueError(f"{action.name} is not decided by a call scope")


def allowed(actor: Actor, action: Action) -> bool:
    """Whether the actor may use an action at all (roles; a call-scoped action needs a non-empty scope)."""
    if action is VIEW_AUDIT:
        return actor.is_auditor
    if action is VIEW_AS:
        return actor.is_admin
    if action is PLAY_RECORDING:
        return actor.playback != model.NONE
    return True


@dataclass(frozen=True)
class Reason:
    """Why an action on a call is allowed: the rule, and a sentence for people."""

    rule: str  # all / own / conference / primary_group / member_group
    detail: str | None = None

    def __str__(self) -> str:
        if self.rule == "all":
            return "All Calls: every call"
        if self.rule == "own":
            return f"Own Calls: you took part in this call{f' ({self.detail})' if self.detail else ''}"
        if self.rule == "conference":
            return f"Own Calls: you took part in its conference{f' ({self.detail})' if self.detail else ''}"
        if self.rule == "primary_group":
            return f"Primary Group: the call is tagged with your primary group {self.detail}"
        if self.rule == "member_group":
            return f"Member Groups: the call is tagged with your group {self.detail}"
        return self.rule

    def as_dict(self) -> dict[str, str | None]:
        return {"rule": self.rule, "detail": self.detail, "text": str(self)}


def _rule(calls: CallStore, actor: Actor, scope: str, call_id: int) -> Reason | None:
    """The most specific rule of ``scope`` that admits the call, or None."""
    if scope == model.NONE:
        return None
    cur = calls.cursor()
    exists = cur.execute("SELECT count(*) FROM calls WHERE call_id = $id", {"id": call_id}).fetchone()[0]
    if not exists:
        return None
    part = cur.execute(
        "SELECT via FROM call_users WHERE call_id = $id AND login = $login ORDER BY via DESC LIMIT 1",
        {"id": call_id, "login": actor.login},
    ).fetchone()
    if part is not None:
        if part[0] == "segment":
            ext = cur.execute(
                """
                SELECT min(x) FROM (
                    SELECT s.from_ext AS x FROM segments s WHERE s.call_id = $id
                    UNION ALL SELECT s.to_ext FROM segments s WHERE s.call_id = $id
                ) p JOIN calls c ON c.call_id = $id
                JOIN dir_extensions d ON d.extension = p.x AND d.login = $login
                    AND (d.valid_from IS NULL OR d.valid_from <= c.start_time)
                    AND (d.valid_to IS NULL OR c.start_time < d.valid_to)
                """,
                {"id": call_id, "login": actor.login},
            ).fetchone()[0]
            return Reason("own", f"extension {ext}" if ext else None)
        room = cur.execute(
            "SELECT min(cf.room) FROM conference_members m JOIN conferences cf USING (conference_id) "
            "WHERE m.call_id = $id AND m.login = $login",
            {"id": call_id, "login": actor.login},
        ).fetchone()[0]
        return Reason("conference", f"room {room}" if room else None)
    if scope == model.OWN:
        return None
    tags = [r[0] for r in cur.execute(
        "SELECT group_name FROM call_tags WHERE call_id = $id ORDER BY group_name", {"id": call_id}
    ).fetchall()]
    if scope == model.ALL:
        return Reason("all")
    if scope == model.PRIMARY_GROUP:
        return Reason("primary_group", actor.primary_group) if actor.primary_group in tags else None
    if scope == model.MEMBER_GROUPS:
        if actor.primary_group in tags:
            return Reason("member_group", actor.primary_group)
        shared = [t for t in tags if t in actor.groups]
        return Reason("member_group", shared[0]) if shared else None
    raise ValueError(f"unknown scope {scope!r}")


def why(calls: CallStore, actor: Actor, call_id: int, action: Action = PLAY_RECORDING) -> Reason | None:
    """The rule that allows ``action`` on the call, or None (not permitted *or* no such call: never told apart)."""
    view = _rule(calls, actor, actor.report_scope, call_id)
    if action is VIEW_CALLS or view is None:
        return view
    if action is PLAY_RECORDING:
        return _rule(calls, actor, actor.playback, call_id)
    raise ValueError(f"{action.name} is not decided by a call scope")


@dataclass(frozen=True)
class PlayDecision:
    recording_id: int
    call_id: int
    path_kind: str  # archive / source
    path: str
    file_name: str
    format: str | None
    size_bytes: int | None
    checksum: str | None
    reason: Reason


def can_play(calls: CallStore, actor: Actor, recording_id: int) -> PlayDecision | None:
    """The playable recording with the rule that allows it, or None (not permitted, pending, missing or absent)."""
    if not isinstance(recording_id, int) or isinstance(recording_id, bool):
        return None
    scope = scope_sql(actor, PLAY_RECORDING, "r.call_id")
    row = calls.cursor().execute(
        f"""
        SELECT r.recording_id, r.call_id, r.archive_path, r.source_path, r.file_name, r.format, r.size_bytes,
               r.checksum, r.system
        FROM recordings r
        WHERE r.recording_id = $recording_id AND r.state = 'available' AND ({scope.sql})
        """,
        {**scope.params, "recording_id": recording_id},
    ).fetchone()
    if row is None:
        return None
    reason = why(calls, actor, int(row[1]), PLAY_RECORDING)
    if reason is None:  # the two checks read one generation; a None here means a directory race
        return None
    archived = row[2] is not None
    return PlayDecision(
        recording_id=int(row[0]), call_id=int(row[1]), path_kind="archive" if archived else "source",
        path=row[2] if archived else row[3], file_name=row[4], format=row[5],
        size_bytes=row[6], checksum=row[7], reason=reason,
    )
