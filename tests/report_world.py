"""A small hand-written company for the reports: eight calls whose every report number is worked out by hand.

The world is a reference-model world (tests/access_reference.py), put into a
real data directory by ``access_worlds.build``; the call facts the access
rule does not model (direction, outcome, ring and talk, numbers) are then
set on the call rows, as a loader would have written them.

Monday 2 March 2026 (UTC), and one call the Sunday before::

    key  time   direction  from            to              parties      outcome    ring talk  recording
    c0   Sun 10 inbound    +44 20 7000 0   101 ann         ann          answered      8   20
    c1   08:00  inbound    +44 20 1111     101 ann         ann          answered     10  100  available
    c2   09:00  inbound    0044 20 1111    102 bob         bob          missed       30    0
    c3   09:30  outbound   101 Ann Able    +442 01111      ann          answered      5   60  (call-back of c2)
    c4   10:00  inbound    +44 20 2222     103 cat         cat          abandoned    40    0
    c5   11:00  inbound    +44 20 2222     103 cat         cat          answered     25   50  (called again, c4)
    c6   12:00  internal   101             102             ann, bob     answered      4   30  pending
    c7   13:00  inbound    +44 20 3333     102 bob         bob          voicemail    20    0

ann and bob are in Sales (primary), cat in Support. Viewers: ann All Calls
(plays all), bob Own Calls (plays own), cat Primary Group (no playback).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import access_reference as ref
from access_worlds import build
from dimnb.store.stores import Stores

MONDAY = datetime(2026, 3, 2, tzinfo=timezone.utc)


def _at(hour: float, day: datetime = MONDAY) -> datetime:
    return day + timedelta(hours=hour)


ALWAYS = ref.Period()
DIRECTORY = ref.Directory(
    users=(ref.User("ann", ref.ALL, ref.ALL), ref.User("bob", ref.OWN, ref.OWN),
           ref.User("cat", ref.PRIMARY_GROUP, ref.NONE)),
    groups=("Sales", "Support"),
    assignments=(ref.Assignment("101", "ann", ALWAYS), ref.Assignment("102", "bob", ALWAYS),
                 ref.Assignment("103", "cat", ALWAYS)),
    memberships=(ref.Membership("ann", "Sales", True, ALWAYS), ref.Membership("bob", "Sales", True, ALWAYS),
                 ref.Membership("cat", "Support", True, ALWAYS)),
)

# key: (start, from_ext, to_ext, direction, from_party, from_name, to_party, outcome, ring, talk, recording state)
FACTS: dict[str, tuple[Any, ...]] = {
    "c0": (_at(10, MONDAY - timedelta(days=1)), None, "101", "inbound", "+44 20 7000 0", None, "101", "answered",
           8, 20, None),
    "c1": (_at(8), None, "101", "inbound", "+44 20 1111", "Chris Caller", "101", "answered", 10, 100, "available"),
    "c2": (_at(9), None, "102", "inbound", "0044 20 1111", "Chris Caller", "102", "missed", 30, 0, None),
    "c3": (_at(9.5), "101", None, "outbound", "101", "Ann Able", "+442 01111", "answered", 5, 60, None),
    "c4": (_at(10), None, "103", "inbound", "+44 20 2222", "Dana Dial", "103", "abandoned", 40, 0, None),
    "c5": (_at(11), None, "103", "inbound", "+44 20 2222", "Dana Dial", "103", "answered", 25, 50, None),
    "c6": (_at(12), "101", "102", "internal", "101", "Ann Able", "102", "answered", 4, 30, "pending_archive"),
    "c7": (_at(13), None, "102", "inbound", "+44 20 3333", "Eve Early", "102", "voicemail", 20, 0, None),
}


def world() -> ref.World:
    calls = []
    for key, (start, from_ext, to_ext, *_rest, state) in FACTS.items():
        recordings = (ref.Recording(f"/rec/{key}.wav", state, segment_seq=1),) if state else ()
        calls.append(ref.Call(key, start, (ref.Segment("talk", from_ext, to_ext),), (), recordings))
    return ref.World(DIRECTORY, tuple(calls), now=_at(14))


def build_report_world(data_dir: Path) -> Stores:
    """The world in a data directory, with the call facts set on the call rows."""
    stores = build(world(), data_dir)
    with stores.calls.write() as con:
        for key, (start, _fe, _te, direction, from_party, from_name, to_party, outcome, ring, talk, _s) in FACTS.items():
            con.execute(
                "UPDATE calls SET direction = $d, from_party = $fp, from_name = $fn, to_party = $tp, outcome = $o, "
                "ring_seconds = $r, talk_seconds = $t, duration_seconds = $r + $t, "
                "answer_time = CASE WHEN $o = 'answered' THEN start_time + to_seconds($r) END "
                "WHERE source_id = $k",
                {"d": direction, "fp": from_party, "fn": from_name, "tp": to_party, "o": outcome, "r": float(ring),
                 "t": float(talk), "k": key})
    return stores


def call_ids(stores: Stores) -> dict[str, int]:
    return dict(stores.calls.query("SELECT source_id, call_id FROM calls"))
