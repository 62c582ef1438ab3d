"""The other reports on a hand-written company (tests/report_world.py): numbers worked out by hand, scope
against the reference model, every linked number against the Call List's count, the CLI, and the exports."""

from __future__ import annotations

import csv
import json
import statistics
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import access_reference as ref
from dimnb import report_queries
from dimnb.cli import main
from dimnb.errors import InvalidInput
from dimnb.store.stores import Stores
from dimnb.workbench import Workbench
from report_world import FACTS, build_report_world, call_ids, world

MONDAY = {"start": "2026-03-02", "end": "2026-03-02", "timezone": "UTC"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reports") / "data"
    build_report_world(root).close()
    return root


@pytest.fixture(scope="module")
def stores(data_dir: Path) -> Stores:
    return Stores.open(str(data_dir))


@pytest.fixture(scope="module")
def ids(stores: Stores) -> dict[str, int]:
    return call_ids(stores)


def _wb(stores: Stores, login: str) -> Workbench:
    return Workbench(stores, login)


def _rows(frame: pd.DataFrame, key: str) -> dict[str, dict[str, Any]]:
    return {str(r[key]): r for r in frame.to_dict("records")}


# ------------------------------------------------------------------------------------------ by hand


def test_agent_summary_by_hand(stores: Stores) -> None:
    frame = _wb(stores, "ann").report("agents", **MONDAY)
    assert list(frame["user"]) == ["ann", "bob", "cat"]  # most calls first, then by login
    rows = _rows(frame, "user")
    expect = {
        "ann": dict(name="User ann", calls=3, inbound=1, outbound=1, internal=1, answered=3, missed=0,
                    talk_seconds=190.0, avg_talk_seconds=63.3, avg_ring_seconds=6.3, recorded=1, recorded_pct=33.3),
        "bob": dict(name="User bob", calls=3, inbound=2, outbound=0, internal=1, answered=1, missed=2,
                    talk_seconds=30.0, avg_talk_seconds=30.0, avg_ring_seconds=4.0, recorded=0, recorded_pct=0.0),
        "cat": dict(name="User cat", calls=2, inbound=2, outbound=0, internal=0, answered=1, missed=1,
                    talk_seconds=50.0, avg_talk_seconds=50.0, avg_ring_seconds=25.0, recorded=0, recorded_pct=0.0),
    }
    for login, values in expect.items():
        assert {k: rows[login][k] for k in values} == values, login


def test_group_summary_by_hand_with_the_service_level_as_a_parameter(stores: Stores) -> None:
    ann = _wb(stores, "ann")
    rows = _rows(ann.report("groups", **MONDAY), "group")
    assert {k: rows["Sales"][k] for k in (
        "calls", "answered", "answered_pct", "abandoned", "avg_wait_seconds", "p90_wait_seconds",
        "service_level_pct")} == dict(calls=3, answered=1, answered_pct=33.3, abandoned=0, avg_wait_seconds=20.0,
                                      p90_wait_seconds=28.0, service_level_pct=33.3)
    assert {k: rows["Support"][k] for k in ("calls", "answered", "answered_pct", "abandoned", "avg_wait_seconds",
                                           "p90_wait_seconds", "service_level_pct")} == dict(
        calls=2, answered=1, answered_pct=50.0, abandoned=1, avg_wait_seconds=32.5, p90_wait_seconds=38.5,
        service_level_pct=0.0)
    wider = _rows(ann.report("groups", service_level=30, **MONDAY), "group")
    assert wider["Support"]["service_level_pct"] == 50.0
    only = ann.report("groups", group="support", **MONDAY)  # the directory's spelling
    assert list(only["group"]) == ["Support"]


def test_missed_and_abandoned_with_call_backs_by_hand(stores: Stores, ids: dict[str, int]) -> None:
    frame = _wb(stores, "ann").report("missed", **MONDAY)
    assert list(frame["call_id"]) == [ids["c7"], ids["c4"], ids["c2"]]
    rows = _rows(frame, "call_id")
    c2, c4, c7 = rows[str(ids["c2"])], rows[str(ids["c4"])], rows[str(ids["c7"])]
    assert (c2["called_back"], c2["callback_call_id"], c2["called_back_by"]) == (True, ids["c3"], "Ann Able")
    assert c2["called_back_at"] == pd.Timestamp("2026-03-02T09:30Z") and not c2["called_again"]
    assert (c4["called_back"], c4["called_again"], c4["called_again_call_id"], c4["called_again_outcome"]) == (
        False, True, ids["c5"], "answered")
    assert not c7["called_back"] and not c7["called_again"] and c7["outcome"] == "voicemail"
    assert c2["caller"] == "0044 20 1111" and c2["groups"] == "Sales"
    narrow = _rows(_wb(stores, "ann").report("missed", window_hours=0.25, **MONDAY), "call_id")
    assert not narrow[str(ids["c2"])]["called_back"]  # 30 minutes later is outside a 15-minute window


def test_a_call_back_the_viewer_may_not_see_is_not_shown(stores: Stores, ids: dict[str, int]) -> None:
    bob = _rows(_wb(stores, "bob").report("missed", **MONDAY), "call_id")
    assert set(bob) == {str(ids["c2"]), str(ids["c7"])}
    assert not bob[str(ids["c2"])]["called_back"]  # ann's call-back (c3) is outside bob's Own Calls


def test_activity_per_day_and_per_hour_against_the_previous_period(stores: Stores) -> None:
    ann = _wb(stores, "ann")
    days = ann.report("activity", **MONDAY)
    assert days.to_dict("records") == [{"date": pd.Timestamp("2026-03-02").date(), "calls": 7, "answered": 4,
                                        "previous_date": pd.Timestamp("2026-03-01").date(), "previous_calls": 1}]
    hours = ann.report("activity", by="hour", **MONDAY)
    assert len(hours) == 7 * 24
    busy = {(r["weekday"], r["hour"]): (r["calls"], r["previous_calls"]) for r in hours.to_dict("records")
            if r["calls"] or r["previous_calls"]}
    assert busy == {("Mon", 8): (1, 0), ("Mon", 9): (2, 0), ("Mon", 10): (1, 0), ("Mon", 11): (1, 0),
                    ("Mon", 12): (1, 0), ("Mon", 13): (1, 0), ("Sun", 10): (0, 1)}
    # Days are the viewer's days: at UTC+14, Sunday 10:00 UTC is Monday 00:00 and Monday 10:00 UTC is Tuesday.
    kiritimati = ann.report("activity", start="2026-03-02", end="2026-03-03", timezone="Pacific/Kiritimati")
    assert [str(d) for d in kiritimati["date"]] == ["2026-03-02", "2026-03-03"]
    assert list(kiritimati["calls"]) == [4, 4] and list(kiritimati["previous_calls"]) == [0, 0]


def test_reports_refuse_what_they_cannot_apply(stores: Stores) -> None:
    ann = _wb(stores, "ann")
    with pytest.raises(InvalidInput, match="report"):
        ann.report("salaries")
    with pytest.raises(InvalidInput, match="direction"):
        ann.report("agents", direction="inbound")
    with pytest.raises(InvalidInput, match="service_level"):
        ann.report("groups", service_level=-1)
    with pytest.raises(InvalidInput, match="group"):
        ann.report("groups", group="Nobody's group")


# ------------------------------------------------------------------------------------------ scope: the reference model


def _model_reports(login: str) -> dict[str, Any]:
    """The four reports for ``login`` over the calls the reference model lets them list (Monday only)."""
    w = world()
    who = ref.asker(w, login)
    seen = [c for c in w.calls if ref.may_view(w, who, c) and c.start.date().isoformat() == "2026-03-02"]
    played = {c.key for c in seen if any(ref.can_play(w, who, c, r) for r in c.recordings)}
    fact = {key: dict(zip(("start", "fe", "te", "direction", "from", "name", "to", "outcome", "ring", "talk"), v))
            for key, v in FACTS.items()}
    agents: dict[str, dict[str, int]] = {}
    for call in seen:
        f = fact[call.key]
        for user in ref.participants(w, call):
            row = agents.setdefault(user, {"calls": 0, "answered": 0, "missed": 0, "recorded": 0})
            row["calls"] += 1
            row["answered"] += f["outcome"] == "answered"
            row["missed"] += f["outcome"] in report_queries.UNANSWERED
            row["recorded"] += call.key in played
    groups: dict[str, list[float]] = {}
    for call in seen:
        if fact[call.key]["direction"] == "inbound":
            for group in ref.tags(w, call):
                groups.setdefault(group, []).append(fact[call.key]["ring"])
    missed = {c.key for c in seen if fact[c.key]["direction"] == "inbound"
              and fact[c.key]["outcome"] in report_queries.UNANSWERED}
    return {"agents": agents, "groups": {g: (len(v), round(statistics.fmean(v), 1)) for g, v in groups.items()},
            "missed": missed, "activity": len(seen)}


@pytest.mark.parametrize("login", ["ann", "bob", "cat"])
def test_every_report_counts_exactly_the_calls_the_reference_model_lets_the_user_list(
        stores: Stores, ids: dict[str, int], login: str) -> None:
    expected = _model_reports(login)
    wb = _wb(stores, login)
    agents = wb.report("agents", **MONDAY)
    got = {r["user"]: {k: r[k] for k in ("calls", "answered", "missed", "recorded")} for r in agents.to_dict("records")}
    assert got == expected["agents"]
    groups = wb.report("groups", **MONDAY)
    assert {r["group"]: (r["calls"], r["avg_wait_seconds"]) for r in groups.to_dict("records")} == expected["groups"]
    key_of = {v: k for k, v in ids.items()}
    assert {key_of[int(i)] for i in wb.report("missed", **MONDAY)["call_id"]} == expected["missed"]
    assert int(wb.report("activity", **MONDAY)["calls"].sum()) == expected["activity"]


# ------------------------------------------------------------------------------------------ numbers are links


@pytest.mark.parametrize("login", ["ann", "bob"])
def test_every_linked_number_opens_a_call_list_with_that_many_calls(stores: Stores, login: str) -> None:
    wb = _wb(stores, login)
    checked = 0
    for name in ("agents", "groups", "activity"):
        opts = report_queries.options(wb.filters(**MONDAY))
        frame = wb.report(name, **MONDAY)
        for row in frame.to_dict("records"):
            for column in report_queries.LINK_COLUMNS[name]:
                filters = report_queries.drill(name, row, column, opts)
                assert filters is not None
                assert wb.count(filters) == row[column], (name, row, column, filters.describe())
                checked += 1
    missed = wb.report("missed", **MONDAY)
    everything = report_queries.drill("missed", {}, "*", report_queries.options(wb.filters(**MONDAY)))
    assert wb.count(everything) == len(missed)
    assert checked >= 10


# ------------------------------------------------------------------------------------------ the CLI


def test_the_cli_prints_a_report_as_a_table_csv_or_json(data_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["report", "agents", "--data", str(data_dir), "--as", "ann", "--start", "2026-03-02", "--end",
            "2026-03-02", "--timezone", "UTC"]
    table = runner.invoke(main, base)
    assert table.exit_code == 0, table.output
    assert "User ann" in table.output and "Avg talk (s)" in table.output
    as_csv = runner.invoke(main, [*base, "--format", "csv"])
    rows = list(csv.DictReader(as_csv.output.splitlines()))
    assert [r["user"] for r in rows] == ["ann", "bob", "cat"] and rows[0]["talk_seconds"] == "190.0"
    as_json = runner.invoke(main, [*base, "--format", "json"])
    assert json.loads(as_json.output)[1]["missed"] == 2
    out = tmp_path / "groups.xlsx"
    written = runner.invoke(main, ["report", "groups", "--data", str(data_dir), "--as", "bob", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert zipfile.is_zipfile(out)
    refused = runner.invoke(main, ["report", "missed", "--data", str(data_dir), "--as", "nobody"])
    assert refused.exit_code == 1 and "Traceback" not in refused.output


# ------------------------------------------------------------------------------------------ exports


def _read_xlsx(path: Path) -> pd.DataFrame:
    return pd.read_excel(path, engine="openpyxl", dtype=str, keep_default_na=False)


@pytest.mark.parametrize("name", ["agents", "groups", "missed", "activity"])
def test_a_report_exports_to_csv_and_xlsx_equal_to_its_dataframe(stores: Stores, tmp_path: Path, name: str) -> None:
    wb = _wb(stores, "ann")
    frame = wb.report(name, **MONDAY)
    labels = [report_queries.COLUMN_LABELS[c] for c in frame.columns]
    expected = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    for fmt in ("csv", "xlsx"):
        path = tmp_path / f"{name}.{fmt}"
        assert wb.export_report(path, name, **MONDAY) == len(frame)
        got = pd.read_csv(path, dtype=str, keep_default_na=False) if fmt == "csv" else _read_xlsx(path)
        assert list(got.columns) == labels
        assert _same(got, expected), fmt


def _same(got: pd.DataFrame, expected: list[list[str]]) -> bool:
    """The file's cells equal the DataFrame's (XLSX keeps numbers and booleans as such: 190.0 reads back as 190)."""
    def same(a: str, b: str) -> bool:
        if a == b or a.lower() == b:
            return True
        try:
            return float(a) == float(b)
        except ValueError:
            return False

    rows = [list(r) for r in got.itertuples(index=False, name=None)]
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        assert len(row) == len(want) and all(same(a, b) for a, b in zip(row, want)), (row, want)
    return True


def _cell(value: Any) -> str:
    """A DataFrame value as an export shows it."""
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp):
        return value.isoformat(timespec="seconds")
    return str(value)


def test_the_call_list_exports_to_csv_and_xlsx_equal_to_its_dataframe(data_dir: Path, tmp_path: Path) -> None:
    from dimnb import reports

    wb = Workbench(Stores.open(str(data_dir)), "bob")
    frame = wb.calls(timezone="Europe/Paris")[reports.COLUMNS]
    expected = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    assert expected and expected[0][0].endswith("+01:00")
    for fmt in ("csv", "xlsx"):
        path = tmp_path / f"calls.{fmt}"
        written = wb.export_csv(path, timezone="Europe/Paris") if fmt == "csv" else wb.export_xlsx(
            path, timezone="Europe/Paris")
        assert written == len(frame)
        got = pd.read_csv(path, dtype=str, keep_default_na=False) if fmt == "csv" else _read_xlsx(path)
        assert list(got.columns) == [reports.COLUMN_LABELS[c] for c in reports.COLUMNS]
        assert _same(got, expected), fmt
        assert not list(tmp_path.glob("*.partial"))


def test_a_call_list_too_long_for_an_xlsx_sheet_is_refused_before_anything_is_written(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dimnb import exports
    from dimnb.errors import InvalidInput

    wb = Workbench(Stores.open(str(data_dir)), "bob")
    total = wb.count()
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", total)  # one row (the header) short of fitting
    with pytest.raises(InvalidInput, match=f"more than {total - 1:,} calls do not fit in an XLSX sheet"):
        wb.export_xlsx(tmp_path / "calls.xlsx")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", total + 1)
    assert wb.export_xlsx(tmp_path / "calls.xlsx") == total


# ------------------------------------------------------------------------------------------ the report view (widget)


def test_the_report_view_shows_drills_opens_and_exports(stores: Stores, ids: dict[str, int]) -> None:
    from dimnb.widgets.report_view import ReportView

    drilled: list[Any] = []
    opened: list[int] = []
    view = ReportView(_wb(stores, "ann"), on_drill=drilled.append, on_open=opened.append)
    assert view.show("agents", start="2026-03-02", end="2026-03-02")
    assert view.parameters == {"report": "agents", "start": "2026-03-02", "end": "2026-03-02"}
    assert [r["user"] for r in view.rows] == ["ann", "bob", "cat"]
    bob = [r["user"] for r in view.rows].index("bob")
    filters = view.drill(bob, "missed")
    assert drilled == [filters] and _wb(stores, "ann").count(filters) == 2
    assert view.drill(99, "missed") is None and view.drill(bob, "name") is None and view.drill("0", "calls") is None
    assert len(drilled) == 1  # forged rows and columns do nothing

    view.show("missed", start="2026-03-02", end="2026-03-02")
    assert [c["key"] for c in view.columns if c["link"] == "open"] == ["call_id"]
    row = [r["call_id"] for r in view.rows].index(ids["c2"])
    assert view.open_call(row, "callback_call_id") == ids["c3"] and opened == [ids["c3"]]
    assert view.open_call(row, "caller") is None
    total = view.drill(-1, "*")
    assert total is not None and _wb(stores, "ann").count(total) == 3

    data = view.export("xlsx")
    assert data is not None and data[:2] == b"PK"
    assert view.export("exe") is None

    view.show("activity", start="2026-03-02", end="2026-03-02")
    assert view.chart["days"] == [{"date": "2026-03-02", "calls": 7, "previous": 1}]
    assert sum(map(sum, view.chart["heat"])) == 7 and view.summary["detail"].startswith("previous period: 1 calls")

    assert view.show("nonsense") is None and "report" in view.message
    assert view.show("groups", colour="red") is None and "colour" in view.message


def test_a_long_missed_report_sends_the_browser_its_newest_rows_and_counts_them_all(
        stores: Stores, ids: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    from dimnb.widgets import report_view

    monkeypatch.setattr(report_view, "SHOWN_ROWS", 2)
    view = report_view.ReportView(_wb(stores, "ann"))
    view.show("missed", start="2026-03-02", end="2026-03-02")
    assert [r["call_id"] for r in view.rows] == [ids["c7"], ids["c4"]]  # the newest two of three
    assert view.summary["text"] == "3 missed or abandoned" and "newest 2 below, Export for all" in view.summary["detail"]
    assert view.open_call(1, "call_id") == ids["c4"] and view.open_call(2, "call_id") is None  # a row never sent
    assert len(view.frame) == 3 and view.export("csv").decode().count("\n") == 4  # the export has every row


def test_an_xlsx_export_holds_any_text_exactly(tmp_path: Path) -> None:
    import duckdb

    from dimnb import exports
    from dimnb.sql import Fragment

    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    query = Fragment("""SELECT * FROM (VALUES
        (1, 'Tom & Jerry <Sales>', '  two spaces before', TIMESTAMPTZ '2026-03-02 10:00:00+00', 2.25::DOUBLE, true),
        (2, 'bell' || chr(7) || 'rings', NULL, NULL, NULL, NULL)) t(id, name, note, started, secs, ok)""", {})
    assert exports.export_query(con, query, tmp_path / "t.xlsx", "xlsx", zone="Europe/Paris") == 2
    got = _read_xlsx(tmp_path / "t.xlsx")
    assert got.to_dict("records") == [
        {"id": "1", "name": "Tom & Jerry <Sales>", "note": "  two spaces before", "started": "2026-03-02T11:00:00+01:00",
         "secs": "2.3", "ok": "True"},
        {"id": "2", "name": "bellrings", "note": "", "started": "", "secs": "", "ok": ""}]  # XML cannot hold a BEL
