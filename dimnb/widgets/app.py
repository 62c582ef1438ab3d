"""The Call List app: header, filter bar, call table, Call Session view and ONE docked player, wired together.

``CallListApp(workbench, logout_url=..., links=...)`` (or ``workbench.app(...)``)
is itself a widget (an ``ipywidgets.VBox``; ``.widget`` returns it too). Every
part asks the one ``Workbench`` (``dimnb.open``): in a dashboard its login is
the one the server authenticated (``$DIMNB_USER``), never a value from the
page.

- A change in the filter bar runs the table from page 1 (and goes back to
  the list if a session was open).
- A click on a Start Time (validated by the table against the rows it sent)
  opens that call in the session view, which checks the scope again; the
  list stays as it was (page, sort) behind it.
- A click on a recording plays it in the player. The player is created once
  and is never re-created or re-displayed: switching between the list and a
  session only hides one pane and shows the other, so playback continues.
- Every callback catches its errors: the user sees a plain sentence, the
  server log gets the traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets
import traitlets

from dimnb import report_queries
from dimnb.errors import DimnbError, InvalidInput, NotFound
from dimnb.filters import Filters
from dimnb.reports import DEFAULT_PAGE_SIZE
from dimnb.widgets._guard import FAILED
from dimnb.widgets.call_table import CallTable
from dimnb.widgets.filter_bar import FilterBar
from dimnb.widgets.history import (NOT_UNDERSTOOD, History, Route, calls_fragment, filters_of_params,
                                    fragment_of, parse_fragment)
from dimnb.widgets.session_view import NO_SUCH_CALL, SessionView

if TYPE_CHECKING:
    from dimnb.widgets.audit_view import AuditView
    from dimnb.widgets.report_view import ReportView
    from dimnb.workbench import Workbench

log = logging.getLogger("dimnb.widgets.app")

_STATIC = Path(__file__).parent / "static"
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
MAX_LINK_LABEL = 40


def safe_url(url: Any, what: str = "url") -> str:
    """A link target for the header: http(s) or a path on this server; never ``javascript:`` or ``data:``."""
    if not isinstance(url, str) or not url.strip() or len(url) > 2000 or any(c in url for c in "\r\n\t\0"):
        raise ValueError(f"{what}: expected a URL")
    text = url.strip()
    scheme = _SCHEME_RE.match(text)
    if scheme and scheme.group(0).lower() not in ("http:", "https:"):
        raise ValueError(f"{what}: only http(s) links or paths on this server, not {scheme.group(0)!r}")
    if text.startswith("//"):
        raise ValueError(f"{what}: give a full http(s) URL or a path on this server")
    return text


def _links(links: Iterable[Any]) -> list[dict[str, str]]:
    out = []
    for item in links or ():
        if isinstance(item, dict):
            label, url = item.get("label"), item.get("url")
        else:
            label, url = item
        if not isinstance(label, str) or not label.strip() or len(label) > MAX_LINK_LABEL:
            raise ValueError(f"links: a label of 1 to {MAX_LINK_LABEL} characters, got {label!r}")
        out.append({"label": label.strip(), "url": safe_url(url, f"links[{label}]")})
    return out


class AppHeader(anywidget.AnyWidget):
    """The app's header: product, where you are (Calls › Call 125), who you are, links, logout."""

    _esm = _STATIC / "app.js"
    _css = _STATIC / "app.css"

    # Output only.
    user_name = traitlets.Unicode("").tag(sync=True)
    login = traitlets.Unicode("").tag(sync=True)
    logout_url = traitlets.Unicode("").tag(sync=True)
    links = traitlets.List([]).tag(sync=True)
    view = traitlets.Unicode("calls").tag(sync=True)
    crumb = traitlets.Unicode("").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._nav: list[Any] = []
        self._nav_reports: list[Any] = []
        self.on_msg(self._on_browser_message)

    def on_nav(self, callback: Any) -> None:
        self._nav.append(callback)

    def on_nav_reports(self, callback: Any) -> None:
        self._nav_reports.append(callback)

    def _on_browser_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "nav":
            return
        callbacks = {"calls": self._nav, "reports": self._nav_reports}.get(content.get("to"), [])
        for callback in list(callbacks):
            try:
                callback()
            except Exception:
                log.exception("a navigation callback failed")
                self.message = FAILED


class CallListApp(ipywidgets.VBox):
    """The Call List with its sessions, reports and the docked player: display it (``app`` or ``app.widget``)."""

    # The views and their addresses (dimnb.widgets.history): adding a view is one line here and its method.
    ROUTES: dict[str, str] = {
        "calls": "_route_calls",
        "call": "_route_call",
        "report": "_route_report",
        "audit": "_route_audit",
    }

    def __init__(self, workbench: Workbench, *, logout_url: str | None = None, links: Iterable[Any] = (),
                 filters: Filters | None = None, page_size: int = DEFAULT_PAGE_SIZE, **kwargs: Any) -> None:
        actor = workbench.actor  # an unknown or inactive user stops here
        self.workbench = workbench
        audit_link = [("Audit", "#/audit")] if workbench.may_view_audit() else []
        self.header = AppHeader(user_name=actor.name, login=actor.login,
                                logout_url=safe_url(logout_url, "logout_url") if logout_url else "",
                                links=_links([*audit_link, *links]))
        self.filter_bar = FilterBar(workbench, filters=filters)
        self.table = CallTable(workbench, filters=self.filter_bar.filters, page_size=page_size)
        self.player = workbench.player  # the workbench's one player: never re-created
        self.session_view = SessionView(workbench, on_play_request=self.player.handle_play_request)
        self.report_view: ReportView | None = None  # made on first use (it loads pandas)
        self.history = History()
        self._list_pane = self._pane([self.table], "dimnb-list-pane")
        self._session_pane = self._pane([self.session_view], "dimnb-session-pane")
        self._report_pane = self._pane([], "dimnb-report-pane")
        self.audit_view: AuditView | None = None  # made when an auditor first opens it
        self._audit_pane = self._pane([], "dimnb-audit-pane")
        self._panes = {"calls": self._list_pane, "session": self._session_pane, "report": self._report_pane,
                       "audit": self._audit_pane}
        self._view = "calls"
        self._address = calls_fragment(self.filter_bar.filters)
        self._from_address = False  # True while following the browser's address (Back, Forward, a link)
        super().__init__(children=[self.header, self.filter_bar, *self._panes.values(), self.history, self.player],
                         **kwargs)
        self.add_class("dimnb-app")
        self.player.add_class("dimnb-docked")
        self.layout.width = "100%"
        self.filter_bar.on_change(self._on_filters)
        self.table.on_open(self.open_session)
        self.table.on_play(self.player.play_call)  # the Play marker: the player decides and audits
        self.header.on_nav(self.show_list)
        self.header.on_nav_reports(self.show_report)
        self.history.on_navigate(self.navigate)
        self._from_address = True  # the page's first address is replaced, not pushed
        self._show("calls")
        self._from_address = False

    # ------------------------------------------------------------------ public API

    @property
    def widget(self) -> CallListApp:
        """The widget to display (the app itself)."""
        return self

    @property
    def view(self) -> str:
        """``"calls"`` (the list), ``"session"`` (a call's session) or ``"report"``."""
        return self._view

    @property
    def address(self) -> str:
        """The address of the view on show (``/call/473``; the page shows it after ``#``)."""
        return self._address

    def open_session(self, call_id: int) -> bool:
        """Show a call's session (what a click on its Start Time does). False, with a message, if refused."""
        try:
            session = self.session_view.show(call_id)
            if session is None:
                self.header.message = self.session_view.message or NO_SUCH_CALL
                return False
            self.header.message = ""
            self.header.crumb = f"Call {session.call_id} · {session.summary.start_local}"
            self._show("session", fragment_of("call", str(session.call_id)))
            return True
        except DimnbError as exc:
            self.header.message = str(exc)
        except Exception:
            log.exception("opening a session failed")
            self.header.message = FAILED
        return False

    def show_list(self) -> None:
        """Back to the call list (as it was: same filters, page and sort)."""
        self._show("calls")

    def show_report(self, name: str | None = None, **parameters: str | list[str]) -> bool:
        """Show a report (``ReportView.show``; the one last shown if no name); the player keeps playing.

        False, with the report's message in the header, if the report or a parameter is refused.
        """
        view = self._reports()
        if name is not None or parameters or view.frame is None:
            if not view.show(name or view.report, **parameters):
                self.header.message = view.message or NOT_UNDERSTOOD
                return False
        self._report_shown()
        return True

    def show_audit(self, **parameters: Any) -> bool:
        """The audit reports (auditors only: for anyone else this view does not exist, like an unknown address)."""
        if not self.workbench.may_view_audit():
            raise InvalidInput(NOT_UNDERSTOOD, field="address")
        if self.audit_view is None:
            from dimnb.widgets.audit_view import AuditView  # pandas and the audit report: only for auditors

            self.audit_view = AuditView(self.workbench)
            self.audit_view.on_change(lambda chosen: self.show_audit(**chosen))
            self._audit_pane.children = [self.audit_view]
        try:
            self.audit_view.show(**{k: parameters.get(k) for k in ("period", "user", "group")})
        except NotFound as exc:  # the role was withdrawn meanwhile
            raise InvalidInput(NOT_UNDERSTOOD, field="address") from exc
        self.header.message = ""
        self.header.crumb = "Audit: who listened to what"
        self._show("audit", fragment_of("audit", "", self.audit_view.parameters))
        return True

    def navigate(self, fragment: Any) -> bool:
        """Show the view at an address (untrusted: from the page). Anything not understood: the list, and why."""
        self._from_address = True
        try:
            try:
                route = parse_fragment(fragment)
                method = self.ROUTES.get(route.view)
                if method is None:
                    raise InvalidInput(NOT_UNDERSTOOD, field="address")
                if getattr(self, method)(route):
                    return True
            except DimnbError as exc:
                self.header.message = NOT_UNDERSTOOD if getattr(exc, "field", None) == "address" else str(exc)
            except Exception:
                log.exception("following an address failed")
                self.header.message = FAILED
            self._show("calls")
            return False
        finally:
            self._from_address = False

    # ------------------------------------------------------------------ the routes (a Route from the address)

    def _route_calls(self, route: Route) -> bool:
        filters = filters_of_params(route.params, self.filter_bar.filters.timezone)
        if filters != self.filter_bar.filters and self.filter_bar.apply(filters) is None:
            self.header.message = self.filter_bar.message or NOT_UNDERSTOOD
            return False
        self.header.message = ""
        self._show("calls")
        return True

    def _route_call(self, route: Route) -> bool:
        if self.open_session(int(route.target)):
            return True
        # A call that does not exist and one out of scope look the same: an empty session saying so.
        self.header.crumb = NO_SUCH_CALL.rstrip(".")
        self._show("session", route.fragment)
        return True

    def _route_report(self, route: Route) -> bool:
        return self.show_report(route.target, **route.params)

    def _route_audit(self, route: Route) -> bool:
        return self.show_audit(**route.params)

    # ------------------------------------------------------------------ wiring

    def _reports(self) -> ReportView:
        if self.report_view is None:
            from dimnb.widgets.report_view import ReportView  # pandas: only once someone opens a report

            self.report_view = ReportView(self.workbench, on_drill=self.filter_bar.apply, on_open=self.open_session)
            self.report_view.on_show(self._report_shown)
            self._report_pane.children = [self.report_view]
        return self.report_view

    def _report_shown(self) -> None:
        """A report is on show (from the address, the header or the view's own tabs): say so in the address."""
        assert self.report_view is not None
        self.header.message = ""
        label = report_queries.REPORTS.get(self.report_view.report, self.report_view.report)
        self.header.crumb = f"Reports › {label}"
        parameters = {k: v for k, v in self.report_view.parameters.items() if k != "report"}
        self._show("report", fragment_of("report", self.report_view.report, parameters))

    def _on_filters(self, filters: Filters) -> None:
        try:
            self.header.message = ""
            self.table.set_filters(filters)
            self._show("calls")
        except DimnbError as exc:
            self.header.message = str(exc)
        except Exception:
            log.exception("running the filters failed")
            self.header.message = FAILED

    @staticmethod
    def _pane(children: list[Any], css_class: str) -> ipywidgets.VBox:
        pane = ipywidgets.VBox(children)
        pane.add_class(css_class)
        pane.layout.display = "none"
        return pane

    def _show(self, view: str, fragment: str | None = None) -> None:
        self._view = view
        for name, pane in self._panes.items():
            pane.layout.display = None if name == view else "none"
        self.filter_bar.layout.display = None if view == "calls" else "none"  # a session gets the screen; reports have their own
        self.header.view = view
        if view == "calls":
            self.header.crumb = ""
        self._address = fragment if fragment is not None else calls_fragment(self.filter_bar.filters)
        self.history.show(self._address, replace=self._from_address)
