"""The Call List table: one page of calls in the user's scope, sortable, paged, Start Time opens the session.

``CallTable(workbench)``; ``set_filters(filters)`` runs the list from
page 1. The kernel keeps its own record of what it showed (filters, sort,
page, and the call ids of the rows it sent); the synced traits are output
only and are never read back.

The browser sends ``{type: "sort", column}``, ``{type: "page", page}``,
``{type: "open", call_id}`` and ``{type: "refresh"}``. Each is validated: a
sort column must be one of ``filters.SORTABLE``; a page a whole number (clamped
to the pages there are); and an ``open`` only counts for a call id among the
rows this table itself sent for the page on show: any other id (another page,
another user's call, a forged number) is ignored. Accepted opens go to the
``on_open`` callbacks, which the app shell points at the session view (which
checks the scope again).

While a query runs, ``loading`` is True (the table shows a progress bar); the
rows are sent first and the total follows (``counting`` is True meanwhile),
because counting every match costs more than finding the first page. The
total is counted up to ``reports.TOTAL_CAP``: past it the table says "more
than 10,000 calls" (``total_capped``) and pages on without a last page.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from dimnb import access, reports, sessions
from dimnb.actions import PLAY_RECORDING
from dimnb.filters import SORTABLE, Filters
from dimnb.widgets._guard import as_id, guarded

if TYPE_CHECKING:
    from dimnb.workbench import Workbench

log = logging.getLogger("dimnb.widgets.call_table")

_STATIC = Path(__file__).parent / "static"
OpenCallback = Callable[[int], Any]
PlayCallCallback = Callable[[int], Any]

# (key, label, sort key or None, kind) in display order; Start Time first (it opens the session).
TABLE_COLUMNS: tuple[tuple[str, str, str | None, str], ...] = (
    ("start", "Start Time", "start_time", "link"),
    ("direction", "Direction", "direction", "direction"),
    ("from", "From", "from_party", "party"),
    ("to", "To", "to_party", "text"),
    ("final", "Answered / final", "final_party", "party"),
    ("ring", "Ring", "ring_seconds", "duration"),
    ("talk", "Talk", "talk_seconds", "duration"),
    ("duration", "Total", "duration_seconds", "duration"),
    ("outcome", "Outcome", "outcome", "outcome"),
    ("groups", "Groups", "groups", "text"),
    ("segments", "Segments", "segment_count", "number"),
    ("recording", "Recording", "recording", "recording"),
)
NOT_ON_PAGE = "That call is not on this page any more."


def clock(seconds: Any) -> str:
    """``75.4`` → ``"1:15"``; ``3725`` → ``"1:02:05"``; missing → ``""``."""
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return ""
    return sessions.clock(float(seconds))


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def format_rows(page_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The page's rows (``reports.list_call_rows``) as the browser draws them (in the filters' time zone)."""
    rows = []
    for r in page_rows:
        start: datetime = r["start_time"]
        rows.append({
            "call_id": int(r["call_id"]),
            "start": start.strftime("%Y-%m-%d %H:%M:%S"),
            "start_iso": start.isoformat(timespec="seconds"),
            "direction": _text(r["direction"]),
            "from": _text(r["from_party"]),
            "from_name": _text(r["from_name"]) if _text(r["from_name"]) != _text(r["from_party"]) else "",
            "to": _text(r["to_party"]),
            "final": _text(r["final_party"]),
            "final_name": _text(r["final_name"]) if _text(r["final_name"]) != _text(r["final_party"]) else "",
            "ring": clock(r["ring_seconds"]),
            "talk": clock(r["talk_seconds"]),
            "duration": clock(r["duration_seconds"]),
            "outcome": _text(r["outcome"]),
            "groups": _text(r["groups"]),
            "segments": int(r["segment_count"]),
            # Only what the user may play now is marked: "Only calls with recordings" lists exactly these
            # (a recording waiting for the archive run shows in the session, docs/reports.md).
            "recording": "playable" if r["recording"] == reports.PLAYABLE else "",
        })
    return rows


class CallTable(anywidget.AnyWidget):
    """One page of the Call List. ``on_open(callback)`` hears a click on a Start Time (a validated call id)."""

    _esm = _STATIC / "call_table.js"
    _css = _STATIC / "call_table.css"

    # Output only (kernel → browser); the kernel never reads them back.
    columns = traitlets.List([]).tag(sync=True)
    rows = traitlets.List([]).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    total_capped = traitlets.Bool(False).tag(sync=True)  # more than ``total`` calls match
    page = traitlets.Int(1).tag(sync=True)
    pages = traitlets.Int(1).tag(sync=True)
    page_size = traitlets.Int(reports.DEFAULT_PAGE_SIZE).tag(sync=True)
    sort = traitlets.Unicode("start_time").tag(sync=True)
    descending = traitlets.Bool(True).tag(sync=True)
    timezone = traitlets.Unicode("UTC").tag(sync=True)
    summary = traitlets.Unicode("").tag(sync=True)
    loading = traitlets.Bool(False).tag(sync=True)
    counting = traitlets.Bool(False).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)

    # Kernel-side, immutable defaults replaced per instance: the Play marker's listeners, and the calls on the
    # page on show that this table marked playable (never read back from the browser's copy of ``rows``).
    _play_callbacks: tuple[PlayCallCallback, ...] = ()
    _page_playable: frozenset[int] = frozenset()

    def __init__(self, workbench: Workbench, *, filters: Filters | None = None,
                 page_size: int = reports.DEFAULT_PAGE_SIZE, on_open: OpenCallback | None = None,
                 load: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wb = workbench
        self._filters = filters if filters is not None else Filters(timezone=self._wb.actor.timezone or "UTC")
        self._sort, self._descending, self._page = "start_time", True, 1
        self._page_size = reports.DEFAULT_PAGE_SIZE
        self._page_ids: tuple[int, ...] = ()  # the calls this table sent for the page on show
        self._total: int | None = None
        self._capped = False
        self._total_key: Any = None
        self._callbacks: list[OpenCallback] = []
        self.opened: list[int] = []  # accepted opens, newest last (for the app and tests)
        if on_open is not None:
            self._callbacks.append(on_open)
        self.page_size = self._page_size = max(1, min(int(page_size), 500))
        self.columns = [{"key": k, "label": label, "sort": s, "kind": kind} for k, label, s, kind in TABLE_COLUMNS]
        self.on_msg(self._on_browser_message)
        if load:
            self.refresh()

    # ------------------------------------------------------------------ public API

    @property
    def filters(self) -> Filters:
        return self._filters

    @property
    def state(self) -> dict[str, Any]:
        """What the kernel holds (the source of truth, whatever the browser's copy of the traits says)."""
        return {"filters": self._filters, "sort": self._sort, "descending": self._descending, "page": self._page,
                "page_size": self._page_size, "total": self._total, "call_ids": self._page_ids}

    @property
    def call_ids(self) -> tuple[int, ...]:
        """The call ids on the page on show, in order."""
        return self._page_ids

    def on_open(self, callback: OpenCallback) -> None:
        """Call ``callback(call_id)`` for every accepted click on a Start Time."""
        self._callbacks.append(callback)

    def on_play(self, callback: PlayCallCallback) -> None:
        """Call ``callback(call_id)`` for every accepted click on a row's Play marker (the app plays the call)."""
        self._play_callbacks = (*self._play_callbacks, callback)

    def play_call(self, call_id: Any) -> int | None:
        """What a click on a Play marker does: a call among this page's rows marked playable, then the callbacks.

        The table only asks: the player decides (and audits) through ``audit.widget_playback``.
        """
        cid = as_id(call_id)
        if cid is None or cid not in self._page_playable:
            log.info("ignored a play for a call not marked playable on the page (%.40r)", call_id)
            return None
        for callback in self._play_callbacks:
            try:
                callback(cid)
            except Exception:
                log.exception("a play-call callback failed")
                self.message = "Something went wrong; the details are in the server log."
        return cid

    def set_filters(self, filters: Filters) -> None:
        """Run the list with new filters, from page 1 (the sort stays)."""
        if not isinstance(filters, Filters):
            raise TypeError("set_filters() takes Filters")
        self._filters, self._page = filters, 1
        self.refresh()

    def sort_by(self, column: Any, descending: bool | None = None) -> bool:
        """Sort by a column (``filters.SORTABLE``); the same column again flips the order. False if refused."""
        if not isinstance(column, str) or column not in SORTABLE:
            self.message = "That column cannot be sorted."
            return False
        if descending is None:  # the same column flips; a new one starts with what people look for first
            if column == self._sort:
                descending = not self._descending
            else:
                descending = column in ("start_time", "segment_count", "recording") or column.endswith("_seconds")
        self._sort, self._descending, self._page = column, bool(descending), 1
        self.refresh()
        return True

    def go_to(self, page: Any) -> bool:
        """Show a page (clamped to the pages there are). False for anything but a whole number."""
        if isinstance(page, bool) or not isinstance(page, int):
            return False
        last = self._pages() if self._total is not None and not self._capped else None
        target = max(1, page if last is None else min(page, last))
        if target == self._page and self._page_ids:
            return True
        self._page = target
        self.refresh()
        return True

    def next_page(self) -> bool:
        return self.go_to(self._page + 1)

    def prev_page(self) -> bool:
        return self.go_to(self._page - 1)

    def open_call(self, call_id: Any) -> int | None:
        """What a click on a Start Time does: the id must be one of this page's rows; then the callbacks run."""
        cid = as_id(call_id)
        if cid is None or cid not in self._page_ids:
            log.info("ignored an open for a call not on the page (%.40r)", call_id)
            return None
        self.opened.append(cid)
        for callback in list(self._callbacks):
            try:
                callback(cid)
            except Exception:
                log.exception("an open-call callback failed")
                self.message = "Something went wrong; the details are in the server log."
        return cid

    @guarded("listing calls")
    def refresh(self) -> None:
        """Run the query for the current filters, sort and page (grants and data read afresh)."""
        self.loading = True
        try:
            actor = self._wb.actor
            resolved = self._wb.resolve(self._filters)
            result = self._wb.rows(resolved, sort=self._sort, descending=self._descending, page=self._page,
                                   page_size=self._page_size, with_total=False)
        except Exception:
            self._clear()  # never leave rows on show next to an error (a revoked user sees nothing)
            raise
        finally:
            self.loading = False
        self._show_columns(actor)
        key = (self._wb.stores.calls.current_name(), actor, self._filters.bounds(), self._filters)
        if key == self._total_key and self._total is not None:
            if self._capped and not result.call_ids and self._page > self._pages():  # paged past the matches
                self._page = self._pages()
                return self.refresh()
            self._show(result)
            return None
        self._show(result, counting=True)  # the rows first: counting every match takes longer
        self.counting = True
        try:
            counted = self._wb.count_upto(resolved)
            self._total, self._capped = counted.count, counted.capped
            self._total_key = key
        finally:
            self.counting = False
        if not result.call_ids and self._page > self._pages():  # the list shrank under us: show its last page
            self._page = self._pages()
            return self.refresh()
        self._show_total()
        return None

    # ------------------------------------------------------------------ the browser's messages (untrusted)

    @guarded("answering the call table")
    def _on_browser_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "sort":
            self.sort_by(content.get("column"))
        elif kind == "page":
            self.go_to(content.get("page"))
        elif kind == "open":
            self.open_call(content.get("call_id"))
        elif kind == "play":
            self.play_call(content.get("call_id"))
        elif kind == "refresh":
            self._total_key = None
            self.refresh()

    # ------------------------------------------------------------------ helpers

    def _show_columns(self, actor: access.Actor) -> None:
        """No Recording column without a playback grant (the same for every call: it tells nothing)."""
        may_play = access.allowed(actor, PLAY_RECORDING)
        columns = [{"key": k, "label": label, "sort": s, "kind": kind} for k, label, s, kind in TABLE_COLUMNS
                   if may_play or k != "recording"]
        if columns != self.columns:
            self.columns = columns

    def _pages(self) -> int:
        return max(1, -(-(self._total or 0) // self._page_size))

    def _show(self, result: reports.CallRows, *, counting: bool = False) -> None:
        rows = format_rows(result.rows)
        self._page_ids = tuple(r["call_id"] for r in rows)
        self._page_playable = frozenset(r["call_id"] for r in rows if r["recording"] == "playable")
        self.message = ""
        self.sort, self.descending = self._sort, self._descending
        self.page, self.page_size = self._page, self._page_size
        self.timezone, self.summary = self._filters.timezone, self._filters.describe()
        if not counting:
            self._show_total()
        self.rows = rows

    def _show_total(self) -> None:
        self.total, self.total_capped, self.pages = self._total or 0, self._capped, self._pages()

    def _clear(self) -> None:
        self._page_ids, self._total, self._total_key, self._capped = (), None, None, False
        self.rows, self.total, self.total_capped, self.page, self.pages = [], 0, False, 1, 1
        self._page_playable = frozenset()
