"""Saved filters: a named set of quick filters, kept per user in the state store, run again in one click.

A user sees their own saved filters and those shared with a group they
currently belong to. Only the owner changes a filter (save over it, rename,
share, delete); members of the group run it read-only, or save a copy under
their own name. Running a shared filter applies the *runner's* scope.

The filters are stored as JSON (``Filters.to_json``). A saved filter can stop
making sense: its group was removed from the directory, the user it names
left, a newer or older dimnb does not know one of its fields, or the JSON was
damaged. ``load`` then raises ``BrokenFilter``: a plain message naming what is
wrong and saying how to fix it, with ``draft`` (the parts that still work) and
``problems`` (one per field), so a form can show the rest and let the owner
save it again.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from dimnb import access, reports
from dimnb.errors import InvalidInput, NotFound
from dimnb.filters import Filters
from dimnb.store.callstore import CallStore
from dimnb.store.statestore import StateStore

MAX_NAME_LENGTH = 80
MAX_FILTERS_PER_USER = 500
_UNCHANGED: Any = object()


@dataclass(frozen=True)
class SavedFilter:
    """One saved filter as a viewer sees it."""

    id: int
    owner: str
    owner_name: str
    name: str
    stored: str  # the JSON as stored
    shared_group: str | None
    updated_at: str
    editable: bool  # the viewer is the owner

    @property
    def label(self) -> str:
        """How a picker shows it: ``Big calls`` (mine) or ``Escalations · Paul Okafor`` (shared with me)."""
        return self.name if self.editable else f"{self.name} · {self.owner_name}"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "owner": self.owner, "owner_name": self.owner_name,
                "shared_group": self.shared_group, "editable": self.editable, "label": self.label,
                "updated_at": self.updated_at}


@dataclass(frozen=True)
class Problem:
    field: str | None
    message: str


class BrokenFilter(InvalidInput):
    """A saved filter that no longer makes sense. ``draft``: the parts that still work; ``problems``: what not."""

    def __init__(self, saved: SavedFilter, problems: list[Problem], draft: Filters) -> None:
        reasons = "; ".join(p.message for p in problems)
        how = "edit it and save it again" if saved.editable else f"ask {saved.owner_name} to fix it, or save a copy"
        super().__init__(f"Saved filter {saved.name!r} no longer works: {reasons}. To use it, {how}.",
                         field=problems[0].field if problems else None)
        self.saved = saved
        self.problems = problems
        self.draft = draft


# ---------------------------------------------------------------------------- reading


_SELECT = """
    SELECT f.id, f.owner, coalesce(u.name, f.owner) AS owner_name, f.name, f.filters, f.shared_group, f.updated_at
    FROM saved_filters f LEFT JOIN users u ON u.login = f.owner
"""


def _visible_where(actor: access.Actor) -> tuple[str, list[Any]]:
    groups = list(actor.groups)
    marks = ",".join("?" * len(groups))
    shared = f" OR (f.shared_group IN ({marks}) AND u.active = 1)" if groups else ""
    return f"(f.owner = ?{shared})", [actor.login, *groups]


def _row(actor: access.Actor, row: sqlite3.Row) -> SavedFilter:
    return SavedFilter(id=int(row["id"]), owner=row["owner"], owner_name=row["owner_name"], name=row["name"],
                       stored=row["filters"], shared_group=row["shared_group"], updated_at=row["updated_at"],
                       editable=row["owner"] == actor.login)


def visible(state: StateStore, actor: access.Actor) -> list[SavedFilter]:
    """The viewer's own saved filters (by name), then those shared with their groups (by name, owner)."""
    where, params = _visible_where(actor)
    rows = state.connection().execute(f"{_SELECT} WHERE {where} ORDER BY f.owner <> ?, f.name, f.owner",
                                      [*params, actor.login]).fetchall()
    return [_row(actor, r) for r in rows]


def by_id(state: StateStore, actor: access.Actor, filter_id: Any) -> SavedFilter:
    """A saved filter the viewer may see, by id; NotFound alike for a missing one and someone else's."""
    if isinstance(filter_id, bool) or not isinstance(filter_id, int):
        raise NotFound("no such saved filter")
    where, params = _visible_where(actor)
    row = state.connection().execute(f"{_SELECT} WHERE f.id = ? AND {where}", [filter_id, *params]).fetchone()
    if row is None:
        raise NotFound("no such saved filter")
    return _row(actor, row)


def find(state: StateStore, actor: access.Actor, name: str, *, owner: str | None = None) -> SavedFilter:
    """By name: the viewer's own first, else the one shared with them (``owner`` picks between namesakes)."""
    matches = [f for f in visible(state, actor) if f.name == name and (owner is None or f.owner == owner)]
    if not matches:
        raise NotFound(f"no saved filter named {name!r}")
    own = [f for f in matches if f.editable]
    if own:
        return own[0]
    if len(matches) > 1:
        owners = ", ".join(f.owner for f in matches)
        raise InvalidInput(f"name: several filters named {name!r} are shared with you (by {owners}); "
                           "say whose", field="name")
    return matches[0]


def check(state: StateStore, calls: CallStore, saved: SavedFilter) -> tuple[Filters, list[Problem]]:
    """The filters that still work, and what does not (empty when all is well)."""
    problems: list[Problem] = []
    try:
        data = json.loads(saved.stored)
    except (TypeError, ValueError):
        data = None
    if not isinstance(data, dict):
        return Filters(), [Problem(None, "its stored form is damaged (not valid JSON)")]
    known = Filters.field_names()
    for key in sorted(k for k in data if k not in known):
        problems.append(Problem(str(key), f"it uses {key!r}, a filter this version of dimnb does not know"))
        data.pop(key)
    for _attempt in range(len(known) + 1):
        try:
            filters = Filters.parse(data)
            reports.resolve(calls, filters, state=state)
        except InvalidInput as exc:
            if exc.field not in data:  # not a field we can drop: give up on the whole filter
                problems.append(Problem(exc.field, str(exc)))
                return Filters(), problems
            problems.append(Problem(exc.field, str(exc)))
            data.pop(exc.field)
            continue
        return filters, problems
    return Filters(), problems


def load(state: StateStore, calls: CallStore, saved: SavedFilter) -> Filters:
    """The saved filter's Filters, or BrokenFilter saying what no longer makes sense and how to fix it."""
    filters, problems = check(state, calls, saved)
    if problems:
        raise BrokenFilter(saved, problems, filters)
    return filters


# ---------------------------------------------------------------------------- writing (owners only)


def check_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str):
        raise InvalidInput(f"{field}: give the filter a name", field=field)
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInput(f"{field}: give the filter a name", field=field)
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{field}: at most {MAX_NAME_LENGTH} characters", field=field)
    return cleaned


def _share_group(state: StateStore, actor: access.Actor, group: Any) -> str | None:
    if group is None or group == "":
        return None
    if not isinstance(group, str):
        raise InvalidInput("share_with: expected a group name", field="share_with")
    try:
        name = reports.check_group(state, group)
    except InvalidInput as exc:
        raise InvalidInput(str(exc).replace("group:", "share_with:", 1), field="share_with") from None
    if name not in actor.groups:
        raise InvalidInput(f"share_with: you can share only with a group you belong to ({', '.join(actor.groups)})",
                           field="share_with")
    return name


def _own(state: StateStore, actor: access.Actor, name: str) -> sqlite3.Row:
    row = state.connection().execute("SELECT * FROM saved_filters WHERE owner = ? AND name = ?",
                                     (actor.login, name)).fetchone()
    if row is not None:
        return row
    shared = [f for f in visible(state, actor) if f.name == name and not f.editable]
    if shared:
        raise InvalidInput(f"name: {name!r} is shared with you by {shared[0].owner_name}; only they can change it "
                           "(save a copy under your own name instead)", field="name")
    raise NotFound(f"no saved filter named {name!r}")


def save(state: StateStore, actor: access.Actor, name: str, filters: Filters, *, share_with: Any = _UNCHANGED,
         overwrite: bool = False) -> SavedFilter:
    """Save ``filters`` under ``name`` for the actor. ``overwrite`` replaces the actor's own filter of that name.

    ``share_with``: a group the actor belongs to (members may run it), None to
    stop sharing; left out, an overwritten filter keeps its sharing.
    """
    if not isinstance(filters, Filters):
        raise TypeError("save() takes Filters")
    name = check_name(name)
    stored = reports.check_directory(state, filters).to_json()
    with state.transaction() as con:
        existing = con.execute("SELECT id, shared_group FROM saved_filters WHERE owner = ? AND name = ?",
                               (actor.login, name)).fetchone()
        group = existing["shared_group"] if existing is not None and share_with is _UNCHANGED else (
            None if share_with is _UNCHANGED else _share_group(state, actor, share_with))
        if existing is not None:
            if not overwrite:
                raise InvalidInput(f"name: you already have a saved filter named {name!r} "
                                   "(save over it, or pick another name)", field="name")
            con.execute("UPDATE saved_filters SET filters = ?, shared_group = ?, "
                        "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
                        (stored, group, existing["id"]))
        else:
            count = con.execute("SELECT count(*) FROM saved_filters WHERE owner = ?", (actor.login,)).fetchone()[0]
            if count >= MAX_FILTERS_PER_USER:
                raise InvalidInput(f"name: you have {count} saved filters already; delete some first", field="name")
            con.execute("INSERT INTO saved_filters(owner, name, filters, shared_group) VALUES (?, ?, ?, ?)",
                        (actor.login, name, stored, group))
    return find(state, actor, name, owner=actor.login)


def rename(state: StateStore, actor: access.Actor, name: str, new_name: str) -> SavedFilter:
    new_name = check_name(new_name, "new_name")
    row = _own(state, actor, name)
    if new_name != row["name"]:
        with state.transaction() as con:
            clash = con.execute("SELECT 1 FROM saved_filters WHERE owner = ? AND name = ?",
                                (actor.login, new_name)).fetchone()
            if clash:
                raise InvalidInput(f"new_name: you already have a saved filter named {new_name!r}", field="new_name")
            con.execute("UPDATE saved_filters SET name = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                        "WHERE id = ?", (new_name, row["id"]))
    return find(state, actor, new_name, owner=actor.login)


def share(state: StateStore, actor: access.Actor, name: str, group: str | None) -> SavedFilter:
    """Share the actor's filter with a group they belong to (None: stop sharing)."""
    row = _own(state, actor, name)
    shared = _share_group(state, actor, group)
    with state.transaction() as con:
        con.execute("UPDATE saved_filters SET shared_group = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                    "WHERE id = ?", (shared, row["id"]))
    return find(state, actor, row["name"], owner=actor.login)


def delete(state: StateStore, actor: access.Actor, name: str) -> None:
    row = _own(state, actor, name)
    with state.transaction() as con:
        con.execute("DELETE FROM saved_filters WHERE id = ? AND owner = ?", (row["id"], actor.login))
