"""The 3CX legacy loader on the real-world files and on files written in each documented layout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import legacy_row, write_legacy
from dimnb.errors import InvalidInput
from dimnb.ingest.loader import load_3cx
from dimnb.ingest.threecx_legacy import parse_columns
from dimnb.store.stores import Stores


def test_both_real_files_load_the_same_1404_calls_without_quarantine(stores: Stores, realdata: Path) -> None:
    first = load_3cx(stores, [realdata / "3cx" / "ClasseurPrepaCDR.csv"])
    assert first.total("calls_added") == 1404
    assert first.total("quarantined") == 0
    keys = {r[0] for r in stores.calls.query("SELECT source_id FROM calls")}

    other = Stores.open(str(stores.data.root.parent / "other"), create=True)
    second = load_3cx(other, [realdata / "3cx" / "ClasseurPrepaCDR_with_header.csv"])
    assert second.total("calls_added") == 1404
    assert second.total("quarantined") == 0
    assert {r[0] for r in other.calls.query("SELECT source_id FROM calls")} == keys
    # the same set, with the same derived facts
    facts = "SELECT source_id, start_time, end_time, direction, outcome, segment_count FROM calls ORDER BY source_id"
    assert stores.calls.query(facts) == other.calls.query(facts)

    # and loading the other file into the first store adds nothing
    again = load_3cx(stores, [realdata / "3cx" / "ClasseurPrepaCDR_with_header.csv"])
    assert again.total("calls_added") == 0
    assert again.total("duplicates") == 1404


def test_real_transfers_give_segments_in_chain_order(stores: Stores, realdata: Path) -> None:
    load_3cx(stores, [realdata / "3cx" / "ClasseurPrepaCDR.csv"])
    # Call 9744: Chain: <caller>,Ext.610,Ext.185 with ReplacedDst
    rows = stores.calls.query(
        """
        SELECT s.seq, s.from_type, s.to_party, s.to_ext, s.time_quality, s.reason, s.start_time, s.end_time
        FROM segments s JOIN calls c USING (call_id)
        WHERE c.source_id = '00000171DEE41BB3_2501' ORDER BY s.seq
        """
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(1, "external", "610", "610"), (2, "external", "185", "185")]
    assert {r[4] for r in rows} == {"estimated"}  # the CDR does not say when the transfer happened
    assert rows[1][5] == "ReplacedDst"
    assert rows[0][7] == rows[1][6]  # contiguous
    counts = dict(stores.calls.query("SELECT segment_count, count(*) FROM calls GROUP BY 1"))
    assert counts[2] > 300 and counts[3] >= 17 and counts[4] >= 1
    # times are timezone-aware UTC
    start = stores.calls.query("SELECT start_time FROM calls WHERE source_id = '00000171DEE41BB3_2501'")[0][0]
    assert start == datetime(2020, 5, 4, 10, 53, 43, tzinfo=timezone.utc)


def test_replaced_source_and_makecall(stores: Stores, tmp_path: Path) -> None:
    rows = [
        legacy_row(1, caller="Ext.125", chain=["Ext.125", "+442079460002", "Ext.700"], reason_changed="ReplacedSrc",
                   from_type="Internal", to_type="External"),
        legacy_row(2, chain=["MakeCall", "Ext.111", "Ext.124"], from_type="External", to_type="Internal"),
    ]
    load_3cx(stores, [write_legacy(tmp_path / "cdr.csv", rows)])
    segs = stores.calls.query(
        "SELECT c.source_id, s.seq, s.from_party, s.to_party FROM segments s JOIN calls c USING (call_id) ORDER BY 1, 2"
    )
    assert segs == [
        ("00000000CALL000001_1", 1, "125", "+442079460002"),
        ("00000000CALL000001_1", 2, "700", "+442079460002"),
        ("00000000CALL000002_1", 1, "111", "124"),
    ]
    directions = dict(stores.calls.query("SELECT source_id, direction FROM calls"))
    assert directions == {"00000000CALL000001_1": "outbound", "00000000CALL000002_1": "internal"}


def test_bad_rows_are_quarantined_with_file_line_and_reason(stores: Stores, tmp_path: Path) -> None:
    good = [legacy_row(i) for i in range(5)]
    rows = [
        good[0],
        "Call 77,CALLX,00:00:01,2026/03/02 09:00:00,,2026/03/02 09:00:01",  # too few fields
        good[1],
        legacy_row(6).replace("2026/03/02 09:06:00", "yesterday", 1),  # unparseable start
        good[2],
        legacy_row(7).replace("2026/03/02 09:08:03", "2026/03/02 08:00:00"),  # ends before it starts
        good[3],
        good[4],
    ]
    path = write_legacy(tmp_path / "mixed.csv", rows, header=True)
    summary = load_3cx(stores, [path])
    assert summary.total("calls_added") == 5
    assert summary.total("quarantined") == 3
    q = stores.calls.query("SELECT file, line, reason FROM quarantine ORDER BY line")
    assert [(Path(f).name, line) for f, line, _ in q] == [("mixed.csv", 3), ("mixed.csv", 5), ("mixed.csv", 7)]
    assert "too few fields" in q[0][2]
    assert "time_start 'yesterday' is not a time" in q[1][2]
    assert "time_end is before time_start" in q[2][2]
    lines = dict(stores.calls.query("SELECT source_id, source_line FROM calls"))
    assert lines["00000000CALL000004_1"] == 9  # header + 8 rows: line numbers survive the rejects


def test_a_file_that_yields_nothing_readable_is_reported(stores: Stores, tmp_path: Path) -> None:
    path = tmp_path / "junk.csv"
    path.write_text("just,some\nwords,here\n")
    summary = load_3cx(stores, [path])
    assert summary.total("calls_added") == 0
    assert summary.total("quarantined") == 2
    assert not summary.anything_read
    other = tmp_path / "junk2.csv"
    other.write_text("more,words\n")
    cli = subprocess.run([sys.executable, "-m", "dimnb", "load", "3cx", str(other), "--data", str(stores.data.root)],
                         capture_output=True, text=True)
    assert cli.returncode == 1 and "1 quarantined" in cli.stdout
    good = write_legacy(tmp_path / "good.csv", [legacy_row(1)])
    cli = subprocess.run([sys.executable, "-m", "dimnb", "load", "3cx", str(good), str(path), "--data",
                          str(stores.data.root)], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stdout + cli.stderr


def test_loading_the_same_file_twice_adds_nothing(stores: Stores, tmp_path: Path) -> None:
    path = write_legacy(tmp_path / "a.csv", [legacy_row(i) for i in range(10)])
    assert load_3cx(stores, [path]).total("calls_added") == 10
    second = load_3cx(stores, [path])
    assert [r.status for r in second.results] == ["skipped"]
    # an overlapping file adds only the new calls
    overlap = write_legacy(tmp_path / "b.csv", [legacy_row(i) for i in range(5, 15)])
    third = load_3cx(stores, [overlap])
    assert third.total("calls_added") == 5 and third.total("duplicates") == 5
    assert stores.calls.query("SELECT count(*) FROM calls") == [(15,)]


def test_bom_header_and_semicolon_chain(stores: Stores, tmp_path: Path) -> None:
    row = legacy_row(1, chain=["+442079460009", "Ext.101", "Ext.102"], reason_changed="ReplacedDst")
    row = row.replace('"Chain: +442079460009,Ext.101,Ext.102,"', "Chain: +442079460009;Ext.101;Ext.102;")
    path = write_legacy(tmp_path / "bom.csv", [row], header=True, bom=True)
    assert load_3cx(stores, [path]).total("calls_added") == 1
    assert stores.calls.query("SELECT to_party FROM segments ORDER BY seq") == [("101",), ("102",)]


def test_a_20_field_feed_with_a_column_list(stores: Stores, tmp_path: Path) -> None:
    columns = ("historyid,callid,duration,time_start,time_answered,time_end,reason_terminated,from_no,to_no,"
               "from_dn,to_dn,dial_no,reason_changed,final_number,final_dn,chain,from_type,to_type,final_type,"
               "missed_queue_calls")
    line = ('Call 5,CID5,00:01:00,2026/03/02 09:00:00,2026/03/02 09:00:05,2026/03/02 09:01:05,TerminatedBySrc,'
            '+442079460005,Ext.101,10000,101,101,,,,"Chain: +442079460005,Ext.101,",External,Internal,Internal,')
    path = tmp_path / "feed.csv"
    path.write_text(line + "\n")
    assert len(parse_columns(columns)) == 20
    summary = load_3cx(stores, [path], columns=columns)
    assert summary.total("calls_added") == 1, summary.lines()
    assert stores.calls.query("SELECT direction, outcome, talk_seconds FROM calls") == [("inbound", "answered", 60.0)]


def test_unknown_column_names_are_refused(stores: Stores) -> None:
    with pytest.raises(InvalidInput, match="unknown 3CX CDR field"):
        parse_columns("historyid,callid,time_strat,time_end,from_no,to_no")


def test_one_file_per_call_logs(stores: Stores, tmp_path: Path) -> None:
    folder = tmp_path / "cdrlogs"
    folder.mkdir()
    for i in range(12):
        (folder / f"cdr-2603020900{i:02d}.{i}.log").write_text(legacy_row(i) + "\n")
    summary = load_3cx(stores, [folder])
    assert summary.total("calls_added") == 12
    assert {r.kind for r in summary.results} == {"3cx-percall"}
    assert stores.calls.query("SELECT DISTINCT source_line FROM calls") == [(1,)]


def _tone(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(8000 * seconds)) / 8000
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype("float32"), 8000, subtype="PCM_16")


def test_legacy_recordings_link_by_name_and_give_derived_segment_times(stores: Stores, tmp_path: Path) -> None:
    # A call transferred from 101 to 102; each agent's recording tells when their segment ran.
    row = legacy_row(0, chain=["+442079460003", "Ext.101", "Ext.102"], reason_changed="ReplacedDst",
                     answered_after=3, talk=100)
    path = write_legacy(tmp_path / "cdr.csv", [row, legacy_row(5)])
    rec = tmp_path / "Recordings"
    _tone(rec / "101" / "[Ann Agent]_+442079460003-101_20260302090003(1).wav", 30)
    _tone(rec / "102" / "[Bob Lead]_+442079460003-102_20260302090033(2).wav", 70)
    _tone(rec / "555" / "[Nobody]_1-555_20200101000000(3).wav", 1)  # matches no call
    (rec / "101" / "notes.wav").write_bytes(b"RIFF")  # not 3CX's naming
    summary = load_3cx(stores, [path])
    assert summary.total("recordings_linked") == 2
    segs = stores.calls.query(
        "SELECT s.seq, s.time_quality, epoch(s.start_time - c.start_time), epoch(s.end_time - c.start_time), "
        "s.derived_quality, epoch(s.derived_start_time - c.start_time), epoch(s.derived_answer_time - c.start_time), "
        "epoch(s.derived_end_time - c.start_time) "
        "FROM segments s JOIN calls c USING (call_id) WHERE c.source_id = '00000000CALL000000_1' ORDER BY seq"
    )
    # The CDR's estimate (ring 0:03, the talk split evenly) stays; the recordings' times sit beside it
    # (shown only to those who may play them: tests/test_recording_hints.py).
    assert segs == [(1, "estimated", 0.0, 53.0, "derived", 0.0, 3.0, 33.0),
                    (2, "estimated", 53.0, 103.0, "derived", 33.0, 33.0, 103.0)]
    recs = stores.calls.query(
        "SELECT segment_seq, state, format, round(duration_seconds), offset_seconds, length(checksum) "
        "FROM recordings ORDER BY segment_seq")
    assert recs == [(1, "pending_archive", "wav", 30.0, 3.0, 64), (2, "pending_archive", "wav", 70.0, 33.0, 64)]
    assert stores.calls.query("SELECT recordings_total, recordings_pending FROM calls WHERE recordings_total > 0") == [(2, 2)]
    unmatched = sorted(Path(p).name for p, in stores.calls.query("SELECT path FROM unmatched_files"))
    assert unmatched == ["[Nobody]_1-555_20200101000000(3).wav", "notes.wav"]


@pytest.mark.slow
def test_a_load_killed_midway_publishes_nothing(stores: Stores, tmp_path: Path) -> None:
    path = write_legacy(tmp_path / "big.csv", [legacy_row(i) for i in range(200_000)])
    before = stores.calls.current_generation()
    env = {**os.environ, "DIMNB_DATA": str(stores.data.root)}
    proc = subprocess.Popen([sys.executable, "-m", "dimnb", "load", "3cx", str(path), "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait until the writer has its new generation file open, then kill it
    deadline = time.time() + 60
    while time.time() < deadline:
        if any(n.endswith(".duckdb") and n != stores.calls.current_name() for n in os.listdir(stores.calls.directory)):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert stores.calls.current_generation() == before
    assert stores.calls.query("SELECT count(*) FROM calls") == [(0,)]
    # and the next load completes normally, removing the orphan
    assert load_3cx(stores, [path]).total("calls_added") == 200_000


def test_participants_name_the_user_of_each_extension_at_the_calls_time(stores_with_directory: Stores, tmp_path: Path) -> None:
    row = legacy_row(0, chain=["+442079460003", "Ext.101", "Ext.102"], reason_changed="ReplacedDst")
    load_3cx(stores_with_directory, [write_legacy(tmp_path / "cdr.csv", [row])])
    rows = stores_with_directory.calls.query(
        "SELECT segment_seq, role, party_type, extension, login FROM participants ORDER BY segment_seq, role")
    assert rows == [(1, "callee", "extension", "101", "ann"), (1, "caller", "external", None, None),
                    (2, "callee", "extension", "102", "bob"), (2, "caller", "external", None, None)]


# ------------------------------------------------------------------ real exports, read right (issue 13)

FIXTURES = Path(__file__).parent / "fixtures" / "3cx"


def _segments(stores: Stores, source_id: str) -> list[tuple]:
    """(kind, to_party, to_type, to_ext, time quality, start, answer, end on the call's clock, answered)."""
    return stores.calls.query(
        "SELECT s.kind, s.to_party, s.to_type, s.to_ext, s.time_quality, epoch(s.start_time - c.start_time), "
        "epoch(s.answer_time - c.start_time), epoch(s.end_time - c.start_time), s.answered "
        "FROM segments s JOIN calls c USING (call_id) WHERE c.source_id = $id ORDER BY s.seq", {"id": source_id})


def _calls(stores: Stores) -> dict[str, tuple]:
    rows = stores.calls.query("SELECT source_id, direction, outcome, final_party, ring_seconds, talk_seconds FROM calls")
    return {r[0].split("_")[-1]: r[1:] for r in rows}


def test_party_types_decide_segment_kinds_direction_and_outcome(stores_with_directory: Stores) -> None:
    summary = load_3cx(stores_with_directory, [FIXTURES / "party-types.csv"])
    assert summary.total("calls_added") == 9 and summary.total("quarantined") == 0, summary.lines()
    s = stores_with_directory
    # Line -> Queue 800 -> Ext.101: a queue wait until the answer, then the talk; both from the record
    assert _segments(s, "00000194A1B2C3D4_101") == [
        ("queue", "800", "queue", None, "exact", 0.0, None, 25.0, False),
        ("talk", "101", "extension", "101", "exact", 25.0, 25.0, 215.0, True)]
    # a caller who gave up in the queue: abandoned, and the polled agents did not take part
    assert _segments(s, "00000194A1B2C3D4_102") == [("queue", "800", "queue", None, "exact", 0.0, None, 90.0, False)]
    # the IVR answers; when it handed over to 102 is not in the record
    assert _segments(s, "00000194A1B2C3D4_103") == [
        ("ivr", "801", "ivr", None, "estimated", 0.0, 2.0, 62.0, False),
        ("talk", "102", "extension", "102", "estimated", 62.0, 62.0, 122.0, True)]
    # 201 rang 20 s, then voicemail took the message
    assert _segments(s, "00000194A1B2C3D4_104") == [
        ("ringing", "201", "extension", "201", "exact", 0.0, None, 20.0, False),
        ("voicemail", "999", "voicemail", None, "exact", 20.0, 20.0, 60.0, True)]
    # a ring group rings until a member answers
    assert _segments(s, "00000194A1B2C3D4_105") == [
        ("ringing", "802", "ring_group", None, "exact", 0.0, None, 6.0, False),
        ("talk", "101", "extension", "101", "exact", 6.0, 6.0, 66.0, True)]
    calls = _calls(s)
    assert {k: v[:3] for k, v in calls.items()} == {
        "101": ("inbound", "answered", "101"), "102": ("inbound", "abandoned", "800"),
        "103": ("inbound", "answered", "102"), "104": ("inbound", "voicemail", "999"),
        "105": ("inbound", "answered", "101"), "106": ("inbound", "answered", "102"),
        "107": ("internal", "answered", "102"), "108": ("outbound", "answered", "+442079460108"),
        "109": ("internal", "answered", "101"),  # an extension through a queue: no outside party
    }
    # who took part: the agents, never the queue, IVR or ring group as if they were people
    users = s.calls.query("SELECT c.source_id, list(u.login ORDER BY u.login) FROM call_users u "
                          "JOIN calls c USING (call_id) GROUP BY 1 ORDER BY 1")
    assert [(k.split("_")[-1], v) for k, v in users] == [
        ("101", ["ann"]), ("103", ["bob"]), ("104", ["cat"]), ("105", ["ann"]), ("106", ["ann", "bob"]),
        ("107", ["ann", "bob"]), ("108", ["bob"]), ("109", ["ann", "cat"])]


def test_a_transfer_is_split_by_what_the_record_says_not_at_half_time(stores: Stores) -> None:
    # ReplacedDst, rang 0:08, talked 8:10: the first agent's segment starts with the call and was answered
    # at 0:08 (exact); only the moment of the transfer is unknown, so the talk time is shared.
    load_3cx(stores, [FIXTURES / "party-types.csv"])
    assert _segments(stores, "00000194A1B2C3D4_106") == [
        ("talk", "101", "extension", "101", "estimated", 0.0, 8.0, 253.0, True),
        ("talk", "102", "extension", "102", "estimated", 253.0, 253.0, 498.0, True)]
    assert _calls(stores)["106"][3:] == (8.0, 490.0)


def test_socket_feed_and_per_call_files_of_v18_and_v20(stores: Stores) -> None:
    # 27 fields, the last (missed-queue-calls) empty, CRLF line ends, UTF-8 names; per-call files the same
    raw = (FIXTURES / "socket-feed-v18.log").read_bytes()
    assert raw.count(b"\r\n") == 2 and "Måns".encode() in raw
    summary = load_3cx(stores, [FIXTURES / "socket-feed-v18.log", FIXTURES / "percall"])
    assert summary.total("calls_added") == 4 and summary.total("quarantined") == 0, summary.lines()
    assert sorted(r.kind for r in summary.results) == ["3cx-legacy", "3cx-percall", "3cx-percall"]
    assert _segments(stores, "00000194B0000001_5001") == [
        ("queue", "800", "queue", None, "exact", 0.0, None, 5.0, False),
        ("talk", "101", "extension", "101", "exact", 5.0, 5.0, 130.0, True)]
    names = dict(stores.calls.query("SELECT source_id, coalesce(final_name, from_name) FROM calls"))
    assert names["00000194B0000001_5001"] == names["00000194B0000002_5002"] == "Måns Ögren"
    assert [k[0] for k in _segments(stores, "00000194C0000001_6001")] == ["ivr", "talk"]
    assert {k: v[:2] for k, v in _calls(stores).items()} == {
        "5001": ("inbound", "answered"), "5002": ("outbound", "answered"),
        "6001": ("inbound", "answered"), "6002": ("inbound", "abandoned")}


def test_rows_with_more_or_fewer_fields_than_the_header_are_quarantined(stores: Stores) -> None:
    summary = load_3cx(stores, [FIXTURES / "wrong-width.csv"])
    assert summary.total("calls_added") == 3, summary.lines()
    q = stores.calls.query("SELECT line, reason, raw FROM quarantine ORDER BY line")
    assert [(line, reason) for line, reason, _ in q] == [
        (3, "too many fields: 27 fields expected, 29 found"),  # an unquoted comma, chain unquoted too
        (4, "too many fields: 27 fields expected, 28 found"),  # a shifted line
        (6, "too few fields: 27 fields expected, 7 found"),
    ]
    assert all(raw.startswith("Call 20") for _, _, raw in q)  # the file's own line
    # the quoted chain with commas is one field; a line ending with a comma (an empty 28th field) is fine
    assert _segments(stores, "00000194D0000001_201")[1][1] == "102"
    lines = dict(stores.calls.query("SELECT source_id, source_line FROM calls"))
    assert lines == {"00000194D0000001_201": 2, "00000194D0000004_204": 5, "00000194D0000006_206": 7}


def test_rows_wider_than_the_column_list_are_quarantined(stores: Stores, tmp_path: Path) -> None:
    columns = ("historyid,callid,duration,time_start,time_answered,time_end,reason_terminated,from_no,to_no,"
               "from_dn,to_dn,dial_no,reason_changed,final_number,final_dn,chain,from_type,to_type,final_type,"
               "missed_queue_calls")
    good = ('Call 7,CID7,00:01:00,2026/03/02 09:00:00,2026/03/02 09:00:05,2026/03/02 09:01:05,TerminatedBySrc,'
            '+442079460007,Ext.101,10000,101,101,,,,"Chain: +442079460007,Ext.101,",Line,Extension,Extension,')
    wide = good.replace("CID7", "CID8").replace(",Line,", ",Line,extra,more,")
    path = tmp_path / "feed.csv"
    path.write_text(good + "\n" + wide + "\n")
    summary = load_3cx(stores, [path], columns=columns)
    assert summary.total("calls_added") == 1 and summary.total("quarantined") == 1
    assert stores.calls.query("SELECT line, reason FROM quarantine") == [
        (2, "too many fields: 20 fields expected, 22 found")]


def test_queues_named_on_the_command_line_are_queue_waits(stores: Stores, tmp_path: Path) -> None:
    # An export whose types say only Internal/External: `--queues 800` says which extension is a queue.
    row = legacy_row(0, chain=["+442079460003", "Ext.800", "Ext.101"], reason_changed="ReplacedDst",
                     answered_after=12, talk=60, from_type="External", to_type="Internal")
    load_3cx(stores, [write_legacy(tmp_path / "cdr.csv", [row])], queues=["800"])
    assert _segments(stores, "00000000CALL000000_1") == [
        ("queue", "800", "queue", "800", "exact", 0.0, None, 12.0, False),
        ("talk", "101", "extension", "101", "exact", 12.0, 12.0, 72.0, True)]
