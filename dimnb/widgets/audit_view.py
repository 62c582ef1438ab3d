"""The audit reports inside the app: who listened to what, for a period, a listener or a group.

``AuditView(workbench)``; ``show(period=..., user=..., group=...)`` loads
``dimnb.audit_report`` for the workbench's user, which refuses anyone but an
auditor (``NotFound``, as the server's ``/audit`` page answers 404): this
view decides nothing itself. The pickers replace the notebook's parameters;
call numbers link to their sessions (``#/call/N``); the hash-chain details are
folded under "Integrity". Every value is escaped before it becomes HTML.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets

from dimnb.errors import DimnbError
from dimnb.reports import active_groups

if TYPE_CHECKING:
    import pandas as pd

    from dimnb.audit_report import AuditReport
    from dimnb.workbench import Workbench

log = logging.getLogger("dimnb.widgets.audit_view")

PERIODS: tuple[tuple[str, str], ...] = (
    ("Last 24 hours", "24h"), ("Last 7 days", "7d"), ("Last 30 days", "30d"), ("Last 90 days", "90d"),
    ("All time", "all"),
)
ANYONE = ""
ChangeCallback = Callable[[dict[str, str]], Any]

# The report's column names in plain words.
WORDS = {
    "name": "Name", "plays": "Plays", "downloads": "Downloads", "denied": "Refused", "recordings": "Recordings",
    "calls": "Calls", "first": "First", "last": "Last", "call start": "Call start", "direction": "Direction",
    "call groups": "Groups", "listeners": "Listeners", "time": "Time", "login": "User", "asked": "Asked for",
    "recording_id": "Recording", "call_id": "Call", "seq": "Event", "client": "From address", "hour": "Hour (UTC)", "usual": "Usual per hour",
    "ratio": "Times usual", "clients": "From addresses", "group": "Group", "count": "Count",
}


def _table(frame: pd.DataFrame, *, index: str | None = None, link_calls: bool = False, empty: str) -> str:
    if frame.empty:
        return f"<p class='dimnb-audit-empty'>{escape(empty)}</p>"
    data = frame.reset_index() if index else frame
    head = "".join(f"<th>{escape(WORDS.get(str(c), str(c).replace('_', ' ').capitalize()))}</th>"
                   for c in data.columns)
    rows = []
    for record in data.itertuples(index=False):
        cells = []
        for column, value in zip(data.columns, record):
            text = "" if value is None or value != value else str(value)
            if link_calls and column == "call_id" and text:
                cells.append(f"<td><a class='dimnb-audit-call' href='#/call/{int(value)}'>Call {int(value)}</a></td>")
            else:
                cells.append(f"<td>{escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table class='dimnb-audit-table'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _period_words(report: AuditReport) -> str:
    start, end = report.period.start, report.period.end
    if start is None and end is None:
        return "All time"
    since = f"From {start:%Y-%m-%d %H:%M}" if start else "Until"
    until = f"{end:%Y-%m-%d %H:%M}" if end else "now"
    return f"{since} {'to ' if start else ''}{until} UTC"


def report_html(report: AuditReport) -> str:
    """The report's sections as HTML (plain words; call numbers link to their sessions)."""
    summary = report.summary()["count"].to_dict()
    listened = (f"{summary['plays']} plays and {summary['downloads']} downloads of "
                f"{summary['recordings played or downloaded']} recordings from {summary['calls']} calls, by "
                f"{summary['listeners']} people; {summary['denied attempts']} refused attempts.")
    calls = report.per_call(top=25)
    unusual = report.unusual()
    warning = ("" if report.verification.ok else
               f"<p class='dimnb-audit-alert' role='alert'>The audit trail has been tampered with: "
               f"{escape(str(report.verification))}. The figures below read it as it is now.</p>")
    return "".join([
        warning,
        f"<p class='dimnb-audit-summary'>{escape(_period_words(report))}: {escape(listened)}</p>",
        "<h3>Who listened</h3>", _table(report.per_user(), index="login", empty="Nobody listened."),
        "<h3>Most listened-to calls</h3>",
        _table(calls, index="call_id", link_calls=True, empty="No call was played."),
        "<h3>By group</h3><p class='dimnb-audit-note'>By the listener's primary group at the time.</p>",
        _table(report.per_group(), index="group", empty="Nobody listened."),
        "<h3>Refused attempts</h3>", _table(report.denied(), index="seq", empty="None."),
        "<h3>Unusual volume</h3><p class='dimnb-audit-note'>Hours in which someone played far more than usual.</p>",
        _table(unusual, empty="No unusual hours."),
        "<details class='dimnb-audit-integrity'><summary>Integrity</summary>"
        f"<pre>{escape(report.provenance())}</pre></details>",
    ])


class AuditView(ipywidgets.VBox):
    """The audit reports with a period, listener and group picker. ``on_change`` hears the chosen parameters."""

    def __init__(self, workbench: Workbench, **kwargs: Any) -> None:
        self._wb = workbench
        self.period = ipywidgets.Dropdown(options=PERIODS, value="30d", description="Period")
        self.user = ipywidgets.Dropdown(options=[("Anyone", ANYONE)], value=ANYONE, description="Listener")
        self.group = ipywidgets.Dropdown(options=[("Any group", ANYONE)], value=ANYONE, description="Group")
        for picker in (self.period, self.user, self.group):
            picker.add_class("dimnb-audit-picker")
        self.body = ipywidgets.HTML("")
        self.body.add_class("dimnb-audit-body")
        self.message = ""
        self._callbacks: list[ChangeCallback] = []
        self._quiet = False
        super().__init__(children=[ipywidgets.HBox([self.period, self.user, self.group]), self.body], **kwargs)
        self.add_class("dimnb-audit")
        for picker in (self.period, self.user, self.group):
            picker.observe(self._on_pick, names="value")

    def on_change(self, callback: ChangeCallback) -> None:
        self._callbacks.append(callback)

    @property
    def parameters(self) -> dict[str, str]:
        """The choices on show, as the view's address carries them."""
        chosen = {"period": self.period.value, "user": self.user.value, "group": self.group.value}
        return {k: v for k, v in chosen.items() if v}

    def show(self, period: Any = None, user: Any = None, group: Any = None) -> None:
        """Load the report (auditors only: ``NotFound`` for anyone else, from dimnb.audit_report)."""
        from dimnb import audit_report

        self._quiet = True  # setting the pickers from the address is not a new choice
        try:
            chosen_period = self._choice(self.period, period, "30d")
            report = audit_report.load(self._wb.stores.data.root, period=chosen_period, viewer=self._wb.login)
            self.user.options = [("Anyone", ANYONE)] + sorted(((name or login, login) for login, name
                                                               in report.names.items()), key=lambda o: o[0].lower())
            self.group.options = [("Any group", ANYONE)] + [(g, g) for g in active_groups(self._wb.stores.state)]
            chosen_user = self._choice(self.user, user, ANYONE)
            chosen_group = self._choice(self.group, group, ANYONE)
        finally:
            self._quiet = False
        if chosen_user or chosen_group:
            report = audit_report.load(self._wb.stores.data.root, period=chosen_period, user=chosen_user or None,
                                       group=chosen_group or None, viewer=self._wb.login)
        self.body.value = report_html(report)

    @staticmethod
    def _choice(picker: ipywidgets.Dropdown, value: Any, default: str) -> str:
        """Select ``value`` if the picker offers it (an address may carry anything); else ``default``."""
        values = [v for _label, v in picker.options]
        chosen = value if isinstance(value, str) and value in values else default
        picker.value = chosen
        return chosen

    def _on_pick(self, _change: Any) -> None:
        if self._quiet:
            return
        for callback in list(self._callbacks):
            try:
                callback(self.parameters)
            except DimnbError as exc:
                self.body.value = f"<p class='dimnb-audit-alert'>{escape(str(exc))}</p>"
            except Exception:
                log.exception("changing the audit report failed")
