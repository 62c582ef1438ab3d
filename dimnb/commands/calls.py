"""``dimnb calls --as LOGIN [filters]``: the Call List, scoped to a user, as a table, CSV or JSON."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from dimnb import model
from dimnb.commands.options import data_option
from dimnb.filters import PERIODS

FILTER_KEYS = ("start", "end", "period", "timezone", "direction", "party", "group", "outcome", "min_duration",
               "max_duration", "with_recordings")

as_option = click.option("--as", "login", required=True, help="Whose scope to apply (login).")


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The quick filters as options (shared by ``dimnb calls`` and ``dimnb filters save``)."""
    options = [
        click.option("--start", help="From this date or date-time (inclusive), in --timezone."),
        click.option("--end", help="Until this date (inclusive) or date-time (exclusive), in --timezone."),
        click.option("--period", type=click.Choice(list(PERIODS)), help="A period relative to today instead."),
        click.option("--timezone", help="Time zone for dates and the output (default: the user's, else UTC)."),
        click.option("--direction", multiple=True, type=click.Choice(model.DIRECTIONS), help="Repeat for several."),
        click.option("--party", help="A user's login, an extension, or part of a number or name "
                                     "(prefix user:, ext: or number: to say which)."),
        click.option("--group", help="Calls tagged with this group."),
        click.option("--outcome", multiple=True, type=click.Choice(model.OUTCOMES), help="Repeat for several."),
        click.option("--min-duration", help="Seconds, or m:ss."),
        click.option("--max-duration", help="Seconds, or m:ss."),
        click.option("--with-recordings", is_flag=True, help="Only calls with a recording you may play."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def filters_from_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in FILTER_KEYS if options.get(k) not in (None, (), False, "")}


def print_frame(frame: Any, fmt: str, total: int | None) -> None:
    """The Call List columns; start times with their offset (csv, json) or as local wall-clock time (table)."""
    from dimnb import reports

    frame = frame[reports.COLUMNS].copy()
    zone = str(frame["start_time"].dt.tz or "UTC")
    if fmt in ("json", "csv"):
        frame["start_time"] = frame["start_time"].map(lambda t: t.isoformat(timespec="seconds"))
    if fmt == "json":
        click.echo(frame.to_json(orient="records", indent=1, force_ascii=False))
    elif fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    else:
        import pandas as pd

        frame["start_time"] = frame["start_time"].dt.strftime("%Y-%m-%d %H:%M:%S")
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
            click.echo(frame.to_string(index=False) if len(frame) else "(no calls)")
        click.echo(f"{len(frame)} of {total if total is not None else len(frame)} calls (times in {zone})")


@click.command("calls")
@data_option
@as_option
@filter_options
@click.option("--sort", default="start_time", show_default=True, help="Column to sort by.")
@click.option("--asc", is_flag=True, help="Ascending order (default: descending).")
@click.option("--limit", default=50, show_default=True, help="Rows to show (0: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output: a table for people, CSV or JSON for scripts.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True),
              help="Write every matching call to this CSV file instead (the export).")
def calls(data_dir: str, login: str, sort: str, asc: bool, limit: int, fmt: str, output: str | None,
          **options: Any) -> None:
    """The Call List, scoped to a user."""
    from dimnb.store.stores import Stores
    from dimnb.workbench import Workbench

    wb = Workbench(Stores.open(data_dir), login)
    filters = filters_from_options(options)
    if output:
        written = wb.export_csv(output, sort=sort, descending=not asc, **filters)
        click.echo(f"wrote {written} calls to {output}", err=True)
        return
    if limit < 0:
        raise click.UsageError("--limit must be 0 (all) or more")
    if limit == 0:
        frame = wb.calls(sort=sort, descending=not asc, **filters)
        print_frame(frame, fmt, len(frame))
    else:
        page = wb.page(sort=sort, descending=not asc, page_size=min(limit, 10_000), **filters)
        print_frame(page.rows, fmt, page.total)
    sys.stdout.flush()
