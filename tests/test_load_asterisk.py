"""The Asterisk loader on the real cdr_custom sample and on files written in each documented layout."""

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
from dimnb.actions import PLAY_RECORDING, VIEW_CALLS
from dimnb.directory import import_directory
from dimnb.errors import InvalidInput
from dimnb.filters import Filters
from dimnb.ingest.asterisk import CDR_CSV_LAYOUTS, load_asterisk, parse_columns
from dimnb.ingest.loader import sync_directory
from dimnb.store.stores import Stores

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 2, 9, 0, 0)  # wall-clock time on the PBX
INTS = {"duration", "billsec", "sequence"}


def leg(n: int, *, src: str = "101", dst: str = "0442079460001", channel: str = "PJSIP/101-0000000a",
        dstchannel: str = "PJSIP/trunk-0000000b", lastapp: str = "Dial", lastdata: str = "PJSIP/x@trunk,60",
        start: int = 0, answer: int | None = 5, end: int = 65, disposition: str | None = None,
        clid: str | None = None, uniqueid: str | None = None, linkedid: str | None = None, sequence: int | None = None,
        base: datetime = T0, **extra: str) -> dict[str, object]:
    """One Asterisk CDR (a leg), times in seconds after ``base`` + ``n`` minutes."""
    t0 = base + timedelta(minutes=n)
    fmt = "%Y-%m-%d %H:%M:%S"
    uid = uniqueid or f"{int(t0.replace(tzinfo=timezone.utc).timestamp())}.{n}"
    row: dict[str, object] = {
        "accountcode": "", "src": src, "dst": dst, "dcontext": "from-internal",
        "clid": clid if clid is not None else f'"Agent {src}" <{src}>', "channel": channel, "dstchannel": dstchannel,
        "lastapp": lastapp, "lastdata": lastdata, "start": (t0 + timedelta(seconds=start)).strftime(fmt),
        "answer": (t0 + timedelta(seconds=answer)).strftime(fmt) if answer is not None else "",
        "end": (t0 + timedelta(seconds=end)).strftime(fmt), "duration": end - start,
        "billsec": end - answer if answer is not None else 0,
        "disposition": disposition or ("ANSWERED" if answer is not None else "NO ANSWER"),
        "amaflags": "DOCUMENTATION", "uniqueid": uid, "userfield": "", "peeraccount": "",
        "linkedid": linkedid or uid, "sequence": sequence if sequence is not None else n,
    }
    row.update(extra)
    return row


def csv_line(row: dict[str, object], layout: tuple[str, ...] | list[str]) -> str:
    """As cdr_csv writes it: strings quoted (quotes doubled), numbers bare, an empty time as nothing."""
    out = []
    for name in layout:
        value = row.get(name, "")
        if name in INTS:
            out.append(str(value))
        elif name in ("answer",) and value == "":
            out.append("")
        else:
            out.append('"' + str(value).replace('"', '""') + '"')
    return ",".join(out)


def write(path: Path, rows: list[dict[str, object]], layout: tuple[str, ...] | list[str]) -> Path:
    path.write_text("".join(csv_line(r, layout) + "\n" for r in rows), encoding="utf-8")
    return path


def ring_group_call(n: int, *, caller: str = "+442079460099", members: tuple[str, str] = ("101", "102"),
                    answered_by: str | None = "101") -> list[dict[str, object]]:
    """An inbound call to ring group 600 fanned out through Local channels, as FreePBX writes it."""
    uid = f"{1772442000 + n * 60}.{n * 10}"
    rows = []
    for i, member in enumerate(members):
        local = f"Local/{member}@from-queue-0000{n:02d}{i}"
        took = member == answered_by
        rows.append(leg(n, src=caller, dst="600", channel=f"PJSIP/trunk-{n:04d}00", dstchannel=f"{local};1",
                        lastdata=f"Local/{members[0]}@from-queue&Local/{members[1]}@from-queue,20",
                        answer=8 if took else None, end=90 if took else 8, uniqueid=uid, linkedid=uid,
                        sequence=n * 10 + i, clid=f'"{caller}" <{caller}>'))
        rows.append(leg(n, src=caller, dst=member, channel=f"{local};2", dstchannel=f"PJSIP/{member}-{n:04d}1{i}",
                        lastdata=f"PJSIP/{member},,tr", answer=8 if took else None, end=90 if took else 8,
                        uniqueid=f"{uid}{i + 1}", linkedid=uid, sequence=n * 10 + 2 + i,
                        clid=f'"{caller}" <{caller}>'))
    return rows


def calls(stores: Stores, sql: str = "SELECT source_id, direction, outcome, segment_count FROM calls ORDER BY 1"):
    return stores.calls.query(sql)


# ------------------------------------------------------------------------------------------ the real sample


def test_real_cdr_custom_sample_loads_all_14_calls(stores: Stores, realdata: Path) -> None:
    summary = load_asterisk(stores, [realdata / "asterisk-cdr-custom" / "Master.csv"], timezone="Indian/Antananarivo")
    assert summary.total("calls_added") == 14
    assert summary.total("quarantined") == 0
    assert [r.kind for r in summary.results] == ["asterisk-cdr_custom"]
    assert "14 rows: 14 calls loaded" in "\n".join(summary.lines())
    # A uniqueid begins with the channel's Unix time: read in the PBX's zone, the start agrees with it.
    start = stores.calls.query("SELECT start_time FROM calls WHERE source_id = '1690325492.2'")[0][0]
    assert start == datetime.fromtimestamp(1690325492, timezone.utc)
    outcomes = dict(stores.calls.query("SELECT outcome, count(*) FROM calls GROUP BY 1"))
    assert outcomes == {"answered": 11, "missed": 3}
    assert {r[0] for r in stores.calls.query("SELECT DISTINCT direction FROM calls")} == {"internal"}
    # endpoints are the extensions; the dialled number is the call's "to"
    row = stores.calls.query("SELECT from_ext, to_party, final_ext FROM calls WHERE source_id = '1690325492.2'")
    assert row == [("client1", "6789", "client2")]
    assert not any("uniqueids" in n for n in summary.notes)


def test_real_sample_read_in_the_wrong_zone_says_so(stores: Stores, realdata: Path) -> None:
    summary = load_asterisk(stores, [realdata / "asterisk-cdr-custom" / "Master.csv"], timezone="UTC")
    assert summary.total("calls_added") == 14
    assert any("UTC+03:00" in n for n in summary.notes), summary.notes


def test_the_real_sample_works_with_the_access_rule(stores: Stores, realdata: Path, tmp_path: Path) -> None:
    directory = {
        "groups": [{"name": "Ops"}],
        "users": [
            {"login": "c1", "name": "Client One", "report_scope": "own", "playback": "own",
             "extensions": [{"extension": "client1"}], "groups": [{"group": "Ops", "primary": True}]},
            {"login": "c2", "name": "Client Two", "report_scope": "own", "playback": "own",
             "extensions": [{"extension": "client2"}], "groups": [{"group": "Ops", "primary": True}]},
        ],
    }
    load_asterisk(stores, [realdata / "asterisk-cdr-custom" / "Master.csv"], timezone="Indian/Antananarivo")
    path = tmp_path / "dir.json"
    path.write_text(json.dumps(directory))
    import_directory(stores.state, path)
    with stores.calls.write() as con:  # what `dimnb directory import` does after importing
        sync_directory(con, stores)
    c1 = access.load_actor(stores.state, "c1")
    # every sample call is between client1 and client2
    assert reports.count_calls(stores.calls, c1, Filters()) == 14
    call_id = stores.calls.query("SELECT call_id FROM calls WHERE source_id = '1690325492.2'")[0][0]
    reason = access.why(stores.calls, c1, call_id, VIEW_CALLS)
    assert reason is not None and str(reason) == "Own Calls: you took part in this call (extension client1)"
    assert stores.calls.query("SELECT DISTINCT group_name FROM call_tags") == [("Ops",)]


# ------------------------------------------------------------------------------------------ cdr_csv layouts


@pytest.mark.parametrize("width", [16, 17, 18, 19, 20, 21])
def test_every_cdr_csv_width_is_recognised(stores: Stores, tmp_path: Path, width: int) -> None:
    layout = CDR_CSV_LAYOUTS[f"cdr_csv-{width}"]
    rows = [leg(i) for i in range(4)] + [leg(5, answer=None, end=20), leg(6, disposition="BUSY", answer=None, end=3)]
    summary = load_asterisk(stores, [write(tmp_path / "Master.csv", rows, layout)], timezone="UTC")
    assert summary.total("calls_added") == 6, summary.lines()
    assert summary.total("quarantined") == 0
    assert calls(stores, "SELECT outcome, count(*) FROM calls GROUP BY 1 ORDER BY 1") == [
        ("answered", 4), ("failed", 1), ("missed", 1)]
    assert calls(stores, "SELECT DISTINCT direction FROM calls") == [("outbound",)]
    first = stores.calls.query("SELECT start_time, answer_time, end_time, talk_seconds FROM calls ORDER BY start_time")[0]
    assert first == (datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc), datetime(2026, 3, 2, 9, 0, 5, tzinfo=timezone.utc),
                     datetime(2026, 3, 2, 9, 1, 5, tzinfo=timezone.utc), 60.0)
    key_column = "linkedid" if "linkedid" in layout else "uniqueid" if "uniqueid" in layout else None
    keys = {r[0] for r in stores.calls.query("SELECT source_id FROM calls")}
    if key_column:
        assert keys == {str(r[key_column]) for r in rows}
    else:  # no ids at all: the channel and the start second
        assert keys == {f"{r['channel']}@{r['start']}" for r in rows}


def test_17_columns_with_userfield_instead_of_uniqueid(stores: Stores, tmp_path: Path) -> None:
    layout = CDR_CSV_LAYOUTS["cdr_csv-17-userfield"]
    rows = [leg(i, userfield=f"ticket {i}") for i in range(3)]
    assert load_asterisk(stores, [write(tmp_path / "m.csv", rows, layout)], timezone="UTC").total("calls_added") == 3
    assert all("@" in k for k, in stores.calls.query("SELECT source_id FROM calls"))


def test_ring_group_fan_out_through_local_channels_is_one_call(stores: Stores, tmp_path: Path) -> None:
    rows = ring_group_call(1) + ring_group_call(2, answered_by=None)
    summary = load_asterisk(stores, [write(tmp_path / "m.csv", rows, CDR_CSV_LAYOUTS["cdr_csv-21"])], timezone="UTC")
    assert summary.total("calls_added") == 2
    assert "8 rows: 2 calls loaded, 0 duplicates skipped" in "\n".join(summary.lines())
    segs = stores.calls.query(
        "SELECT c.outcome, s.seq, s.kind, s.from_party, s.from_type, s.to_ext, s.answered "
        "FROM segments s JOIN calls c USING (call_id) ORDER BY c.start_time, s.seq")
    # the Local/...;1 rows are no party: the segments are caller -> each phone
    assert segs == [
        ("answered", 1, "talk", "+442079460099", "external", "101", True),
        ("answered", 2, "ringing", "+442079460099", "external", "102", False),
        ("missed", 1, "ringing", "+442079460099", "external", "101", False),
        ("missed", 2, "ringing", "+442079460099", "external", "102", False),
    ]
    first = stores.calls.query("SELECT direction, to_party, final_party, final_ext FROM calls ORDER BY start_time")[0]
    assert first == ("inbound", "600", "101", "101")


def test_without_linkedid_the_local_half_joins_the_call_that_dialled_it(stores: Stores, tmp_path: Path) -> None:
    rows = ring_group_call(3)
    summary = load_asterisk(stores, [write(tmp_path / "m.csv", rows, CDR_CSV_LAYOUTS["cdr_csv-18"])], timezone="UTC")
    assert summary.total("calls_added") == 1
    assert stores.calls.query("SELECT segment_count, final_ext FROM calls") == [(2, "101")]


def test_a_file_whose_width_changes_midway_loads_whole(stores: Stores, tmp_path: Path) -> None:
    # loguniqueid + loguserfield first, then newcdrcolumns switched on
    path = tmp_path / "Master.csv"
    old = [leg(i) for i in range(3)]
    new = [leg(10 + i) for i in range(3)]
    path.write_text("".join(csv_line(r, CDR_CSV_LAYOUTS["cdr_csv-18"]) + "\n" for r in old)
                    + "".join(csv_line(r, CDR_CSV_LAYOUTS["cdr_csv-21"]) + "\n" for r in new))
    summary = load_asterisk(stores, [path], timezone="UTC")
    assert summary.total("calls_added") == 6, summary.lines()
    assert summary.total("quarantined") == 0
    lines = dict(stores.calls.query("SELECT source_id, source_line FROM calls"))
    assert lines[str(old[1]["uniqueid"])] == 2 and lines[str(new[2]["linkedid"])] == 6


def test_trunks_named_explicitly(stores: Stores, tmp_path: Path) -> None:
    rows = [
        # inbound on trunk "carrier" to a named device; outbound from it
        leg(0, src="+442079460055", dst="442079460000", channel="PJSIP/carrier-00000001",
            dstchannel="PJSIP/alice-desk-00000002"),
        leg(1, src="alice-desk", dst="0442079460066", channel="PJSIP/alice-desk-00000003",
            dstchannel="PJSIP/carrier-00000004"),
    ]
    path = write(tmp_path / "m.csv", rows, CDR_CSV_LAYOUTS["cdr_csv-21"])
    load_asterisk(stores, [path], timezone="UTC", trunks=["carrier"])
    assert stores.calls.query("SELECT direction, from_ext, final_ext FROM calls ORDER BY start_time") == [
        ("inbound", None, "alice-desk"), ("outbound", "alice-desk", None)]


def test_many_trunks_with_punctuation_in_their_names(stores: Stores, tmp_path: Path) -> None:
    rows = [
        leg(0, src="+442079460055", dst="442079460000", channel="PJSIP/my.carrier-00000001",
            dstchannel="PJSIP/alice-desk-00000002"),
        leg(1, src="alice-desk", dst="0442079460066", channel="PJSIP/alice-desk-00000003",
            dstchannel="PJSIP/b+c-00000004"),
        # "." is no wildcard: myxcarrier is a device, not the trunk my.carrier
        leg(2, src="myxcarrier", dst="alice-desk", channel="PJSIP/myxcarrier-00000005",
            dstchannel="PJSIP/alice-desk-00000006"),
    ]
    path = write(tmp_path / "m.csv", rows, CDR_CSV_LAYOUTS["cdr_csv-21"])
    load_asterisk(stores, [path], timezone="UTC", trunks=["t1", "t2", "t3", "t4", "my.carrier", "b+c"])
    assert stores.calls.query("SELECT direction, from_ext, final_ext FROM calls ORDER BY start_time") == [
        ("inbound", None, "alice-desk"), ("outbound", "alice-desk", None), ("internal", "myxcarrier", "alice-desk")]


def test_voicemail_queue_and_ivr_legs(stores: Stores, tmp_path: Path) -> None:
    uid = "1772442600.50"
    rows = [
        leg(10, src="+442079460077", dst="101", channel="PJSIP/trunk-00000010", dstchannel="PJSIP/101-00000011",
            answer=None, end=20, uniqueid=uid, sequence=50),
        leg(10, src="+442079460077", dst="vmu101", channel="PJSIP/trunk-00000010", dstchannel="",
            lastapp="VoiceMail", lastdata="101@default,u", start=20, answer=20, end=45, uniqueid=uid, sequence=51),
        leg(20, src="+442079460078", dst="700", channel="PJSIP/trunk-00000020", dstchannel="", lastapp="Queue",
            lastdata="700,t,,,300", answer=1, end=50, sequence=60),
    ]
    load_asterisk(stores, [write(tmp_path / "m.csv", rows, CDR_CSV_LAYOUTS["cdr_csv-21"])], timezone="UTC")
    assert calls(stores, "SELECT outcome, segment_count FROM calls ORDER BY start_time") == [
        ("voicemail", 2), ("abandoned", 1)]
    assert stores.calls.query(
        "SELECT s.kind, s.to_party FROM segments s ORDER BY s.call_id, s.seq") == [
        ("ringing", "101"), ("voicemail", "101"), ("queue", "700")]


# ------------------------------------------------------------------------------------------ cdr_custom, FreePBX


def test_cdr_custom_with_a_column_list_and_another_separator(stores: Stores, tmp_path: Path) -> None:
    columns = "accountcode,src,dst,clid,channel,start,answer,end,duration,billsec,disposition,uniqueid,userfield,linkedid"
    layout = parse_columns(columns)
    rows = [leg(i) for i in range(3)]
    path = tmp_path / "Master.csv"
    path.write_text("".join("|".join(str(r[c]) for c in layout) + "\n" for r in rows))
    summary = load_asterisk(stores, [path], columns=columns, timezone="UTC")
    assert summary.total("calls_added") == 3, summary.lines()
    assert [r.kind for r in summary.results] == ["asterisk-columns"]
    # no dstchannel column: the dialled number decides the other side
    assert stores.calls.query("SELECT DISTINCT direction, from_ext FROM calls") == [("outbound", "101")]


def test_unknown_or_incomplete_column_lists_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown Asterisk CDR field"):
        parse_columns("clid,src,dst,strat,end,uniqueid")
    with pytest.raises(InvalidInput, match="must include start"):
        parse_columns("clid,src,dst,end,uniqueid")
    assert parse_columns("cdr_custom")[0] == "clid"


FREEPBX_HEADER = ("calldate,clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,duration,billsec,disposition,"
                  "amaflags,accountcode,uniqueid,userfield,did,recordingfile,cnum,cnam,outbound_cnum,outbound_cnam,"
                  "dst_cnam,linkedid,peeraccount,sequence")


def _tone(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(8000 * seconds)) / 8000
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype("float32"), 8000, subtype="PCM_16")


def _freepbx_export(folder: Path) -> tuple[Path, list[dict[str, object]]]:
    """A FreePBX cdr export (header, calldate only, recordingfile) in Europe/Paris time, and its monitor/ folder."""
    base = datetime(2026, 3, 2, 10, 0, 0)  # Paris wall clock: 09:00 UTC
    rows = [
        leg(0, src="+33142000001", dst="101", channel="PJSIP/trunk-00000001", dstchannel="PJSIP/101-00000002",
            base=base, answer=4, end=64, did="33142000000",
            recordingfile="external-101-+33142000001-20260302-100000-1772442000.1.wav"),
        leg(5, src="101", dst="0033142000002", channel="PJSIP/101-00000003", dstchannel="PJSIP/trunk-00000004",
            base=base, answer=6, end=36, recordingfile="out-0033142000002-101-20260302-100500-1772442300.2.wav"),
        leg(9, src="102", dst="101", channel="PJSIP/102-00000005", dstchannel="PJSIP/101-00000006",
            base=base, answer=3, end=23),
    ]
    for row in rows:
        row["calldate"] = row["start"]
        row["dst_cnam"] = "Ann Agent" if row["dst"] == "101" else ""
    rows[0]["uniqueid"] = rows[0]["linkedid"] = "1772442000.1"
    rows[1]["uniqueid"] = rows[1]["linkedid"] = "1772442300.2"
    header = FREEPBX_HEADER.split(",")
    path = folder / "cdr-export.csv"
    path.write_text(FREEPBX_HEADER + "\n" + "".join(csv_line(r, header) + "\n" for r in rows))
    monitor = folder / "monitor"
    _tone(monitor / "2026" / "03" / "02" / str(rows[0]["recordingfile"]), 60)
    # rows[1]'s file is gone (deleted by housekeeping); the third call was recorded on demand, not in the CDR
    _tone(monitor / "2026" / "03" / "02" / f"ondemand-101-102-20260302-100903-{rows[2]['uniqueid']}.wav", 15)
    _tone(monitor / "2026" / "03" / "01" / "stray-1-2-20260301-080000-1772300000.9.wav", 1)
    return path, rows


def test_freepbx_export_with_recordings_in_monitor(stores: Stores, tmp_path: Path) -> None:
    path, rows = _freepbx_export(tmp_path)
    summary = load_asterisk(stores, [path], timezone="Europe/Paris", recordings=tmp_path / "monitor")
    assert [r.kind for r in summary.results] == ["asterisk-freepbx"]
    assert summary.total("calls_added") == 3 and summary.total("quarantined") == 0
    assert summary.total("recordings_linked") == 3
    got = stores.calls.query(
        "SELECT c.source_id, c.start_time, c.answer_time, c.end_time, c.direction FROM calls c ORDER BY c.start_time")
    assert got[0] == ("1772442000.1", datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc),
                      datetime(2026, 3, 2, 9, 0, 4, tzinfo=timezone.utc),
                      datetime(2026, 3, 2, 9, 1, 4, tzinfo=timezone.utc), "inbound")
    assert [g[4] for g in got] == ["inbound", "outbound", "internal"]
    recs = stores.calls.query(
        "SELECT c.source_id, r.state, r.segment_seq, round(r.duration_seconds), r.offset_seconds, r.format "
        "FROM recordings r JOIN calls c USING (call_id) ORDER BY c.start_time")
    assert recs == [
        ("1772442000.1", "available", 1, 60.0, 0.0, "wav"),  # the name's local time, 10:00:00 Paris
        ("1772442300.2", "missing", 1, None, 0.0, "wav"),
        (str(rows[2]["uniqueid"]), "available", 1, 15.0, 3.0, "wav"),  # found by its uniqueid; began 3 s in
    ]
    missing = stores.calls.query("SELECT source_path FROM recordings WHERE state = 'missing'")[0][0]
    assert missing == str((tmp_path / "monitor" / "2026" / "03" / "02" / str(rows[1]["recordingfile"])).resolve())
    assert stores.calls.query("SELECT recordings_total, recordings_available, recordings_pending FROM calls "
                              "ORDER BY start_time") == [(1, 1, 0), (1, 0, 0), (1, 1, 0)]
    unmatched = [Path(p).name for p, in stores.calls.query("SELECT path FROM unmatched_files WHERE system = 'asterisk'")]
    assert unmatched == ["stray-1-2-20260301-080000-1772300000.9.wav"]
    assert stores.calls.query("SELECT to_name FROM segments ORDER BY call_id")[0] == ("Ann Agent",)


def test_a_semicolon_separated_export_with_extra_columns(stores: Stores, tmp_path: Path) -> None:
    path, _rows = _freepbx_export(tmp_path)
    lines = path.read_text().splitlines()
    import csv
    import io

    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["id"] + rows[0])  # an auto-increment column dimnb does not know
    for n, row in enumerate(rows[1:]):
        writer.writerow([n + 1] + row)
    other = tmp_path / "phpmyadmin.csv"
    other.write_text(out.getvalue())
    summary = load_asterisk(stores, [other], timezone="Europe/Paris")
    assert [r.kind for r in summary.results] == ["asterisk-freepbx"]
    assert summary.total("calls_added") == 3 and summary.total("quarantined") == 0


def test_freepbx_recordings_are_playable_at_once_for_their_owner(stores: Stores, tmp_path: Path,
                                                                 directory_file: Path) -> None:
    import_directory(stores.state, directory_file)
    path, _rows = _freepbx_export(tmp_path)
    load_asterisk(stores, [path], timezone="Europe/Paris")  # monitor/ next to the file is found by itself
    ann = access.load_actor(stores.state, "ann")  # extension 101, report and playback: own
    assert reports.count_calls(stores.calls, ann, Filters()) == 3
    assert reports.count_calls(stores.calls, ann, Filters(with_recordings=True)) == 2
    playable = [r for r, in stores.calls.query("SELECT recording_id FROM recordings ORDER BY recording_id")
                if access.can_play(stores.calls, ann, r)]
    assert len(playable) == 2  # the missing file is not playable
    decision = access.can_play(stores.calls, ann, playable[0])
    assert decision is not None and decision.path_kind == "source" and Path(decision.path).is_file()
    bob = access.load_actor(stores.state, "bob")  # extension 102: only the internal call
    assert reports.count_calls(stores.calls, bob, Filters()) == 3  # primary group Sales is ann's too
    cat = access.load_actor(stores.state, "cat")  # Support: none of these
    assert reports.count_calls(stores.calls, cat, Filters()) == 0
    assert all(access.can_play(stores.calls, cat, r) is None for r in playable)


def test_recordings_found_by_a_name_pattern(stores: Stores, tmp_path: Path) -> None:
    rows = [leg(i) for i in range(3)]
    path = write(tmp_path / "Master.csv", rows, CDR_CSV_LAYOUTS["cdr_csv-21"])
    folder = tmp_path / "recs"
    _tone(folder / f"{rows[0]['uniqueid']}.wav", 5)
    _tone(folder / "sub" / f"{rows[2]['uniqueid']}.wav", 7)
    _tone(folder / "not-a-call.wav", 1)
    summary = load_asterisk(stores, [path], timezone="UTC", recordings=folder, recording_pattern="{uniqueid}.wav")
    assert summary.total("recordings_linked") == 2
    assert stores.calls.query("SELECT c.source_id, r.offset_seconds FROM recordings r JOIN calls c USING (call_id) "
                              "ORDER BY 1") == [(str(rows[0]["uniqueid"]), 5.0), (str(rows[2]["uniqueid"]), 5.0)]
    with pytest.raises(InvalidInput, match="exactly one of"):
        load_asterisk(stores, [path], recording_pattern="*.wav")
    with pytest.raises(InvalidInput, match="unknown placeholder"):
        load_asterisk(stores, [path], recording_pattern="{unique}.wav")


def test_a_cdr_naming_recordings_without_a_folder_says_how_to_link_them(stores: Stores, tmp_path: Path) -> None:
    rows = [leg(0, recordingfile="out-1-2-20260302-090000-1.2.wav")]
    path = write(tmp_path / "m.csv", rows, ["accountcode", "src", "dst", "channel", "dstchannel", "start", "answer",
                                            "end", "duration", "billsec", "disposition", "uniqueid", "recordingfile"])
    summary = load_asterisk(stores, [path], timezone="UTC",
                            columns="accountcode,src,dst,channel,dstchannel,start,answer,end,duration,billsec,"
                                    "disposition,uniqueid,recordingfile")
    assert summary.total("calls_added") == 1
    assert any("--recordings" in n for n in summary.notes)
    assert stores.calls.query("SELECT count(*) FROM recordings") == [(0,)]


# ------------------------------------------------------------------------------------------ bad input


def test_bytes_that_are_not_utf8_are_kept_and_shown_safely(stores: Stores, tmp_path: Path) -> None:
    layout = CDR_CSV_LAYOUTS["cdr_csv-21"]
    rows = [leg(0, clid='"José" <101>'), leg(1, clid='"MULLER" <101>'), leg(2)]
    data = "".join(csv_line(r, layout) + "\n" for r in rows).encode("utf-8")
    data = data.replace(b"MULLER", "Müller".encode("latin-1"))  # one row written by a Latin-1 system
    path = tmp_path / "Master.csv"
    path.write_bytes(data)
    summary = load_asterisk(stores, [path], timezone="UTC")
    assert summary.total("calls_added") == 3 and summary.total("quarantined") == 0
    assert any("not UTF-8" in n for n in summary.notes)
    names = [r[0] for r in stores.calls.query("SELECT from_name FROM calls ORDER BY start_time")]
    assert names == ["José", "M\\xFCller", "Agent 101"]


def test_malformed_rows_are_quarantined_with_line_and_reason(stores: Stores, tmp_path: Path) -> None:
    layout = CDR_CSV_LAYOUTS["cdr_csv-21"]
    good = [leg(i) for i in range(4)]
    bad_time = leg(10)
    bad_time["start"] = "yesterday"
    backwards = leg(11, start=30, answer=None, end=10)
    transfer = [leg(12, sequence=120, linkedid="1772442720.12"), leg(12, src="101", dst="102", start=30,
                 dstchannel="PJSIP/102-00000099", sequence=121, linkedid="1772442720.12", uniqueid="1772442750.13")]
    transfer[1]["answer"] = "soon"
    lines = [csv_line(good[0], layout), '"","101","102","from-internal"', csv_line(good[1], layout),
             csv_line(bad_time, layout), csv_line(backwards, layout), csv_line(transfer[0], layout),
             csv_line(transfer[1], layout), csv_line(good[2], layout), csv_line(good[3], layout)]
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(lines) + "\n")
    summary = load_asterisk(stores, [path], timezone="UTC")
    assert summary.total("calls_added") == 4
    q = stores.calls.query("SELECT line, reason FROM quarantine ORDER BY line")
    assert [line for line, _ in q] == [2, 4, 5, 6, 7]
    assert "too few fields" in q[0][1]
    assert q[1][1] == "start 'yesterday' is not a time"
    assert q[2][1] == "end is before start"
    assert q[3][1].startswith("another row of this call (linkedid 1772442720.12) is invalid")
    assert q[4][1] == "answer 'soon' is not a time"
    assert stores.calls.query("SELECT raw FROM quarantine WHERE line = 6")[0][0].startswith(",101,")
    assert dict(stores.calls.query("SELECT source_id, source_line FROM calls"))[str(good[3]["linkedid"])] == 9
    assert "9 rows: 4 calls loaded, 0 duplicates skipped, 5 quarantined" in "\n".join(summary.lines())


def test_line_numbers_hold_in_a_file_read_in_parallel(stores: Stores, tmp_path: Path) -> None:
    # 40,000 rows (12 MB): DuckDB reads the file in parallel parts, and a read that lost their order
    # would give every row, call and quarantined line the wrong line number.
    layout = CDR_CSV_LAYOUTS["cdr_csv-21"]
    rows = [leg(i, base=T0 - timedelta(days=30)) for i in range(40_000)]
    rows[35_000]["start"] = "yesterday"
    path = write(tmp_path / "Master.csv", rows, layout)
    summary = load_asterisk(stores, [path], timezone="UTC")
    assert summary.total("calls_added") == 39_999 and summary.total("quarantined") == 1
    lines = dict(stores.calls.query("SELECT source_id, source_line FROM calls"))
    assert all(lines[str(rows[n]["linkedid"])] == n + 1 for n in (0, 1, 19_999, 20_000, 34_999, 39_999))
    q = stores.calls.query("SELECT line, reason, raw FROM quarantine")
    assert q == [(35_001, "start 'yesterday' is not a time", ",".join(str(rows[35_000][c]) for c in layout))]


def test_a_file_in_no_known_layout_asks_for_columns(stores: Stores, tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InvalidInput, match="give its column order with --columns"):
        load_asterisk(stores, [path])


# ------------------------------------------------------------------------------------------ idempotence


def test_loading_again_adds_nothing_and_a_grown_file_adds_only_its_new_calls(stores: Stores, tmp_path: Path) -> None:
    layout = CDR_CSV_LAYOUTS["cdr_csv-21"]
    path = write(tmp_path / "Master.csv", [leg(i) for i in range(5)] + ring_group_call(7), layout)
    assert load_asterisk(stores, [path], timezone="UTC").total("calls_added") == 6
    again = load_asterisk(stores, [path], timezone="UTC")
    assert [r.status for r in again.results] == ["skipped"]
    # Asterisk appends to Master.csv: the next load reads the old rows again and adds the new calls only
    with open(path, "a") as handle:
        handle.write(csv_line(leg(20), layout) + "\n" + csv_line(leg(20), layout) + "\n")
    grown = load_asterisk(stores, [path], timezone="UTC")
    assert grown.total("calls_added") == 1
    assert "11 rows: 1 calls loaded, 10 duplicates skipped" in "\n".join(grown.lines())
    assert stores.calls.query("SELECT count(*), sum(segment_count) FROM calls") == [(7, 8)]


def test_the_command_line(tmp_path: Path, realdata: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIMNB_DATA": str(tmp_path / "data")}
    run = [sys.executable, "-m", "dimnb"]
    subprocess.run(run + ["init"], env=env, check=True, capture_output=True)
    out = subprocess.run(run + ["load", "asterisk", str(realdata / "asterisk-cdr-custom" / "Master.csv"),
                                "--timezone", "Indian/Antananarivo", "--no-progress"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "note: times read as Indian/Antananarivo local time" in out.stdout
    assert "14 rows: 14 calls loaded, 0 duplicates skipped, 0 quarantined" in out.stdout
    bad = subprocess.run(run + ["load", "asterisk", str(realdata / "asterisk-cdr-custom" / "Master.csv"),
                                "--columns", "clid,src,when"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "unknown Asterisk CDR field(s): when" in bad.stderr
    assert "Traceback" not in bad.stderr
    zone = subprocess.run(run + ["load", "asterisk", str(realdata / "asterisk-cdr-custom" / "Master.csv"),
                                 "--timezone", "Mars/Olympus"], env=env, capture_output=True, text=True)
    assert zone.returncode == 1 and "unknown time zone 'Mars/Olympus'" in zone.stderr


def test_access_rule_on_cdr_csv_calls(stores_with_directory: Stores, tmp_path: Path) -> None:
    stores = stores_with_directory
    rows = ring_group_call(1) + [
        leg(30, src="201", dst="0442079460011", channel="PJSIP/201-00000301", dstchannel="PJSIP/trunk-00000302"),
        leg(31, src="300", dst="201", channel="PJSIP/300-00000311", dstchannel="PJSIP/201-00000312"),
    ]
    load_asterisk(stores, [write(tmp_path / "Master.csv", rows, CDR_CSV_LAYOUTS["cdr_csv-21"])], timezone="UTC")
    ids = dict(stores.calls.query("SELECT final_ext, call_id FROM calls"))
    ann, bob, cat, dan = (access.load_actor(stores.state, u) for u in ("ann", "bob", "cat", "dan"))
    assert reports.count_calls(stores.calls, ann, Filters()) == 1  # answered the ring group call
    assert str(access.why(stores.calls, ann, ids["101"], VIEW_CALLS)) == \
        "Own Calls: you took part in this call (extension 101)"
    assert access.why(stores.calls, bob, ids["101"], VIEW_CALLS) is not None  # rang, and Sales
    assert reports.count_calls(stores.calls, cat, Filters()) == 2  # her own two
    assert access.why(stores.calls, cat, ids["101"], PLAY_RECORDING) is None
    assert reports.count_calls(stores.calls, dan, Filters()) == 3
    assert stores.calls.query("SELECT c.final_ext, t.group_name FROM call_tags t JOIN calls c USING (call_id) "
                              "ORDER BY 1, 2") == [("101", "Sales"), ("201", "Billing"), ("201", "Support"),
                                                   (None, "Support")]


def test_a_folder_with_rotated_files_and_monitor(stores: Stores, tmp_path: Path) -> None:
    folder = tmp_path / "cdr-csv"
    folder.mkdir()
    layout = CDR_CSV_LAYOUTS["cdr_csv-21"]
    write(folder / "Master.csv.1", [leg(i) for i in range(3)], layout)
    write(folder / "Master.csv", [leg(i) for i in range(2, 6)], layout)
    _tone(folder / "monitor" / "2026" / "03" / "02" / f"out-0442079460001-101-20260302-090500-{leg(5)['uniqueid']}.wav",
          2)
    summary = load_asterisk(stores, [folder], timezone="UTC")
    assert sorted(Path(r.path).name for r in summary.results) == ["Master.csv", "Master.csv.1"]
    assert summary.total("calls_added") == 6 and summary.total("duplicates") == 1
    assert summary.total("recordings_linked") == 1
