"""The Call List widgets as the kernel sees them: traits, forged messages, progress, and the app shell's wiring.

Messages from the browser go through ipywidgets' own entry point (``_handle_msg``),
exactly as a comm message would; what the kernel sends is read off the comm.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from demo_fixtures import demo_built, demo_playable  # noqa: F401  (fixtures)
from dimnb import access, reports
from dimnb.actions import VIEW_CALLS
from dimnb.filters import Filters, words
from dimnb.store.stores import Stores
from dimnb.widgets import CallListApp, CallTable, FilterBar, Player
from dimnb.widgets.app import safe_url
from dimnb.workbench import Workbench
from test_saved_filters import copy_demo, drop_from_directory


class Wire:
    """Everything a widget sends to the browser (state updates and custom messages)."""

    def __init__(self, widget: Any) -> None:
        self.messages: list[dict[str, Any]] = []
        widget.comm.send = self._send

    def _send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.messages.append(data)

    def states(self) -> list[dict[str, Any]]:
        return [m["state"] for m in self.messages if m.get("method") == "update"]

    def text(self) -> str:
        return json.dumps(self.messages, default=str)


def from_browser(widget: Any, content: Any) -> None:
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def browser_sets(widget: Any, **state: Any) -> None:
    widget._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}},
                        "buffers": []})


def _stores(path: Path) -> Stores:
    return Stores.open(str(path))


def _visible(stores: Stores, login: str) -> set[int]:
    actor = access.load_actor(stores.state, login)
    ids = [r[0] for r in stores.calls.query("SELECT call_id FROM calls")]
    return {c for c in ids if access.why(stores.calls, actor, c, VIEW_CALLS) is not None}


# ------------------------------------------------------------------------------------------ the table


def test_the_table_holds_one_page_of_the_users_scope(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    table = CallTable(Workbench(stores, "olivia"))
    visible = _visible(stores, "olivia")
    assert table.total == len(visible) and len(table.rows) == min(50, len(visible))
    assert {r["call_id"] for r in table.rows} <= visible and table.call_ids == tuple(r["call_id"] for r in table.rows)
    assert [c["key"] for c in table.columns][0] == "start" and table.columns[0]["label"] == "Start Time"
    row = table.rows[0]
    assert set(row) >= {"call_id", "start", "direction", "from", "to", "final", "ring", "talk", "duration",
                        "outcome", "groups", "segments", "recording"}
    assert table.timezone == "Europe/London" and not table.loading and not table.counting


def test_no_out_of_scope_row_is_ever_sent(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    table = CallTable(Workbench(stores, "olivia"), load=False)
    wire = Wire(table)
    for page in (1, 2, 3):
        table.go_to(page)
    table.sort_by("duration_seconds")
    visible = _visible(stores, "olivia")
    sent = {r["call_id"] for state in wire.states() for r in state.get("rows", [])}
    assert sent and sent <= visible


def test_sorting_and_paging_from_the_browser(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    table = CallTable(Workbench(stores, "maria"), page_size=20)
    total = table.total
    from_browser(table, {"type": "sort", "column": "duration_seconds"})
    assert (table.sort, table.descending, table.page) == ("duration_seconds", True, 1)
    durations = [r["duration"] for r in table.rows]
    assert durations == sorted(durations, key=lambda d: [int(x) for x in d.split(":")], reverse=True)
    from_browser(table, {"type": "sort", "column": "duration_seconds"})  # again: the other way
    assert table.descending is False
    from_browser(table, {"type": "page", "page": 2})
    assert table.page == 2 and table.state["page"] == 2 and len(table.rows) == 20
    from_browser(table, {"type": "page", "page": 10**6})  # clamped to the last page
    assert table.page == table.pages == -(-total // 20) and len(table.rows) == total - 20 * (table.pages - 1)
    assert table.total == total


def test_past_the_cap_the_total_says_more_than_and_paging_goes_on(demo_playable: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stores = _stores(demo_playable)
    exact = CallTable(Workbench(stores, "maria"), page_size=20).total
    actor = access.load_actor(stores.state, "maria")
    assert reports.count_calls_upto(stores.calls, actor, Filters(), cap=exact) == reports.Total(exact)
    capped = reports.count_calls_upto(stores.calls, actor, Filters(), cap=exact - 1)
    assert capped.capped and capped.label == f"more than {exact - 1:,} calls"
    monkeypatch.setattr(reports, "TOTAL_CAP", 30)
    table = CallTable(Workbench(stores, "maria"), page_size=20)
    assert exact > 60 and (table.total, table.total_capped, table.pages) == (30, True, 2)
    from_browser(table, {"type": "page", "page": 3})  # past the pages the capped count knows of
    assert table.page == 3 and len(table.rows) == 20 and table.total_capped
    from_browser(table, {"type": "page", "page": 10**6})  # past the matches: back to the last page counted
    assert table.rows and table.page == 2
    monkeypatch.setattr(reports, "TOTAL_CAP", exact)  # up to the cap the count is exact
    from_browser(table, {"type": "refresh"})
    assert (table.total, table.total_capped, table.pages) == (exact, False, -(-exact // 20))


@pytest.mark.parametrize("content", [
    {"type": "sort", "column": "password"},
    {"type": "sort", "column": "start_time; DROP TABLE calls"},
    {"type": "sort", "column": ["start_time"]},
    {"type": "sort"},
    {"type": "page", "page": -1},
    {"type": "page", "page": 0},
    {"type": "page", "page": "2"},
    {"type": "page", "page": 2.0},
    {"type": "page", "page": True},
    {"type": "page", "page": None},
    {"type": "nonsense"}, None, "sort", 42, [],
])
def test_forged_sort_and_page_messages_change_nothing_and_raise_nothing(demo_playable: Path, content: Any,
                                                                        caplog: Any) -> None:
    table = CallTable(Workbench(_stores(demo_playable), "maria"))
    before = dict(table.state)
    rows = table.rows
    from_browser(table, content)
    after = table.state
    assert (after["sort"], after["descending"]) == (before["sort"], before["descending"])
    assert after["page"] == 1 and table.rows == rows
    assert "Traceback" not in caplog.text and "Traceback" not in table.message


def test_an_open_counts_only_for_a_row_the_table_sent_for_this_page(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    opened: list[int] = []
    table = CallTable(Workbench(stores, "olivia"), on_open=opened.append, page_size=10)
    page_one = table.call_ids
    table.go_to(2)
    page_two = table.call_ids
    outside = sorted(set(r[0] for r in stores.calls.query("SELECT call_id FROM calls")) - _visible(stores, "olivia"))
    for forged in (page_one[0], outside[0], 10**9, -1, str(page_two[0]), float(page_two[0]), True, None, [1]):
        from_browser(table, {"type": "open", "call_id": forged})
    assert opened == [] and table.opened == []
    from_browser(table, {"type": "open", "call_id": page_two[3]})
    assert opened == [page_two[3]]


def test_forged_traits_do_not_change_what_the_kernel_holds(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    opened: list[int] = []
    table = CallTable(Workbench(stores, "olivia"), on_open=opened.append)
    outside = min(set(r[0] for r in stores.calls.query("SELECT call_id FROM calls")) - _visible(stores, "olivia"))
    truth = dict(table.state)
    browser_sets(table, rows=[{"call_id": outside, "start": "x"}], page=7, sort="password", total=10**6,
                 loading=True)
    assert table.state == truth
    from_browser(table, {"type": "open", "call_id": outside})
    assert opened == []
    table.refresh()
    assert table.sort == "start_time" and table.page == 1 and outside not in {r["call_id"] for r in table.rows}


def test_the_table_shows_progress_while_it_queries(demo_playable: Path) -> None:
    table = CallTable(Workbench(_stores(demo_playable), "maria"), load=False)
    events: list[tuple[str, Any]] = []
    for name in ("loading", "counting", "rows", "total"):
        table.observe(lambda change: events.append((change["name"], change["new"] if change["name"] in (
            "loading", "counting") else "set")), names=name)
    table.set_filters(Filters.parse({"direction": "inbound", "timezone": "Europe/London"}))
    names = [e[0] for e in events]
    assert events[0] == ("loading", True)  # set before the query
    assert ("loading", False) in events and names.index("rows") > 0  # the rows come with the spinner gone
    assert events.index(("counting", True)) < events.index(("counting", False)) < names.index("total")
    assert not table.loading and not table.counting
    events.clear()
    table.go_to(2)  # same filters: the total is not counted again
    assert ("counting", True) not in events and table.page == 2


def test_a_user_who_is_switched_off_sees_nothing_at_the_next_refresh(demo_built: Path, tmp_path: Path) -> None:
    data = copy_demo(demo_built, tmp_path)
    table = CallTable(Workbench(_stores(data), "olivia"))
    assert table.rows
    drop_from_directory(data, users={"olivia"})
    from_browser(table, {"type": "refresh"})
    assert table.rows == [] and table.call_ids == () and table.total == 0
    assert "olivia" in table.message and "Traceback" not in table.message


# ------------------------------------------------------------------------------------------ the filter bar


def _form(**values: Any) -> dict[str, Any]:
    form = {"period": "", "start": "", "end": "", "timezone": "Europe/London", "direction": [], "outcome": [],
            "group": "", "party": "", "min_duration": "", "max_duration": "", "with_recordings": False}
    form.update(values)
    return form


def test_the_filter_bar_emits_validated_filters(demo_playable: Path) -> None:
    got: list[Filters] = []
    bar = FilterBar(Workbench(_stores(demo_playable), "maria"), on_change=got.append)
    assert bar.options["groups"] and "Sales" in bar.options["groups"] and bar.options["share_groups"] == [
        "Management", "Sales", "Support"]
    assert bar.form["timezone"] == "Europe/London"
    from_browser(bar, {"type": "apply", "form": _form(period="last_7_days", direction=["inbound"], group="sales",
                                                      party="olivia", min_duration="1:00", with_recordings=True)})
    assert len(got) == 1 and got[0] == bar.filters
    assert got[0] == Filters.parse({"period": "last_7_days", "direction": "inbound", "group": "Sales",
                                    "party": "olivia", "min_duration": 60, "with_recordings": True,
                                    "timezone": "Europe/London"})
    assert bar.form["group"] == "Sales" and bar.form["start"] and bar.form["end"]  # the period's dates, shown
    from_browser(bar, {"type": "apply", "form": _form(start="2026-11-10T09:00", end="2026-11-10T17:00",
                                                      timezone="America/New_York")})
    assert got[-1].start.isoformat() == "2026-11-10T14:00:00+00:00" and got[-1].timezone == "America/New_York"
    assert bar.form["period"] == "custom"
    from_browser(bar, {"type": "reset"})
    assert got[-1] == Filters(timezone="Europe/London")


@pytest.mark.parametrize(("form", "field"), [
    ({"min_duration": "soon"}, "min_duration"),
    ({"min_duration": "90", "max_duration": "30"}, "max_duration"),
    ({"start": "2026-11-10T10:00", "end": "2026-11-10T09:00"}, "end"),
    ({"timezone": "Mars/Base"}, "timezone"),
    ({"direction": ["sideways"]}, "direction"),
    ({"group": "Nonexistent"}, "group"),
    ({"party": "x" * 200}, "party"),
    ({"with_recordings": "perhaps"}, "with_recordings"),
])
def test_a_bad_form_names_the_field_and_keeps_the_last_good_filters(demo_playable: Path, form: dict[str, Any],
                                                                    field: str) -> None:
    got: list[Filters] = []
    bar = FilterBar(Workbench(_stores(demo_playable), "maria"), on_change=got.append)
    from_browser(bar, {"type": "apply", "form": _form(direction=["outbound"])})
    good = bar.filters
    from_browser(bar, {"type": "apply", "form": _form(**form)})
    assert bar.filters == good and got == [good]
    assert bar.error_field == field and bar.message_kind == "error"
    assert words(field).lower() in bar.message.lower() or field in bar.message  # the filter bar's words
    assert "Traceback" not in bar.message
    bar.save("Should not save")  # a form with an error is not saved
    assert bar.saved == [] and "fix this field first" in bar.message


@pytest.mark.parametrize("content", [
    {"type": "apply", "form": "direction=inbound"},
    {"type": "apply", "form": None},
    {"type": "apply", "form": {"__class__": "x", "sql": "DROP TABLE calls"}},
    {"type": "load_saved", "id": "1 OR 1=1"},
    {"type": "delete", "id": {"id": 1}},
    {"type": "save_as", "name": ["x"]},
    {"type": "update", "id": None, "name": "x"},
    None, 7, "apply",
])
def test_forged_filter_bar_messages_raise_nothing(demo_playable: Path, content: Any, caplog: Any) -> None:
    got: list[Filters] = []
    bar = FilterBar(Workbench(_stores(demo_playable), "maria"), on_change=got.append)
    from_browser(bar, content)
    assert "Traceback" not in caplog.text and "Traceback" not in bar.message
    assert all(isinstance(f, Filters) for f in got)
    assert bar.saved == []


def test_saved_filters_from_the_bar(demo_built: Path, tmp_path: Path) -> None:
    data = copy_demo(demo_built, tmp_path)
    got: list[Filters] = []
    bar = FilterBar(Workbench(_stores(data), "maria"), on_change=got.append)
    from_browser(bar, {"type": "apply", "form": _form(direction=["inbound"], min_duration="120")})
    from_browser(bar, {"type": "save_as", "name": "Long inbound", "share_with": "Sales"})
    [item] = bar.saved
    assert (item["name"], item["shared_group"], item["editable"]) == ("Long inbound", "Sales", True)
    assert bar.selected_saved == item["id"] and bar.message_kind == "info"
    from_browser(bar, {"type": "reset"})
    from_browser(bar, {"type": "load_saved", "id": item["id"]})
    assert got[-1].direction == ("inbound",) and got[-1].min_duration == 120
    from_browser(bar, {"type": "apply", "form": _form(direction=["inbound"], min_duration="300")})
    assert bar.selected_saved is None  # an edit leaves the saved filter...
    bar._selected = item["id"]  # (as picking it again would) ...and Save writes over it
    from_browser(bar, {"type": "save"})
    assert Workbench(_stores(data), "maria").saved.get("Long inbound").min_duration == 300
    from_browser(bar, {"type": "update", "id": item["id"], "name": "Long calls", "share_with": ""})
    assert [(s["name"], s["shared_group"]) for s in bar.saved] == [("Long calls", None)]
    # a member of a group sees a shared filter read-only: the bar refuses to change it
    olivia_bar = FilterBar(Workbench(_stores(data), "olivia"))
    from_browser(bar, {"type": "update", "id": item["id"], "name": "Long calls", "share_with": "Sales"})
    olivia_bar.refresh_options()
    [shared] = olivia_bar.saved
    assert shared["editable"] is False
    for content in ({"type": "delete", "id": shared["id"]}, {"type": "update", "id": shared["id"], "name": "x"}):
        from_browser(olivia_bar, content)
        assert olivia_bar.message_kind == "error" and "Maria Keller" in olivia_bar.message
    olivia_bar._selected = shared["id"]
    from_browser(olivia_bar, {"type": "save"})
    assert "save a copy" in olivia_bar.message
    # someone else's private filter is "no such saved filter", like a missing one
    nina_bar = FilterBar(Workbench(_stores(data), "nina"))
    for forged in (item["id"], 10**9):
        from_browser(nina_bar, {"type": "load_saved", "id": forged})
        assert nina_bar.message == "no such saved filter"
    from_browser(bar, {"type": "delete", "id": item["id"]})
    assert bar.saved == []


def test_a_broken_saved_filter_loads_what_still_works_and_says_what_not(demo_built: Path, tmp_path: Path) -> None:
    data = copy_demo(demo_built, tmp_path)
    Workbench(_stores(data), "maria").saved.save("Retention", group="Retention", direction="outbound")
    drop_from_directory(data, groups={"Retention"})
    got: list[Filters] = []
    bar = FilterBar(Workbench(_stores(data), "maria"), on_change=got.append)
    assert "Retention" not in bar.options["groups"]
    from_browser(bar, {"type": "load_saved", "id": bar.saved[0]["id"]})
    assert bar.message_kind == "error" and bar.error_field == "group"
    assert "Retention no longer exists" in bar.message and "edit it and save it again" in bar.message
    assert got[-1].direction == ("outbound",) and got[-1].group is None and bar.form["group"] == ""
    from_browser(bar, {"type": "apply", "form": _form(direction=["outbound"], group="Sales")})
    bar._selected = bar.saved[0]["id"]
    from_browser(bar, {"type": "save"})
    assert Workbench(_stores(data), "maria").saved.get("Retention").group == "Sales"


# ------------------------------------------------------------------------------------------ the app shell


def test_a_start_time_click_opens_the_session_and_the_player_stays(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    app = CallListApp(Workbench(stores, "maria"), logout_url="/logout", links=[("Audit", "/voila/render/audit.ipynb")])
    player = app.player
    assert isinstance(player, Player) and app.children[-1] is player and app.widget is app
    assert app.header.user_name == "Maria Keller" and app.header.links == [
        {"label": "Audit", "url": "/voila/render/audit.ipynb"}]
    children = [c.model_id for c in app.children]
    # a recording plays ...
    recorded = next(r for r in app.table.rows if r["recording"] == "playable")
    from_browser(app.table, {"type": "open", "call_id": recorded["call_id"]})
    assert app.view == "session" and app.session_view.current.call_id == recorded["call_id"]
    assert app.header.view == "session" and app.header.crumb.startswith(f"Call {recorded['call_id']} · ")
    rec = app.session_view.current.playable[0]
    from_browser(app.session_view, {"type": "play", "recording_id": rec.recording_id, "offset_seconds": 1.0})
    assert player.current_recording_id == rec.recording_id
    source = dict(player.source)
    # ... and keeps playing through filter changes, other sessions and going back
    from_browser(app.filter_bar, {"type": "apply", "form": _form(direction=["inbound"])})
    assert app.view == "calls" and set(r["direction"] for r in app.table.rows) == {"inbound"}
    from_browser(app.table, {"type": "open", "call_id": app.table.call_ids[1]})
    assert app.view == "session" and app.session_view.current.call_id == app.table.call_ids[1]
    from_browser(app.header, {"type": "nav", "to": "calls"})
    assert app.view == "calls"
    assert app.player is player and [c.model_id for c in app.children] == children
    assert player.current_recording_id == rec.recording_id and player.source == source


def test_the_app_ignores_forged_opens_and_shows_plain_messages(demo_built: Path, tmp_path: Path,
                                                               caplog: Any) -> None:
    data = copy_demo(demo_built, tmp_path)
    stores = _stores(data)
    app = CallListApp(Workbench(stores, "olivia"))
    outside = min(set(r[0] for r in stores.calls.query("SELECT call_id FROM calls")) - _visible(stores, "olivia"))
    for forged in (outside, 10**9, "1", None):
        from_browser(app.table, {"type": "open", "call_id": forged})
    assert app.view == "calls" and app.session_view.current is None
    assert app.open_session(outside) is False and app.header.message == "No such call." and app.view == "calls"
    for content in ({"type": "nav", "to": "javascript:alert(1)"}, {"type": "nav"}, None):
        from_browser(app.header, content)
    # the user is switched off while the page is open: plain messages, nothing left on show
    drop_from_directory(data, users={"olivia"})
    with caplog.at_level(logging.ERROR):
        from_browser(app.filter_bar, {"type": "apply", "form": _form(direction=["inbound"])})
        from_browser(app.table, {"type": "refresh"})
    assert app.table.rows == [] and "no active user" in app.table.message
    assert "Traceback" not in app.table.message + app.filter_bar.message + app.header.message


def test_header_links_are_checked(demo_playable: Path) -> None:
    stores = _stores(demo_playable)
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example/x", " ", "http://x\n/y"):
        with pytest.raises(ValueError):
            safe_url(bad)
        with pytest.raises(ValueError):
            CallListApp(Workbench(stores, "maria"), links=[("Audit", bad)])
    assert safe_url("https://example.org/a?b=c") == "https://example.org/a?b=c"
    assert safe_url("/voila/render/audit.ipynb") == "/voila/render/audit.ipynb"
    with pytest.raises(ValueError):
        CallListApp(Workbench(stores, "maria"), logout_url="javascript:logout()")


def test_the_workbench_app_uses_its_player(demo_playable: Path) -> None:
    wb = Workbench(_stores(demo_playable), "maria")
    app = wb.app(logout_url="/logout")
    assert app.player is wb.player and app.table.total == wb.count()
