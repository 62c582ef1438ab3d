from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from dimnb.demo import tonecode
from dimnb.demo.generate import CDR_COLUMNS, format_timestamps, format_uuids, generate

UUID = re.compile(r"^00000000-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00$")
FICTIONAL = re.compile(r"^(\+442079460\d{3}|\+120255501\d\d)$")
URL = re.compile(r"^(\d{3})/\[([^\]/]+)\]_([^-_/]+)-([^_/]+)_(\d{14})\((\d+)\)\.wav$")
PERSONAS = {
    "olivia": ("own", "own", []),
    "sam": ("primary_group", "own", []),
    "paul": ("primary_group", "primary_group", []),
    "maria": ("member_groups", "member_groups", []),
    "alex": ("all", "all", ["admin"]),
    "nina": ("primary_group", "none", []),
    "audrey": ("all", "none", ["auditor"]),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out)
    return out


@pytest.fixture(scope="module")
def cdrs(demo: Path) -> pd.DataFrame:
    df = pd.read_csv(demo / "cdroutput.csv", dtype=str, keep_default_na=False)
    for col in ("cdr_started_at", "cdr_ended_at", "cdr_answered_at"):
        df[col + "_ts"] = pd.to_datetime(df[col].replace("", None), format="%Y-%m-%d %H:%M:%S.%f%z", utc=True)
    df["row"] = np.arange(len(df))
    df = df.sort_values(["call_history_id", "cdr_started_at_ts"], kind="stable")
    df["pos"] = df.groupby("call_history_id").cumcount()
    df["n"] = df.groupby("call_history_id")["cdr_id"].transform("size")
    return df.sort_values("row")


@pytest.fixture(scope="module")
def recordings(demo: Path) -> pd.DataFrame:
    return pd.read_csv(demo / "cdrrecordings.csv", dtype=str, keep_default_na=False)


def read_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}


# ---------------------------------------------------------------------------- formatting helpers


def test_format_helpers_match_python() -> None:
    rng = np.random.default_rng(0)
    us = rng.integers(-(10**15), 4 * 10**15, 2000)
    expected = [
        (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(v))).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        for v in us
    ]
    assert [s.decode() for s in format_timestamps(us)] == expected
    # 3CX's own example id: FILETIME 0x01dc688a260757e5, counter 0x0c10
    ticks = 0x01DC688A260757E5 // 10 * 10  # ids carry whole microseconds
    ts_us = ticks // 10 - 11_644_473_600 * 1_000_000
    got = format_uuids(np.array([ts_us]), np.array([0x0C10]))[0].decode()
    assert got == f"00000000-01dc-688a-2607-{ticks & 0xFFFF:04x}00000c10"


# ---------------------------------------------------------------------------- determinism


def test_same_arguments_give_identical_bytes(demo: Path, tmp_path: Path) -> None:
    generate(tmp_path)
    assert read_bytes(tmp_path) == read_bytes(demo)
    wavs = sorted((demo / "Recordings").rglob("*.wav"))
    assert wavs == sorted(demo / p.relative_to(tmp_path) for p in (tmp_path / "Recordings").rglob("*.wav"))
    for wav in wavs[:: max(1, len(wavs) // 12)]:
        twin = tmp_path / wav.relative_to(demo)
        assert twin.read_bytes() == wav.read_bytes()
        assert twin.stat().st_mtime_ns == wav.stat().st_mtime_ns


def test_audio_flag_and_seed(demo: Path, tmp_path: Path) -> None:
    manifest = generate(tmp_path / "a", audio=False)
    assert not (tmp_path / "a" / "Recordings").exists()
    assert manifest["counts"]["recordings_files_written"] == 0
    for name in ("cdroutput.csv", "cdrrecordings.csv", "directory.json"):
        assert (tmp_path / "a" / name).read_bytes() == (demo / name).read_bytes()
    generate(tmp_path / "b", audio=False, seed=8)
    assert (tmp_path / "b" / "cdroutput.csv").read_bytes() != (demo / "cdroutput.csv").read_bytes()


# ---------------------------------------------------------------------------- cdroutput.csv


def test_cdroutput_header_values_and_formats(demo: Path, cdrs: pd.DataFrame) -> None:
    header = (demo / "cdroutput.csv").read_text().split("\n", 1)[0]
    assert header.split(",") == CDR_COLUMNS
    for col in ("cdr_id", "call_history_id", "main_call_history_id", "source_participant_id",
                "destination_participant_id"):
        assert cdrs[col].str.match(UUID).all(), col
    for col in ("base_cdr_id", "originating_cdr_id", "continued_in_cdr_id", "terminated_by_participant_id"):
        assert cdrs[col].pipe(lambda s: s[s != ""]).str.match(UUID).all(), col
    for col in ("cdr_started_at", "cdr_ended_at"):
        assert cdrs[col].str.match(STAMP).all()
    assert cdrs.loc[cdrs.cdr_answered_at != "", "cdr_answered_at"].str.match(STAMP).all()
    for col in ("source_participant_is_incoming", "source_participant_is_already_connected",
                "destination_participant_is_incoming", "destination_participant_is_already_connected",
                "processed", "migrated"):
        assert set(cdrs[col]) <= {"t", "f"}
    entities = {"extension", "external_line", "queue", "ivr", "voicemail", "ring_group_ring_all", "conference"}
    assert set(cdrs.source_entity_type) | set(cdrs.destination_entity_type) <= entities
    assert set(cdrs.source_dn_type) | set(cdrs.destination_dn_type) <= {
        "extension", "provider", "queue", "ivr", "conference"}
    assert set(cdrs.creation_method) <= {"call_init", "divert", "route_to", "transfer", "join"}
    assert set(cdrs.termination_reason) <= {"continued_in", "src_participant_terminated",
                                            "dst_participant_terminated", "cancelled", "rejected", "redirected"}
    # the cdr id carries the CDR's start as a Windows FILETIME
    ticks = cdrs.cdr_id.str.replace("-", "").str[8:24].map(lambda h: int(h, 16))
    started_us = (cdrs.cdr_started_at_ts - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(microseconds=1)
    assert (ticks // 10 - 11_644_473_600 * 1_000_000 == started_us).all()


def test_ids_unique_and_rows_ordered(cdrs: pd.DataFrame) -> None:
    assert cdrs.cdr_id.is_unique
    assert cdrs.destination_participant_id.is_unique
    assert not set(cdrs.cdr_id) & set(cdrs.call_history_id.drop_duplicates().iloc[1:])
    assert cdrs.cdr_started_at_ts.is_monotonic_increasing


def test_chains_are_single_continuous_and_start_with_call_init(cdrs: pd.DataFrame) -> None:
    by_chain = cdrs.sort_values(["call_history_id", "pos"])
    first = by_chain[by_chain.pos == 0]
    assert (first.creation_method == "call_init").all()
    assert (first.base_cdr_id == "").all()
    assert (first.source_participant_is_already_connected == "f").all()
    rest = by_chain[by_chain.pos > 0]
    assert (rest.creation_method != "call_init").all()
    nxt = by_chain.groupby("call_history_id").shift(-1)
    non_last = by_chain.pos < by_chain.n - 1
    assert (by_chain.termination_reason[non_last] == "continued_in").all()
    assert (by_chain.continued_in_cdr_id[non_last] == nxt.cdr_id[non_last]).all()
    assert (by_chain.cdr_ended_at[non_last] == nxt.cdr_started_at[non_last]).all()
    assert (nxt.base_cdr_id[non_last] == by_chain.cdr_id[non_last]).all()
    last = by_chain[~non_last]
    assert (last.termination_reason != "continued_in").all()
    assert (last.continued_in_cdr_id == "").all()
    # in later CDRs the caller is the same participant, already connected
    assert (rest.source_participant_is_already_connected == "t").all()
    assert (rest.source_participant_id.values == by_chain.groupby("call_history_id").source_participant_id
            .transform("first")[by_chain.pos > 0].values).all()
    # one connected chain per call: every CDR but the first is some CDR's continuation, exactly once
    targets = cdrs.continued_in_cdr_id[cdrs.continued_in_cdr_id != ""]
    assert targets.is_unique and set(targets) == set(rest.cdr_id)


def test_times_are_consistent(cdrs: pd.DataFrame) -> None:
    answered = cdrs[cdrs.cdr_answered_at != ""]
    assert (answered.cdr_started_at_ts <= answered.cdr_answered_at_ts).all()
    assert (answered.cdr_answered_at_ts <= answered.cdr_ended_at_ts).all()
    assert (cdrs.cdr_started_at_ts < cdrs.cdr_ended_at_ts).all()
    start, end = pd.Timestamp("2026-10-21", tz="UTC"), pd.Timestamp("2026-11-20", tz="UTC")
    firsts = cdrs[cdrs.pos == 0]
    assert firsts.cdr_started_at_ts.between(start, end).all()


def test_segment_kinds_follow_the_flows(cdrs: pd.DataFrame) -> None:
    con = duckdb.connect()
    con.register("c", cdrs.drop(columns=[c for c in cdrs.columns if c.endswith("_ts")]))
    flows = dict(con.execute("""
        SELECT flow, count(*) FROM (
            SELECT call_history_id,
                   string_agg(destination_entity_type || ':' || creation_method || ':'
                              || (cdr_answered_at <> '')::INT, ' > ' ORDER BY pos) AS flow
            FROM c WHERE source_entity_type = 'external_line' AND destination_entity_type <> 'conference'
            GROUP BY ALL) GROUP BY flow""").fetchall())
    ivr, queue = "ivr:call_init:1", "queue:divert:0"
    assert set(flows) == {
        f"{ivr} > {queue}",  # abandoned in the queue
        f"{ivr} > {queue} > extension:route_to:0",  # missed
        f"{ivr} > {queue} > extension:route_to:0 > voicemail:divert:1",
        f"{ivr} > {queue} > extension:route_to:1",
        f"{ivr} > {queue} > extension:route_to:1 > extension:transfer:1",
        f"{ivr} > {queue} > extension:route_to:1 > extension:transfer:1 > extension:transfer:1",
    }, flows
    answered_inbound = sum(v for k, v in flows.items() if k.count("extension:") and ":1" in k.split(" > ")[2])
    transferred = sum(v for k, v in flows.items() if "transfer" in k)
    assert 0.05 < transferred / answered_inbound < 0.3
    ivr_rows = cdrs[cdrs.destination_entity_type == "ivr"]
    assert (ivr_rows.destination_dn_number == "700").all()
    wait = (ivr_rows.cdr_ended_at_ts - ivr_rows.cdr_started_at_ts).dt.total_seconds()
    assert wait.between(5, 20).all()
    queues = cdrs[cdrs.destination_entity_type == "queue"]
    assert set(queues.destination_dn_number) == {"800", "801"}
    assert (queues.cdr_answered_at == "").all()
    abandoned = queues[queues.pos == queues.n - 1]
    assert len(abandoned) and (abandoned.termination_reason == "src_participant_terminated").all()
    missed = cdrs[(cdrs.termination_reason == "cancelled")]
    assert len(missed) and (missed.cdr_answered_at == "").all()
    failed = cdrs[cdrs.termination_reason == "rejected"]
    assert len(failed) and set(failed.termination_reason_details) <= {"no_route", "busy"}
    outbound = cdrs[(cdrs.source_entity_type == "extension") & (cdrs.destination_entity_type == "external_line")]
    assert len(outbound) and (outbound.destination_dn_number == "10000").all()
    assert (outbound.destination_dn_type == "provider").all()
    internal = cdrs[(cdrs.source_entity_type == "extension") & (cdrs.destination_entity_type == "extension")]
    assert len(internal) and (internal.source_dn_number != internal.destination_dn_number).all()


def test_phone_numbers_are_fictional(cdrs: pd.DataFrame) -> None:
    for side in ("source", "destination"):
        ext = cdrs[cdrs[f"{side}_entity_type"] == "external_line"]
        assert ext[f"{side}_participant_phone_number"].str.match(FICTIONAL).all()
        assert (ext[f"{side}_dn_number"] == "10000").all()
    assert cdrs.source_participant_trunk_did.pipe(lambda s: s[s != ""]).str.match(FICTIONAL).all()
    people = cdrs[cdrs.source_entity_type == "extension"].source_dn_number.astype(int)
    assert people.between(100, 199).all()


def test_conference_legs(cdrs: pd.DataFrame) -> None:
    legs = cdrs[cdrs.destination_entity_type == "conference"]
    assert len(legs) > 0
    assert (legs.n == 1).all() and (legs.destination_dn_type == "conference").all()
    assert (legs.destination_dn_number == "900").all() and (legs.destination_dn_name == "Conference 900").all()
    assert (legs.cdr_started_at == legs.cdr_answered_at).all()
    assert set(legs.source_entity_type) == {"extension", "external_line"}
    others = cdrs[cdrs.destination_entity_type != "conference"]
    assert (others.main_call_history_id == others.call_history_id).all()
    late = early = 0
    for main, group in legs.groupby("main_call_history_id"):
        group = group.sort_values("cdr_started_at_ts")
        assert len(group) >= 3
        assert group.call_history_id.iloc[0] == main and group.call_history_id.is_unique
        assert group.cdr_started_at_ts.iloc[0] < group.cdr_started_at_ts.iloc[1]
        span = group.cdr_ended_at_ts.max() - group.cdr_started_at_ts.min()
        late += int(((group.cdr_started_at_ts - group.cdr_started_at_ts.min()) > 0.15 * span).sum())
        early += int(((group.cdr_ended_at_ts.max() - group.cdr_ended_at_ts) > 0.15 * span).sum())
    assert late > 0 and early > 0
    share = legs.main_call_history_id.nunique() / cdrs.main_call_history_id.nunique()
    assert 0.01 < share < 0.06


# ---------------------------------------------------------------------------- recordings


def test_recording_rows_and_urls(cdrs: pd.DataFrame, recordings: pd.DataFrame) -> None:
    assert list(recordings.columns) == ["cdr_id", "cdr_participant_id", "recording_url"]
    assert recordings.cdr_id.is_unique and recordings.recording_url.is_unique
    rec = recordings.merge(cdrs, on="cdr_id", how="left", validate="one_to_one")
    assert rec.call_history_id.notna().all()
    parts = rec.recording_url.str.extract(URL)
    assert parts.notna().all().all(), rec.recording_url[parts.isna().any(axis=1)].tolist()
    folder, display, a, b, stamp, n = (parts[i] for i in range(6))
    assert sorted(n.astype(int)) == list(range(1, len(rec) + 1))
    assert (stamp == rec.cdr_answered_at_ts.dt.strftime("%Y%m%d%H%M%S")).all()
    conf = rec.destination_entity_type == "conference"
    assert conf.any() and (~conf).any()
    assert (folder[conf] == "900").all() and (display[conf] == "Conference 900").all() and (b[conf] == "900").all()
    assert (rec.call_history_id[conf] == rec.main_call_history_id[conf]).all()
    assert (a[conf] == rec.source_participant_phone_number[conf]).all()
    inbound = rec.source_entity_type == "external_line"
    assert (folder[inbound] == rec.destination_dn_number[inbound]).all()
    assert (rec.cdr_participant_id[inbound] == rec.destination_participant_id[inbound]).all()
    assert (a[inbound] == rec.source_participant_phone_number[inbound]).all()
    assert (b[inbound] == rec.destination_dn_number[inbound]).all()
    own = ~inbound & ~conf
    assert (folder[own] == rec.source_dn_number[own]).all()
    assert (rec.cdr_participant_id[~inbound] == rec.source_participant_id[~inbound]).all()
    talk = ~conf
    assert (rec.cdr_answered_at[talk] != "").all()
    assert set(rec.destination_entity_type[talk]) <= {"extension", "external_line"}
    # every answered talk segment of a recorded call is recorded
    recorded_calls = set(rec.call_history_id[talk])
    talk_cdrs = cdrs[cdrs.call_history_id.isin(recorded_calls) & (cdrs.cdr_answered_at != "")
                     & cdrs.destination_entity_type.isin(["extension", "external_line"])]
    assert set(talk_cdrs.cdr_id) == set(rec.cdr_id[talk])
    calls_with_talk = cdrs[cdrs.destination_entity_type.isin(["extension", "external_line"])
                           & (cdrs.cdr_answered_at != "")].call_history_id.nunique()
    assert 0.3 < len(recorded_calls) / calls_with_talk < 0.5


def talk_seconds(cdrs: pd.DataFrame, rec: pd.Series) -> float:
    if rec.destination_entity_type == "conference":
        legs = cdrs[cdrs.main_call_history_id == rec.main_call_history_id]
        return (legs.cdr_ended_at_ts.max() - legs.cdr_started_at_ts.min()).total_seconds()
    return (rec.cdr_ended_at_ts - rec.cdr_answered_at_ts).total_seconds()


def test_recording_files(demo: Path, cdrs: pd.DataFrame, recordings: pd.DataFrame) -> None:
    root = demo / "Recordings"
    rec = recordings.merge(cdrs, on="cdr_id")
    exists = rec.recording_url.map(lambda u: (root / u).is_file())
    missing = int((~exists).sum())
    assert 0 < missing <= 0.06 * len(rec)
    assert len(list(root.rglob("*.wav"))) == int(exists.sum())
    total = sum(p.stat().st_size for p in root.rglob("*.wav"))
    assert total < 150e6
    rng = np.random.default_rng(5)
    checked_conference = False
    for _, r in rec[exists].iterrows():
        path = root / r.recording_url
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (8000, 1, "PCM_16", "WAV")
        seconds = talk_seconds(cdrs, r)
        assert abs(info.frames - seconds * 8000) <= 1, r.recording_url
        end = r.cdr_ended_at_ts if r.destination_entity_type != "conference" else (
            cdrs[cdrs.main_call_history_id == r.main_call_history_id].cdr_ended_at_ts.max())
        assert path.stat().st_mtime_ns == end.value // 1000 * 1000
    sample = rec[exists].sample(n=25, random_state=3)
    sample = pd.concat([sample, rec[exists & (rec.destination_entity_type == "conference")].head(2)])
    for _, r in sample.iterrows():
        audio, sr = sf.read(root / r.recording_url, dtype="int16")
        tag = 0 if r.destination_entity_type == "conference" else min(int(r.pos) + 1, 7)
        checked_conference |= tag == 0
        for t in rng.uniform(0, len(audio) / sr - 0.5, 3):
            code = tonecode.decode_at(audio, sr, float(t))
            assert code == tonecode.Code(tonecode.call_code(r.call_history_id), tag, int(t)), r.recording_url
    assert checked_conference


# ---------------------------------------------------------------------------- directory and manifest


def periods(entries: list[dict]) -> list[tuple[datetime, datetime]]:
    def at(value: str | None, default: datetime) -> datetime:
        return default if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))

    lo, hi = datetime(1900, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC)
    return sorted((at(e.get("from"), lo), at(e.get("to"), hi)) for e in entries)


def overlaps(spans: list[tuple[datetime, datetime]]) -> bool:
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


def test_directory_rules(demo: Path) -> None:
    directory = json.loads((demo / "directory.json").read_text())
    groups = {g["name"] for g in directory["groups"]}
    users = directory["users"]
    assert len(groups) >= 6 and len(users) >= 40
    assert len({u["login"] for u in users}) == len(users)
    window_start, window_end = datetime(2026, 10, 21, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)
    by_ext: dict[str, list[tuple[datetime, datetime]]] = {}
    moved = extra = 0
    for u in users:
        assert u["report_scope"] in {"own", "primary_group", "member_groups", "all"}
        assert u["playback"] in {"none", "own", "primary_group", "member_groups", "all"}
        assert set(u["roles"]) <= {"auditor", "admin"}
        assert {g["group"] for g in u["groups"]} <= groups
        primary = [g for g in u["groups"] if g["primary"]]
        assert primary and not overlaps(periods(primary)), u["login"]
        spans = periods(primary)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # no gap between primaries
        moved += any(window_start < s[0] < window_end for s in spans[1:])
        extra += any(not g["primary"] for g in u["groups"])
        for e in u["extensions"]:
            assert 100 <= int(e["extension"]) <= 199
            by_ext.setdefault(e["extension"], []).extend(periods([e]))
        if u["login"] in PERSONAS:
            assert (u["report_scope"], u["playback"], u["roles"]) == PERSONAS[u["login"]], u["login"]
    assert moved >= 2 and extra >= 3
    assert all(not overlaps(sorted(spans)) for spans in by_ext.values())
    shared = [ext for ext, spans in by_ext.items() if len(spans) > 1]
    assert shared and any(window_start < s[1] < window_end for ext in shared for s in by_ext[ext][:1])
    maria = next(u for u in users if u["login"] == "maria")
    assert {g["group"] for g in maria["groups"]} >= {"Sales", "Support", "Management"}
    assert [g["group"] for g in maria["groups"] if g["primary"]] == ["Management"]


def test_personas_have_calls(demo: Path, cdrs: pd.DataFrame) -> None:
    directory = json.loads((demo / "directory.json").read_text())
    ext_of = {u["login"]: u["extensions"][0]["extension"] for u in directory["users"]}
    involved = set(cdrs.loc[cdrs.source_entity_type == "extension", "source_dn_number"]) | set(
        cdrs.loc[cdrs.destination_entity_type == "extension", "destination_dn_number"])
    for login in PERSONAS:
        assert ext_of[login] in involved, login


def test_manifest(demo: Path, cdrs: pd.DataFrame, recordings: pd.DataFrame) -> None:
    text = (demo / "manifest.json").read_text()
    manifest = json.loads(text)
    assert text == json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    counts = manifest["counts"]
    assert counts["calls"] == 500 == cdrs.main_call_history_id.nunique()
    assert counts["cdrs"] == len(cdrs) and counts["recordings"] == len(recordings)
    assert counts["recordings_files_written"] + counts["recordings_files_missing"] == len(recordings)
    assert sum(counts["outcome"].values()) == 500
    assert manifest["seed"] == 7 and manifest["arguments"]["end"] == "2026-11-20"
    logins = {d["login"]: d for d in manifest["demo_logins"]}
    assert set(logins) == set(PERSONAS)
    for login, (report, playback, roles) in PERSONAS.items():
        assert (logins[login]["report_scope"], logins[login]["playback"], logins[login]["roles"]) == (
            report, playback, roles)
        assert logins[login]["name"] and logins[login]["description"]


# ---------------------------------------------------------------------------- scale


def test_scale_smoke(tmp_path: Path) -> None:
    # How fast is bench/reports.py's business (the machine is shared: no absolute times in tests).
    manifest = generate(tmp_path, calls=20_000, audio=False, end=date(2026, 4, 1), days=60)
    lines = (tmp_path / "cdroutput.csv").read_bytes().count(b"\n")
    assert lines == manifest["counts"]["cdrs"] + 1
    assert manifest["counts"]["calls"] == 20_000


def test_one_block_is_byte_for_byte_the_generator_before_it_streamed(tmp_path: Path) -> None:
    # sha256 of what the generator wrote before it streamed (dimnb 1adf917), same arguments
    generate(tmp_path, calls=3000, seed=5, audio=False)
    digest = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()[:16]
              for name in ("cdroutput.csv", "cdrrecordings.csv", "manifest.json")}
    assert digest == {"cdroutput.csv": "8482e6b960d32339", "cdrrecordings.csv": "c3286cb0f876f671",
                      "manifest.json": "26cb688f6b50e75b"}


def test_streamed_blocks_make_one_whole_dataset(tmp_path: Path) -> None:
    manifest = generate(tmp_path, calls=6000, audio=False, end=date(2026, 4, 1), days=20, block_calls=700)
    df = pd.read_csv(tmp_path / "cdroutput.csv", dtype=str, keep_default_na=False)
    assert len(df) == manifest["counts"]["cdrs"]
    assert df.cdr_started_at.is_monotonic_increasing  # blocks are whole nights apart: one order over the file
    ids = pd.concat([df.cdr_id, df.destination_participant_id, df.call_history_id.drop_duplicates(),
                     df.source_participant_id.drop_duplicates()])
    assert ids.is_unique  # every block's id counters are its own
    assert df.call_history_id.nunique() == manifest["counts"]["call_flows"]
    assert set(df.continued_in_cdr_id[df.continued_in_cdr_id != ""]) <= set(df.cdr_id)  # chains stay in one block
    assert set(df.main_call_history_id) <= set(df.call_history_id)
    recordings = pd.read_csv(tmp_path / "cdrrecordings.csv", dtype=str)
    numbers = recordings.recording_url.str.extract(r"\((\d+)\)\.wav$")[0].astype(int)
    assert numbers.tolist() == list(range(1, len(recordings) + 1)) == list(range(1, manifest["counts"]["recordings"] + 1))
    assert set(recordings.cdr_id) <= set(df.cdr_id)
    assert sum(manifest["counts"]["outcome"].values()) == 6000
