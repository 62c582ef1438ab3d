"""The filter bar: the Call List's quick filters and the user's saved filters, validated in Python.

``FilterBar(workbench, on_change=callback)``: every accepted change calls
``callback(filters)`` with a validated ``Filters``. The browser draws the form
(date-time range with a time zone or a relative period, direction, outcome,
group, party search, duration range, "Only calls with recordings") and a
saved-filter picker with save, save as, rename/share and delete.

Untrusted input: the browser sends the whole form as ``{type: "apply", form}``
and saved-filter actions (``load_saved``, ``save``, ``save_as``, ``update``,
``delete``, ``reset``); nothing it sends is used before ``Filters.parse`` and
the directory checks (``reports.check_directory``) accept it, and saved
filters are looked up by id among those the kernel's user may see, changed
only when that user owns them. A rejected form keeps the last accepted filters
and names the field (``message``, ``error_field``), never a traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
import zoneinfo
from zoneinfo import ZoneInfo, available_timezones

import anywidget
import traitlets

from dimnb import access, model, reports, saved_filters
from dimnb.actions import PLAY_RECORDING
from dimnb.errors import DimnbError, InvalidInput
from dimnb.filters import PERIODS, Filters
from dimnb.widgets._guard import FAILED, as_id, guarded

if TYPE_CHECKING:
    from dimnb.workbench import Workbench


log = logging.getLogger("dimnb.widgets.filter_bar")

_STATIC = Path(__file__).parent / "static"
ChangeCallback = Callable[[Filters], Any]
FORM_FIELDS = ("period", "start", "end", "timezone", "direction", "outcome", "group", "party", "min_duration",
               "max_duration", "with_recordings")


@functools.cache
def zone_names() -> list[str]:
    """The current IANA zone names, sorted, with UTC: no backward-compatible aliases (``Africa/Asmera``).

    The names come from tzdata's ``zone.tab`` (one current name per zone a country uses), from the ``tzdata``
    package or the system's zone folder; read once per process. Without a ``zone.tab``: every zone name.
    """
    available = available_timezones()
    listed = _zone_tab_names()
    names = (listed & available) if listed else (available - {"localtime", "Factory"})
    return sorted(names | {"UTC"})


def _zone_tab_names() -> set[str]:
    for folder in _zone_folders():
        try:
            text = (folder / "zone.tab").read_text(encoding="utf-8")
        except (OSError, ValueError):
            continue
        return {line.split("\t")[2] for line in text.splitlines()
                if line and not line.startswith("#") and line.count("\t") >= 2}
    return set()


def _zone_folders() -> list[Any]:
    folders: list[Any] = []
    try:
        from importlib.resources import files

        folders.append(files("tzdata") / "zoneinfo")
    except (ImportError, ModuleNotFoundError, TypeError):
        pass
    folders.extend(Path(p) for p in zoneinfo.TZPATH)
    return folders


def zone_choices(user_zone: str) -> list[str]:
    """The picker's list: the user's own zone first, then UTC and the current IANA zones."""
    rest = [z for z in zone_names() if z != user_zone]
    if "UTC" in rest and user_zone != "UTC":
        rest.remove("UTC")
        rest.insert(0, "UTC")
    return [user_zone, *rest]


def _local(moment: Any, zone: str) -> str:
    """A UTC instant as the value of an ``<input type="datetime-local">`` in ``zone``."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def form_of(filters: Filters) -> dict[str, Any]:
    """Filters as the form shows them (times local to the filters' zone, durations in seconds)."""
    start, end = filters.bounds()  # a period shows its dates (disabled), ready to become a custom range
    return {
        "period": filters.period or ("custom" if filters.start or filters.end else ""),
        "start": _local(start, filters.timezone),
        "end": _local(end, filters.timezone),
        "timezone": filters.timezone,
        "direction": list(filters.direction),
        "outcome": list(filters.outcome),
        "group": filters.group or "",
        "party": filters.party or "",
        "min_duration": "" if filters.min_duration is None else f"{filters.min_duration:g}",
        "max_duration": "" if filters.max_duration is None else f"{filters.max_duration:g}",
        "with_recordings": filters.with_recordings,
    }


def filters_of_form(form: Any, default_zone: str) -> Filters:
    """The browser's form (untrusted) as Filters: only the form's fields, every value validated."""
    if not isinstance(form, dict):
        raise InvalidInput("filters: the form was not understood", field="filters")
    data: dict[str, Any] = {}
    for key in FORM_FIELDS:
        if key in form:
            data[key] = form[key]
    period = data.get("period")
    if period in ("", "custom", None):
        data["period"] = None
    else:
        data.pop("start", None)
        data.pop("end", None)
    data["timezone"] = data.get("timezone") or default_zone
    for key in ("direction", "outcome"):  # a form sends "" for "any"
        if data.get(key) in ("", None):
            data[key] = ()
    return Filters.parse(data)


class FilterBar(anywidget.AnyWidget):
    """Quick filters and saved filters. ``on_change(callback)`` hears every accepted ``Filters``."""

    _esm = _STATIC / "filter_bar.js"
    _css = _STATIC / "filter_bar.css"

    # Output only (kernel → browser).
    form = traitlets.Dict({}).tag(sync=True)
    revision = traitlets.Int(0).tag(sync=True)  # bumped whenever the kernel sets the form (the view redraws it)
    options = traitlets.Dict({}).tag(sync=True)
    saved = traitlets.List([]).tag(sync=True)
    selected_saved = traitlets.Any(None).tag(sync=True)
    summary = traitlets.Unicode("").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    message_kind = traitlets.Unicode("").tag(sync=True)  # error / info / ""
    error_field = traitlets.Unicode("").tag(sync=True)

    def __init__(self, workbench: Workbench, *, filters: Filters | None = None,
                 on_change: ChangeCallback | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wb = workbench
        actor = self._wb.actor
        self._zone = actor.timezone or "UTC"
        self._filters = filters if filters is not None else Filters(timezone=self._zone)
        self._selected: int | None = None
        self._form_error = ""  # the field the browser's last form got wrong ("" when it was accepted)
        self._callbacks: list[ChangeCallback] = []
        if on_change is not None:
            self._callbacks.append(on_change)
        self._set_options(actor)
        self._show_form(self._filters)
        self._refresh_saved(actor)
        self.on_msg(self._on_browser_message)

    # ------------------------------------------------------------------ public API

    @property
    def filters(self) -> Filters:
        """The filters last accepted (what the table shows)."""
        return self._filters

    @property
    def selected(self) -> int | None:
        """The id of the saved filter last loaded or saved (None after any edit)."""
        return self._selected

    def on_change(self, callback: ChangeCallback) -> None:
        self._callbacks.append(callback)

    @guarded("applying the filters")
    def apply(self, filters: Filters | dict[str, Any] | None = None, **values: Any) -> Filters | None:
        """Set the filters (a ``Filters``, or loose values as the form sends), validated; None if refused."""
        if isinstance(filters, Filters):
            candidate = filters.with_(**values) if values else filters
        else:
            data = dict(filters or {})
            data.update(values)
            data.setdefault("timezone", self._zone)
            candidate = Filters.parse(data)
        return self._accept(candidate, deselect=True)

    @guarded("resetting the filters")
    def reset(self) -> Filters | None:
        return self._accept(Filters(timezone=self._zone), deselect=True)

    @guarded("loading a saved filter")
    def load_saved(self, filter_id: Any) -> Filters | None:
        """Apply a saved filter (by id). One that no longer makes sense: its usable parts, and a plain message."""
        actor = self._wb.actor
        found = saved_filters.by_id(self._wb.stores.state, actor, as_id(filter_id))
        try:
            filters = saved_filters.load(self._wb.stores.state, self._wb.stores.calls, found)
        except saved_filters.BrokenFilter as broken:
            self._accept(broken.draft, deselect=False)
            self._selected = found.id
            self._refresh_saved(actor)
            self._say(str(broken), "error", broken.field or "")
            return None
        self._accept(filters, deselect=False)
        self._selected = found.id
        self._refresh_saved(actor)
        self._say(f"Showing saved filter {found.name!r}" + ("" if found.editable else f" (shared by "
                                                                f"{found.owner_name}, read-only)") + ".", "info")
        return filters

    @guarded("saving the filter")
    def save(self, name: Any = None, *, share_with: Any = None, overwrite: bool = False) -> bool:
        """Save the current filters: under ``name`` (save as), or over the selected saved filter (``name`` None)."""
        actor = self._wb.actor
        if self._form_error:
            raise InvalidInput(f"{self._form_error}: fix this field first (the saved filter would not have it)",
                               field=self._form_error)
        kwargs: dict[str, Any] = {}
        if name is None:
            if self._selected is None:
                raise InvalidInput("name: pick a saved filter, or use Save as", field="name")
            current = saved_filters.by_id(self._wb.stores.state, actor, self._selected)
            if not current.editable:
                raise InvalidInput(f"name: {current.name!r} is shared with you by {current.owner_name}; "
                                   "save a copy with Save as", field="name")
            name, overwrite = current.name, True
        else:
            kwargs["share_with"] = share_with if isinstance(share_with, str) and share_with else None
        saved = saved_filters.save(self._wb.stores.state, actor, name, self._filters, overwrite=overwrite, **kwargs)
        self._selected = saved.id
        self._refresh_saved(actor)
        shared = f", shared with {saved.shared_group}" if saved.shared_group else ""
        self._say(f"Saved {saved.name!r}{shared}.", "info")
        return True

    @guarded("changing the saved filter")
    def update_saved(self, filter_id: Any, *, name: Any = None, share_with: Any = None) -> bool:
        """Rename a saved filter of the user's and/or change whom it is shared with ("" or None: nobody)."""
        actor = self._wb.actor
        found = saved_filters.by_id(self._wb.stores.state, actor, as_id(filter_id))
        if not found.editable:
            raise InvalidInput(f"name: only {found.owner_name} can change {found.name!r}", field="name")
        current = found
        if name is not None and name != found.name:
            current = saved_filters.rename(self._wb.stores.state, actor, found.name, name)
        group = share_with if isinstance(share_with, str) and share_with else None
        if group != current.shared_group:
            current = saved_filters.share(self._wb.stores.state, actor, current.name, group)
        self._selected = current.id
        self._refresh_saved(actor)
        self._say(f"Saved filter {current.name!r} " + (f"is shared with {current.shared_group}."
                                                       if current.shared_group else "is not shared."), "info")
        return True

    @guarded("deleting the saved filter")
    def delete_saved(self, filter_id: Any) -> bool:
        actor = self._wb.actor
        found = saved_filters.by_id(self._wb.stores.state, actor, as_id(filter_id))
        saved_filters.delete(self._wb.stores.state, actor, found.name)  # refuses a filter the user does not own
        if self._selected == found.id:
            self._selected = None
        self._refresh_saved(actor)
        self._say(f"Deleted {found.name!r}.", "info")
        return True

    def refresh_options(self) -> None:
        """Re-read the groups and saved filters (after a directory change)."""
        actor = self._wb.actor
        self._set_options(actor)
        self._refresh_saved(actor)

    # ------------------------------------------------------------------ the browser's messages (untrusted)

    @guarded("answering the filter bar")
    def _on_browser_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "apply":
            self._apply_form(content.get("form"))
        elif kind == "reset":
            self.reset()
        elif kind == "load_saved":
            if content.get("id") in (None, ""):
                self._selected = None
                self.selected_saved = None
            else:
                self.load_saved(content.get("id"))
        elif kind == "save":
            self.save()
        elif kind == "save_as":
            self.save(content.get("name") if isinstance(content.get("name"), str) else "",
                      share_with=content.get("share_with"))
        elif kind == "update":
            name = content.get("name")
            self.update_saved(content.get("id"), name=name if isinstance(name, str) else None,
                              share_with=content.get("share_with"))
        elif kind == "delete":
            self.delete_saved(content.get("id"))

    def _apply_form(self, form: Any) -> None:
        try:
            candidate = filters_of_form(form, self._zone)
            self._accept(candidate, deselect=True)
        except DimnbError as exc:
            self._form_error = getattr(exc, "field", None) or "filters"
            self._say(str(exc), "error", self._form_error)

    # ------------------------------------------------------------------ helpers

    def _accept(self, candidate: Filters, *, deselect: bool) -> Filters:
        try:
            checked = reports.check_directory(self._wb.stores.state, candidate)
        except DimnbError as exc:
            self._form_error = getattr(exc, "field", None) or "filters"
            raise
        self._filters, self._form_error = checked, ""
        if deselect:
            self._selected = None
        self._say("", "")
        self._show_form(checked)
        for callback in list(self._callbacks):
            try:
                callback(checked)
            except DimnbError as exc:
                self._say(str(exc), "error")
            except Exception:
                log.exception("a filter-change callback failed")
                self._say(FAILED, "error")
        return checked

    def _show_form(self, filters: Filters) -> None:
        self.form = form_of(filters)
        self.summary = filters.describe()
        self.selected_saved = self._selected
        self.revision += 1

    def report_error(self, text: str, field: str | None) -> None:
        """How ``guarded`` shows an error here: the message, and the field it names marked invalid."""
        self._say(text, "error", field or "")

    def _say(self, text: str, kind: str, field: str = "") -> None:
        self.message, self.message_kind, self.error_field = text, kind if text else "", field if text else ""

    def _set_options(self, actor: access.Actor) -> None:
        zones = zone_choices(self._zone)
        self.options = {
            "periods": [["", "Any time"], *[[k, v] for k, v in PERIODS.items()], ["custom", "Custom range…"]],
            "directions": list(model.DIRECTIONS),
            "outcomes": list(model.OUTCOMES),
            "groups": self._wb.groups(),
            "timezones": zones,
            "share_groups": list(actor.groups),
            "user_zone": self._zone,
            # Without a playback grant there is no recordings toggle (as there is no Recording column).
            "may_play": access.allowed(actor, PLAY_RECORDING),
        }

    def _refresh_saved(self, actor: access.Actor) -> None:
        items = saved_filters.visible(self._wb.stores.state, actor)
        if self._selected is not None and not any(f.id == self._selected for f in items):
            self._selected = None
        self.saved = [f.as_dict() for f in items]
        self.selected_saved = self._selected
