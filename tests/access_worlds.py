"""Random worlds for the access rule: a hypothesis strategy, a real data directory built from one, and the comparison.

A world (tests/access_reference.py) is a directory with history (users,
groups, memberships and primary groups changing over time, extensions
reassigned between users) plus calls with transfers, conferences and
recordings in every state.

``build`` puts a world into a real data directory through the production
code paths, only skipping the CSV parsing: ``import_directory`` for the
directory, and for calls the staging tables every loader fills, merged by
``staging.merge_calls`` / ``merge_recordings`` inside ``stores.calls.write()``
with ``loader.sync_directory`` first, as ``loader.run_units`` does. The load
plan varies: directory first; a stale directory first, then the real one
(re-derivation must replace every stale fact); or calls before any directory.

``compare`` asks dimnb.access, through ``reports.list_calls`` /
``count_calls`` (the scope condition in a real query), ``can_play``,
``could_play_once_archived`` and ``why``, everything the reference model
answers, for every user (inactive ones and an unknown login included), every
call and every recording (plus ids that do not exist), and returns the
differences.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import strategies as st

import access_reference as ref
from dimnb import access, reports
from dimnb.actions import PLAY_RECORDING, VIEW_CALLS
from dimnb.directory import import_directory
from dimnb.errors import UnknownUser
from dimnb.filters import Filters
from dimnb.ingest import staging
from dimnb.ingest.loader import sync_directory
from dimnb.store.stores import Stores

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
HOURS = 12  # directory changes and calls all happen within these hours, so they often coincide
LOGINS = ("ann", "bob", "cat.d", "dan@x", "eve")
GROUPS = ("Sales", "Support", "O'Neil & Co")  # a quote and an ampersand: values travel as parameters
EXTENSIONS = ("101", "102", "103", "104", "105")
OTHER_PARTIES = (None, "199")  # no extension, or one nobody ever had
KINDS = ("talk", "talk", "ringing", "queue", "hold", "conference")
STATES = ("available", "available", "pending_archive", "missing")
GHOST = "nobody"  # a login that does not exist


def at(hour: int, minute: int = 0) -> datetime:
    return T0 + timedelta(hours=hour, minutes=minute)


# ---------------------------------------------------------------------------- strategies


@st.composite
def timeline(draw: st.DrawFn) -> list[ref.Period]:
    """A partition of time into 1-3 consecutive periods, the first and last open-ended."""
    cuts = sorted(draw(st.sets(st.integers(1, HOURS - 1), max_size=2)))
    bounds = [None, *[at(c) for c in cuts], None]
    return [ref.Period(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


@st.composite
def period(draw: st.DrawFn) -> ref.Period:
    start = draw(st.one_of(st.none(), st.integers(0, HOURS - 1)))
    end = draw(st.one_of(st.none(), st.integers((start or 0) + 1, HOURS)))
    return ref.Period(None if start is None else at(start), None if end is None else at(end))


@st.composite
def directories(draw: st.DrawFn, logins: tuple[str, ...]) -> ref.Directory:
    users = tuple(
        ref.User(login, draw(st.sampled_from(ref_scopes())), draw(st.sampled_from(playbacks())),
                 active=draw(st.sampled_from((True, True, True, True, False))))
        for login in logins
    )
    assignments = []
    for ext in EXTENSIONS:  # each extension passes between users (or nobody) over time
        for p in draw(timeline()):
            owner = draw(st.sampled_from((*logins, None)))
            if owner is not None:
                assignments.append(ref.Assignment(ext, owner, p))
    memberships = []
    for login in logins:
        periods = draw(timeline())
        primaries = [draw(st.sampled_from((*GROUPS, None))) for _ in periods]
        if all(g is None for g in primaries):  # the directory requires a primary group at some time
            primaries[0] = draw(st.sampled_from(GROUPS))
        memberships += [ref.Membership(login, g, True, p) for g, p in zip(primaries, periods) if g is not None]
        for _ in range(draw(st.integers(0, 3))):
            memberships.append(ref.Membership(login, draw(st.sampled_from(GROUPS)), False, draw(period())))
    return ref.Directory(users, GROUPS, tuple(assignments), tuple(memberships))


# Hypothesis draws early elements more often: the group scopes, where the rule has most to get wrong, come first.
def ref_scopes() -> tuple[str, ...]:
    return (ref.MEMBER_GROUPS, ref.PRIMARY_GROUP, ref.ALL, ref.OWN)


def playbacks() -> tuple[str, ...]:
    return (ref.MEMBER_GROUPS, ref.PRIMARY_GROUP, ref.OWN, ref.ALL, ref.NONE)


party = st.sampled_from(EXTENSIONS + OTHER_PARTIES)


@st.composite
def calls(draw: st.DrawFn, key: str) -> ref.Call:
    start = at(draw(st.integers(0, HOURS)), draw(st.sampled_from((0, 0, 30))))
    segments = tuple(
        ref.Segment(draw(st.sampled_from(KINDS)), draw(party), draw(party)) for _ in range(draw(st.integers(1, 4)))
    )
    conferences = tuple(
        ref.Conference(f"{key}/conf{i}", draw(st.sampled_from((f"90{i}", None))),
                       tuple(draw(st.lists(party, min_size=1, max_size=3))))
        for i in range(draw(st.sampled_from((2, 1, 0, 0))))
    )
    recordings = []
    for i in range(draw(st.integers(0, 3))):
        state = draw(st.sampled_from(STATES))
        if conferences and draw(st.booleans()):
            conf = draw(st.sampled_from(conferences))
            recordings.append(ref.Recording(f"/rec/{key}/{i}.wav", state, conference_key=conf.key))
        else:
            seq = draw(st.integers(1, len(segments)))
            recordings.append(ref.Recording(f"/rec/{key}/{i}.wav", state, segment_seq=seq))
    return ref.Call(key, start, segments, conferences, tuple(recordings))


@st.composite
def worlds(draw: st.DrawFn) -> ref.World:
    logins = tuple(draw(st.lists(st.sampled_from(LOGINS), min_size=1, max_size=4, unique=True)))
    directory = draw(directories(logins))
    n = draw(st.integers(0, 6))
    world_calls = tuple(draw(calls(f"call-{i}")) for i in range(n))
    plan = draw(st.sampled_from(("calls-first", "stale-directory-first", "directory-first")))
    return ref.World(
        directory=directory,
        calls=world_calls,
        now=at(draw(st.integers(0, HOURS + 1))),
        load_plan=plan,
        first_batch=draw(st.integers(0, n)),
        stale_directory=draw(directories(logins)) if plan == "stale-directory-first" else None,
    )


# ---------------------------------------------------------------------------- into a data directory


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def directory_json(directory: ref.Directory) -> dict:
    users = []
    for u in directory.users:
        users.append({
            "login": u.login, "name": f"User {u.login}", "report_scope": u.report_scope, "playback": u.playback,
            "active": u.active,
            "extensions": [{"extension": a.extension, "from": _iso(a.period.start), "to": _iso(a.period.end)}
                           for a in directory.assignments if a.login == u.login],
            "groups": [{"group": m.group, "primary": m.primary, "from": _iso(m.period.start), "to": _iso(m.period.end)}
                       for m in directory.memberships if m.login == u.login],
        })
    return {"groups": [{"name": g} for g in directory.groups], "users": users}


def _import(stores: Stores, directory: ref.Directory, path: Path) -> None:
    """Replace the directory in the state store; the next load's ``sync_directory`` brings the call store up to date."""
    path.write_text(json.dumps(directory_json(directory)))
    import_directory(stores.state, path)


def _insert(con, table: str, columns: str, rows: list[tuple]) -> None:
    """Insert rows with one statement (a list parameter per column): executemany runs one INSERT per row."""
    if not rows:
        return
    names = [c.strip() for c in columns.split(",")]
    values = list(zip(*rows))
    con.execute(
        f"INSERT INTO {table} ({columns}) SELECT " + ", ".join(f"unnest($p{i})" for i in range(len(names))),
        {f"p{i}": list(v) for i, v in enumerate(values)},
    )


def _stage(con, batch: tuple[ref.Call, ...]) -> None:
    """The world's calls in the staging tables every loader fills."""
    calls, segments, conferences, members, recordings = [], [], [], [], []
    for call in batch:
        end = call.start + timedelta(minutes=5)
        calls.append((call.key, call.start, call.start, end, "internal", "x", "y", "answered", "world", 1))
        for seq, s in enumerate(call.segments, start=1):
            segments.append((call.key, seq, f"{call.key}#{seq}", s.kind, call.start, end, "exact",
                             s.from_ext, "extension" if s.from_ext else "external", s.from_ext,
                             s.to_ext, "extension" if s.to_ext else "external", s.to_ext, True))
        for conf in call.conferences:
            conferences.append((call.key, conf.key, conf.room, call.start, end))
            members += [(conf.key, ext, "extension", ext, call.start, end) for ext in conf.member_extensions]
        for r in call.recordings:
            recordings.append((call.key, r.segment_seq, r.conference_key, r.path, r.path.rsplit("/", 1)[-1], "wav",
                               call.start, r.state, "world", 1))
    _insert(con, "stg_calls", "key, start_time, answer_time, end_time, direction, from_party, to_party, outcome, "
            "source_file, source_line", calls)
    _insert(con, "stg_segments", "key, seq, source_id, kind, start_time, end_time, time_quality, from_party, "
            "from_type, from_ext, to_party, to_type, to_ext, answered", segments)
    _insert(con, "stg_conferences", "key, conf_key, room, start_time, end_time", conferences)
    _insert(con, "stg_conference_members", "conf_key, party, party_type, extension, join_time, leave_time", members)
    _insert(con, "stg_recordings", "key, segment_seq, conf_key, source_path, file_name, format, start_time, state, "
            "source_file, source_line", recordings)


def _merge(con, stores: Stores, batch: tuple[ref.Call, ...]) -> None:
    """One load: sync the directory snapshot, then stage and merge in one transaction (as loader.run_units)."""
    sync_directory(con, stores)
    con.execute("BEGIN TRANSACTION")
    staging.create_staging(con)
    load_id = staging.next_load_id(con)
    _stage(con, batch)
    staging.merge_calls(con, "3cx", load_id)
    staging.merge_recordings(con, "3cx")
    con.execute("COMMIT")


_TEMPLATES: dict[str, Path] = {}


def _fresh_data_dir(data_dir: Path) -> Stores:
    """A new, initialised data directory: a copy of one made by ``Stores.open(create=True)`` once per process."""
    template = _TEMPLATES.get("empty")
    if template is None or not template.exists():
        parent = tempfile.mkdtemp(prefix="dimnb-world-template-")
        atexit.register(shutil.rmtree, parent, True)
        template = Path(parent) / "data"
        Stores.open(str(template), create=True).close()
        _TEMPLATES["empty"] = template
    shutil.copytree(template, data_dir, symlinks=True, dirs_exist_ok=True)
    return Stores.open(str(data_dir))


def build(world: ref.World, data_dir: Path) -> Stores:
    """The world in a data directory, published as one new call-store generation.

    Two loads in one generation behave like two generations (a generation is
    only the unit of publishing); one write keeps a world cheap to build.
    """
    stores = _fresh_data_dir(data_dir)
    directory_file = data_dir / "directory.json"
    with stores.calls.write() as con:
        if world.load_plan == "directory-first":
            _import(stores, world.directory, directory_file)
            _merge(con, stores, world.calls)
        else:
            if world.load_plan == "stale-directory-first":
                _import(stores, world.stale_directory, directory_file)
            _merge(con, stores, world.calls[: world.first_batch])
            _import(stores, world.directory, directory_file)
            _merge(con, stores, world.calls[world.first_batch:])  # its sync_directory re-derives earlier calls
    return stores


# ---------------------------------------------------------------------------- comparison


def _reason(reason: access.Reason | None) -> tuple[str, str | None] | None:
    return None if reason is None else (reason.rule, reason.detail)


def differences(world: ref.World, data_dir: Path) -> list[str]:
    """Build ``world`` in ``data_dir``, compare it with the reference model, then remove the directory."""
    stores = build(world, data_dir)
    try:
        return compare(world, stores)
    finally:
        stores.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def compare(world: ref.World, stores: Stores) -> list[str]:
    """Every difference between dimnb.access and the reference model, as readable lines."""
    diffs: list[str] = []
    cur = stores.calls.cursor()
    call_ids = dict(cur.execute("SELECT source_id, call_id FROM calls").fetchall())
    rec_ids = dict(cur.execute("SELECT source_path, recording_id FROM recordings").fetchall())
    if set(call_ids) != {c.key for c in world.calls} or set(rec_ids) != {r.path for c in world.calls for r in c.recordings}:
        return [f"the world did not load whole: calls {sorted(call_ids)}, recordings {sorted(rec_ids)}"]
    key_of = {v: k for k, v in call_ids.items()}
    absent_call = max(call_ids.values(), default=0) + 1000
    absent_recording = max(rec_ids.values(), default=0) + 1000
    start_of = {c.key: c.start for c in world.calls}

    for login in [u.login for u in world.directory.users] + [GHOST]:
        who = ref.asker(world, login)
        try:
            actor = access.load_actor(stores.state, login, at=world.now)
        except UnknownUser:
            if who is not None:
                diffs.append(f"{login}: load_actor says unknown/inactive, the model says active")
            continue
        if who is None:
            diffs.append(f"{login}: load_actor found an actor, the model says inactive/unknown")
            continue
        if (actor.primary_group, set(actor.groups)) != (who.primary_group, set(who.groups)):
            diffs.append(f"{login}: groups now {actor.primary_group!r}/{sorted(actor.groups)}, "
                         f"model {who.primary_group!r}/{sorted(who.groups)}")

        for with_recordings in (False, True):
            filters = Filters(with_recordings=with_recordings)
            page = reports.list_calls(stores.calls, actor, filters, page_size=reports.MAX_PAGE_SIZE)
            got = [int(x) for x in page.rows["call_id"]]
            expected_keys = ref.listing(world, who, with_recordings=with_recordings)
            expected = sorted((call_ids[k] for k in expected_keys),
                              key=lambda i: (start_of[key_of[i]], i), reverse=True)
            label = f"{login} list(with_recordings={with_recordings})"
            if got != expected:
                diffs.append(f"{label}: {[key_of.get(i, i) for i in got]}, model {[key_of[i] for i in expected]}")
            if page.total != len(expected):  # page.total is reports.count_calls
                diffs.append(f"{label}: total {page.total}, model {len(expected)}")
            for row in page.rows.itertuples():
                call = world.call(key_of[int(row.call_id)])
                if row.recording != ref.marker(world, who, call):
                    diffs.append(f"{label} {call.key}: marker {row.recording!r}, model {ref.marker(world, who, call)!r}")
                model_groups = ", ".join(sorted(ref.tags(world, call)))
                if row.groups != model_groups:
                    diffs.append(f"{label} {call.key}: groups {row.groups!r}, model {model_groups!r}")

        for call in [*world.calls, None]:
            call_id = call_ids[call.key] if call else absent_call
            name = call.key if call else "absent call"
            for action, model_why in ((VIEW_CALLS, ref.why_view), (PLAY_RECORDING, ref.why_play)):
                got_why = _reason(access.why(stores.calls, actor, call_id, action))
                if got_why != model_why(world, who, call):
                    diffs.append(f"{login} why({name}, {action.name}): {got_why}, model {model_why(world, who, call)}")

        recordings = [(c, r) for c in world.calls for r in c.recordings] + [(None, None)]
        for call, rec in recordings:
            rec_id = rec_ids[rec.path] if rec else absent_recording
            name = rec.path if rec else "absent recording"
            decision = access.can_play(stores.calls, actor, rec_id)
            expected_play = rec is not None and ref.can_play(world, who, call, rec)
            if (decision is not None) != expected_play:
                diffs.append(f"{login} can_play({name}): {decision is not None}, model {expected_play}")
            elif decision is not None:
                if decision.call_id != call_ids[call.key] or decision.recording_id != rec_id:
                    diffs.append(f"{login} can_play({name}): wrong recording/call {decision}")
                if _reason(decision.reason) != ref.why_play(world, who, call):
                    diffs.append(f"{login} can_play({name}) reason {decision.reason}, model {ref.why_play(world, who, call)}")
            pending = access.could_play_once_archived(stores.calls, actor, rec_id)
            expected_pending = rec is not None and ref.could_play_once_archived(world, who, call, rec)
            if pending != expected_pending:
                diffs.append(f"{login} could_play_once_archived({name}): {pending}, model {expected_pending}")
    return diffs
