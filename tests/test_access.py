"""The access rule, case by case: every row of the scope table and each edge case, with the expected answers.

Worlds are written in the reference model's vocabulary (tests/access_reference.py)
and built in a real data directory by tests/access_worlds.py (directory import,
staging tables, staging.merge_calls / merge_recordings). The conference case
goes through the real 3CX v20 loader. Besides the explicit expectations, each
world is also checked against the reference model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import access_worlds
from access_reference import (
    ALL, MEMBER_GROUPS, NONE, OWN, PRIMARY_GROUP, Assignment, Call, Conference, Directory, Membership, Period,
    Recording, Segment, User, World,
)
from access_worlds import at
from dimnb import access, reports
from dimnb.actions import PLAY_RECORDING, VIEW_CALLS
from dimnb.directory import import_directory, set_grants
from dimnb.errors import UnknownUser
from dimnb.filters import Filters
from dimnb.ingest import staging
from dimnb.ingest.loader import load_3cx, sync_directory
from dimnb.store import callschema
from dimnb.store.stores import Stores
from dimnb.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("Sales", "Support", "Billing")
ALWAYS = Period()


def ext(extension: str, login: str, period: Period = ALWAYS) -> Assignment:
    return Assignment(extension, login, period)


def member(login: str, group: str, *, primary: bool = False, period: Period = ALWAYS) -> Membership:
    return Membership(login, group, primary, period)


def inbound(key: str, hour: int, *to: str, recordings: tuple[Recording, ...] | None = None) -> Call:
    """A call from outside answered by ``to[0]`` and transferred on to the others, one recording per segment."""
    segments = tuple(Segment("talk", None, x) for x in to)
    if recordings is None:
        recordings = tuple(Recording(f"/rec/{key}/{i}.wav", "available", segment_seq=i) for i in range(1, len(to) + 1))
    return Call(key, at(hour), segments, recordings=recordings)


def company(calls: tuple[Call, ...], *, users: tuple[User, ...] = (), assignments: tuple[Assignment, ...] = (),
            memberships: tuple[Membership, ...] = (), groups: tuple[str, ...] = (), now: int = 11) -> World:
    """SPEC §5's scope table, one user per row, plus whatever a test adds."""
    base_users = (
        User("ann", OWN, OWN),
        User("bob", PRIMARY_GROUP, PRIMARY_GROUP),
        User("cat", MEMBER_GROUPS, MEMBER_GROUPS),
        User("dan", ALL, ALL),
        User("eve", ALL, NONE),  # lists everything, plays nothing
        User("gus", ALL, OWN),  # a manager who sees all calls but plays only his own
        User("fay", OWN, ALL),  # a playback grant wider than the report scope
    )
    base_assignments = (ext("101", "ann"), ext("102", "bob"), ext("201", "cat"), ext("300", "dan"),
                        ext("301", "gus"), ext("401", "fay"))
    base_memberships = (
        member("ann", "Sales", primary=True),
        member("bob", "Sales", primary=True), member("bob", "Support"),
        member("cat", "Support", primary=True), member("cat", "Billing"),
        member("dan", "Billing", primary=True),
        member("eve", "Billing", primary=True),
        member("gus", "Billing", primary=True),
        member("fay", "Billing", primary=True),
    )
    return World(Directory(base_users + users, GROUPS + groups, base_assignments + assignments,
                           base_memberships + memberships),
                 calls, now=at(now))


@pytest.fixture
def build(tmp_path: Path):
    opened: list[Stores] = []

    def _build(world: World) -> Stores:
        stores = access_worlds.build(world, tmp_path / f"data{len(opened)}")
        opened.append(stores)
        assert access_worlds.compare(world, stores) == []
        return stores

    yield _build
    for s in opened:
        s.close()


def actor(stores: Stores, login: str, world: World) -> access.Actor:
    return access.load_actor(stores.state, login, at=world.now)


def call_id(stores: Stores, key: str) -> int:
    return stores.calls.query("SELECT call_id FROM calls WHERE source_id = $k", {"k": key})[0][0]


def recording_id(stores: Stores, path: str) -> int:
    return stores.calls.query("SELECT recording_id FROM recordings WHERE source_path = $p", {"p": path})[0][0]


def listed(stores: Stores, who: access.Actor, **filters) -> list[str]:
    page = reports.list_calls(stores.calls, who, Filters.parse(filters), page_size=1000)
    keys = dict(stores.calls.query("SELECT call_id, source_id FROM calls"))
    return sorted(keys[int(i)] for i in page.rows["call_id"])


def why(stores: Stores, who: access.Actor, key: str, action=PLAY_RECORDING) -> str | None:
    reason = access.why(stores.calls, who, call_id(stores, key), action)
    return None if reason is None else f"{reason.rule}{f' {reason.detail}' if reason.detail else ''}"


def plays(stores: Stores, who: access.Actor, path: str) -> bool:
    return access.can_play(stores.calls, who, recording_id(stores, path)) is not None


# ---------------------------------------------------------------------------- the scope table

SCOPE_CALLS = (
    inbound("to-ann", 9, "101"),  # tagged Sales
    inbound("to-bob", 9, "102"),  # tagged Sales
    inbound("to-cat", 9, "201"),  # tagged Support
    inbound("to-dan", 9, "300"),  # tagged Billing
    inbound("to-nobody", 9, "999"),  # no user took part: no tags
)


@pytest.mark.parametrize(
    "login, may_list, may_play, reasons",
    [
        # Own Calls: only calls the user took part in.
        ("ann", ["to-ann"], ["to-ann"], {"to-ann": "own extension 101"}),
        # Primary Group: calls tagged with the primary group (Sales), plus own calls.
        ("bob", ["to-ann", "to-bob"], ["to-ann", "to-bob"],
         {"to-ann": "primary_group Sales", "to-bob": "own extension 102"}),
        # Member Groups: calls tagged with any current group (Support, Billing), plus own calls.
        ("cat", ["to-cat", "to-dan"], ["to-cat", "to-dan"],
         {"to-cat": "own extension 201", "to-dan": "member_group Billing"}),
        # All Calls: every call.
        ("dan", ["to-ann", "to-bob", "to-cat", "to-dan", "to-nobody"],
         ["to-ann", "to-bob", "to-cat", "to-dan", "to-nobody"],
         {"to-nobody": "all", "to-dan": "own extension 300", "to-ann": "all"}),
        # No grant: lists what the report scope allows, plays nothing.
        ("eve", ["to-ann", "to-bob", "to-cat", "to-dan", "to-nobody"], [], {"to-ann": None}),
        # A report scope wider than the grant: sees all, plays only what the grant allows (none of these).
        ("gus", ["to-ann", "to-bob", "to-cat", "to-dan", "to-nobody"], [], {"to-ann": None}),
        # A grant wider than the report scope: nobody hears a call they cannot see.
        ("fay", [], [], {"to-dan": None}),
    ],
)
def test_each_row_of_the_scope_table(build, login, may_list, may_play, reasons) -> None:
    world = company(SCOPE_CALLS)
    stores = build(world)
    who = actor(stores, login, world)
    assert listed(stores, who) == may_list
    assert listed(stores, who, with_recordings=True) == may_play
    playable = [c.key for c in SCOPE_CALLS if plays(stores, who, c.recordings[0].path)]
    assert playable == sorted(may_play, key=[c.key for c in SCOPE_CALLS].index)
    for key, expected in reasons.items():
        assert why(stores, who, key) == expected, key
    assert reports.count_calls(stores.calls, who, Filters()) == len(may_list)


def test_why_for_listing_follows_the_report_scope_and_for_playing_the_grant(build) -> None:
    world = company(SCOPE_CALLS)
    stores = build(world)
    gus = actor(stores, "gus", world)
    assert why(stores, gus, "to-ann", VIEW_CALLS) == "all"
    assert why(stores, gus, "to-ann", PLAY_RECORDING) is None
    eve = actor(stores, "eve", world)
    assert why(stores, eve, "to-cat", VIEW_CALLS) == "all"
    assert why(stores, eve, "to-cat", PLAY_RECORDING) is None


def test_the_list_shows_a_recording_marker_only_to_those_who_may_play(build) -> None:
    world = company(SCOPE_CALLS)
    stores = build(world)
    for login, marked in (("dan", {"to-ann", "to-bob", "to-cat", "to-dan", "to-nobody"}), ("eve", set()),
                          ("gus", set())):
        page = reports.list_calls(stores.calls, actor(stores, login, world), Filters(), page_size=100)
        keys = dict(stores.calls.query("SELECT call_id, source_id FROM calls"))
        got = {keys[int(r.call_id)] for r in page.rows.itertuples() if r.recording == "playable"}
        assert got == marked, login
        assert set(page.rows["recording"]) <= {"playable", ""}


# ---------------------------------------------------------------------------- edge cases


def test_a_user_moved_between_groups_old_calls_keep_old_tags(build) -> None:
    # hal is in Support until 10:00, then in Sales; calls before the move stay Support's.
    world = company(
        (inbound("hal-before", 9, "150"), inbound("hal-after", 10, "150")),
        users=(User("hal", OWN, OWN),),
        assignments=(ext("150", "hal"),),
        memberships=(member("hal", "Support", primary=True, period=Period(None, at(10))),
                     member("hal", "Sales", primary=True, period=Period(at(10), None))),
    )
    stores = build(world)
    tags = dict(stores.calls.query("SELECT source_id, array_to_string(group_tags, ',') FROM calls"))
    assert tags == {"hal-before": "Support", "hal-after": "Sales"}
    bob = actor(stores, "bob", world)  # Primary Group Sales
    assert listed(stores, bob) == ["hal-after"]
    assert why(stores, bob, "hal-after") == "primary_group Sales"
    cat = actor(stores, "cat", world)  # Member Groups Support, Billing
    assert listed(stores, cat) == ["hal-before"]
    assert why(stores, cat, "hal-before") == "member_group Support"
    assert listed(stores, actor(stores, "hal", world)) == ["hal-after", "hal-before"]


def test_current_groups_decide_which_tags_a_user_may_see(build) -> None:
    # ivy (Member Groups) belonged to Billing until 10:00 and to Support from then on: asked at 11:00 she
    # sees Support's calls, old and new, and no longer Billing's.
    calls = (inbound("to-cat", 9, "201"), inbound("to-dan", 9, "300"))
    world = company(calls, users=(User("ivy", MEMBER_GROUPS, MEMBER_GROUPS),),
                    memberships=(member("ivy", "Sales", primary=True),
                                 member("ivy", "Billing", period=Period(None, at(10))),
                                 member("ivy", "Support", period=Period(at(10), None))))
    stores = build(world)
    ivy = actor(stores, "ivy", world)
    assert (ivy.primary_group, ivy.groups) == ("Sales", ("Sales", "Support"))
    assert listed(stores, ivy) == ["to-cat"]
    earlier = access.load_actor(stores.state, "ivy", at=at(9))
    assert listed(stores, earlier) == ["to-dan"]


def test_an_extension_reassigned_to_another_user(build) -> None:
    # 160 was jon's until 10:00, then kim's: each owns the calls from their own time, and the tags follow.
    world = company(
        (inbound("on-160-early", 9, "160"), inbound("on-160-late", 10, "160")),
        users=(User("jon", OWN, OWN), User("kim", OWN, OWN)),
        assignments=(ext("160", "jon", Period(None, at(10))), ext("160", "kim", Period(at(10), None))),
        memberships=(member("jon", "Sales", primary=True), member("kim", "Support", primary=True)),
    )
    stores = build(world)
    jon, kim = actor(stores, "jon", world), actor(stores, "kim", world)
    assert listed(stores, jon) == ["on-160-early"]
    assert listed(stores, kim) == ["on-160-late"]
    assert why(stores, kim, "on-160-late") == "own extension 160"
    assert why(stores, kim, "on-160-early") is None
    assert not plays(stores, kim, "/rec/on-160-early/1.wav")
    tags = dict(stores.calls.query("SELECT source_id, array_to_string(group_tags, ',') FROM calls"))
    assert tags == {"on-160-early": "Sales", "on-160-late": "Support"}


def test_an_own_calls_user_who_transferred_the_call_away_still_hears_all_of_it(build) -> None:
    world = company((inbound("transferred", 9, "101", "201"),))  # ann answers, transfers to cat
    stores = build(world)
    ann = actor(stores, "ann", world)
    assert listed(stores, ann) == ["transferred"]
    assert plays(stores, ann, "/rec/transferred/1.wav")  # her segment
    assert plays(stores, ann, "/rec/transferred/2.wav")  # cat's segment, after the transfer
    assert why(stores, ann, "transferred") == "own extension 101"
    assert why(stores, actor(stores, "cat", world), "transferred") == "own extension 201"
    tags = stores.calls.query("SELECT group_tags FROM calls")[0][0]
    assert tags == ["Sales", "Support"]


def test_a_user_without_a_grant_gets_no_audio_and_no_hint(build) -> None:
    calls = (inbound("recorded", 9, "101", recordings=(
        Recording("/rec/a.wav", "available", segment_seq=1), Recording("/rec/p.wav", "pending_archive", segment_seq=1),
        Recording("/rec/m.wav", "missing", segment_seq=1))),)
    world = company(calls)
    stores = build(world)
    eve = actor(stores, "eve", world)
    assert not access.allowed(eve, PLAY_RECORDING)
    assert access.scope_sql(eve, PLAY_RECORDING).sql == "FALSE"
    for path in ("/rec/a.wav", "/rec/p.wav", "/rec/m.wav"):
        assert access.can_play(stores.calls, eve, recording_id(stores, path)) is None
        assert not access.could_play_once_archived(stores.calls, eve, recording_id(stores, path))
    assert listed(stores, eve) == ["recorded"]
    assert listed(stores, eve, with_recordings=True) == []
    page = reports.list_calls(stores.calls, eve, Filters(), page_size=10)
    assert list(page.rows["recording"]) == [""]
    assert why(stores, eve, "recorded", PLAY_RECORDING) is None


def test_a_pending_recording_is_never_playable_and_announced_only_to_who_could_play_it(build) -> None:
    calls = (inbound("waiting", 9, "101", recordings=(Recording("/rec/w.wav", "pending_archive", segment_seq=1),)),)
    world = company(calls)
    stores = build(world)
    rec = recording_id(stores, "/rec/w.wav")
    could = {u.login: access.could_play_once_archived(stores.calls, actor(stores, u.login, world), rec)
             for u in world.directory.users}
    assert could == {"ann": True, "bob": True, "cat": False, "dan": True, "eve": False, "gus": False, "fay": False}
    assert all(access.can_play(stores.calls, actor(stores, u.login, world), rec) is None for u in world.directory.users)
    assert listed(stores, actor(stores, "ann", world), with_recordings=True) == []
    markers = {login: list(reports.list_calls(stores.calls, actor(stores, login, world), Filters()).rows["recording"])
               for login in ("ann", "eve", "gus")}
    assert markers == {"ann": ["pending archive"], "eve": [""], "gus": [""]}
    # The archive job marks it available (here: directly, in a write generation): now it plays, for the same users.
    with stores.calls.write() as con:
        con.execute("UPDATE recordings SET state = 'available'")
        staging.refresh_recording_counts(con, "SELECT call_id FROM calls")
    playable = {u.login for u in world.directory.users
                if access.can_play(stores.calls, actor(stores, u.login, world), rec) is not None}
    assert playable == {login for login, yes in could.items() if yes}
    assert not access.could_play_once_archived(stores.calls, actor(stores, "ann", world), rec)


def test_out_of_scope_answers_exactly_like_nonexistent(build) -> None:
    world = company(SCOPE_CALLS)
    stores = build(world)
    ann = actor(stores, "ann", world)
    other = recording_id(stores, "/rec/to-dan/1.wav")
    for rec in (other, 10**9, -1, 2**70, "1", None, True, 1.0):
        assert access.can_play(stores.calls, ann, rec) is None
        assert access.could_play_once_archived(stores.calls, ann, rec) is False
    for call in (call_id(stores, "to-dan"), 10**9, 2**70, "1", None):
        assert access.why(stores.calls, ann, call, VIEW_CALLS) is None
        assert access.why(stores.calls, ann, call, PLAY_RECORDING) is None
    assert access.can_play(stores.calls, ann, np.int64(recording_id(stores, "/rec/to-ann/1.wav"))) is not None


def test_a_revoked_grant_is_honoured_on_the_next_request(build) -> None:
    world = company(SCOPE_CALLS)
    stores = build(world)
    wb = Workbench(stores, "ann")
    rec = recording_id(stores, "/rec/to-ann/1.wav")
    assert access.can_play(stores.calls, wb.actor, rec) is not None
    set_grants(stores.state, "ann", playback=NONE)
    assert access.can_play(stores.calls, wb.actor, rec) is None
    assert wb.why(call_id(stores, "to-ann")) == {"view": "Own Calls: you took part in this call (extension 101)",
                                                 "play": None}
    set_grants(stores.state, "ann", playback=ALL, report_scope=ALL)
    assert access.can_play(stores.calls, wb.actor, recording_id(stores, "/rec/to-dan/1.wav")) is not None
    assert len(wb.calls()) == len(SCOPE_CALLS)


def test_an_inactive_user_is_refused_but_their_calls_keep_their_tags(build, tmp_path: Path) -> None:
    world = company((inbound("lea-call", 9, "170"),), users=(User("lea", ALL, ALL, active=False),),
                    assignments=(ext("170", "lea"),), memberships=(member("lea", "Sales", primary=True),))
    stores = build(world)
    with pytest.raises(UnknownUser):
        access.load_actor(stores.state, "lea")
    with pytest.raises(UnknownUser):
        Workbench(stores, "lea")
    assert listed(stores, actor(stores, "bob", world)) == ["lea-call"]  # still tagged Sales
    result = subprocess.run([sys.executable, "-m", "dimnb", "why", str(call_id(stores, "lea-call")), "--as", "lea",
                             "--data", str(stores.data.root)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no active user with login 'lea'" in result.stderr


def test_cli_why_says_not_permitted_alike_for_a_forbidden_and_a_missing_call(build) -> None:
    world = company(SCOPE_CALLS)
    stores = build(world)

    def cli_why(call: int, login: str) -> str:
        result = subprocess.run([sys.executable, "-m", "dimnb", "why", str(call), "--as", login,
                                 "--data", str(stores.data.root)], capture_output=True, text=True, cwd=ROOT, check=True)
        return result.stdout

    forbidden = cli_why(call_id(stores, "to-dan"), "ann")
    missing = cli_why(10**9, "ann")
    assert forbidden == missing == "view: not permitted\nplay: not permitted\n"
    assert cli_why(call_id(stores, "to-ann"), "bob") == (
        "view: Primary Group: the call is tagged with your primary group Sales\n"
        "play: Primary Group: the call is tagged with your primary group Sales\n"
    )
    assert cli_why(call_id(stores, "to-ann"), "eve") == "view: All Calls: every call\nplay: not permitted\n"


def test_the_lowest_room_explains_a_call_with_two_conferences(build) -> None:
    call = Call("two-rooms", at(9), (Segment("talk", None, "300"),), conferences=(
        Conference("two-rooms/b", "902", ("101",)), Conference("two-rooms/a", "901", ("101", "201"))))
    world = company((call,))
    stores = build(world)
    assert why(stores, actor(stores, "ann", world), "two-rooms") == "conference room 901"
    assert why(stores, actor(stores, "cat", world), "two-rooms") == "conference room 901"
    assert stores.calls.query("SELECT participant_logins FROM calls")[0][0] == ["ann", "cat", "dan"]


# ---------------------------------------------------------------------------- a conference, through the 3CX v20 loader

V20_HEADER = ("cdr_id,call_history_id,main_call_history_id,source_entity_type,source_dn_number,source_dn_type,"
              "source_participant_name,destination_entity_type,destination_dn_number,destination_dn_type,"
              "destination_dn_name,cdr_started_at,cdr_ended_at,cdr_answered_at")


def test_a_conference_joined_late_and_left_early_opens_the_whole_recording(stores: Stores, tmp_path: Path) -> None:
    directory = {
        "groups": [{"name": "Sales"}, {"name": "Support"}],
        "users": [
            {"login": "ann", "name": "Ann", "playback": "own", "extensions": ["101"],
             "groups": [{"group": "Sales", "primary": True}]},
            {"login": "bob", "name": "Bob", "playback": "own", "extensions": ["102"],
             "groups": [{"group": "Sales", "primary": True}]},
            {"login": "cat", "name": "Cat", "report_scope": "member_groups", "playback": "member_groups",
             "extensions": ["201"], "groups": [{"group": "Support", "primary": True}, {"group": "Sales"}]},
            {"login": "dan", "name": "Dan", "playback": "own", "extensions": ["300"],
             "groups": [{"group": "Support", "primary": True}]},
        ],
    }
    (tmp_path / "directory.json").write_text(json.dumps(directory))
    import_directory(stores.state, tmp_path / "directory.json")
    pbx = tmp_path / "pbx"
    (pbx / "Recordings" / "101").mkdir(parents=True)
    rows = [  # ann opens room 900 at 10:00 for 30 minutes; bob joins at 10:10 and leaves at 10:15
        "c1,h1,h1,extension,101,extension,Ann,conference,900,conference,Conference 900,"
        "2026-03-02 10:00:00,2026-03-02 10:30:00,2026-03-02 10:00:01",
        "c2,h2,h1,extension,102,extension,Bob,conference,900,conference,Conference 900,"
        "2026-03-02 10:10:00,2026-03-02 10:15:00,2026-03-02 10:10:01",
        "c3,h3,h3,extension,300,extension,Dan,extension,101,extension,Ann,"
        "2026-03-02 11:00:00,2026-03-02 11:01:00,2026-03-02 11:00:02",
    ]
    (pbx / "cdroutput.csv").write_text(V20_HEADER + "\n" + "\n".join(rows) + "\n")
    wav = "101/[Ann]_101-900_20260302100000(1).wav"
    soundfile.write(pbx / "Recordings" / wav, np.zeros(8000, dtype="int16"), 8000)
    (pbx / "cdrrecordings.csv").write_text(f"cdr_id,cdr_participant_id,recording_url\nc1,p1,{wav}\n")
    summary = load_3cx(stores, [pbx])
    assert summary.total("calls_added") == 2 and summary.total("recordings_linked") == 1

    conference_call = stores.calls.query("SELECT call_id FROM conferences")[0][0]
    rec, state, conf = stores.calls.query("SELECT recording_id, state, conference_id FROM recordings")[0]
    assert state == "pending_archive" and conf is not None
    bob, dan, cat = (access.load_actor(stores.state, x) for x in ("bob", "dan", "cat"))
    assert access.can_play(stores.calls, bob, rec) is None  # not before the archive run...
    assert access.could_play_once_archived(stores.calls, bob, rec)  # ...which bob may be told about
    assert not access.could_play_once_archived(stores.calls, dan, rec)
    with stores.calls.write() as con:
        con.execute("UPDATE recordings SET state = 'available'")
        staging.refresh_recording_counts(con, "SELECT call_id FROM calls")
    decision = access.can_play(stores.calls, bob, rec)
    assert decision is not None and decision.call_id == conference_call
    assert decision.reason == access.Reason("conference", "room 900")
    assert str(decision.reason) == "Own Calls: you took part in its conference (room 900)"
    assert access.can_play(stores.calls, dan, rec) is None  # dan only called ann later, in another call
    assert access.can_play(stores.calls, cat, rec).reason == access.Reason("member_group", "Sales")


# ---------------------------------------------------------------------------- plumbing


def test_scope_sql_binds_values_as_parameters(build) -> None:
    odd = "O'Neil & Co') OR TRUE OR ('"
    world = company((inbound("q", 9, "180"),), users=(User("oli", MEMBER_GROUPS, MEMBER_GROUPS),),
                    assignments=(ext("180", "oli"),), groups=(odd,),
                    memberships=(member("oli", odd, primary=True), member("cat", odd)))
    stores = build(world)
    who = actor(stores, "cat", world)
    fragment = access.scope_sql(who, VIEW_CALLS)
    assert "O'Neil" not in fragment.sql and "Support" not in fragment.sql and "cat" not in fragment.sql
    assert set(fragment.params.values()) == {"cat", odd, "Billing", "Support"}
    assert listed(stores, who) == ["q"]
    assert why(stores, who, "q") == f"member_group {odd}"
    assert listed(stores, actor(stores, "ann", world)) == []
    with pytest.raises(ValueError):
        access.scope_sql(who, VIEW_CALLS, calls="c; DROP TABLE calls")


def test_the_playback_condition_is_the_narrower_scope(build) -> None:
    world = company(SCOPE_CALLS)
    stores = build(world)
    for login, narrower in (("gus", OWN), ("fay", OWN), ("bob", PRIMARY_GROUP), ("dan", ALL)):
        who = actor(stores, login, world)
        expected = access.scope_sql(access.Actor(**{**who.__dict__, "report_scope": narrower}), VIEW_CALLS)
        assert access.scope_sql(who, PLAY_RECORDING) == expected, login


def test_migrating_a_v1_call_store_fills_the_per_call_arrays(tmp_path: Path) -> None:
    import duckdb

    con = duckdb.connect(str(tmp_path / "v1.duckdb"))
    con.execute(callschema.MIGRATIONS[1])
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO calls (call_id, system, source_id, start_time, end_time, direction, outcome, "
                "segment_count) VALUES (1, '3cx', 'a', now(), now(), 'internal', 'answered', 1), "
                "(2, '3cx', 'b', now(), now(), 'internal', 'answered', 1)")
    con.execute("INSERT INTO call_users VALUES (1, 'bob', 'segment'), (1, 'ann', 'conference')")
    con.execute("INSERT INTO call_tags VALUES (1, 'Support'), (1, 'Sales')")
    assert callschema.migrate(con) == 1
    assert con.execute("SELECT call_id, participant_logins, group_tags FROM calls ORDER BY 1").fetchall() == [
        (1, ["ann", "bob"], ["Sales", "Support"]), (2, [], [])]
    assert callschema.schema_version(con) == callschema.SCHEMA_VERSION


def test_a_directory_import_rederives_the_call_arrays(build, tmp_path: Path) -> None:
    world = company((inbound("to-150", 9, "150"),), users=(User("hal", OWN, OWN),),
                    memberships=(member("hal", "Support", primary=True),))
    stores = build(world)
    assert stores.calls.query("SELECT participant_logins, group_tags FROM calls") == [([], [])]
    moved = company((), users=(User("hal", OWN, OWN),), assignments=(ext("150", "hal"),),
                    memberships=(member("hal", "Support", primary=True),))
    (tmp_path / "d.json").write_text(json.dumps(access_worlds.directory_json(moved.directory)))
    import_directory(stores.state, tmp_path / "d.json")
    with stores.calls.write() as con:
        assert sync_directory(con, stores)
    assert stores.calls.query("SELECT participant_logins, group_tags FROM calls") == [(["hal"], ["Support"])]
    assert listed(stores, actor(stores, "hal", world)) == ["to-150"]


def _in_call_order(stores: Stores) -> bool:
    """The calls table is stored in call_id order (zone maps on start time and call id stay tight)."""
    stored = [r[0] for r in stores.calls.cursor().execute("SET threads = 1").execute("SELECT call_id FROM calls").fetchall()]
    return stored == sorted(stored)


def test_loading_and_rederiving_keep_the_calls_in_call_order(build, tmp_path: Path) -> None:
    calls = tuple(inbound(f"c{i:02d}", i % 12, ("101", "201", "300", "102")[i % 4]) for i in range(40))
    world = company(calls)
    stores = build(world)
    assert _in_call_order(stores)
    assert stores.calls.query("SELECT count(*) FROM calls WHERE len(participant_logins) = 1")[0][0] == 40
    # ann moves from Sales to Support at 06:00: a directory import re-tags her later calls, rewriting the arrays.
    moved = company((), memberships=(), now=11)
    memberships = tuple(m for m in moved.directory.memberships if m.login != "ann") + (
        member("ann", "Sales", primary=True, period=Period(None, at(6))),
        member("ann", "Support", primary=True, period=Period(at(6), None)))
    directory = Directory(moved.directory.users, GROUPS, moved.directory.assignments, memberships)
    (tmp_path / "moved.json").write_text(json.dumps(access_worlds.directory_json(directory)))
    import_directory(stores.state, tmp_path / "moved.json")
    with stores.calls.write() as con:
        assert sync_directory(con, stores)
    assert _in_call_order(stores)
    tags = dict(stores.calls.query("SELECT source_id, group_tags FROM calls WHERE list_contains(participant_logins, 'ann')"))
    assert tags == {f"c{i:02d}": ["Sales"] if i % 12 < 6 else ["Support"] for i in range(0, 40, 4)}
    later = World(directory, calls, now=at(11))
    assert access_worlds.compare(later, stores) == []
