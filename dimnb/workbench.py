"""The analyst's entry point: ``wb = dimnb.open(data_dir, user=LOGIN)``.

Every method reads the user's grants afresh from the state store and goes
through dimnb.access, exactly like the dashboards do.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dimnb import access, reports, sessions
from dimnb.errors import NotFound
from dimnb.filters import Filters
from dimnb.store.stores import Stores

if TYPE_CHECKING:
    from dimnb.widgets import Player, SessionView

USER_ENV = "DIMNB_USER"


class Workbench:
    def __init__(self, stores: Stores, login: str) -> None:
        self.stores = stores
        self.login = login
        access.load_actor(stores.state, login)  # fail early on an unknown user

    @property
    def actor(self) -> access.Actor:
        """The user as the state store says *now* (grants are never cached)."""
        return access.load_actor(self.stores.state, self.login)

    def filters(self, **values: Any) -> Filters:
        if "timezone" not in values:
            values["timezone"] = self.actor.timezone or "UTC"
        return Filters.parse(values)

    def calls(self, *, sort: str = "start_time", descending: bool = True, page: int = 1,
              page_size: int = reports.DEFAULT_PAGE_SIZE, **filters: Any) -> pd.DataFrame:
        """One page of the Call List as a DataFrame (times in the filter's time zone)."""
        return reports.list_calls(self.stores.calls, self.actor, self.filters(**filters), sort=sort,
                                  descending=descending, page=page, page_size=page_size).rows

    def count(self, **filters: Any) -> int:
        return reports.count_calls(self.stores.calls, self.actor, self.filters(**filters))

    def export_csv(self, path: str | Path, **filters: Any) -> int:
        return reports.export_csv(self.stores.calls, self.actor, self.filters(**filters), path)

    def why(self, call_id: int) -> dict[str, str | None]:
        actor = self.actor
        view = access.why(self.stores.calls, actor, call_id, access.VIEW_CALLS)
        play = access.why(self.stores.calls, actor, call_id, access.PLAY_RECORDING)
        return {"view": str(view) if view else None, "play": str(play) if play else None}

    def session(self, call_id: int) -> sessions.Session:
        """The Call Session of ``call_id`` (raises NotFound for a call that does not exist *or* is out of scope)."""
        found = sessions.build_session(self.stores.calls, self.actor, call_id, state=self.stores.state)
        if found is None:
            raise NotFound(f"no call {call_id} (or not one you may see)")
        return found

    @cached_property
    def player(self) -> "Player":
        """The one docked player of this workbench: it keeps playing whatever else is shown."""
        from dimnb.widgets import Player

        return Player(self.stores, self.login)

    def session_view(self, call_id: int | None = None) -> "SessionView":
        """A session view wired to ``self.player`` (a click on a recording plays it there)."""
        from dimnb.widgets import SessionView

        view = SessionView(self.stores, self.login, on_play_request=self.player.handle_play_request)
        if call_id is not None:
            view.show(call_id)
        return view

    def __repr__(self) -> str:
        return f"<dimnb.Workbench {self.stores.data.root} as {self.login}>"


def open_workbench(data_dir: str | os.PathLike[str] | None = None, user: str | None = None) -> Workbench:
    """Open a data directory as a user. In a dashboard kernel the user comes from the server (``$DIMNB_USER``)."""
    login = user or os.environ.get(USER_ENV)
    if not login:
        raise ValueError("say who you are: dimnb.open(data_dir, user='LOGIN')")
    return Workbench(Stores.open(str(data_dir) if data_dir else None), login)
