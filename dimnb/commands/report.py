"""``dimnb report agents|groups|missed|activity --as LOGIN``: the other reports, scoped to a user."""

from __future__ import annotations

import sys
from typing import Any

import click

from dimnb.commands.calls import as_option
from dimnb.commands.options import data_option
from dimnb.filters import PERIODS
from dimnb.report_queries import COLUMN_LABELS, DEFAULT_SERVICE_LEVEL_SECONDS, DEFAULT_WINDOW_HOURS, REPORTS


def _print(frame: Any, fmt: str) -> None:
    """The report: a table with labels for people; CSV or JSON (column names, ISO times) for scripts."""
    import pandas as pd

    frame = frame.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].map(lambda t: "" if pd.isna(t) else t.isoformat(timespec="seconds"))
    if fmt == "json":
        click.echo(frame.to_json(orient="records", indent=1, force_ascii=False, date_format="iso"))
    elif fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    else:
        frame.columns = [COLUMN_LABELS.get(c, c) for c in frame.columns]
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
            click.echo(frame.to_string(index=False) if len(frame) else "(nothing in this period)")


@click.command("report")
@click.argument("name", type=click.Choice(list(REPORTS)))
@data_option
@as_option
@click.option("--period", type=click.Choice(list(PERIODS)), help="A period relative to today.")
@click.option("--start", help="From this date or date-time (inclusive), in --timezone.")
@click.option("--end", help="Until this date (inclusive) or date-time (exclusive), in --timezone.")
@click.option("--timezone", help="Time zone for dates, days and hours (default: the user's, else UTC).")
@click.option("--group", help="Only calls tagged with this group.")
@click.option("--service-level", type=float, default=DEFAULT_SERVICE_LEVEL_SECONDS, show_default=True,
              help="groups: answered within this many seconds counts towards the service level.")
@click.option("--window-hours", type=float, default=DEFAULT_WINDOW_HOURS, show_default=True,
              help="missed: a call-back or a new call from the caller counts within this many hours.")
@click.option("--by", type=click.Choice(["day", "hour"]), default="day", show_default=True,
              help="activity: calls per day, or per weekday and hour (the heat map).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output: a table for people, CSV or JSON for scripts.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="Write the report to this .csv or .xlsx file instead.")
def report(name: str, data_dir: str, login: str, service_level: float, window_hours: float, by: str, fmt: str,
           out: str | None, **options: Any) -> None:
    """Agent summary, Group summary, Missed and abandoned calls, or Activity, scoped to a user (docs/reports.md)."""
    from dimnb.store.stores import Stores
    from dimnb.workbench import Workbench

    wb = Workbench(Stores.open(data_dir), login)
    filters = {k: v for k, v in options.items() if v not in (None, "")}
    numbers = {"service_level": service_level, "window_hours": window_hours, "by": by}
    if out:
        written = wb.export_report(out, name, **numbers, **filters)
        click.echo(f"wrote {written} rows to {out}", err=True)
        return
    _print(wb.report(name, **numbers, **filters), fmt)
    sys.stdout.flush()
