"""The Call Session model on the demo company: facts, alignment, scope, and what never leaks."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import soundfile as sf

from demo_fixtures import demo_built, demo_pending, demo_playable  # noqa: F401  (fixtures)
from dimnb import access, sessions
from dimnb.demo import tonecode
from dimnb.directory import set_grants
from dimnb.errors import NotFound
from dimnb.store.stores import Stores
from dimnb.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]


def _open(data_dir: Path) -> Stores:
    return Stores.open(str(data_dir))


def _session(stores: Stores, login: str, call_id: int) -> sessions.Session | None:
    return sessions.build_session(stores.calls, access.load_actor(stores.state, login), call_id, state=stores.state)


def _transferred_recorded_call(stores: Stores) -> int:
    return stores.calls.query(
        """
        SELECT c.call_id FROM calls c
        WHERE (SELECT count(*) FROM recordings r WHERE r.call_id = c.call_id AND r.segment_seq IS NOT NULL) >= 2
          AND EXISTS (SELECT 1 FROM segments s WHERE s.call_id = c.call_id AND s.reason = 'transfer')
          AND EXISTS (SELECT 1 FROM segments s WHERE s.call_id = c.call_id AND s.kind = 'queue')
        ORDER BY c.call_id LIMIT 1
        """
    )[0][0]


def _recorded_conference(stores: Stores) -> tuple[int, str]:
    """A recorded conference call, and a member login who joined after the recording started."""
    return tuple(stores.calls.query(
        """
        SELECT r.call_id, min(m.login) FROM recordings r
        JOIN conference_members m ON m.conference_id = r.conference_id
        WHERE r.conference_id IS NOT NULL AND m.login IS NOT NULL AND m.join_time > r.start_time + INTERVAL 2 SECOND
          AND m.login NOT IN ('alex', 'maria', 'paul')
        GROUP BY r.call_id ORDER BY r.call_id LIMIT 1
        """
    )[0])


def _unrecorded_call(stores: Stores, tagged: str) -> int:
    return stores.calls.query(
        "SELECT c.call_id FROM calls c JOIN call_tags t USING (call_id) WHERE t.group_name = $g "
        "AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.call_id = c.call_id) ORDER BY c.call_id LIMIT 1",
        {"g": tagged},
    )[0][0]


# ------------------------------------------------------------------------------------------ facts


def test_transferred_call_has_ordered_segments_parties_events_and_aligned_recordings(demo_playable: Path) -> None:
    stores = _open(demo_playable)
    call_id = _transferred_recorded_call(stores)
    s = _session(stores, "alex", call_id)
    assert s is not None and s.call_id == call_id
    segs = s.segments
    assert [g.seq for g in segs] == list(range(1, len(segs) + 1)) == list(range(1, s.summary.segment_count + 1))
    assert all(g.start_seconds is not None and g.end_seconds is not None for g in segs)
    assert segs[0].start_seconds == pytest.approx(0.0, abs=1e-3)
    for a, b in zip(segs, segs[1:]):
        assert a.start_seconds <= b.start_seconds
    assert all(g.time_quality == "exact" and not g.estimated for g in segs)
    assert "queue" in {g.kind for g in segs}

    # extensions resolved to users (directory at the call's start, names from the state store)
    agents = [g.target for g in segs if g.kind == "talk"]
    assert len(agents) >= 2 and all(p.login and p.name for p in agents)
    names = dict(stores.state.connection().execute("SELECT login, name FROM users").fetchall())
    assert all(p.name == names[p.login] for p in agents)
    assert {p.login for p in agents} <= {p.login for p in s.participants}
    assert not any(p.type in ("queue", "ivr") for p in s.participants)

    kinds = [e.kind for e in s.events]
    assert "queue" in kinds and "transfer" in kinds
    transfer = next(e for e in s.events if e.kind == "transfer")
    seg = next(g for g in segs if g.reason == "transfer")
    assert transfer.at_seconds == pytest.approx(seg.start_seconds)

    # one recording per talk segment, on the call's clock, starting when the leg was answered
    recs = [r for r in s.recordings if r.segment_seq is not None]
    assert len(recs) >= 2 and all(r.playable and r.note is None for r in recs)
    for r in recs:
        g = s.segment(r.segment_seq)
        assert g is not None and g.kind == "talk"
        assert r.offset_seconds == pytest.approx(g.answer_seconds, abs=1e-3)
        assert r.end_seconds == pytest.approx(g.end_seconds, abs=0.01)
        assert r.label.startswith(f"Segment {g.seq}: ")
        assert r.download_name.endswith(f"_seg{g.seq}.wav")
    assert s.why_play == "All Calls: every call"
    json.dumps(s.to_dict())  # JSON-able


def test_conference_members_join_and_leave_and_a_late_joiner_plays_the_whole_recording(demo_playable: Path) -> None:
    stores = _open(demo_playable)
    call_id, login = _recorded_conference(stores)
    set_grants(stores.state, login, playback="own", report_scope="own")
    s = _session(stores, login, call_id)
    assert s is not None
    (conf,) = s.conferences
    assert len(conf.members) >= 2
    me = next(m for m in conf.members if m.party.login == login)
    assert me.join_seconds > 0 and me.leave_seconds > me.join_seconds
    joins = [e for e in s.events if e.kind == "join"]
    leaves = [e for e in s.events if e.kind == "leave"]
    assert len(joins) == len(leaves) == len(conf.members)
    assert [e.at_seconds for e in s.events] == sorted(e.at_seconds for e in s.events)
    (rec,) = s.recordings
    assert rec.conference_id == conf.conference_id and rec.segment_seq is None
    assert rec.offset_seconds <= me.join_seconds and rec.end_seconds >= me.leave_seconds  # the whole conference
    assert rec.playable and rec.label.startswith("Conference")
    assert rec.download_name.endswith("_conf.wav")
    assert s.why_play and s.why_play.startswith("Own Calls")


def test_pending_recordings_are_flagged_only_for_who_could_play_them(demo_pending: Path) -> None:
    stores = _open(demo_pending)
    call_id = _transferred_recorded_call(stores)
    s = _session(stores, "alex", call_id)
    assert s.recordings and all(r.state == "pending_archive" and not r.playable for r in s.recordings)
    assert all(r.note == sessions.PENDING_NOTE for r in s.recordings)
    assert s.playable == () and s.locate(s.recordings[0].offset_seconds + 0.5) is None
    assert "available after the next archive run" in s.to_text()
    # audrey lists every call but may play none: no trace of the pending recordings
    audrey = _session(stores, "audrey", call_id)
    assert audrey is not None and audrey.recordings == () and audrey.why_play is None


def _leaks(d: dict) -> set[str]:
    text = json.dumps(d)
    return {word for word in ("recording", "pending", "archive", "available", "playable") if word in text}


@pytest.mark.parametrize("fixture", ["demo_pending", "demo_playable"])
def test_not_permitted_looks_exactly_like_unrecorded(fixture: str, request: pytest.FixtureRequest) -> None:
    stores = _open(request.getfixturevalue(fixture))
    recorded = _transferred_recorded_call(stores)
    tags = [r[0] for r in stores.calls.query("SELECT group_name FROM call_tags WHERE call_id = $c", {"c": recorded})]
    unrecorded = _unrecorded_call(stores, tags[0])
    for login in ("audrey", "nina", "sam"):  # report scope wide enough, playback none / none / own (not theirs)
        actor = access.load_actor(stores.state, login)
        a = sessions.build_session(stores.calls, actor, recorded, state=stores.state)
        b = sessions.build_session(stores.calls, actor, unrecorded, state=stores.state)
        if a is None or b is None:
            continue  # this login cannot list one of the calls: covered by the scope test
        da, db = a.to_dict(), b.to_dict()
        assert da["recordings"] == db["recordings"] == []
        assert da["why"] == db["why"] == {"play": None}
        assert set(da) == set(db) and set(da["summary"]) == set(db["summary"])
        assert _leaks({k: v for k, v in da.items() if k != "recordings"}) == set()
        assert "Recordings" not in a.to_text()
    sam = _session(stores, "sam", recorded)
    assert sam is not None, "sam (Sales lead) lists the call, so the test above compared something"


def test_out_of_scope_is_none_like_nonexistent(demo_playable: Path) -> None:
    stores = _open(demo_playable)
    olivia = access.load_actor(stores.state, "olivia")
    theirs = stores.calls.query("SELECT min(call_id) FROM call_users WHERE login = 'olivia'")[0][0]
    other = stores.calls.query(
        "SELECT min(call_id) FROM calls WHERE call_id NOT IN (SELECT call_id FROM call_users WHERE login = 'olivia')"
    )[0][0]
    assert sessions.build_session(stores.calls, olivia, theirs) is not None
    assert sessions.build_session(stores.calls, olivia, other) is None
    assert sessions.build_session(stores.calls, olivia, 10**12) is None
    for forged in ("1", 1.0, True, None, -1):
        assert sessions.build_session(stores.calls, olivia, forged) is None  # type: ignore[arg-type]
    wb = Workbench(stores, "olivia")
    with pytest.raises(NotFound) as out_of_scope:
        wb.session(other)
    with pytest.raises(NotFound) as absent:
        wb.session(10**12)
    assert str(out_of_scope.value).replace(str(other), "N") == str(absent.value).replace(str(10**12), "N")


def test_session_builds_without_the_state_store_keeping_pbx_names(demo_playable: Path) -> None:
    stores = _open(demo_playable)
    call_id = _transferred_recorded_call(stores)
    bare = sessions.build_session(stores.calls, access.load_actor(stores.state, "alex"), call_id)
    full = _session(stores, "alex", call_id)
    assert [p.login for p in bare.participants] == [p.login for p in full.participants]
    assert all(p.name for p in bare.participants)


# ------------------------------------------------------------------------------------------ the clock and the audio


def _samples(stores: Stores, recording_id: int):
    decision = access.can_play(stores.calls, access.load_actor(stores.state, "alex"), recording_id)
    data, rate = sf.read(str(sessions.recording_path(stores.data, decision)), dtype="int16")
    return data, rate


def test_a_moment_of_the_call_plays_that_second_of_the_right_segment(demo_playable: Path) -> None:
    """Tone code: call-clock time → (recording, position) → the file at that position says which second it is."""
    stores = _open(demo_playable)
    call_id = _transferred_recorded_call(stores)
    s = _session(stores, "alex", call_id)
    code = tonecode.call_code(s.summary.source_id)
    for rec in s.playable:
        data, rate = _samples(stores, rec.recording_id)
        for fraction in (0.1, 0.5, 0.9):
            call_t = rec.offset_seconds + fraction * rec.duration_seconds
            located, position = s.locate(call_t)
            assert located.recording_id == rec.recording_id
            assert position == pytest.approx(call_t - rec.offset_seconds)
            heard = tonecode.decode_at(data, rate, position)
            assert heard.call_code == code
            assert heard.segment_tag == min(rec.segment_seq, 7)
            assert heard.second == math.floor(position)
    gaps = [g.start_seconds + 0.5 for g in s.segments if g.kind in ("ivr", "queue")]
    assert all(s.locate(t) is None for t in gaps)  # nothing was recorded while the caller waited


def test_conference_recording_is_tagged_zero_and_starts_at_the_conference(demo_playable: Path) -> None:
    stores = _open(demo_playable)
    call_id, _login = _recorded_conference(stores)
    s = _session(stores, "alex", call_id)
    (rec,) = s.recordings
    data, rate = _samples(stores, rec.recording_id)
    heard = tonecode.decode_at(data, rate, 3.5)
    assert heard.segment_tag == 0 and heard.second == 3
    assert heard.call_code == tonecode.call_code(s.summary.source_id)


# ------------------------------------------------------------------------------------------ download names


def test_download_name_is_self_explaining_and_safe() -> None:
    t = datetime(2025, 1, 3, 10, 15, 0, tzinfo=timezone.utc)
    assert sessions.download_name(t, "0123456789", "Ext.610", segment_seq=2) == \
        "2025-01-03T10-15-00Z_0123456789_to_Ext.610_seg2.wav"
    paris = t.astimezone(timezone(timedelta(hours=1)))
    assert sessions.download_name(paris, "+44 20 7946 0000", "Conference.900", conference=True, extension="MP3") == \
        "2025-01-03T10-15-00Z_+44-20-7946-0000_to_Conference.900_conf.mp3"
    naive = datetime(2025, 1, 3, 10, 15, 0)
    assert sessions.download_name(naive, None, "../../etc/passwd", extension="w/a?v") == \
        "2025-01-03T10-15-00Z_unknown_to_etc-passwd.wav"
    weird = sessions.download_name(t, "Zoë \"Boss\" <x>", "a\nb", segment_seq=1, extension=None)
    assert weird == "2025-01-03T10-15-00Z_Zo-Boss-x_to_a-b_seg1.bin"
    assert len(sessions.download_name(t, "9" * 500, "8" * 500)) < 120


def test_download_name_for_follows_can_play(demo_playable: Path, demo_pending: Path) -> None:
    stores = _open(demo_playable)
    call_id = _transferred_recorded_call(stores)
    rec = _session(stores, "alex", call_id).recordings[0]
    alex, audrey = (access.load_actor(stores.state, x) for x in ("alex", "audrey"))
    assert sessions.download_name_for(stores.calls, alex, rec.recording_id) == rec.download_name
    assert sessions.download_name_for(stores.calls, audrey, rec.recording_id) is None
    pending = _open(demo_pending)
    assert sessions.download_name_for(pending.calls, access.load_actor(pending.state, "alex"), rec.recording_id) is None


def test_recording_path_stays_inside_the_archive(demo_playable: Path) -> None:
    stores = _open(demo_playable)
    reason = access.Reason("all")
    inside = access.PlayDecision(1, 1, "archive", "2026/11/a.wav", "a.wav", "wav", 1, None, reason)
    assert sessions.recording_path(stores.data, inside) == stores.data.archive_dir.resolve() / "2026/11/a.wav"
    escape = access.PlayDecision(1, 1, "archive", "../state.sqlite", "a.wav", "wav", 1, None, reason)
    with pytest.raises(ValueError):
        sessions.recording_path(stores.data, escape)


# ------------------------------------------------------------------------------------------ CLI


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dimnb", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_cli_session_json_text_and_not_found(demo_playable: Path) -> None:
    stores = _open(demo_playable)
    call_id = _transferred_recorded_call(stores)
    out = _cli("session", str(call_id), "--as", "alex", "--data", str(demo_playable), "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["call_id"] == call_id and len(data["recordings"]) >= 2
    assert "source_path" not in out.stdout and str(demo_playable) not in out.stdout
    text = _cli("session", str(call_id), "--as", "alex", "--data", str(demo_playable))
    assert text.returncode == 0 and f"Call {call_id}" in text.stdout and "Recordings you may play" in text.stdout
    other = stores.calls.query(
        "SELECT min(call_id) FROM calls WHERE call_id NOT IN (SELECT call_id FROM call_users WHERE login = 'olivia')"
    )[0][0]
    hidden = _cli("session", str(other), "--as", "olivia", "--data", str(demo_playable))
    absent = _cli("session", "999999", "--as", "olivia", "--data", str(demo_playable))
    assert hidden.returncode == absent.returncode == 1
    assert hidden.stderr.replace(str(other), "N") == absent.stderr.replace("999999", "N")
    assert "Traceback" not in hidden.stderr
