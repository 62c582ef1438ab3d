"""The FreeSWITCH loader on the real (spreadsheet-saved) sample and on files in the example template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile

from dimnb import access, reports
from dimnb.actions import VIEW_CALLS
from dimnb.errors import InvalidInput
from dimnb.filters import Filters
from dimnb.ingest.freeswitch import EXAMPLE, load_freeswitch, parse_columns
from dimnb.store.stores import Stores

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 2, 9, 0, 0)


def fs_leg(uuid: str, *, name: str = "Ann Agent", number: str = "101", dest: str = "102",
           context: str = "default", start: int = 0, answer: int | None = 4, end: int = 64,
           cause: str = "NORMAL_CLEARING", bleg: str = "", minute: int = 0) -> dict[str, str]:
    t0 = T0 + timedelta(minutes=minute)
    fmt = "%Y-%m-%d %H:%M:%S"
    return {
        "caller_id_name": name, "caller_id_number": number, "destination_number": dest, "context": context,
        "start_stamp": (t0 + timedelta(seconds=start)).strftime(fmt),
        "answer_stamp": (t0 + timedelta(seconds=answer)).strftime(fmt) if answer is not None else "",
        "end_stamp": (t0 + timedelta(seconds=end)).strftime(fmt), "duration": str(end - start),
        "billsec": str(end - answer) if answer is not None else "0", "hangup_cause": cause, "uuid": uuid,
        "bleg_uuid": bleg, "accountcode": "", "read_codec": "PCMA", "write_codec": "PCMA",
    }


def write_example(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] | list[str] = EXAMPLE) -> Path:
    path.write_text("".join(",".join(f'"{r.get(c, "")}"' for c in columns) + "\n" for r in rows), encoding="utf-8")
    return path


def uid(n: int) -> str:
    return f"{n:08x}-4c15-11ea-97a0-9dd79410affb"


# ------------------------------------------------------------------------------------------ the real sample


def test_real_spreadsheet_saved_sample_loads_sensibly(stores: Stores, realdata: Path) -> None:
    summary = load_freeswitch(stores, [realdata / "freeswitch" / "Master.csv"], timezone="Asia/Shanghai")
    # 10 rows: 8 legs, one uuid three times (two identical rows and one that says USER_BUSY)
    assert summary.total("calls_added") == 8
    assert summary.total("quarantined") == 0
    assert summary.total("duplicates") == 2
    assert "10 rows: 8 calls loaded, 2 duplicates skipped, 0 quarantined" in "\n".join(summary.lines())
    assert any("several rows that differ (first at line 8)" in n for n in summary.notes)
    # minutes only: the end is start + duration, the answer end - billsec, marked estimated
    row = stores.calls.query(
        "SELECT start_time, answer_time, end_time, duration_seconds, talk_seconds, outcome FROM calls "
        "WHERE source_id = 'f68e66ee-4c15-11ea-97d1-9dd79410affb'")[0]
    assert row == (datetime(2020, 2, 10, 14, 42, tzinfo=timezone.utc), datetime(2020, 2, 10, 14, 42, 2, tzinfo=timezone.utc),
                   datetime(2020, 2, 10, 14, 47, 29, tzinfo=timezone.utc), 329.0, 327.0, "answered")
    assert stores.calls.query("SELECT DISTINCT time_quality FROM segments") == [("estimated",)]
    outcomes = dict(stores.calls.query("SELECT outcome, count(*) FROM calls GROUP BY 1"))
    assert outcomes == {"answered": 7, "missed": 1}
    # the first of the repeated uuid's rows is the one loaded
    assert stores.calls.query("SELECT outcome FROM calls WHERE source_id LIKE '7adced1a%'") == [("answered",)]
    exts = {r[0] for r in stores.calls.query("SELECT from_ext FROM segments UNION SELECT to_ext FROM segments")}
    assert {"1002", "1004"} <= exts


def test_real_sample_and_the_access_rule(stores: Stores, realdata: Path, tmp_path: Path) -> None:
    from dimnb.directory import import_directory
    from dimnb.ingest.loader import sync_directory

    directory = tmp_path / "directory.json"
    directory.write_text(json.dumps({
        "groups": [{"name": "Support"}, {"name": "Sales"}],
        "users": [
            {"login": "zoe", "name": "Zoe Phone", "report_scope": "own", "playback": "own",
             "extensions": [{"extension": "1004"}], "groups": [{"group": "Support", "primary": True}]},
            {"login": "yan", "name": "Yan Phone", "report_scope": "primary_group", "playback": "own",
             "extensions": [{"extension": "1002"}], "groups": [{"group": "Sales", "primary": True}]},
        ],
    }))
    load_freeswitch(stores, [realdata / "freeswitch" / "Master.csv"], timezone="Asia/Shanghai")
    import_directory(stores.state, directory)
    with stores.calls.write() as con:  # what `dimnb directory import` does after importing
        sync_directory(con, stores)
    zoe = access.load_actor(stores.state, "zoe")
    # 1004 placed two calls (one of them written three times) and received one from 1002
    assert reports.count_calls(stores.calls, zoe, Filters()) == 3
    call_id = stores.calls.query("SELECT call_id FROM calls WHERE source_id LIKE '559758f2%'")[0][0]
    assert str(access.why(stores.calls, zoe, call_id, VIEW_CALLS)) == \
        "Own Calls: you took part in this call (extension 1004)"
    yan = access.load_actor(stores.state, "yan")
    assert reports.count_calls(stores.calls, yan, Filters()) == 6  # 1002's calls: five placed, one to it
    assert access.why(stores.calls, yan, call_id, VIEW_CALLS) is not None


# ------------------------------------------------------------------------------------------ the example template


def test_a_and_b_legs_joined_by_bleg_uuid_are_one_call(stores: Stores, tmp_path: Path) -> None:
    rows = [
        # 101 dials ring group 2000; 102 answers (legs="ab": the B-leg is written too, after the A-leg ends)
        fs_leg(uid(1), dest="2000", answer=6, end=66, bleg=uid(2)),
        fs_leg(uid(2), dest="102", start=1, answer=6, end=66),
        # inbound from a carrier (context public) to a DID, bridged to 103, who does not answer
        fs_leg(uid(3), name="", number="+442079460033", dest="442079460000", context="public", answer=None,
               end=30, cause="ORIGINATOR_CANCEL", bleg=uid(4), minute=5),
        fs_leg(uid(4), name="", number="+442079460033", dest="103", context="default", start=2, answer=None,
               end=30, cause="ORIGINATOR_CANCEL", minute=5),
        # an outbound call that finds the line busy (A-leg only, legs="a")
        fs_leg(uid(5), dest="00442079460044", answer=None, end=3, cause="USER_BUSY", minute=9),
    ]
    path = write_example(tmp_path / "Master.csv", [rows[0], rows[2], rows[4], rows[1], rows[3]])
    summary = load_freeswitch(stores, [path], timezone="UTC")
    assert [r.kind for r in summary.results] == ["freeswitch-example"]
    assert summary.total("calls_added") == 3 and summary.total("quarantined") == 0
    assert "5 rows: 3 calls loaded" in "\n".join(summary.lines())
    got = stores.calls.query(
        "SELECT source_id, direction, from_party, to_party, final_party, outcome, segment_count FROM calls "
        "ORDER BY start_time")
    assert got == [
        (uid(1), "internal", "101", "2000", "102", "answered", 1),
        (uid(3), "inbound", "+442079460033", "442079460000", "103", "missed", 1),
        (uid(5), "outbound", "101", "00442079460044", "00442079460044", "failed", 1),
    ]
    segs = stores.calls.query("SELECT source_id, from_ext, to_ext, kind, time_quality FROM segments ORDER BY call_id")
    assert segs == [(uid(2), "101", "102", "talk", "exact"), (uid(4), None, "103", "ringing", "exact"),
                    (uid(5), "101", None, "ringing", "exact")]


def test_a_template_given_as_a_column_list_with_epoch_times(stores: Stores, tmp_path: Path) -> None:
    columns = "uuid,bleg_uuid,caller_id_number,destination_number,start_epoch,answer_epoch,end_epoch,hangup_cause"
    start = int(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc).timestamp())
    path = tmp_path / "custom.csv"
    path.write_text(f"{uid(7)},,101,102,{start},{start + 5},{start + 35},NORMAL_CLEARING\n"
                    f"{uid(8)},,101,103,{start + 60},0,{start + 80},NO_ANSWER\n")
    # epoch times are UTC whatever the zone says
    summary = load_freeswitch(stores, [path], columns=columns, timezone="America/New_York")
    assert summary.total("calls_added") == 2, summary.lines()
    assert stores.calls.query("SELECT start_time, talk_seconds, outcome FROM calls ORDER BY start_time") == [
        (datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc), 30.0, "answered"),
        (datetime(2026, 3, 2, 9, 1, tzinfo=timezone.utc), 0.0, "missed"),
    ]
    with pytest.raises(InvalidInput, match="must include uuid"):
        parse_columns("caller_id_number,start_stamp,end_stamp")
    with pytest.raises(InvalidInput, match="unknown FreeSWITCH CDR field"):
        parse_columns("uuid,start_stamp,end_stamp,caller_idnumber")


def test_local_times_follow_the_zone_across_a_dst_change(stores: Stores, tmp_path: Path) -> None:
    rows = [fs_leg(uid(10)), fs_leg(uid(11))]
    rows[0]["start_stamp"], rows[0]["answer_stamp"], rows[0]["end_stamp"] = (
        "2026-03-28 12:00:00", "2026-03-28 12:00:05", "2026-03-28 12:01:00")  # CET, UTC+1
    rows[1]["start_stamp"], rows[1]["answer_stamp"], rows[1]["end_stamp"] = (
        "2026-03-30 12:00:00", "2026-03-30 12:00:05", "2026-03-30 12:01:00")  # CEST, UTC+2
    load_freeswitch(stores, [write_example(tmp_path / "m.csv", rows)], timezone="Europe/Paris")
    assert [r[0].hour for r in stores.calls.query("SELECT start_time FROM calls ORDER BY start_time")] == [11, 10]


def test_bad_rows_and_bytes_that_are_not_utf8(stores: Stores, tmp_path: Path) -> None:
    rows = [fs_leg(uid(20), name="Zoë"), fs_leg(uid(21), name="PLACEHOLDER"), fs_leg(uid(22)), fs_leg(uid(23))]
    rows[2]["start_stamp"] = "not a time"
    rows[3]["uuid"] = ""
    text = "".join(",".join(f'"{r[c]}"' for c in EXAMPLE) + "\n" for r in rows) + '"only","three","fields"\n'
    data = text.encode("utf-8").replace(b"PLACEHOLDER", "Fran\xe7ois".encode("latin-1"))
    path = tmp_path / "Master.csv"
    path.write_bytes(data)
    summary = load_freeswitch(stores, [path], timezone="UTC")
    assert summary.total("calls_added") == 2
    assert stores.calls.query("SELECT from_name FROM calls ORDER BY start_time") == [("Zoë",), ("Fran\\xE7ois",)]
    q = stores.calls.query("SELECT line, reason FROM quarantine ORDER BY line")
    assert q[0] == (3, "start_stamp 'not a time' is not a time")
    assert q[1] == (4, "no uuid")
    assert q[2][0] == 5 and "too few fields" in q[2][1]


def test_loading_again_adds_nothing(stores: Stores, tmp_path: Path) -> None:
    path = write_example(tmp_path / "Master.csv", [fs_leg(uid(30 + i), minute=i) for i in range(4)])
    assert load_freeswitch(stores, [path], timezone="UTC").total("calls_added") == 4
    assert [r.status for r in load_freeswitch(stores, [path], timezone="UTC").results] == ["skipped"]
    other = write_example(tmp_path / "Master.csv.1", [fs_leg(uid(30 + i), minute=i) for i in range(2, 6)])
    again = load_freeswitch(stores, [other], timezone="UTC")
    assert again.total("calls_added") == 2 and again.total("duplicates") == 2


def test_recordings_named_by_uuid(stores: Stores, tmp_path: Path) -> None:
    rows = [fs_leg(uid(40), bleg=uid(41)), fs_leg(uid(41), start=1), fs_leg(uid(42), minute=3)]
    path = write_example(tmp_path / "Master.csv", rows)
    folder = tmp_path / "recordings"
    folder.mkdir()
    t = np.arange(8000 * 10) / 8000
    soundfile.write(folder / f"2026-03-02-{uid(41)}.wav", (0.1 * np.sin(2 * np.pi * 300 * t)).astype("float32"), 8000)
    summary = load_freeswitch(stores, [path], timezone="UTC", recordings=folder)
    assert summary.total("recordings_linked") == 1
    assert stores.calls.query("SELECT c.source_id, r.state, r.segment_seq, r.offset_seconds FROM recordings r "
                              "JOIN calls c USING (call_id)") == [(uid(40), "available", 1, 4.0)]


def test_the_command_line(tmp_path: Path, realdata: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIMNB_DATA": str(tmp_path / "data")}
    run = [sys.executable, "-m", "dimnb"]
    subprocess.run(run + ["init"], env=env, check=True, capture_output=True)
    out = subprocess.run(run + ["load", "freeswitch", str(realdata / "freeswitch" / "Master.csv"), "--no-progress"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "(this machine's zone; set --timezone to the PBX's)" in out.stdout
    assert "10 rows: 8 calls loaded, 2 duplicates skipped, 0 quarantined" in out.stdout
    help_text = subprocess.run(run + ["load", "freeswitch", "--help"], env=env, capture_output=True, text=True).stdout
    assert "--recording-pattern" in help_text and "--timezone" in help_text
