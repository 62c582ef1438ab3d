"""The Call List app: header, filter bar, call table, Call Session view and ONE docked player, wired together.

``CallListApp(stores, login, logout_url=..., links=...)`` is itself a widget
(an ``ipywidgets.VBox``; ``.widget`` returns it too). In a dashboard the login
is the one the server authenticated (``$DIMNB_USER``), never a value from the
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
from typing import Any

import anywidget
import ipywidgets
import traitlets

from dimnb import access
from dimnb.errors import DimnbError
from dimnb.filters import Filters
from dimnb.reports import DEFAULT_PAGE_SIZE
from dimnb.store.stores import Stores
from dimnb.widgets._guard import FAILED
from dimnb.widgets.call_table import CallTable
from dimnb.widgets.filter_bar import FilterBar
from dimnb.widgets.player import Player
from dimnb.widgets.session_view import SessionView

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
    """The Call List with its sessions and the docked player: display it (``app`` or ``app.widget``)."""

    def __init__(self, stores: Stores, login: str, *, logout_url: str | None = None, links: Iterable[Any] = (),
                 player: Player | None = None, filters: Filters | None = None,
                 page_size: int = DEFAULT_PAGE_SIZE, **kwargs: Any) -> None:
        actor = access.load_actor(stores.state, login)  # an unknown or inactive user stops here
        self.stores = stores
        self.login = login
        self.header = AppHeader(user_name=actor.name, login=actor.login,
                                logout_url=safe_url(logout_url, "logout_url") if logout_url else "",
                                links=_links(links))
        self.filter_bar = FilterBar(stores, login, filters=filters)
        self.table = CallTable(stores, login, filters=self.filter_bar.filters, page_size=page_size)
        self.player = player if player is not None else Player(stores, login)
        self.session_view = SessionView(stores, login, on_play_request=self.player.handle_play_request)
        self._list_pane = ipywidgets.VBox([self.table])
        self._list_pane.add_class("dimnb-list-pane")
        self._session_pane = ipywidgets.VBox([self.session_view])
        self._session_pane.add_class("dimnb-session-pane")
        self._session_pane.layout.display = "none"
        self._report_pane = ipywidgets.VBox([])  # the report view is built on first use (it loads pandas)
        self._report_pane.add_class("dimnb-report-pane")
        self._report_pane.layout.display = "none"
        self.report_view: Any = None
        self._view = "calls"
        super().__init__(children=[self.header, self.filter_bar, self._list_pane, self._session_pane,
                                   self._report_pane, self.player], **kwargs)
        self.add_class("dimnb-app")
        self.player.add_class("dimnb-docked")
        self.layout.width = "100%"
        self.filter_bar.on_change(self._on_filters)
        self.table.on_open(self.open_session)
        self.header.on_nav(self.show_list)
        self.header.on_nav_reports(self.show_report)

    # ------------------------------------------------------------------ public API

    @property
    def widget(self) -> CallListApp:
        """The widget to display (the app itself)."""
        return self

    @property
    def view(self) -> str:
        """``"calls"`` (the list), ``"session"`` (a call's session) or ``"report"`` (the report view)."""
        return self._view

    def open_session(self, call_id: int) -> bool:
        """Show a call's session (what a click on its Start Time does). False, with a message, if refused."""
        try:
            session = self.session_view.show(call_id)
            if session is None:
                self.header.message = self.session_view.message or "No such call."
                return False
            self.header.message = ""
            self.header.crumb = f"Call {session.call_id} · {session.summary.start_local}"
            self._show("session")
            return True
        except DimnbError as exc:
            self.header.message = str(exc)
        except Exception:
            log.exception("opening a session failed")
            self.header.message = FAILED
        return False

    def show_report(self, name: str | None = None, **parameters: Any) -> bool:
        """Show a report (``ReportView.show``; the one on show if no name); the player keeps playing."""
        from dimnb.widgets.report_view import ReportView
        from dimnb.workbench import Workbench

        if self.report_view is None:
            self.report_view = ReportView(Workbench(self.stores, self.login), on_drill=self.filter_bar.apply,
                                          on_open=self.open_session)
            self._report_pane.children = [self.report_view]
        shown: bool | None = True
        if name is not None or parameters or self.report_view.frame is None:
            shown = self.report_view.show(name or self.report_view.report, **parameters)
        self.header.crumb = "Reports"
        self._show("report")
        return bool(shown)

    def show_list(self) -> None:
        """Back to the call list (as it was: same filters, page and sort)."""
        self._show("calls")

    # ------------------------------------------------------------------ wiring

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

    def _show(self, view: str) -> None:
        self._view = view
        self._list_pane.layout.display = None if view == "calls" else "none"
        self._session_pane.layout.display = None if view == "session" else "none"
        self._report_pane.layout.display = None if view == "report" else "none"
        self.filter_bar.layout.display = "none" if view == "report" else None  # a report has its own parameters
        self.header.view = view
        if view == "calls":
            self.header.crumb = ""
