"""The analyst's entry point: ``wb = dimnb.open(data_dir, user=LOGIN)``.

Every method reads the user's grants afresh from the state store and goes
through dimnb.access, exactly like the dashboards do. In a dashboard kernel
the server puts the authenticated login in ``$DIMNB_USER``; then that is the
user, and asking for anyone else is refused.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dimnb import access, reports, saved_filters, sessions
from dimnb.errors import InvalidInput, NotFound
from dimnb.filters import Filters
from dimnb.store.stores import Stores

if TYPE_CHECKING:
    import pandas as pd

    from dimnb.widgets import CallListApp, Player, SessionView

USER_ENV = "DIMNB_USER"


class SavedFilters:
    """``wb.saved``: the user's saved filters (and those shared with their groups)."""

    def __init__(self, workbench: Workbench) -> None:
        self._wb = workbench

    def list(self) -> list[saved_filters.SavedFilter]:
        return saved_filters.visible(self._wb.stores.state, self._wb.actor)

    def frame(self) -> pd.DataFrame:
        """The list as a table: name, owner, shared with, editable, and what it selects (or what is wrong)."""
        import pandas as pd  # a dashboard kernel never needs pandas

        rows = []
        for saved in self.list():
            filters, problems = saved_filters.check(self._wb.stores.state, self._wb.stores.calls, saved)
            rows.append({"name": saved.name, "owner": saved.owner, "shared_with": saved.shared_group or "",
                         "editable": saved.editable,
                         "filters": filters.describe() if not problems else "",
                         "problem": "; ".join(p.message for p in problems)})
        return pd.DataFrame(rows, columns=["name", "owner", "shared_with", "editable", "filters", "problem"])

    def get(self, name: str, *, owner: str | None = None) -> Filters:
        """The saved filter's Filters (BrokenFilter, a plain message, when it no longer makes sense)."""
        saved = saved_filters.find(self._wb.stores.state, self._wb.actor, name, owner=owner)
        return saved_filters.load(self._wb.stores.state, self._wb.stores.calls, saved)

    def save(self, name: str, filters: Filters | dict[str, Any] | None = None, *, share_with: Any = None,
             overwrite: bool = False, **values: Any) -> saved_filters.SavedFilter:
        """Save filters (a ``Filters``, or keyword filters) under ``name``; ``share_with`` a group you belong to."""
        kwargs: dict[str, Any] = {"overwrite": overwrite}
        if share_with is not None:
            kwargs["share_with"] = share_with
        return saved_filters.save(self._wb.stores.state, self._wb.actor, name, self._wb.filters(filters, **values),
                                  **kwargs)

    def rename(self, name: str, new_name: str) -> saved_filters.SavedFilter:
        return saved_filters.rename(self._wb.stores.state, self._wb.actor, name, new_name)

    def share(self, name: str, group: str | None) -> saved_filters.SavedFilter:
        return saved_filters.share(self._wb.stores.state, self._wb.actor, name, group)

    def delete(self, name: str) -> None:
        saved_filters.delete(self._wb.stores.state, self._wb.actor, name)

    def __repr__(self) -> str:
        return f"<saved filters of {self._wb.login}: {', '.join(f.label for f in self.list()) or 'none'}>"


class Workbench:
    """One user's view of a data directory: the Call List, sessions, saved filters and the player."""

    def __init__(self, stores: Stores, login: str) -> None:
        self.stores = stores
        self.login = login
        access.load_actor(stores.state, login)  # fail early on an unknown user

    @property
    def actor(self) -> access.Actor:
        """The user as the state store says *now* (grants are never cached)."""
        return access.load_actor(self.stores.state, self.login)

    @cached_property
    def saved(self) -> SavedFilters:
        return SavedFilters(self)

    # ------------------------------------------------------------------ the Call List

    def filters(self, filters: Filters | dict[str, Any] | None = None, **values: Any) -> Filters:
        """Validated filters; a time zone not given is the user's (else UTC)."""
        if isinstance(filters, Filters):
            base = filters.to_dict(compact=True)
            base.setdefault("timezone", filters.timezone)
        elif isinstance(filters, dict) or filters is None:
            base = dict(filters or {})
        else:
            raise InvalidInput("filters: expected Filters or a mapping of filter names to values", field="filters")
        base.update(values)
        if not base.get("timezone"):
            base["timezone"] = self.actor.timezone or "UTC"
        return Filters.parse(base)

    def resolve(self, filters: Filters | dict[str, Any] | reports.Resolved | None = None,
                **values: Any) -> reports.Resolved:
        """Filters validated and their party/group names looked up in the directory (once per query)."""
        if isinstance(filters, reports.Resolved) and not values:
            return filters
        return reports.resolve(self.stores.calls, self.filters(filters, **values), state=self.stores.state)

    def calls(self, filters: Filters | dict[str, Any] | None = None, *, sort: str = "start_time",
              descending: bool = True, page: int | None = None, page_size: int | None = None,
              limit: int | None = None, **values: Any) -> pd.DataFrame:
        """The Call List as a DataFrame (start times timezone-aware, in the filters' zone).

        Every matching call by default (or the first ``limit``); with ``page``
        / ``page_size`` one page of it (50 rows unless said).
        """
        resolved = self.resolve(filters, **values)
        if page is not None or page_size is not None:
            return self.page(resolved, sort=sort, descending=descending, page=page or 1,
                             page_size=page_size or reports.DEFAULT_PAGE_SIZE, with_total=False).rows
        return reports.all_calls(self.stores.calls, self.actor, resolved, sort=sort, descending=descending,
                                 limit=limit)

    def page(self, filters: Filters | dict[str, Any] | reports.Resolved | None = None, *, sort: str = "start_time",
             descending: bool = True, page: int = 1, page_size: int = reports.DEFAULT_PAGE_SIZE,
             with_total: bool = True, **values: Any) -> reports.CallPage:
        """One page with the total, as the Call List shows it."""
        resolved = self.resolve(filters, **values)
        return reports.list_calls(self.stores.calls, self.actor, resolved, sort=sort, descending=descending,
                                  page=page, page_size=page_size, with_total=with_total)

    def rows(self, filters: Filters | dict[str, Any] | reports.Resolved | None = None, *, sort: str = "start_time",
             descending: bool = True, page: int = 1, page_size: int = reports.DEFAULT_PAGE_SIZE,
             with_total: bool = True, **values: Any) -> reports.CallRows:
        """One page as plain rows (no DataFrame): what the dashboard's table shows."""
        return reports.list_call_rows(self.stores.calls, self.actor, self.resolve(filters, **values), sort=sort,
                                      descending=descending, page=page, page_size=page_size, with_total=with_total)

    def count(self, filters: Filters | dict[str, Any] | reports.Resolved | None = None, **values: Any) -> int:
        return reports.count_calls(self.stores.calls, self.actor, self.resolve(filters, **values))

    def count_upto(self, filters: Filters | dict[str, Any] | reports.Resolved | None = None,
                   **values: Any) -> reports.Total:
        """The count the Call List shows: exact up to ``reports.TOTAL_CAP``, else "more than" that."""
        return reports.count_calls_upto(self.stores.calls, self.actor, self.resolve(filters, **values))

    def export_csv(self, path: str | Path, filters: Filters | dict[str, Any] | None = None, *,
                   sort: str = "start_time", descending: bool = True, **values: Any) -> int:
        """Write the scoped, filtered Call List to ``path`` as CSV; returns the number of calls written."""
        return reports.export_csv(self.stores.calls, self.actor, self.resolve(filters, **values), path, sort=sort,
                                  descending=descending)

    def export_xlsx(self, path: str | Path, filters: Filters | dict[str, Any] | None = None, *,
                    sort: str = "start_time", descending: bool = True, **values: Any) -> int:
        """Write the scoped, filtered Call List to ``path`` as an Excel workbook; returns the number of calls."""
        from dimnb import exports

        return exports.export_calls(self.stores.calls, self.actor, self.resolve(filters, **values), path, "xlsx",
                                    sort=sort, descending=descending)

    def report(self, name: str, filters: Filters | dict[str, Any] | None = None, *,
               service_level: float = 20.0, window_hours: float = 24.0, by: str = "day",
               **values: Any) -> pd.DataFrame:
        """A report as a DataFrame: ``"agents"``, ``"groups"``, ``"missed"`` or ``"activity"`` (docs/reports.md).

        Filters: ``period`` (or ``start``/``end``), ``group``, ``timezone``.
        ``service_level``: seconds for the Group summary's service level;
        ``window_hours``: how long after a missed call a call-back counts;
        ``by``: the Activity report per ``"day"`` or per weekday and ``"hour"``.
        """
        from dimnb import report_queries

        opts = report_queries.options(self.filters(filters, **values), service_level=service_level,
                                      window_hours=window_hours, by=by)
        return report_queries.report(self.stores, self.actor, name, opts)

    def export_report(self, path: str | Path, name: str, filters: Filters | dict[str, Any] | None = None, *,
                      service_level: float = 20.0, window_hours: float = 24.0, by: str = "day",
                      **values: Any) -> int:
        """Write ``report(name, ...)`` to ``path``: CSV or XLSX by the file's suffix; returns the rows written."""
        from dimnb import report_queries

        opts = report_queries.options(self.filters(filters, **values), service_level=service_level,
                                      window_hours=window_hours, by=by)
        return report_queries.export(self.stores, self.actor, name, opts, path)

    def groups(self) -> list[str]:
        """The groups worth filtering by (active groups whose calls this user may list)."""
        return reports.visible_groups(self.stores.calls, self.stores.state, self.actor)

    def may_view_audit(self) -> bool:
        """Whether this user gets the audit reports (the auditor role, read afresh; dimnb.audit decides)."""
        from dimnb import audit

        return audit.may_view_audit(self.stores.state, self.login)

    def why(self, call_id: int) -> dict[str, str | None]:
        actor = self.actor
        view = access.why(self.stores.calls, actor, call_id, access.VIEW_CALLS)
        play = access.why(self.stores.calls, actor, call_id, access.PLAY_RECORDING)
        return {"view": str(view) if view else None, "play": str(play) if play else None}

    # ------------------------------------------------------------------ sessions and widgets

    def find_session(self, call_id: int) -> sessions.Session | None:
        """The Call Session of ``call_id``, or None alike for a call that does not exist and one out of scope."""
        return sessions.build_session(self.stores.calls, self.actor, call_id, state=self.stores.state)

    def session(self, call_id: int) -> sessions.Session:
        """The Call Session of ``call_id`` (raises NotFound for a call that does not exist *or* is out of scope)."""
        found = self.find_session(call_id)
        if found is None:
            raise NotFound(f"no call {call_id} (or not one you may see)")
        return found

    @cached_property
    def player(self) -> Player:
        """The one docked player of this workbench: it keeps playing whatever else is shown."""
        from dimnb.widgets import Player

        return Player(self)

    def session_view(self, call_id: int | None = None) -> SessionView:
        """A session view wired to ``self.player`` (a click on a recording plays it there)."""
        from dimnb.widgets import SessionView

        view = SessionView(self, on_play_request=self.player.handle_play_request)
        if call_id is not None:
            view.show(call_id)
        return view

    def app(self, *, logout_url: str | None = None, links: Any = ()) -> CallListApp:
        """The Call List app (filter bar, table, session view and this workbench's player), ready to display."""
        from dimnb.widgets import CallListApp

        return CallListApp(self, logout_url=logout_url, links=links)

    def __repr__(self) -> str:
        return f"<dimnb.Workbench {self.stores.data.root} as {self.login}>"


def open_workbench(data_dir: str | os.PathLike[str] | None = None, user: str | None = None) -> Workbench:
    """Open a data directory as a user.

    In a dashboard kernel the server sets ``$DIMNB_USER`` to the login it
    authenticated; that is then the user, and ``user=`` may only repeat it.
    Elsewhere (JupyterLab, scripts) say who you are with ``user=``.
    """
    server_user = os.environ.get(USER_ENV)
    if server_user and user and user != server_user:
        raise InvalidInput(f"user: this kernel belongs to {server_user!r} (signed in to the server); "
                           f"it cannot open the workbench as {user!r}", field="user")
    login = server_user or user
    if not login:
        raise InvalidInput("user: say who you are: dimnb.open(data_dir, user='LOGIN')", field="user")
    if data_dir is None and server_user:  # a dashboard kernel: the stores it opened before anyone logged in
        from dimnb.server.kernel_side import stores as kernel_stores

        return Workbench(kernel_stores(), login)
    return Workbench(Stores.open(str(data_dir) if data_dir else None), login)

