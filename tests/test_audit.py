"""The playback audit trail: one event per play or download, denied attempts, the hash chain, export."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dimnb import audit, audit_checkpoints
from dimnb.errors import InvalidInput, NotFound
from dimnb.ingest import tagging
from dimnb.store.statestore import MIGRATIONS, StateStore
from dimnb.store.stores import Stores

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)

# call 1: ann's, tagged Sales, recording 11 (available)
# call 2: dan's, tagged Billing, recordings 21 (available) and 22 (waiting for the archive)
CALLS = [(1, "ann", "Sales"), (2, "dan", "Billing")]
RECORDINGS = [(11, 1, "available"), (21, 2, "available"), (22, 2, "pending_archive")]


@pytest.fixture
def world(stores_with_directory: Stores, tmp_path: Path) -> Stores:
    """Two calls with recordings, written through the call store's own writer."""
    stores = stores_with_directory
    with stores.calls.write() as con:
        for call_id, login, group in CALLS:
            con.execute(
                "INSERT INTO calls (call_id, system, source_id, start_time, end_time, direction, outcome, "
                "segment_count, recordings_total) VALUES ($id, '3cx', $src, $start, $end, 'inbound', 'answered', 1, 1)",
                {"id": call_id, "src": f"c{call_id}", "start": T0 - timedelta(days=3),
                 "end": T0 - timedelta(days=3) + timedelta(minutes=5)},
            )
            con.execute("INSERT INTO call_users VALUES ($id, $login, 'segment')", {"id": call_id, "login": login})
            con.execute("INSERT INTO call_tags VALUES ($id, $group)", {"id": call_id, "group": group})
        tagging.sync_call_arrays(con)  # the access rule reads the per-call copy of call_users / call_tags
        for recording_id, call_id, state in RECORDINGS:
            con.execute(
                "INSERT INTO recordings (recording_id, call_id, segment_seq, system, source_path, archive_path, "
                "file_name, format, state) VALUES ($rid, $cid, 1, '3cx', $src, $arc, $name, 'wav', $state)",
                {"rid": recording_id, "cid": call_id, "src": str(tmp_path / f"{recording_id}.wav"),
                 "arc": f"{recording_id}.wav" if state == "available" else None, "name": f"{recording_id}.wav",
                 "state": state},
            )
    return stores


def _events(stores: Stores) -> list[audit.AuditEvent]:
    return audit.read_events(stores.state)


# ------------------------------------------------------------------------------------------ one event per play


def test_a_play_counts_once_however_many_range_requests_it_takes(world: Stores) -> None:
    for _ in range(5):  # the first request and four Range chunks of one play
        decision = audit.authorize_playback(world, "ann", 11, play_id="p-1", client="192.0.2.1", user_agent="UA")
        assert decision.recording_id == 11 and decision.call_id == 1
    events = _events(world)
    assert len(events) == 1
    event = events[0]
    assert (event.login, event.kind, event.recording_id, event.call_id, event.rule, event.client, event.user_agent,
            event.play_id) == ("ann", "play", 11, 1, "own", "192.0.2.1", "UA", "p-1")
    assert event.details["via"] == "http"
    audit.authorize_playback(world, "ann", 11, play_id="p-2")  # a second play of the same recording
    audit.authorize_playback(world, "ann", "11", play_id="p-1", client="192.0.2.9")  # p-1 again: still counted
    assert [e.play_id for e in _events(world)] == ["p-1", "p-2"]


def test_a_play_token_counts_again_after_ten_minutes_or_a_whole_file(world: Stores) -> None:
    audit.authorize_playback(world, "ann", 11, play_id="p-1", at=T0)
    audit.authorize_playback(world, "ann", 11, play_id="p-1", at=T0 + timedelta(minutes=9))
    assert len(_events(world)) == 1
    audit.authorize_playback(world, "ann", 11, play_id="p-1", at=T0 + timedelta(minutes=11))
    assert len(_events(world)) == 2  # the same token, much later: a new play
    with world.calls.write() as con:
        con.execute("UPDATE recordings SET size_bytes = 1000 WHERE recording_id = 11")
    decision = audit.authorize_playback(world, "ann", 11, play_id="p-2")
    audit.count_served(world, "ann", decision, "p-2", 999)
    audit.authorize_playback(world, "ann", 11, play_id="p-2")  # still within the first whole file
    assert [e.play_id for e in _events(world)] == ["p-1", "p-1", "p-2"]
    audit.count_served(world, "ann", decision, "p-2", 1)  # the token has now served the whole file
    audit.authorize_playback(world, "ann", 11, play_id="p-2")
    assert [e.play_id for e in _events(world)] == ["p-1", "p-1", "p-2", "p-2"]


def test_every_download_counts(world: Stores) -> None:
    for _ in range(3):
        audit.authorize_playback(world, "ann", 11, download=True, play_id="p-1")
    events = _events(world)
    assert [(e.kind, e.play_id) for e in events] == [("download", None)] * 3


def test_a_play_without_a_usable_token_counts_every_request(world: Stores) -> None:
    audit.authorize_playback(world, "ann", 11)
    audit.authorize_playback(world, "ann", 11, play_id="not a token; DROP TABLE")
    assert [e.kind for e in _events(world)] == ["play", "play"]


def test_the_rule_that_allowed_it_comes_from_access(world: Stores) -> None:
    audit.authorize_playback(world, "bob", 11, play_id="b")  # bob: primary group Sales
    audit.authorize_playback(world, "dan", 21, play_id="d")  # dan: all calls (and his own)
    with pytest.raises(NotFound):  # cat: member of Support and Billing only
        audit.authorize_playback(world, "cat", 11, play_id="c")
    bob, dan = _events(world)[:2]
    assert (bob.rule, bob.details.get("why")) == ("primary_group", "Sales")
    assert dan.rule == "own"
    assert _events(world)[2].kind == "denied"


def test_the_widget_fallback_writes_one_event_per_play(world: Stores) -> None:
    for _ in range(3):
        audit.widget_playback(world, "ann", 11, play_id="w-1")
    audit.widget_playback(world, "ann", 11, download=True)
    events = _events(world)
    assert [(e.kind, e.client, e.details["via"]) for e in events] == [
        ("play", audit.WIDGET_CLIENT, "widget"), ("download", audit.WIDGET_CLIENT, "widget")]
    assert events[0].user_agent == audit.WIDGET_USER_AGENT


@pytest.mark.parametrize(
    "login, asked, why",
    [
        ("ann", 21, "exists, outside her scope"),
        ("ann", 999, "does not exist"),
        ("dan", 22, "his, but waiting for the archive"),
        ("eve", 11, "no playback grant"),
        ("nobody", 11, "no such user"),
    ],
)
def test_a_refusal_is_recorded_without_telling_whether_the_recording_exists(
    world: Stores, login: str, asked: int, why: str
) -> None:
    with pytest.raises(NotFound):
        audit.authorize_playback(world, login, asked, play_id="x", client="192.0.2.7", user_agent="UA")
    [event] = _events(world)
    assert (event.login, event.kind, event.recording_id, event.call_id, event.rule) == (login, "denied", asked, None,
                                                                                        None)
    assert event.details == {"asked": "play", "via": "http"}


def test_refusals_for_a_real_and_a_missing_recording_look_alike(world: Stores) -> None:
    at = T0
    for asked in (21, 999):
        with pytest.raises(NotFound):
            audit.authorize_playback(world, "ann", asked, download=True, at=at)
    real, missing = _events(world)
    keep = ("login", "kind", "call_id", "rule", "client", "user_agent", "play_id", "detail", "ts")
    assert [getattr(real, k) for k in keep] == [getattr(missing, k) for k in keep]
    assert real.details["asked"] == "download"


def test_a_request_with_a_malformed_id_is_denied_and_recorded(world: Stores) -> None:
    with pytest.raises(NotFound):
        audit.authorize_playback(world, "ann", "../../etc/passwd")
    [event] = _events(world)
    assert (event.kind, event.recording_id, event.details["asked_id"]) == ("denied", None, "../../etc/passwd")


def test_record_checks_what_it_is_given(stores: Stores) -> None:
    with pytest.raises(ValueError, match="kind"):
        audit.record(stores.state, login="ann", kind="listen", recording_id=1)
    with pytest.raises(TypeError):
        audit.record(stores.state, login="ann", kind="play", recording_id="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time zone"):
        audit.record(stores.state, login="ann", kind="play", recording_id=1, at=datetime(2026, 11, 2))
    assert audit.head(stores.state) is None


def test_the_database_refuses_an_unknown_kind(stores: Stores) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="play, a download or a denied"):
        with stores.state.transaction() as con:
            con.execute("INSERT INTO audit_events (ts, kind, prev_hash, hash) VALUES ('t', 'listen', 'a', 'b')")


def test_a_v1_state_store_gains_the_play_token(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    con = sqlite3.connect(path)
    con.executescript(MIGRATIONS[1] + "\nPRAGMA user_version = 1;")
    con.close()
    store = StateStore(path)
    assert store.migrate() == 1
    columns = {r[1] for r in store.connection().execute("PRAGMA table_info(audit_events)")}
    assert "play_id" in columns
    store.close()


def test_may_view_audit_is_the_auditor_role_read_afresh(stores_with_directory: Stores) -> None:
    state = stores_with_directory.state
    assert not audit.may_view_audit(state, "eve")
    with state.transaction() as con:
        con.execute("UPDATE users SET roles = 'auditor' WHERE login = 'eve'")
    assert audit.may_view_audit(state, "eve")
    with state.transaction() as con:
        con.execute("UPDATE users SET active = 0 WHERE login = 'eve'")
    assert not audit.may_view_audit(state, "eve")
    assert not audit.may_view_audit(state, None)
    assert not audit.may_view_audit(state, "nobody")


# ------------------------------------------------------------------------------------------ the chain


def _chain(stores: Stores, n: int = 10) -> list[audit.AuditEvent]:
    for i in range(n):
        audit.record(stores.state, login=["ann", "bob"][i % 2], kind="play", recording_id=100 + i, call_id=i,
                     rule="own", client=f"192.0.2.{i}", user_agent="Firefox", play_id=f"p{i}",
                     at=T0 + timedelta(minutes=i))
    return _events(stores)


def _attacker(stores: Stores) -> sqlite3.Connection:
    """What someone with write access to the file can do: drop the guards and edit."""
    con = sqlite3.connect(stores.state.path, isolation_level=None)
    for name in ("audit_events_no_update", "audit_events_no_delete"):
        con.execute(f"DROP TRIGGER {name}")
    for name in ("audit_events_chain", "audit_events_hash"):
        con.execute(f"DROP INDEX {name}")
    return con


def test_each_event_hashes_its_predecessor_and_its_contents(stores: Stores) -> None:
    events = _chain(stores, 3)
    assert events[0].prev_hash == audit.GENESIS
    for before, event in zip(events, events[1:]):
        assert event.prev_hash == before.hash
    for event in events:
        payload = audit.canonical_json(event.fields())
        assert event.hash == __import__("hashlib").sha256((event.prev_hash + payload).encode()).hexdigest()
    result = audit.verify(stores.state)
    assert result.ok and result.events == 3 and result.head == audit.ChainHead(3, events[-1].hash)


def test_the_database_refuses_update_and_delete(stores: Stores) -> None:
    _chain(stores, 2)
    for statement in ("UPDATE audit_events SET login = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            with stores.state.transaction() as con:
                con.execute(statement)


def _modify(con: sqlite3.Connection, events: list[audit.AuditEvent]) -> None:
    con.execute("UPDATE audit_events SET login = 'mallory' WHERE seq = 5")


def _modify_and_rehash(con: sqlite3.Connection, events: list[audit.AuditEvent]) -> None:
    forged = {**events[4].fields(), "recording_id": 999}
    con.execute("UPDATE audit_events SET recording_id = 999, hash = ? WHERE seq = 5",
                (audit.event_hash(events[4].prev_hash, forged),))


def _delete(con: sqlite3.Connection, events: list[audit.AuditEvent]) -> None:
    con.execute("DELETE FROM audit_events WHERE seq = 5")


def _delete_first(con: sqlite3.Connection, events: list[audit.AuditEvent]) -> None:
    con.execute("DELETE FROM audit_events WHERE seq = 1")


def _delete_and_renumber(con: sqlite3.Connection, events: list[audit.AuditEvent]) -> None:
    con.execute("DELETE FROM audit_events WHERE seq = 5")
    for seq in range(6, 11):
        con.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (seq - 1, seq))


def _reorder(con: sqlite3.Connection, events: list[audit.AuditEvent]) -> None:
    """Swap events 5 and 6 (everything but their place in the sequence)."""
    columns = [c for c in audit.COLUMNS if c != "seq"]
    for seq, source in ((5, events[5]), (6, events[4])):
        con.execute(f"UPDATE audit_events SET {', '.join(f'{c} = ?' for c in columns)} WHERE seq = ?",
                    (*[getattr(source, c) for c in columns], seq))


def _insert_in_the_middle(con: sqlite3.Connection, events: list[audit.AuditEvent]) -> None:
    """Make room after event 5 and slip in a perfectly chained forgery."""
    for seq in range(10, 5, -1):
        con.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (seq + 1, seq))
    forged = {**events[4].fields(), "seq": 6, "login": "mallory", "play_id": "forged"}
    digest = audit.event_hash(events[4].hash, forged)
    con.execute(f"INSERT INTO audit_events ({', '.join(audit.COLUMNS)}) VALUES ({', '.join('?' * 13)})",
                (*forged.values(), events[4].hash, digest))


@pytest.mark.parametrize(
    "tamper, first_bad, words",
    [
        (_modify, 5, "no longer match its hash"),
        (_modify_and_rehash, 5, "no longer links to it"),
        (_delete, 5, "missing"),
        (_delete_first, 1, "missing"),
        (_delete_and_renumber, 5, "no longer match its hash"),
        (_reorder, 5, "no longer match its hash"),
        (_insert_in_the_middle, 6, "not part of the chain"),
    ],
)
def test_verify_names_the_first_tampered_event(stores: Stores, tamper, first_bad: int, words: str) -> None:
    events = _chain(stores)
    tamper(_attacker(stores), events)
    result = audit.verify(stores.state)
    assert not result.ok
    assert result.first_bad == first_bad, result
    assert words in (result.problem or "")


def test_verify_events_checks_exported_rows_too(stores: Stores) -> None:
    rows = [e.as_dict() for e in _chain(stores)]
    assert audit.verify_events(rows).ok
    assert audit.verify_events(rows[:4] + rows[5:]).first_bad == 5
    forged = {**rows[4], "seq": 6, "login": "mallory"}
    forged["prev_hash"], forged["hash"] = rows[4]["hash"], audit.event_hash(rows[4]["hash"], forged)
    moved = [{**r, "seq": r["seq"] + 1} for r in rows[5:]]
    result = audit.verify_events(rows[:5] + [forged] + moved)
    assert (result.ok, result.first_bad) == (False, 6)


def test_a_truncated_or_rewritten_tail_is_caught_against_an_anchor(stores: Stores) -> None:
    events = _chain(stores)
    anchor = audit.ChainHead(10, events[-1].hash)
    con = _attacker(stores)
    con.execute("DELETE FROM audit_events WHERE seq = 10")
    assert audit.verify(stores.state).ok  # without an anchor, a clean cut at the end is undetectable
    result = audit.verify(stores.state, anchor=anchor)
    assert (result.ok, result.first_bad) == (False, 10)
    # rewrite event 8 and re-chain 8..9: internally consistent, but not the chain the anchor saw
    prev = events[6].hash
    for event in events[7:9]:
        fields = {**event.fields(), "login": "mallory"}
        digest = audit.event_hash(prev, fields)
        con.execute("UPDATE audit_events SET login = 'mallory', prev_hash = ?, hash = ? WHERE seq = ?",
                    (prev, digest, event.seq))
        prev = digest
    assert audit.verify(stores.state).ok
    assert not audit.verify(stores.state, anchor=audit.ChainHead(9, events[8].hash)).ok
    assert audit.verify(stores.state, anchor=audit.ChainHead(7, events[6].hash[:16])).ok


def test_editing_the_file_itself_is_caught(stores: Stores) -> None:
    _chain(stores)
    stores.state.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stores.state.close()
    path = stores.state.path
    data = path.read_bytes()
    assert data.count(b"192.0.2.7") == 1
    path.write_bytes(data.replace(b"192.0.2.7", b"192.0.2.8"))
    result = audit.verify(StateStore(path))
    assert (result.ok, result.first_bad) == (False, 8)


def test_the_verify_command_exits_1_and_names_the_event(stores: Stores) -> None:
    _chain(stores)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "dimnb", "audit", "verify", "--data", str(stores.data.root)]
    ok = subprocess.run(command, capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "audit chain ok: 10 events" in ok.stdout
    _attacker(stores).execute("UPDATE audit_events SET kind = 'download' WHERE seq = 3")
    bad = subprocess.run(command, capture_output=True, text=True, env=env)
    assert bad.returncode == 1
    assert "BROKEN at event 3" in bad.stderr and "Traceback" not in bad.stderr


def test_head_anchors_parse(stores: Stores) -> None:
    assert audit.ChainHead.parse("12:ABCDEF0123456789") == audit.ChainHead(12, "abcdef0123456789")
    for bad in ("12", "x:abcdef012345", "12:abc", "12:zzzzzzzzzzzzzz"):
        with pytest.raises(InvalidInput):
            audit.ChainHead.parse(bad)


# ------------------------------------------------------------------------------------------ signed checkpoints


def _verify_cli(stores: Stores, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "dimnb", "audit", "verify", "--data", str(stores.data.root),
                           *extra], capture_output=True, text=True, env=env)


@pytest.fixture
def keyed(stores: Stores) -> Stores:
    """A data directory with its checkpoint key beside it, as `dimnb init` leaves it."""
    assert audit_checkpoints.create_key(audit_checkpoints.key_path(stores.data.root))
    return stores


def test_init_creates_a_private_key_outside_the_data_directory(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    data = tmp_path / "company" / "data"
    run = subprocess.run([sys.executable, "-m", "dimnb", "init", "--data", str(data)], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 0, run.stderr
    key = tmp_path / "company" / "data.audit-key"
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600 and data not in key.parents
    assert f"audit checkpoint key created: {key}" in run.stdout
    elsewhere = tmp_path / "secrets" / "dimnb.key"
    again = subprocess.run([sys.executable, "-m", "dimnb", "init", "--data", str(data), "--audit-key",
                            str(elsewhere)], capture_output=True, text=True, env=env)
    assert again.returncode == 0 and elsewhere.stat().st_mode & 0o777 == 0o600
    assert key.read_text() != elsewhere.read_text()
    rerun = subprocess.run([sys.executable, "-m", "dimnb", "init", "--data", str(data)], capture_output=True,
                           text=True, env=env)
    assert "key created" not in rerun.stdout  # an existing key is never replaced


def test_checkpoints_are_signed_every_n_events_into_a_file_outside_the_data_directory(
        keyed: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(audit_checkpoints.EVERY_ENV, "4")
    events = _chain(keyed, 10)
    path = audit_checkpoints.checkpoints_path(keyed.data.root)
    assert keyed.data.root not in path.parents
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    # the first event (no checkpoint in the last hour), then every 4th
    assert [(c["seq"], c["hash"]) for c in lines] == [(e.seq, e.hash) for e in events if e.seq in (1, 4, 8)]
    key = audit_checkpoints.read_key(audit_checkpoints.key_path(keyed.data.root))
    assert audit_checkpoints.check(lines, key, {e.seq: e.hash for e in events}, 10).ok
    assert audit.checkpoint(keyed.state).seq == 10  # the hourly timer / `dimnb audit checkpoint`
    assert audit.checkpoint(keyed.state) is None  # nothing new since
    verified = _verify_cli(keyed)
    assert verified.returncode == 0 and "matches signed checkpoint 10" in verified.stdout


def test_events_removed_from_the_end_are_caught_against_the_signed_checkpoint(keyed: Stores) -> None:
    _chain(keyed, 10)
    audit.checkpoint(keyed.state)
    _attacker(keyed).execute("DELETE FROM audit_events WHERE seq > 7")  # as `DELETE ... WHERE seq > 160`
    assert audit.verify(keyed.state).ok  # the chain alone still looks whole
    result = audit.verify_signed(keyed.state)
    assert not result.ok and "removed from the end" in str(result)
    cli = _verify_cli(keyed)
    assert cli.returncode == 1 and "the chain ends at event 7" in cli.stderr and "Traceback" not in cli.stderr


def test_a_chain_rewritten_and_recomputed_is_caught_against_the_signed_checkpoint(keyed: Stores) -> None:
    events = _chain(keyed, 10)
    audit.checkpoint(keyed.state)
    con = _attacker(keyed)
    prev = events[3].hash  # rewrite event 5 and re-chain every later event: internally consistent
    for event in events[4:]:
        fields = {**event.fields(), "login": "mallory" if event.seq == 5 else event.login}
        digest = audit.event_hash(prev, fields)
        con.execute("UPDATE audit_events SET login = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                    (fields["login"], prev, digest, event.seq))
        prev = digest
    assert audit.verify(keyed.state).ok
    cli = _verify_cli(keyed)
    assert cli.returncode == 1 and "hashes recomputed" in cli.stderr


def test_a_replaced_key_is_caught(keyed: Stores, tmp_path: Path) -> None:
    _chain(keyed, 10)
    audit.checkpoint(keyed.state)
    key = audit_checkpoints.key_path(keyed.data.root)
    key.unlink()
    audit_checkpoints.create_key(key)  # someone made a new key (to sign a rewritten chain)
    cli = _verify_cli(keyed)
    assert cli.returncode == 1 and "signed with another key" in cli.stderr
    key.unlink()
    no_key = _verify_cli(keyed)
    assert no_key.returncode == 1 and "no checkpoint key" in no_key.stderr
    # a forged line (signed with the attacker's own key) is named too
    other = tmp_path / "other.key"
    audit_checkpoints.create_key(other)
    cli = _verify_cli(keyed, "--audit-key", str(other))
    assert cli.returncode == 1 and "another key" in cli.stderr


def test_a_data_directory_without_key_or_checkpoints_verifies_as_before(stores: Stores) -> None:
    _chain(stores, 3)
    assert audit.verify_signed(stores.state).ok
    assert "not yet checkpointed" in str(audit.verify_signed(stores.state))


# ------------------------------------------------------------------------------------------ concurrent writers

_WRITER = """
import sys
from datetime import datetime, timezone
from dimnb import audit
from dimnb.store.stores import Stores

data, name, count, shared = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "shared"
stores = Stores.open(data)
for i in range(count):
    if shared:  # every writer reports the same plays (as Range requests of one play would)
        audit.record(stores.state, login="ann", kind="play", recording_id=i, play_id=f"p{i}", client=name)
    else:
        audit.record(stores.state, login=name, kind="play", recording_id=i, call_id=i, rule="own",
                     client="192.0.2.1", play_id=f"{name}-{i}")
"""


def _run_writers(data: Path, names: list[str], count: int, mode: str) -> None:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    processes = [subprocess.Popen([sys.executable, "-c", _WRITER, str(data), name, str(count), mode], env=env,
                                  stderr=subprocess.PIPE, text=True) for name in names]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err


def test_concurrent_writers_lose_nothing_and_keep_the_chain(stores: Stores) -> None:
    names = ["w1", "w2", "w3", "w4"]
    _run_writers(stores.data.root, names, 200, "own")
    result = audit.verify(stores.state)
    assert result.ok and result.events == 800, result
    events = _events(stores)
    assert [e.seq for e in events] == list(range(1, 801))
    for name in names:
        assert sorted(e.recording_id for e in events if e.login == name) == list(range(200))


def test_concurrent_reports_of_one_play_count_it_once(stores: Stores) -> None:
    _run_writers(stores.data.root, ["h1", "h2", "h3"], 60, "shared")
    events = _events(stores)
    assert sorted(e.recording_id for e in events) == list(range(60))
    assert audit.verify(stores.state).ok


# ------------------------------------------------------------------------------------------ export


def test_export_csv_and_parquet_by_period(stores: Stores, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    events = _chain(stores)  # one a minute from 09:00
    start, end = T0 + timedelta(minutes=2), T0 + timedelta(minutes=7)
    text = io.StringIO()
    assert audit._write_csv(audit._iter_rows(stores.state, start=start, end=end), text) == 5
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))
    assert [int(r["seq"]) for r in rows] == [3, 4, 5, 6, 7]
    assert rows[0]["hash"] == events[2].hash and rows[0]["prev_hash"] == events[1].hash
    out = tmp_path / "audit.parquet"
    assert audit.export(stores.state, out, "parquet", start=start) == 8
    table = pq.read_table(out).to_pylist()
    assert [r["seq"] for r in table] == list(range(3, 11))
    assert table[0] == {**events[2].as_dict()}
    # a full export re-verifies on its own, link by link
    full = tmp_path / "all.parquet"
    audit.export(stores.state, full, "parquet")
    assert audit.verify_events(pq.read_table(full).to_pylist()).ok


def test_the_export_command(stores: Stores, tmp_path: Path) -> None:
    _chain(stores)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    base = [sys.executable, "-m", "dimnb", "audit", "export", "--data", str(stores.data.root)]
    out = subprocess.run(base + ["--from", "2026-11-02T09:05:00Z"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.strip().splitlines()) == 1 + 5
    target = tmp_path / "x.csv"
    out = subprocess.run(base + ["--from", "2026-11-02", "--to", "2026-11-02", "--out", str(target)],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "10 events written" in out.stderr
    bad = subprocess.run(base + ["--format", "parquet"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "needs --out" in bad.stderr
    bad = subprocess.run(base + ["--from", "yesterday"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "--from must be a date" in bad.stderr
    assert json.loads(json.dumps(audit.head(stores.state).__dict__))["seq"] == 10
