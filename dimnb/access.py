"""THE access rule. Every call list, every session and every byte of audio is decided here.

Semantics (docs/access.md, "Who sees and hears what"):

- A user *took part in* a call when an extension that was theirs at the call's
  start was a party to any of its segments, or a member of a conference linked
  to the call (``call_users``, derived at load time from the directory
  history by dimnb.ingest.tagging, and copied onto the call row as
  ``calls.participant_logins``).
- Calls are tagged with the primary group, at the call's start, of everyone
  who took part (``call_tags`` / ``calls.group_tags``).
- A scope admits: Own Calls, the calls the user took part in; Primary Group,
  those plus calls tagged with the user's *current* primary group; Member
  Groups, those plus calls tagged with any group the user *currently* belongs
  to; All Calls, every call; no grant, nothing.
- The **report scope** decides which calls a user may list and open; the
  **playback grant** which recordings they may play. A recording is playable
  only when its call is inside *both* (nobody hears a call they cannot see)
  and it is ``available`` (3CX recordings only after the archive job). Taking
  part in any part of a call or conference opens all of its recordings.
- A recording still waiting for the archive job is never playable; only a
  user who could play it once archived may be told it is coming
  (``could_play_once_archived``).
- Grants, memberships and the user record are read from the state store on
  every decision (``load_actor``), never cached in a cookie, widget or kernel.
- What a user may not see behaves exactly like what does not exist.

``scope_expr`` / ``recording_expr`` are the one definition of which calls and
recordings an action is allowed on, as an expression tree (dimnb.access_expr)
rendered to DuckDB SQL here and to Spark by dimnb.spark, so the two cannot
drift. ``scope_sql`` gives the condition every listing query embeds;
``recording_condition``, ``can_play``, ``could_play_once_archived`` and ``why``
evaluate that same condition on one recording or call (``why`` then explains
it). tests/access_reference.py is a plain-Python model of these rules, and
tests/test_access_model.py checks all of them against it on random worlds.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

from dimnb import model
from dimnb.access_expr import ALWAYS, CALLS, NEVER, RECORDINGS, Expr, ListHas, OneOf, Or, to_duckdb
from dimnb.actions import PLAY_RECORDING, VIEW_AS, VIEW_AUDIT, VIEW_CALLS, Action
from dimnb.errors import UnknownUser
from dimnb.sql import Fragment
from dimnb.store import directory_repo
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
    row = directory_repo.active_grants(state, login)
    if row is None:
        raise UnknownUser(f"no active user with login {login!r}")
    memberships = directory_repo.current_memberships(state, login, now)
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


_WIDTH = (model.NONE, model.OWN, model.PRIMARY_GROUP, model.MEMBER_GROUPS, model.ALL)
_ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _alias(name: str) -> str:
    """A table alias. ``c.call_id`` (the old call-id-column form) means the calls table aliased ``c``."""
    if name.endswith(".call_id"):
        name = name.removesuffix(".call_id")
    if not _ALIAS_RE.match(name):
        raise ValueError(f"not a plain table alias: {name!r}")
    return name


def _scope_tree(actor: Actor, scope: str) -> Expr:
    """The calls that one scope admits, for this actor, right now.

    Tests the per-call arrays ``participant_logins`` and ``group_tags``
    (copies of call_users and call_tags): a plain filter on the calls scan.
    One test per group (in DuckDB one ``list_contains`` each, twice as fast as
    ``list_has_any`` with a list parameter).
    """
    if scope == model.NONE:
        return NEVER
    if scope == model.ALL:
        return ALWAYS
    if scope not in _WIDTH:
        raise ValueError(f"unknown scope {scope!r}")
    terms: list[Expr] = [ListHas(CALLS, "participant_logins", "actor_login", actor.login)]
    if scope == model.PRIMARY_GROUP and actor.primary_group is not None:
        terms.append(ListHas(CALLS, "group_tags", "actor_primary", actor.primary_group))
    if scope == model.MEMBER_GROUPS:
        terms += [ListHas(CALLS, "group_tags", f"actor_group_{i}", group) for i, group in enumerate(actor.groups)]
    return Or(tuple(terms))


def _nested(actor: Actor) -> bool:
    """Own ⊆ Primary Group ⊆ Member Groups ⊆ All Calls, because the primary group is one of the user's groups."""
    return actor.primary_group is None or actor.primary_group in actor.groups


def scope_expr(actor: Actor, action: Action = VIEW_CALLS) -> Expr:
    """THE definition of the calls ``action`` is allowed on, as an expression tree (dimnb.access_expr).

    ``VIEW_CALLS``: the report scope. ``PLAY_RECORDING``: the report scope
    *and* the playback grant (the recording's state is added by
    ``recording_expr``). The scopes are nested, so the intersection is the
    narrower of the two. ``scope_sql`` renders this tree for DuckDB,
    ``dimnb.spark`` for Spark.
    """
    if action is VIEW_CALLS:
        return _scope_tree(actor, actor.report_scope)
    if action is not PLAY_RECORDING:
        raise ValueError(f"{action.name} is not decided by a call scope")
    view, play = actor.report_scope, actor.playback
    if play == model.NONE:
        return NEVER
    if view == play or _nested(actor):
        return _scope_tree(actor, min(view, play, key=_WIDTH.index))
    return _scope_tree(actor, view) & _scope_tree(actor, play)


def recording_expr(actor: Actor, *, pending: bool = False, only_pending: bool = False) -> Expr:
    """The recordings the actor may play (their call's scope and their state), as an expression tree.

    With ``pending``, also those still waiting for the archive job that the
    actor could play once archived; with ``only_pending``, only those. A
    missing recording is never included.
    """
    if only_pending:
        states: tuple[str, ...] = ("pending_archive",)
    else:
        states = ("available", "pending_archive") if pending else ("available",)
    return OneOf(RECORDINGS, "state", states) & scope_expr(actor, PLAY_RECORDING)


def scope_sql(actor: Actor, action: Action = VIEW_CALLS, calls: str = "c") -> Fragment:
    """The condition on the calls table (alias ``calls``) that every query for ``action`` must embed.

    ``scope_expr`` rendered for DuckDB. The condition reads the call row
    (``calls.participant_logins``, ``calls.group_tags``), so a query on other
    tables joins ``calls``.
    """
    return to_duckdb(scope_expr(actor, action), {CALLS: _alias(calls)})


def recording_condition(actor: Actor, *, recordings: str = "r", calls: str = "c", pending: bool = False) -> Fragment:
    """The recordings (alias ``recordings``, joined to their call ``calls``) the actor may play.

    With ``pending``, also those still waiting for the archive job that the
    actor could play once archived (for "available after the next archive
    run"). A missing recording is never included.
    """
    return to_duckdb(recording_expr(actor, pending=pending),
                     {RECORDINGS: _alias(recordings), CALLS: _alias(calls)})


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

    rule: str  # own / conference / primary_group / member_group / all
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


def _as_id(value: object) -> int | None:
    """An id from untrusted input (a widget, a URL): a whole number in BIGINT range, else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    number = int(value)
    return number if -(2**63) <= number < 2**63 else None


@dataclass(frozen=True)
class _Facts:
    in_view: bool
    in_play: bool
    via: str | None  # 'segment' / 'conference' / None: how the actor took part (call_users)
    tags: tuple[str, ...]


def _facts(cur: duckdb.DuckDBPyConnection, actor: Actor, call_id: int) -> _Facts | None:
    """The scope conditions evaluated on the call's row, and how the actor took part in it."""
    view, play = scope_sql(actor, VIEW_CALLS), scope_sql(actor, PLAY_RECORDING)
    row = cur.execute(
        f"""
        SELECT ({view.sql}) AS in_view, ({play.sql}) AS in_play,
               list_contains(c.participant_logins, $why_login) AS took_part, c.group_tags
        FROM calls c WHERE c.call_id = $why_call_id
        """,
        {**view.params, **play.params, "why_login": actor.login, "why_call_id": call_id},
    ).fetchone()
    if row is None:
        return None
    via = None
    if row[2]:  # how: asked only of a participant (call_users is read by call, in call order)
        via = cur.execute("SELECT max(via) FROM call_users WHERE call_id = $id AND login = $login",
                          {"id": call_id, "login": actor.login}).fetchone()[0]
    return _Facts(bool(row[0]), bool(row[1]), via, tuple(row[3] or ()))


def _took_part(cur: duckdb.DuckDBPyConnection, actor: Actor, call_id: int, via: str) -> Reason:
    """Own Calls, with the extension (or conference room) that made the actor a participant."""
    params = {"id": call_id, "login": actor.login}
    if via == "segment":
        ext = cur.execute(
            """
            SELECT min(p.x) FROM (
                SELECT s.from_ext AS x FROM segments s WHERE s.call_id = $id AND s.kind IS DISTINCT FROM 'conference'
                UNION ALL
                SELECT s.to_ext FROM segments s WHERE s.call_id = $id AND s.kind IS DISTINCT FROM 'conference'
            ) p
            JOIN calls c ON c.call_id = $id
            JOIN dir_extensions d ON d.extension = p.x AND d.login = $login
                AND (d.valid_from IS NULL OR d.valid_from <= c.start_time)
                AND (d.valid_to IS NULL OR c.start_time < d.valid_to)
            """,
            params,
        ).fetchone()[0]
        return Reason("own", f"extension {ext}" if ext else None)
    room = cur.execute(
        "SELECT min(cf.room) FROM conference_members m JOIN conferences cf ON cf.conference_id = m.conference_id "
        "WHERE m.call_id = $id AND m.login = $login",
        params,
    ).fetchone()[0]
    return Reason("conference", f"room {room}" if room else None)


def _explain(actor: Actor, scope: str, facts: _Facts) -> Reason | None:
    """The scope's group rule, or All Calls, for a call the actor did not take part in."""
    if scope == model.ALL:
        return Reason("all")
    if scope == model.PRIMARY_GROUP and actor.primary_group in facts.tags:
        return Reason("primary_group", actor.primary_group)
    if scope == model.MEMBER_GROUPS:
        if actor.primary_group in facts.tags:
            return Reason("member_group", actor.primary_group)
        shared = sorted(set(facts.tags) & set(actor.groups))
        if shared:
            return Reason("member_group", shared[0])
    return None


def _why(cur: duckdb.DuckDBPyConnection, actor: Actor, call_id: int, action: Action) -> Reason | None:
    if action is VIEW_CALLS:
        scope = actor.report_scope
    elif action is PLAY_RECORDING:
        scope = actor.playback
    else:
        raise ValueError(f"{action.name} is not decided by a call scope")
    facts = _facts(cur, actor, call_id)
    if facts is None or not (facts.in_view if action is VIEW_CALLS else facts.in_play):
        return None
    if facts.via is not None:  # taking part comes first: the most specific reason
        return _took_part(cur, actor, call_id, facts.via)
    return _explain(actor, scope, facts)


def why(calls: CallStore, actor: Actor, call_id: int, action: Action = PLAY_RECORDING) -> Reason | None:
    """The rule that allows ``action`` on the call, or None (not permitted *or* no such call: never told apart).

    Whether the call is allowed at all is ``scope_sql`` evaluated on its row
    (the very condition the listings embed); the reason only explains it: the
    call's participants first (own extension, then conference), then the
    scope's group rule, then All Calls. ``PLAY_RECORDING`` is explained by the
    playback grant.
    """
    call = _as_id(call_id)
    if call is None:
        return None
    return _why(calls.cursor(), actor, call, action)


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


def _recording_row(cur: duckdb.DuckDBPyConnection, actor: Actor, recording_id: int, condition: Fragment) -> tuple | None:
    return cur.execute(
        f"""
        SELECT r.recording_id, r.call_id, r.archive_path, r.source_path, r.file_name, r.format, r.size_bytes,
               r.checksum, r.state
        FROM recordings r JOIN calls c ON c.call_id = r.call_id
        WHERE r.recording_id = $recording_id AND {condition.sql}
        """,
        {**condition.params, "recording_id": recording_id},
    ).fetchone()


def can_play(calls: CallStore, actor: Actor, recording_id: int) -> PlayDecision | None:
    """The playable recording with the rule that allows it, or None (not permitted, pending, missing or absent)."""
    rec = _as_id(recording_id)
    if rec is None:
        return None
    cur = calls.cursor()
    row = _recording_row(cur, actor, rec, recording_condition(actor))
    if row is None:
        return None
    reason = _why(cur, actor, int(row[1]), PLAY_RECORDING)
    if reason is None:  # cannot happen: the same condition on the same generation admitted the call
        return None
    archived = row[2] is not None
    return PlayDecision(
        recording_id=int(row[0]), call_id=int(row[1]), path_kind="archive" if archived else "source",
        path=row[2] if archived else row[3], file_name=row[4], format=row[5],
        size_bytes=row[6], checksum=row[7], reason=reason,
    )


def could_play_once_archived(calls: CallStore, actor: Actor, recording_id: int) -> bool:
    """True for a recording waiting for the archive job that the actor could play once it is archived.

    Only then may a session say "available after the next archive run"; for
    anyone else a pending recording is as absent as one that does not exist.
    """
    rec = _as_id(recording_id)
    if rec is None:
        return False
    condition = to_duckdb(recording_expr(actor, only_pending=True), {RECORDINGS: "r", CALLS: "c"})
    return _recording_row(calls.cursor(), actor, rec, condition) is not None
