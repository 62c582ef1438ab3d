"""Asterisk / FreePBX / PBXware exports as real deployments write them: each case a hand-written fixture.

The fixtures under tests/fixtures/asterisk/ were written for these tests from
the formats' descriptions (numbers 555-01xx and names are invented). Who took
part is checked through the store's ``participants`` view and ``access.why``,
since it decides who may list and hear a call.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dimnb import access
from dimnb.actions import VIEW_CALLS
from dimnb.errors import InvalidInput
from dimnb.ingest.asterisk import load_asterisk
from dimnb.store.stores import Stores
from directory_fixtures import give_extensions

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "asterisk"


def participants(stores: Stores, call_id: int) -> set[tuple[str | None, str | None]]:
    return set(stores.calls.query(
        "SELECT DISTINCT extension, login FROM participants WHERE call_id = $c AND extension IS NOT NULL",
        {"c": call_id}))


def call_of(stores: Stores, source_id: str) -> int:
    return stores.calls.query("SELECT call_id FROM calls WHERE source_id = $s", {"s": source_id})[0][0]


def test_pbxware_export_loads_by_its_header_and_every_conference_joiner_took_part(
        stores: Stores, tmp_path: Path) -> None:
    summary = load_asterisk(stores, [FIXTURES / "pbxware-conference.csv"], timezone="UTC")
    assert [r.kind for r in summary.results] == ["asterisk-pbxware"]
    assert "4 rows: 2 calls loaded, 0 duplicates skipped, 0 quarantined" in "\n".join(summary.lines())
    give_extensions(stores, tmp_path, {"olga": "3330", "joe": "3318", "jim": "3321", "petra": "3325"})
    room = call_of(stores, "1772442000.100")
    # each joiner is the calling side of their own row, for the time their row lasted
    assert stores.calls.query(
        "SELECT kind, from_ext, to_party, strftime(start_time, '%H:%M:%S'), strftime(end_time, '%H:%M:%S') "
        "FROM segments WHERE call_id = $c ORDER BY seq", {"c": room}) == [
        ("conference", "3330", "6112", "09:00:00", "09:20:00"),
        ("conference", "3318", "6112", "09:02:00", "09:15:00"),
        ("conference", "3321", "6112", "09:05:00", "09:20:00"),
    ]
    assert participants(stores, room) == {("3330", "olga"), ("3318", "joe"), ("3321", "jim")}
    for login in ("joe", "jim"):
        actor = access.load_actor(stores.state, login)
        assert str(access.why(stores.calls, actor, room, VIEW_CALLS)) == "Own Calls: you took part in its conference"
    # the organiser's name is not put on the joiners
    assert stores.calls.query("SELECT DISTINCT from_name FROM segments WHERE call_id = $c AND from_ext <> '3330'",
                              {"c": room}) == [(None,)]
    assert access.why(stores.calls, access.load_actor(stores.state, "petra"), room, VIEW_CALLS) is None


def test_a_call_file_originate_through_a_local_channel_is_one_call(stores: Stores) -> None:
    load_asterisk(stores, [FIXTURES / "callfile-local-pair.csv"], timezone="UTC")
    # the ;1 half (Playback) and the ;2 half (Dial to the carrier): one outbound call, no phantom
    assert stores.calls.query(
        "SELECT direction, from_party, to_party, outcome, talk_seconds, segment_count FROM calls ORDER BY start_time"
    ) == [("outbound", "200", "5550142", "answered", 30.0, 1), ("internal", "101", "102", "answered", 60.0, 1)]
    assert stores.calls.query("SELECT kind, to_party, to_type FROM segments ORDER BY call_id, seq") == [
        ("talk", "5550142", "external"), ("talk", "102", "extension")]


def test_voicemail_reached_through_press_0_reads_voicemail(stores: Stores) -> None:
    load_asterisk(stores, [FIXTURES / "voicemail-press-0.csv"], timezone="UTC")
    assert stores.calls.query("SELECT direction, outcome, final_party, talk_seconds FROM calls") == [
        ("inbound", "voicemail", "101", 0.0)]
    assert stores.calls.query("SELECT kind, to_party FROM segments ORDER BY seq") == [
        ("ringing", "101"), ("voicemail", "101")]


def test_answered_by_the_pbx_is_not_abandoned(stores: Stores) -> None:
    load_asterisk(stores, [FIXTURES / "answered-by-pbx.csv"], timezone="UTC")
    rows = stores.calls.query("SELECT to_party, outcome, talk_seconds FROM calls ORDER BY start_time")
    assert rows == [
        ("7000", "answered", 25.0),   # Background: an IVR menu
        ("7001", "answered", 12.0),   # Playback: an announcement
        ("7002", "answered", 3.0),    # Answer then Hangup
        ("*77", "answered", 20.0),    # Record
        ("7003", "answered", 15.0),   # WaitExten
        ("vmu102", "voicemail", 0.0),
        ("7000", "abandoned", 0.0),   # hung up before anything answered
    ]
    assert stores.calls.query("SELECT kind, answered FROM segments ORDER BY call_id") == [
        ("ivr", True)] * 5 + [("voicemail", True), ("ivr", False)]


def test_a_spreadsheet_resaved_export_with_day_first_dates_nulls_and_broken_clids(stores: Stores) -> None:
    summary = load_asterisk(stores, [FIXTURES / "spreadsheet-resaved.csv"], timezone="UTC")
    assert summary.total("quarantined") == 0, summary.lines()
    rows = stores.calls.query(
        "SELECT start_time, from_party, from_name, to_party, outcome FROM calls ORDER BY start_time")
    assert rows == [
        # 13/9 proves the file writes the day first: 1/9 is the 1st of September
        (datetime(2026, 9, 1, 16, 33, 1, tzinfo=timezone.utc), "1115", "Rita Ulm", "1120", "answered"),
        (datetime(2026, 9, 2, 8, 5, 10, tzinfo=timezone.utc), "113", "User 9", "5550188", "answered"),
        (datetime(2026, 9, 13, 9, 41, tzinfo=timezone.utc), "1120", "Sam Soft", "1115", "missed"),
    ]
    # NULL is an empty cell, not a name or an account
    assert stores.calls.query("SELECT count(*) FROM segments WHERE 'NULL' IN (from_name, to_name, to_party)") == [(0,)]


def test_ambiguous_dates_are_refused_with_an_example_unless_the_order_is_given(stores: Stores) -> None:
    path = FIXTURES / "spreadsheet-ambiguous.csv"
    with pytest.raises(InvalidInput, match=r"dates like '1/9/2026 16:33:01' \(line 2\) could be day/month or "
                                           r"month/day.*--date-order dmy or mdy"):
        load_asterisk(stores, [path], timezone="UTC")
    assert stores.calls.query("SELECT count(*) FROM calls") == [(0,)]
    load_asterisk(stores, [path], timezone="UTC", date_order="mdy")
    assert [r[0].date().isoformat() for r in stores.calls.query("SELECT start_time FROM calls ORDER BY 1")] == [
        "2026-01-09", "2026-02-09"]
    with pytest.raises(InvalidInput, match="--date-order"):
        load_asterisk(stores, [path], timezone="UTC", date_order="dym")


def test_the_command_line_takes_date_order(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = [sys.executable, "-m", "dimnb"]
    subprocess.run([*run, "init", "--data", str(data)], check=True, capture_output=True)
    refused = subprocess.run([*run, "load", "asterisk", str(FIXTURES / "spreadsheet-ambiguous.csv"), "--data",
                              str(data), "--timezone", "UTC"], capture_output=True, text=True)
    assert refused.returncode != 0 and "--date-order" in refused.stderr + refused.stdout
    done = subprocess.run([*run, "load", "asterisk", str(FIXTURES / "spreadsheet-ambiguous.csv"), "--data", str(data),
                           "--timezone", "UTC", "--date-order", "dmy"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "2 rows: 2 calls loaded" in done.stdout
