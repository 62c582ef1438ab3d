"""Addresses for the app's views, and the browser history kept in step with them.

Every view has an address in the page's fragment (it never reaches the server):

- ``#/calls?direction=inbound&group=Sales`` the Call List with its filters
  (``Filters.to_dict(compact=True)``; several values repeat the key),
- ``#/call/473`` a call's session,
- ``#/report/agents?period=last_7_days&group=Sales`` a report with its parameters,
- ``#/audit?period=2026-11`` the audit reports (auditors only).

``parse_fragment`` reads an address as untrusted text into a ``Route`` (what
view, which target, which parameters, all plain strings); the app then
validates the parameters as it does a form (``Filters.parse`` for the list).
``History`` is a small widget that keeps the address and the kernel in step:
the kernel sets ``fragment`` (``replace`` says whether the browser replaces the
current history entry or pushes a new one); the browser sends ``{type:
"navigate", fragment}`` when the page opens with an address, and on Back,
Forward or an edited address (``popstate``/``hashchange``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import anywidget
import traitlets

from dimnb.errors import InvalidInput
from dimnb.filters import Filters

log = logging.getLogger("dimnb.widgets.history")

_STATIC = Path(__file__).parent / "static"
MAX_FRAGMENT = 2000
MAX_PARAMETERS = 30
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_ID_RE = re.compile(r"^[1-9][0-9]{0,17}$")
VIEWS = ("calls", "call", "report", "audit")
NOT_UNDERSTOOD = "That address was not understood; here is the call list."


@dataclass(frozen=True)
class Route:
    """A parsed address: ``view`` one of VIEWS, ``target`` the call id or report name, ``params`` as given."""

    view: str
    target: str = ""
    params: Mapping[str, str | list[str]] = field(default_factory=dict)

    @property
    def fragment(self) -> str:
        return fragment_of(self.view, self.target, self.params)


def fragment_of(view: str, target: str = "", params: Mapping[str, Any] | None = None) -> str:
    """The address of a view (without the ``#``): ``/call/473``, ``/calls?direction=inbound``."""
    path = f"/{view}" + (f"/{quote(str(target), safe='')}" if target else "")
    query = urlencode([(k, v) for k, v in _pairs(params or {})])
    return path + (f"?{query}" if query else "")


def _pairs(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is None or item is False or item == "":
                continue
            pairs.append((key, "true" if item is True else f"{item:g}" if isinstance(item, float) else str(item)))
    return pairs


def calls_fragment(filters: Filters) -> str:
    """The Call List's address for these filters."""
    return fragment_of("calls", "", filters.to_dict(compact=True))


def parse_fragment(text: Any) -> Route:
    """An address from the browser (untrusted) as a Route; InvalidInput for anything not understood."""
    if not isinstance(text, str) or len(text) > MAX_FRAGMENT:
        raise InvalidInput("address: not understood", field="address")
    raw = text[1:] if text.startswith("#") else text
    if raw in ("", "/"):
        return Route("calls")
    path, _, query = raw.partition("?")
    parts = path.strip("/").split("/")
    view, rest = parts[0], parts[1:]
    if view not in VIEWS or len(rest) > 1:
        raise InvalidInput("address: not understood", field="address")
    try:
        pairs = parse_qsl(query, keep_blank_values=False, strict_parsing=False, max_num_fields=MAX_PARAMETERS)
    except ValueError as exc:
        raise InvalidInput("address: too many parameters", field="address") from exc
    params: dict[str, str | list[str]] = {}
    for key, value in pairs:
        if not _NAME_RE.match(key):
            raise InvalidInput("address: not understood", field="address")
        if key in params:
            existing = params[key]
            params[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            params[key] = value
    target = rest[0] if rest else ""
    if view == "call" and not _ID_RE.match(target):
        raise InvalidInput("address: not a call number", field="address")
    if view == "report" and not _NAME_RE.match(target):
        raise InvalidInput("address: not a report", field="address")
    if view in ("calls", "audit") and target:
        raise InvalidInput("address: not understood", field="address")
    return Route(view, target, params)


def filters_of_params(params: Mapping[str, str | list[str]], default_zone: str) -> Filters:
    """The Call List's address parameters as Filters, validated like any form (``Filters.parse``)."""
    data: dict[str, Any] = dict(params)
    for key in ("direction", "outcome"):  # a single value is a one-item list
        if isinstance(data.get(key), str):
            data[key] = [data[key]]
    data.setdefault("timezone", default_zone)
    return Filters.parse(data)


NavigateCallback = Callable[[str], Any]


class History(anywidget.AnyWidget):
    """Keeps ``location.hash`` and the kernel's view in step (an invisible widget in the app)."""

    _esm = _STATIC / "history.js"

    # Kernel → browser: the address of the view on show, and how to record it.
    fragment = traitlets.Unicode("").tag(sync=True)
    replace = traitlets.Bool(True).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._callbacks: list[NavigateCallback] = []
        self.on_msg(self._on_browser_message)

    def on_navigate(self, callback: NavigateCallback) -> None:
        """Call ``callback(fragment)`` (untrusted text) when the browser's address changes."""
        self._callbacks.append(callback)

    def show(self, fragment: str, *, replace: bool = False) -> None:
        """Record the view on show: a new history entry, or (``replace``) instead of the current one."""
        if fragment == self.fragment:  # unchanged: no trait event, but the address may differ (an edited one)
            self.send({"type": "follow", "replace": replace})
            return
        with self.hold_sync():
            self.replace = replace
            self.fragment = fragment

    def _on_browser_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "navigate":
            return
        text = content.get("fragment")
        if not isinstance(text, str):
            return
        for callback in list(self._callbacks):
            try:
                callback(text)
            except Exception:
                log.exception("a navigation callback failed")
