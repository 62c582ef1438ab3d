"""The access rule as plain Python, written to be read, not to be fast.

This is the specification (docs/access.md, "Who sees and hears what") turned
into code over a small in-memory world, with no SQL and no dimnb imports.
tests/test_access_model.py and bench/access_fuzz.py build the same world in a
real data directory and check that dimnb.access (SQL listing, ``can_play``,
``could_play_once_archived``, ``why``) answers exactly like this model.

Everything is keyed by names the world chooses (call keys, recording paths);
the store's numeric ids are mapped back by the comparison code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

OWN, PRIMARY_GROUP, MEMBER_GROUPS, ALL, NONE = "own", "primary_group", "member_groups", "all", "none"


# ---------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Period:
    """``[start, end)``; None is open-ended."""

    start: datetime | None = None
    end: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (self.end is None or moment < self.end)


@dataclass(frozen=True)
class User:
    login: str
    report_scope: str
    playback: str
    active: bool = True


@dataclass(frozen=True)
class Assignment:
    """An extension belonged to a user during a period."""

    extension: str
    login: str
    period: Period


@dataclass(frozen=True)
class Membership:
    login: str
    group: str
    primary: bool
    period: Period


@dataclass(frozen=True)
class Directory:
    users: tuple[User, ...]
    groups: tuple[str, ...]
    assignments: tuple[Assignment, ...]
    memberships: tuple[Membership, ...]


@dataclass(frozen=True)
class Segment:
    kind: str  # talk / ringing / queue / hold / conference ...
    from_ext: str | None
    to_ext: str | None


@dataclass(frozen=True)
class Conference:
    key: str
    room: str | None
    member_extensions: tuple[str | None, ...]


@dataclass(frozen=True)
class Recording:
    path: str  # unique in the world
    state: str  # available / pending_archive / missing
    segment_seq: int | None = None  # 1-based, or None for a conference recording
    conference_key: str | None = None


@dataclass(frozen=True)
class Call:
    key: str
    start: datetime
    segments: tuple[Segment, ...]
    conferences: tuple[Conference, ...] = ()
    recordings: tuple[Recording, ...] = ()


@dataclass(frozen=True)
class World:
    directory: Directory
    calls: tuple[Call, ...]
    now: datetime  # when the requests are made ("current" groups)
    # How the world reaches the store (the rule must not depend on it):
    load_plan: str = "directory-first"  # directory-first / stale-directory-first / calls-first
    first_batch: int = 0  # calls[:first_batch] are loaded before the final directory in the other plans
    stale_directory: Directory | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def call(self, key: str) -> Call:
        return next(c for c in self.calls if c.key == key)


# ---------------------------------------------------------------------------- the directory at a moment


def owner_of(world: World, extension: str | None, moment: datetime) -> str | None:
    """The user an extension belonged to at that moment (None: nobody, or not an extension)."""
    if extension is None:
        return None
    for a in world.directory.assignments:
        if a.extension == extension and a.period.covers(moment):
            return a.login
    return None


def primary_group_at(world: World, login: str, moment: datetime) -> str | None:
    for m in world.directory.memberships:
        if m.login == login and m.primary and m.period.covers(moment):
            return m.group
    return None


def groups_at(world: World, login: str, moment: datetime) -> set[str]:
    return {m.group for m in world.directory.memberships if m.login == login and m.period.covers(moment)}


# ---------------------------------------------------------------------------- who took part, tags


def participants(world: World, call: Call) -> dict[str, str]:
    """login -> 'segment' (a party to an ordinary segment) or 'conference' (only through a conference).

    The directory is read as it stood at the call's start.
    """
    found: dict[str, str] = {}
    for segment in call.segments:
        how = "conference" if segment.kind == "conference" else "segment"
        for ext in (segment.from_ext, segment.to_ext):
            login = owner_of(world, ext, call.start)
            if login is not None and found.get(login) != "segment":
                found[login] = how
    for conference in call.conferences:
        for ext in conference.member_extensions:
            login = owner_of(world, ext, call.start)
            if login is not None and login not in found:
                found[login] = "conference"
    return found


def tags(world: World, call: Call) -> set[str]:
    """The primary group, at the call's start, of everyone who took part."""
    out = set()
    for login in participants(world, call):
        group = primary_group_at(world, login, call.start)
        if group is not None:
            out.add(group)
    return out


# ---------------------------------------------------------------------------- the asking user, right now


@dataclass(frozen=True)
class Asker:
    login: str
    report_scope: str
    playback: str
    primary_group: str | None
    groups: frozenset[str]


def asker(world: World, login: str) -> Asker | None:
    """The user as the state store says at ``world.now``; None when inactive or unknown (they get nothing)."""
    for user in world.directory.users:
        if user.login == login and user.active:
            return Asker(login, user.report_scope, user.playback, primary_group_at(world, login, world.now),
                         frozenset(groups_at(world, login, world.now)))
    return None


def admits(world: World, who: Asker, scope: str, call: Call) -> bool:
    took_part = who.login in participants(world, call)
    if scope == NONE:
        return False
    if scope == OWN:
        return took_part
    if scope == PRIMARY_GROUP:
        return took_part or (who.primary_group is not None and who.primary_group in tags(world, call))
    if scope == MEMBER_GROUPS:
        return took_part or bool(who.groups & tags(world, call))
    if scope == ALL:
        return True
    raise ValueError(scope)


def may_view(world: World, who: Asker, call: Call) -> bool:
    return admits(world, who, who.report_scope, call)


def may_play_call(world: World, who: Asker, call: Call) -> bool:
    """Inside BOTH the report scope and the playback grant."""
    return may_view(world, who, call) and admits(world, who, who.playback, call)


def can_play(world: World, who: Asker, call: Call, recording: Recording) -> bool:
    return recording.state == "available" and may_play_call(world, who, call)


def could_play_once_archived(world: World, who: Asker, call: Call, recording: Recording) -> bool:
    return recording.state == "pending_archive" and may_play_call(world, who, call)


# ---------------------------------------------------------------------------- why


def _explain(world: World, who: Asker, scope: str, call: Call) -> tuple[str, str | None] | None:
    how = participants(world, call).get(who.login)
    if how == "segment":
        mine = [ext for s in call.segments if s.kind != "conference" for ext in (s.from_ext, s.to_ext)
                if owner_of(world, ext, call.start) == who.login]
        return ("own", f"extension {min(mine)}")
    if how == "conference":
        rooms = [c.room for c in call.conferences if c.room is not None
                 and any(owner_of(world, ext, call.start) == who.login for ext in c.member_extensions)]
        return ("conference", f"room {min(rooms)}" if rooms else None)
    call_tags = tags(world, call)
    if scope == ALL:
        return ("all", None)
    if scope == PRIMARY_GROUP and who.primary_group in call_tags:
        return ("primary_group", who.primary_group)
    if scope == MEMBER_GROUPS:
        if who.primary_group in call_tags:
            return ("member_group", who.primary_group)
        shared = sorted(call_tags & who.groups)
        if shared:
            return ("member_group", shared[0])
    return None


def why_view(world: World, who: Asker, call: Call | None) -> tuple[str, str | None] | None:
    if call is None or not may_view(world, who, call):
        return None
    return _explain(world, who, who.report_scope, call)


def why_play(world: World, who: Asker, call: Call | None) -> tuple[str, str | None] | None:
    """Explained by the playback grant, once the call is inside both scopes."""
    if call is None or not may_play_call(world, who, call):
        return None
    return _explain(world, who, who.playback, call)


# ---------------------------------------------------------------------------- the call list


def listing(world: World, who: Asker, *, with_recordings: bool) -> set[str]:
    """Keys of the calls the list shows ("only calls with recordings": one the user may play now)."""
    out = set()
    for call in world.calls:
        if not may_view(world, who, call):
            continue
        if with_recordings and not any(can_play(world, who, call, r) for r in call.recordings):
            continue
        out.add(call.key)
    return out


def marker(world: World, who: Asker, call: Call) -> str:
    """The list's recording column: nothing tells a user without the grant that a recording exists."""
    if not may_play_call(world, who, call):
        return ""
    if any(r.state == "available" for r in call.recordings):
        return "playable"
    if any(r.state == "pending_archive" for r in call.recordings):
        return "pending archive"
    return ""
