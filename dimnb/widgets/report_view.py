"""The report view: Agent summary, Group summary, Missed and abandoned, Activity, inside the Call List app.

``ReportView(workbench, on_drill=..., on_open=...)``; ``show(name,
**parameters)`` runs a report (``parameters``: period, group, service_level,
window_hours) and ``parameters`` says what is on show, so an address such as
``#/report/groups?period=last_7_days&group=Sales`` can be turned into a view
and back. The numbers come from ``Workbench.report`` (dimnb.report_queries,
the one scope rule); the browser only draws them.

The browser sends ``{type: "show", report, parameters}``, ``{type: "drill",
row, column}`` (a number: the Call List filtered to the calls it counts, via
``on_drill``), ``{type: "open", row, column}`` (a call of the Missed report:
its session, via ``on_open``, which checks the scope again) and ``{type:
"export", format}`` (the report as CSV or XLSX, sent back as a download).
Rows are referred to by their index in the rows this view sent; anything else
is ignored. Charts are inline SVG drawn by report_view.js (docs/reports.md,
"Charts"): no plotting library, nothing fetched from the network.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from dimnb import report_queries
from dimnb.filters import PERIODS, Filters
from dimnb.widgets._guard import as_id, guarded

if TYPE_CHECKING:
    import pandas as pd

    from dimnb.workbench import Workbench

log = logging.getLogger("dimnb.widgets.report_view")

_STATIC = Path(__file__).parent / "static"
OPEN_COLUMNS = ("call_id", "callback_call_id", "called_again_call_id")
HIDDEN_COLUMNS = {"missed": ("callback_call_id", "called_again_call_id")}
MIME = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
PARAMETER_KEYS = ("period", "start", "end", "group", "service_level", "window_hours")
# A Missed report over months of a busy PBX has tens of thousands of rows: the browser gets the newest of
# them (86,647 rows at 1M calls were 30 MB of widget state and a table no one scrolls); the totals above the
# table and the exports cover every row.
SHOWN_ROWS = 500


def _display(value: Any) -> Any:
    """A cell as JSON the browser can draw (times as local wall-clock text, no NaN)."""
    import pandas as pd

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, datetime):
        return None if pd.isna(value) else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if pd.isna(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class ReportView(anywidget.AnyWidget):
    """One report at a time, its parameters, its chart, numbers that open the Call List, exports."""

    _esm = _STATIC / "report_view.js"
    _css = _STATIC / "report_view.css"

    # Output only: never read back.
    report = traitlets.Unicode("agents").tag(sync=True)
    reports = traitlets.List([]).tag(sync=True)
    form = traitlets.Dict({}).tag(sync=True)
    periods = traitlets.List([]).tag(sync=True)
    groups = traitlets.List([]).tag(sync=True)
    columns = traitlets.List([]).tag(sync=True)
    rows = traitlets.List([]).tag(sync=True)
    summary = traitlets.Dict({}).tag(sync=True)
    chart = traitlets.Dict({}).tag(sync=True)
    loading = traitlets.Bool(False).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)

    def __init__(self, workbench: Workbench, *, on_drill: Callable[[Filters], Any] | None = None,
                 on_open: Callable[[int], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wb = workbench
        self._on_drill = on_drill
        self._on_open = on_open
        self._frame: pd.DataFrame | None = None
        self._opts: report_queries.ReportOptions | None = None
        self._parameters: dict[str, Any] = {}
        self._shown: list[Callable[[], Any]] = []
        self.reports = [{"name": k, "label": v} for k, v in report_queries.REPORTS.items()]
        self.periods = [{"value": "", "label": "All time"}] + [{"value": k, "label": v} for k, v in PERIODS.items()]
        self.groups = workbench.groups()
        self.on_msg(self._on_browser_message)

    # ------------------------------------------------------------------ public API

    def on_show(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` after the user picks another report or parameters in the view (the app's address)."""
        self._shown.append(callback)

    @property
    def parameters(self) -> dict[str, Any]:
        """What is on show: ``{"report": name, "period": ..., "group": ..., ...}`` (only what was set)."""
        return {"report": self.report, **self._parameters}

    @property
    def frame(self) -> pd.DataFrame | None:
        """The report on show, as ``Workbench.report`` returned it."""
        return self._frame

    @guarded("showing a report")
    def show(self, name: str = "agents", **parameters: Any) -> bool:
        """Run report ``name`` with ``parameters`` (period/start/end, group, service_level, window_hours)."""
        name = report_queries.check_name(name)
        unknown = sorted(set(parameters) - set(PARAMETER_KEYS))
        if unknown:
            from dimnb.errors import InvalidInput

            raise InvalidInput(f"{unknown[0]}: not a report parameter ({', '.join(PARAMETER_KEYS)})", field=unknown[0])
        given = {k: v for k, v in parameters.items() if v not in (None, "")}
        numbers = {k: given[k] for k in ("service_level", "window_hours") if k in given}
        filters = {k: given[k] for k in ("period", "start", "end", "group") if k in given}
        self.loading = True
        try:
            frame = self._wb.report(name, **numbers, **filters)
            opts = report_queries.options(self._wb.filters(**filters), **numbers)
            chart = self._chart(name, frame, numbers, filters)
        finally:
            self.loading = False
        self._frame, self._opts, self._parameters = frame, opts, given
        self.message = ""
        self.report = name
        self.form = {"period": given.get("period", ""), "group": given.get("group", ""),
                     "service_level": opts.service_level_seconds, "window_hours": opts.window_hours}
        self.columns = self._columns(name, frame)
        self.rows = [{c: _display(v) for c, v in row.items()} for row in frame.head(SHOWN_ROWS).to_dict("records")]
        self.summary = self._summary(name, frame)
        self.chart = chart
        return True

    # ------------------------------------------------------------------ what the browser draws

    def _columns(self, name: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
        hidden = HIDDEN_COLUMNS.get(name, ())
        links = report_queries.LINK_COLUMNS[name]
        return [{"key": c, "label": report_queries.COLUMN_LABELS.get(c, c),
                 "link": "drill" if c in links else ("open" if c in OPEN_COLUMNS else ""),
                 "numeric": str(frame[c].dtype) not in ("object", "str", "string", "bool", "boolean")
                 and not str(frame[c].dtype).startswith("datetime")}
                for c in frame.columns if c not in hidden]

    def _summary(self, name: str, frame: pd.DataFrame) -> dict[str, Any]:
        if name == "missed":
            back = int(frame["called_back"].sum()) if len(frame) else 0
            again = int(frame["called_again"].sum()) if len(frame) else 0
            shown = "" if len(frame) <= SHOWN_ROWS else f"; the newest {SHOWN_ROWS} below, Export for all"
            return {"count": len(frame), "text": f"{len(frame):,} missed or abandoned", "link": True,
                    "detail": f"{back:,} called back, {again:,} called again{shown}"}
        if name == "activity":
            now, before = int(frame["calls"].sum()), int(frame["previous_calls"].sum())
            change = "" if not before else f" ({(now - before) / before * 100:+.0f}%)"
            return {"count": now, "text": f"{now} calls", "link": False,
                    "detail": f"previous period: {before} calls{change}"}
        return {"count": len(frame), "text": f"{len(frame)} {'users' if name == 'agents' else 'groups'}",
                "link": False, "detail": ""}

    def _chart(self, name: str, frame: pd.DataFrame, numbers: dict[str, Any],
               filters: dict[str, Any]) -> dict[str, Any]:
        if name != "activity":
            return {}
        hours = self._wb.report("activity", by="hour", **numbers, **filters)
        grid = [[0] * 24 for _ in range(7)]
        for row in hours.to_dict("records"):
            grid[report_queries.WEEKDAYS.index(row["weekday"])][int(row["hour"])] = int(row["calls"])
        return {"days": [{"date": _display(r["date"]), "calls": int(r["calls"]),
                          "previous": int(r["previous_calls"])} for r in frame.to_dict("records")],
                "weekdays": list(report_queries.WEEKDAYS), "heat": grid}

    # ------------------------------------------------------------------ browser messages

    def _row(self, value: Any) -> dict[str, Any] | None:
        if self._frame is None or isinstance(value, bool) or not isinstance(value, int):
            return None
        if not 0 <= value < min(len(self._frame), SHOWN_ROWS):
            return None
        return self._frame.iloc[value].to_dict()

    @guarded("opening the calls behind a number")
    def drill(self, row: Any, column: Any) -> Filters | None:
        """The Call List filters behind a number (row index and column, or ``"*"`` for the report's total)."""
        if self._opts is None or not isinstance(column, str):
            return None
        record = {} if column == "*" else self._row(row)
        if record is None:
            return None
        if column != "*" and column not in report_queries.LINK_COLUMNS[self.report]:
            return None
        filters = report_queries.drill(self.report, record, column, self._opts)
        if filters is not None and self._on_drill is not None:
            self._on_drill(filters)
        return filters

    @guarded("opening a call")
    def open_call(self, row: Any, column: Any) -> int | None:
        record = self._row(row)
        if record is None or column not in OPEN_COLUMNS or column not in record:
            return None
        call_id = as_id(_display(record[column]))
        if call_id is not None and self._on_open is not None:
            self._on_open(call_id)
        return call_id

    @guarded("exporting the report")
    def export(self, fmt: Any) -> bytes | None:
        """The report on show as CSV or XLSX bytes (and sent to the browser as a download)."""
        if self._opts is None or fmt not in MIME:
            return None
        with tempfile.TemporaryDirectory(prefix="dimnb-report-") as scratch:
            path = Path(scratch) / f"{self.report}.{fmt}"
            self._wb.export_report(path, self.report, **{k: v for k, v in self._parameters.items()
                                                        if k in PARAMETER_KEYS})
            data = path.read_bytes()
        self.send({"type": "download", "filename": f"{self.report}.{fmt}", "mime": MIME[fmt]}, [data])
        return data

    def _on_browser_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "show":
            parameters = content.get("parameters")
            values = {k: v for k, v in parameters.items() if k in PARAMETER_KEYS} if isinstance(parameters, dict) else {}
            if self.show(content.get("report"), **values):
                for callback in list(self._shown):
                    callback()
        elif kind == "drill":
            self.drill(content.get("row"), content.get("column"))
        elif kind == "open":
            self.open_call(content.get("row"), content.get("column"))
        elif kind == "export":
            self.export(content.get("format"))
