"""Addresses for the app's views (dimnb.widgets.history) and the app following them, in the kernel.

The browser side (Back/Forward in Chromium, a link opened after signing in)
is in tests/test_navigation_browser.py.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from demo_fixtures import demo_built, demo_playable  # noqa: F401  (fixtures)
from dimnb.errors import InvalidInput
from dimnb.filters import Filters
from dimnb.store.stores import Stores
from dimnb.widgets import CallListApp
from dimnb.widgets.history import NOT_UNDERSTOOD, calls_fragment, filters_of_params, parse_fragment
from dimnb.widgets.session_view import NO_SUCH_CALL
from dimnb.workbench import Workbench


def from_browser(widget: Any, content: Any) -> None:
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


@pytest.fixture(scope="module")
def stores(demo_playable: Path) -> Stores:
    return Stores.open(str(demo_playable))


def _outside(stores: Stores, login: str) -> int:
    """A call that exists and that ``login`` may not list (the lowest such id)."""
    everyone = {int(r[0]) for r in stores.calls.query("SELECT call_id FROM calls")}
    mine = set(int(c) for c in Workbench(stores, login).calls()["call_id"])
    return min(everyone - mine)


def _missing(stores: Stores) -> int:
    return int(stores.calls.query("SELECT max(call_id) FROM calls")[0][0]) + 1000


# ------------------------------------------------------------------------------------------ addresses


@pytest.mark.parametrize("values", [
    {},
    {"direction": ["inbound"], "group": "Sales", "period": "last_7_days"},
    {"direction": ["inbound", "outbound"], "outcome": ["missed"], "party": "Müller & Söhne?#x",
     "min_duration": 5.5, "with_recordings": True},
    {"start": "2026-11-02", "end": "2026-11-03", "timezone": "Europe/Paris"},
])
def test_the_call_lists_address_gives_back_its_filters(values: dict[str, Any]) -> None:
    filters = Filters.parse({"timezone": "Europe/London", **values})
    route = parse_fragment("#" + calls_fragment(filters))
    assert route.view == "calls"
    assert filters_of_params(route.params, "UTC") == filters


@pytest.mark.parametrize("text", [
    "#/nowhere", "#/call/", "#/call/abc", "#/call/-4", "#/call/1/2", "#/call/0", "#/report/", "#/report/Bad-Name",
    "#/calls/7", "#/calls?Weird=1", "#/calls?" + "&".join(f"a{i}=1" for i in range(40)), "#" + "x" * 3000, 42, None,
])
def test_addresses_not_understood_are_refused(text: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_fragment(text)


def test_addresses_name_their_view() -> None:
    assert parse_fragment("#/call/473").target == "473"
    report = parse_fragment("#/report/agents?period=last_7_days&group=Sales")
    assert (report.view, report.target, dict(report.params)) == (
        "report", "agents", {"period": "last_7_days", "group": "Sales"})
    assert report.fragment == "/report/agents?period=last_7_days&group=Sales"
    assert parse_fragment("").view == parse_fragment("#/").view == "calls"


# ------------------------------------------------------------------------------------------ the app following them


def test_the_app_follows_its_address_and_the_player_keeps_playing(stores: Stores) -> None:
    app = CallListApp(Workbench(stores, "maria"))
    player, children = app.player, [c.model_id for c in app.children]
    assert app.history.fragment == calls_fragment(app.filter_bar.filters) and app.history.replace

    # a click opens a session: a new history entry
    recorded = next(r for r in app.table.rows if r["recording"] == "playable")
    from_browser(app.table, {"type": "open", "call_id": recorded["call_id"]})
    assert app.history.fragment == f"/call/{recorded['call_id']}" and not app.history.replace
    rec = app.session_view.current.playable[0]
    from_browser(app.session_view, {"type": "play", "recording_id": rec.recording_id, "offset_seconds": 1.0})
    source = dict(player.source)

    # an address with filters (as pasted, or Forward): the list with those filters, the entry replaced
    from_browser(app.history, {"type": "navigate", "fragment": "/calls?direction=inbound&group=Sales"})
    assert app.view == "calls" and app.filter_bar.filters.direction == ("inbound",)
    assert app.filter_bar.filters.group == "Sales" and {r["direction"] for r in app.table.rows} == {"inbound"}
    assert app.table.total == Workbench(stores, "maria").count(direction=["inbound"], group="Sales")
    assert app.history.replace and parse_fragment(app.history.fragment).params["group"] == "Sales"

    # Back to the session, then a report, then Back
    from_browser(app.history, {"type": "navigate", "fragment": f"/call/{recorded['call_id']}"})
    assert app.view == "session" and app.session_view.current.call_id == recorded["call_id"]
    from_browser(app.history, {"type": "navigate", "fragment": "/report/agents?period=last_7_days"})
    assert app.view == "report" and app.report_view.report == "agents" and app.report_view.frame is not None
    assert app.address == "/report/agents?period=last_7_days"
    from_browser(app.report_view, {"type": "show", "report": "groups", "parameters": {"period": "last_7_days"}})
    assert app.view == "report" and app.address == "/report/groups?period=last_7_days"
    from_browser(app.history, {"type": "navigate", "fragment": f"/call/{recorded['call_id']}"})
    assert app.view == "session"

    # nothing was re-created; the recording still plays
    assert app.player is player and [c.model_id for c in app.children] == children
    assert player.current_recording_id == rec.recording_id and player.source == source


@pytest.mark.parametrize("address, says", [
    ("/calls?direction=sideways", "Direction"),
    ("/calls?group=NoSuchGroup", "NoSuchGroup"),
    ("/calls?colour=red", "colour"),
    ("/somewhere", NOT_UNDERSTOOD),
    ("/call/12abc", NOT_UNDERSTOOD),
    ("/report/%3Cscript%3E", NOT_UNDERSTOOD),
])
def test_a_bad_address_shows_the_list_with_a_plain_message(stores: Stores, address: str, says: str) -> None:
    app = CallListApp(Workbench(stores, "maria"))
    before = app.filter_bar.filters
    from_browser(app.history, {"type": "navigate", "fragment": address})
    shown = app.header.message + app.filter_bar.message
    assert app.view == "calls" and says in shown and "Traceback" not in shown
    assert app.filter_bar.filters == before and app.history.fragment == calls_fragment(before)


def _what_a_link_shows(app: CallListApp, call_id: int) -> dict[str, Any]:
    from_browser(app.history, {"type": "navigate", "fragment": f"/call/{call_id}"})
    return {"view": app.view, "header": (app.header.view, app.header.crumb, app.header.message),
            "session": (dict(app.session_view.session), dict(app.session_view.peaks), app.session_view.message)}


def test_a_link_to_a_call_out_of_scope_shows_what_a_missing_call_shows(stores: Stores) -> None:
    app = CallListApp(Workbench(stores, "olivia"))
    outside, missing = _outside(stores, "olivia"), _missing(stores)
    assert Workbench(stores, "alex").find_session(outside) is not None  # it exists
    shown = _what_a_link_shows(app, outside)
    assert shown == _what_a_link_shows(app, missing)
    assert shown["view"] == "session" and shown["session"][2] == NO_SUCH_CALL and str(outside) not in str(shown)


def test_an_out_of_scope_call_takes_as_long_as_a_missing_one(stores: Stores) -> None:
    """Same timing class: the medians of the two kinds of refusal are within a small factor of each other."""
    wb = Workbench(stores, "olivia")
    outside, missing = _outside(stores, "olivia"), _missing(stores)
    times: dict[int, list[float]] = {outside: [], missing: []}
    for _ in range(15):
        for call_id in (outside, missing):
            started = time.perf_counter()
            assert wb.find_session(call_id) is None
            times[call_id].append(time.perf_counter() - started)
    ratio = statistics.median(times[outside]) / statistics.median(times[missing])
    assert 1 / 3 < ratio < 3, ratio


def test_the_audit_view_is_for_auditors_only(stores: Stores) -> None:
    auditor = CallListApp(Workbench(stores, "audrey"))
    assert {"label": "Audit", "url": "#/audit"} in auditor.header.links
    from_browser(auditor.history, {"type": "navigate", "fragment": "/audit?period=all"})
    assert auditor.view == "audit" and auditor.audit_view is not None
    body = auditor.audit_view.body.value
    assert "Who listened" in body and "<summary>Integrity</summary>" in body and "Traceback" not in body
    assert auditor.address == "/audit?period=all"
    auditor.audit_view.period.value = "7d"  # a picker: a new address
    assert auditor.address == "/audit?period=7d" and not auditor.history.replace

    # anyone else: exactly what an address that means nothing shows
    for login in ("maria", "alex"):
        app = CallListApp(Workbench(stores, login))
        assert all(link["url"] != "#/audit" for link in app.header.links)
        from_browser(app.history, {"type": "navigate", "fragment": "/audit?period=all"})
        refused = (app.view, app.header.message, app.address, app.audit_view)
        from_browser(app.history, {"type": "navigate", "fragment": "/nothing-here"})
        assert refused == (app.view, app.header.message, app.address, None) == (
            "calls", NOT_UNDERSTOOD, calls_fragment(app.filter_bar.filters), None)


def test_the_login_page_carries_a_links_fragment_into_next() -> None:
    """Fragments never reach the server: the login page's script adds ``location.hash`` to the form's ``next``."""
    from dimnb.server import identity, pages

    class Handler:
        base_url = "/"

    html = pages.login_page(action="/login", next_url="/dashboard", xsrf_html="")
    assert 'id="login_form"' in html and 'action="/login?next=/dashboard"' in html and "location.hash" in html
    assert identity._safe_next(Handler(), "/dashboard#/call/473") == "/dashboard#/call/473"  # type: ignore[arg-type]
    for elsewhere in ("https://evil.example/#/call/1", "//evil.example/#/call/1"):
        assert identity._safe_next(Handler(), elsewhere) == "/"  # type: ignore[arg-type]
