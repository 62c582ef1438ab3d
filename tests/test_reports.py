"""The Call List on the demo company: each quick filter, scope, the playback grant, sorting, paging, export.

Expected answers come from plain queries on the stored tables and from
``access.why`` (the per-call rule), not from the report code under test.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import dimnb
from demo_fixtures import demo_built, demo_pending, demo_playable  # noqa: F401  (fixtures)
from dimnb import access, reports
from dimnb.actions import PLAY_RECORDING, VIEW_CALLS
from dimnb.errors import InvalidInput, UnknownUser
from dimnb.filters import SORTABLE
from dimnb.store.stores import Stores
from dimnb.workbench import Workbench, open_workbench

ROOT = Path(__file__).resolve().parents[1]
UTC = timezone.utc


def _wb(data_dir: Path, login: str) -> Workbench:
    return Workbench(Stores.open(str(data_dir)), login)


def _ids(frame: pd.DataFrame) -> list[int]:
    return [int(x) for x in frame["call_id"]]


def _all_ids(stores: Stores, sql: str = "SELECT call_id FROM calls", params: dict[str, Any] | None = None) -> set[int]:
    return {int(r[0]) for r in stores.calls.query(sql, params)}


def _visible(stores: Stores, login: str) -> set[int]:
    """The calls ``login`` may list, decided call by call by access.why."""
    actor = access.load_actor(stores.state, login)
    return {c for c in _all_ids(stores) if access.why(stores.calls, actor, c, VIEW_CALLS) is not None}


@pytest.fixture(scope="module")
def maria(demo_playable: Path) -> Workbench:
    return _wb(demo_playable, "maria")


# ------------------------------------------------------------------------------------------ scope


@pytest.mark.parametrize("login", ["olivia", "sam", "maria", "nina", "alex"])
def test_the_list_is_exactly_the_report_scope(demo_playable: Path, login: str) -> None:
    wb = _wb(demo_playable, login)
    listed = _ids(wb.calls())
    assert len(listed) == len(set(listed)) == wb.count()
    assert set(listed) == _visible(wb.stores, login)


# ------------------------------------------------------------------------------------------ time


def test_a_date_time_range_is_read_in_its_time_zone(maria: Workbench) -> None:
    stores = maria.stores
    day = stores.calls.query("SELECT CAST(max(start_time) AS DATE) - 3 FROM calls")[0][0]
    text = day.isoformat()
    new_york = maria.calls(start=f"{text}T05:00", end=f"{text}T09:00", timezone="America/New_York")
    utc = maria.calls(start=f"{text}T05:00", end=f"{text}T09:00", timezone="UTC")
    lo, hi = datetime.fromisoformat(f"{text}T10:00+00:00"), datetime.fromisoformat(f"{text}T14:00+00:00")
    expected = _all_ids(stores, "SELECT call_id FROM calls WHERE start_time >= $a AND start_time < $b",
                        {"a": lo, "b": hi}) & _visible(stores, "maria")
    assert set(_ids(new_york)) == expected and expected
    assert set(_ids(utc)) != expected  # the zone mattered
    assert str(new_york["start_time"].dt.tz) == "America/New_York"
    assert all(lo <= t < hi for t in new_york["start_time"])


def test_dates_default_to_the_users_time_zone_and_times_come_back_in_it(demo_playable: Path) -> None:
    noah = _wb(demo_playable, "noah")  # works from New York
    assert noah.filters().timezone == "America/New_York"
    frame = noah.calls(start="2026-11-02")
    assert str(frame["start_time"].dt.tz) == "America/New_York"
    assert frame["start_time"].min() >= pd.Timestamp("2026-11-02T05:00Z")


def test_a_period_is_resolved_on_the_report_clock(maria: Workbench, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMNB_NOW", "2026-11-20T00:00:00Z")
    frame = maria.calls(period="last_7_days")
    expected = _all_ids(maria.stores, "SELECT call_id FROM calls WHERE start_time >= '2026-11-14T00:00:00Z'")
    assert set(_ids(frame)) == expected & _visible(maria.stores, "maria") and len(frame)


# ------------------------------------------------------------------------------------------ the other quick filters


@pytest.mark.parametrize("direction", ["inbound", "outbound", "internal"])
def test_direction(maria: Workbench, direction: str) -> None:
    frame = maria.calls(direction=direction)
    assert len(frame) and set(frame["direction"]) == {direction}
    assert set(_ids(frame)) == _all_ids(maria.stores, "SELECT call_id FROM calls WHERE direction = $d",
                                        {"d": direction}) & _visible(maria.stores, "maria")


def test_outcome_and_several_values(demo_playable: Path, maria: Workbench) -> None:
    alex = _wb(demo_playable, "alex")
    for outcome in ("answered", "missed", "abandoned", "voicemail", "failed"):
        frame = alex.calls(outcome=outcome)
        assert len(frame) and set(frame["outcome"]) == {outcome}
        assert set(_ids(frame)) == _all_ids(alex.stores, "SELECT call_id FROM calls WHERE outcome = $o",
                                            {"o": outcome})
    # abandoned in the queue: nobody took part, so no group tag: outside Maria's scope
    assert maria.count(outcome="abandoned") == 0
    both = maria.calls(outcome=["missed", "voicemail"], direction="inbound")
    assert set(both["outcome"]) == {"missed", "voicemail"} and set(both["direction"]) == {"inbound"}
    assert len(both) == maria.count(outcome="missed", direction="inbound") + maria.count(outcome="voicemail",
                                                                                          direction="inbound")


def test_duration_range(maria: Workbench) -> None:
    frame = maria.calls(min_duration="1:00", max_duration=120)
    assert len(frame) and frame["duration_seconds"].between(60, 120).all()
    expected = _all_ids(maria.stores, "SELECT call_id FROM calls WHERE duration_seconds BETWEEN 60 AND 120")
    assert set(_ids(frame)) == expected & _visible(maria.stores, "maria")


def test_group(maria: Workbench) -> None:
    frame = maria.calls(group="support")  # spelled as the directory spells it
    assert len(frame) and all("Support" in g.split(", ") for g in frame["groups"])
    expected = _all_ids(maria.stores, "SELECT call_id FROM call_tags WHERE group_name = 'Support'")  # the table
    groups = dict(maria.stores.calls.query("SELECT call_id, string_agg(group_name, ', ' ORDER BY group_name) "
                                           "FROM call_tags GROUP BY call_id"))
    assert all(groups.get(r.call_id, "") == r.groups for r in maria.calls().itertuples())
    assert set(_ids(frame)) == expected & _visible(maria.stores, "maria")
    # a group outside Maria's own groups still only narrows her scope
    billing = maria.calls(group="Billing")
    assert set(_ids(billing)) <= _visible(maria.stores, "maria")
    with pytest.raises(InvalidInput) as caught:
        maria.calls(group="Nonexistent")
    assert caught.value.field == "group"


def test_party_by_login(maria: Workbench) -> None:
    frame = maria.calls(party="olivia")
    expected = _all_ids(maria.stores, "SELECT call_id FROM call_users WHERE login = 'olivia'")
    assert set(_ids(frame)) == expected & _visible(maria.stores, "maria") and len(frame)
    assert set(_ids(maria.calls(party="user:Olivia"))) == set(_ids(frame))


def test_party_by_extension_finds_it_in_any_segment(demo_playable: Path) -> None:
    alex = _wb(demo_playable, "alex")
    # an extension that answered a middle segment of a transferred call (neither the caller nor the final party)
    ext, middle = alex.stores.calls.query(
        """
        SELECT s.to_ext, s.call_id FROM segments s JOIN calls c USING (call_id)
        WHERE s.to_ext IS NOT NULL AND s.to_ext <> c.final_ext AND s.kind = 'talk'
          AND s.to_ext NOT IN (coalesce(c.from_ext, ''), coalesce(c.to_ext, ''))
        ORDER BY s.call_id LIMIT 1
        """
    )[0]
    frame = alex.calls(party=ext)
    expected = _all_ids(alex.stores, "SELECT call_id FROM segments WHERE from_ext = $x OR to_ext = $x", {"x": ext})
    assert middle in set(_ids(frame)) and set(_ids(frame)) == expected
    assert set(_ids(alex.calls(party=f"ext:{ext}"))) == expected


def test_party_by_number_substring_as_people_type_it(maria: Workbench) -> None:
    number = maria.stores.calls.query(
        "SELECT from_party FROM calls WHERE from_party LIKE '+4420%' ORDER BY call_id LIMIT 1")[0][0]
    national = f"0{number[3:5]} {number[5:9]} {number[9:]}"  # +442079460123 → "020 7946 0123"
    frame = maria.calls(party=national)
    digits = number[3:]
    assert len(frame)
    for row in frame.itertuples():
        assert any(digits in (p or "") for p in (row.from_party, row.to_party, row.final_party))
    fragment = maria.calls(party=number[-6:])
    assert set(_ids(frame)) <= set(_ids(fragment))
    expected = _all_ids(maria.stores, "SELECT call_id FROM calls WHERE contains(from_party, $d) "
                        "OR contains(to_party, $d) OR contains(final_party, $d)", {"d": number[-6:]})
    assert set(_ids(fragment)) == expected & _visible(maria.stores, "maria")


def test_party_by_name(maria: Workbench) -> None:
    frame = maria.calls(party="laura")
    assert len(frame)
    assert all("laura" in f"{r.from_name} {r.final_name} {r.from_party}".lower() for r in frame.itertuples())


def test_party_naming_a_user_who_left_is_refused(tmp_path: Path, demo_built: Path) -> None:
    from test_saved_filters import copy_demo, drop_from_directory

    data = copy_demo(demo_built, tmp_path)
    drop_from_directory(data, users={"olivia"})
    wb = _wb(data, "maria")
    with pytest.raises(InvalidInput) as caught:
        wb.calls(party="olivia")
    assert caught.value.field == "party" and "no longer an active user" in str(caught.value)
    with pytest.raises(InvalidInput) as unknown:
        wb.calls(party="user:nobody")
    assert unknown.value.field == "party"


# ------------------------------------------------------------------------------------------ recordings


def test_with_recordings_follows_the_playback_grant_not_the_report_scope(demo_playable: Path) -> None:
    sam = _wb(demo_playable, "sam")  # lists every call tagged Sales, may play only his own
    stores = sam.stores
    actor = sam.actor
    listed = sam.calls()
    playable = {c for c in _ids(listed) if access.why(stores.calls, actor, c, PLAY_RECORDING) is not None}
    with_audio = _all_ids(stores, "SELECT call_id FROM recordings WHERE state = 'available'")
    frame = sam.calls(with_recordings=True)
    assert set(_ids(frame)) == playable & with_audio and len(frame)
    assert len(set(_ids(listed)) & with_audio) > len(frame)  # recorded calls he may list but not play
    marked = set(listed.loc[listed["recording"] != "", "call_id"].astype(int))
    assert marked == playable & with_audio
    assert set(listed.loc[listed["recording"] != "", "recording"]) == {"playable"}


def test_no_playback_no_marker_and_no_recorded_calls(demo_playable: Path) -> None:
    nina = _wb(demo_playable, "nina")
    assert nina.count() > 0
    assert nina.count(with_recordings=True) == 0
    assert set(nina.calls()["recording"]) == {""}


def test_pending_recordings_are_marked_but_not_playable(demo_pending: Path) -> None:
    maria = _wb(demo_pending, "maria")
    frame = maria.calls()
    assert set(frame["recording"]) == {"", "pending archive"}
    assert maria.count(with_recordings=True) == 0
    olivia = _wb(demo_pending, "olivia")
    own = olivia.calls()
    pending = _all_ids(olivia.stores, "SELECT call_id FROM recordings WHERE state = 'pending_archive'")
    assert set(own.loc[own["recording"] == "pending archive", "call_id"].astype(int)) == set(_ids(own)) & pending


# ------------------------------------------------------------------------------------------ sorting and paging


@pytest.mark.parametrize("column", sorted(SORTABLE))
def test_every_column_sorts_both_ways(maria: Workbench, column: str) -> None:
    everything = maria.calls(sort="call_id")
    if column == "recording":
        key = everything["recording"].map({"playable": 2, "pending archive": 1, "": 0})
    elif column.endswith("_seconds"):  # the frame rounds to 0.1 s; the order is by the stored value
        raw = dict(maria.stores.calls.query(f"SELECT call_id, {column} FROM calls"))
        key = everything["call_id"].map(raw)
    else:
        key = everything[column]
    for descending in (True, False):
        page = maria.calls(sort=column, descending=descending, page=1, page_size=40)
        ordered = everything.assign(_k=key).sort_values(["_k", "call_id"], ascending=not descending,
                                                        na_position="last", kind="stable")
        assert _ids(page) == _ids(ordered.head(40)), (column, descending)


def test_pages_add_up_to_the_list(maria: Workbench) -> None:
    first = maria.page(direction="inbound", page_size=30)
    total, pages = first.total, first.pages
    assert total == maria.count(direction="inbound") and pages == -(-total // 30)
    seen: list[int] = []
    for n in range(1, pages + 1):
        seen += maria.page(direction="inbound", page=n, page_size=30, with_total=False).call_ids
    assert seen == _ids(maria.calls(direction="inbound"))
    assert maria.page(direction="inbound", page=pages + 1, page_size=30).call_ids == []


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"page": 0}, "page"), ({"page": -3}, "page"), ({"page": "2"}, "page"), ({"page": True}, "page"),
    ({"page_size": 0}, "page_size"), ({"page_size": 10**6}, "page_size"),
    ({"sort": "password"}, "sort"), ({"sort": "start_time; DROP TABLE calls"}, "sort"),
])
def test_bad_paging_and_sorting_name_the_field(maria: Workbench, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        maria.page(**kwargs)
    assert caught.value.field == field


# ------------------------------------------------------------------------------------------ export


def test_csv_export_is_the_scoped_listing(demo_playable: Path, tmp_path: Path) -> None:
    for login in ("olivia", "maria"):
        wb = _wb(demo_playable, login)
        path = tmp_path / f"{login}.csv"
        written = wb.export_csv(path, direction=["inbound", "internal"], sort="duration_seconds")
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        listed = wb.calls(direction=["inbound", "internal"], sort="duration_seconds")
        assert written == len(rows) == len(listed) == wb.count(direction=["inbound", "internal"])
        assert [int(r["Call"]) for r in rows] == _ids(listed)
        assert set(int(r["Call"]) for r in rows) <= _visible(wb.stores, login)
        assert list(rows[0]) == [reports.COLUMN_LABELS[c] for c in reports.COLUMNS]
        first = rows[0]
        start = datetime.fromisoformat(first["Start Time"])
        assert start.utcoffset() is not None
        assert abs(start - listed["start_time"].iloc[0].to_pydatetime()).total_seconds() < 1
        assert not list(tmp_path.glob("*.partial"))


def test_export_from_the_command_line(demo_playable: Path, tmp_path: Path) -> None:
    out = tmp_path / "calls.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "dimnb", "calls", "--data", str(demo_playable), "--as", "sam",
                           "--group", "Sales", "--output", str(out)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == _wb(demo_playable, "sam").count(group="Sales") and f"wrote {len(rows)} calls" in done.stderr
    bad = subprocess.run([sys.executable, "-m", "dimnb", "calls", "--data", str(demo_playable), "--as", "sam",
                          "--min-duration", "soon"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "Shortest: 'soon' is not a duration" in bad.stderr and "Traceback" not in bad.stderr
    table = subprocess.run([sys.executable, "-m", "dimnb", "calls", "--data", str(demo_playable), "--as", "sam",
                            "--period", "last_30_days", "--limit", "3"], capture_output=True, text=True,
                           env={**env, "DIMNB_NOW": "2026-11-20T00:00:00Z"})
    assert table.returncode == 0 and "3 of " in table.stdout


# ------------------------------------------------------------------------------------------ the Python API


def test_dimnb_open_and_a_cheap_import(demo_playable: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIMNB_USER", raising=False)
    wb = dimnb.open(str(demo_playable), user="maria")
    assert isinstance(wb, Workbench) and wb.login == "maria"
    frame = wb.calls(direction="inbound", page_size=5)
    assert len(frame) == 5 and isinstance(frame, pd.DataFrame) and frame["start_time"].dt.tz is not None
    with pytest.raises(InvalidInput):
        dimnb.open(str(demo_playable))  # who are you?
    with pytest.raises(UnknownUser):
        dimnb.open(str(demo_playable), user="mallory")
    probe = subprocess.run([sys.executable, "-c", "import sys, dimnb; print(sorted(m for m in "
                            "('pandas', 'duckdb', 'ipywidgets') if m in sys.modules))"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert probe.stdout.strip() == "[]"


def test_in_a_dashboard_kernel_the_user_comes_from_the_server(demo_playable: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMNB_USER", "olivia")
    assert open_workbench(str(demo_playable)).login == "olivia"
    assert open_workbench(str(demo_playable), user="olivia").login == "olivia"
    with pytest.raises(InvalidInput) as caught:
        open_workbench(str(demo_playable), user="alex")
    assert caught.value.field == "user" and "olivia" in str(caught.value)


def test_a_revoked_report_scope_is_honoured_at_the_next_call(demo_playable: Path) -> None:
    from dimnb.directory import set_grants

    wb = _wb(demo_playable, "sam")
    wide = wb.count()
    set_grants(wb.stores.state, "sam", report_scope="own")
    try:
        assert wb.count() < wide and set(_ids(wb.calls())) == _visible(wb.stores, "sam")
    finally:
        set_grants(wb.stores.state, "sam", report_scope="primary_group")
