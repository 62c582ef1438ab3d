"""``dimnb filters list|save|run|rename|share|delete --as LOGIN``: a user's saved filters."""

from __future__ import annotations

from typing import Any

import click

from dimnb.commands.calls import (
    as_option,
    filter_options,
    filters_from_options,
    print_frame,
)
from dimnb.commands.options import data_option


def _workbench(data_dir: str, login: str) -> Any:
    from dimnb.store.stores import Stores
    from dimnb.workbench import Workbench

    return Workbench(Stores.open(data_dir), login)


@click.group("filters")
def filters() -> None:
    """Saved filters: named quick filters, per user, shareable read-only with a group."""


@filters.command("list")
@data_option
@as_option
def list_command(data_dir: str, login: str) -> None:
    """The user's saved filters and those shared with their groups (with what is wrong, if anything)."""
    frame = _workbench(data_dir, login).saved.frame()
    if not len(frame):
        click.echo("(no saved filters)")
        return
    for row in frame.itertuples(index=False):
        whose = "" if row.editable else f" [shared by {row.owner}, read-only]"
        shared = f" [shared with {row.shared_with}]" if row.editable and row.shared_with else ""
        what = row.filters if not row.problem else f"PROBLEM: {row.problem}"
        click.echo(f"{row.name}{whose}{shared}: {what}")


@filters.command("save")
@data_option
@as_option
@click.argument("name")
@filter_options
@click.option("--share-with", help="Share it read-only with a group you belong to.")
@click.option("--overwrite", is_flag=True, help="Replace your saved filter of that name.")
def save_command(data_dir: str, login: str, name: str, share_with: str | None, overwrite: bool,
                 **options: Any) -> None:
    """Save the given quick filters as NAME."""
    wb = _workbench(data_dir, login)
    saved = wb.saved.save(name, share_with=share_with, overwrite=overwrite, **filters_from_options(options))
    filters_now = wb.saved.get(saved.name)
    shared = f", shared with {saved.shared_group}" if saved.shared_group else ""
    click.echo(f"saved {saved.name!r}{shared}: {filters_now.describe()}")


@filters.command("run")
@data_option
@as_option
@click.argument("name")
@click.option("--owner", help="Whose filter, when several shared with you have that name.")
@click.option("--sort", default="start_time", show_default=True, help="Column to sort by.")
@click.option("--asc", is_flag=True, help="Ascending order (default: descending).")
@click.option("--limit", default=50, show_default=True, help="Rows to show (0: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output: a table for people, CSV or JSON for scripts.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Export every match to this CSV.")
def run_command(data_dir: str, login: str, name: str, owner: str | None, sort: str, asc: bool, limit: int, fmt: str,
                output: str | None) -> None:
    """Run a saved filter (in LOGIN's scope)."""
    wb = _workbench(data_dir, login)
    saved = wb.saved.get(name, owner=owner)
    if output:
        written = wb.export_csv(output, saved, sort=sort, descending=not asc)
        click.echo(f"wrote {written} calls to {output}", err=True)
        return
    if limit < 0:
        raise click.UsageError("--limit must be 0 (all) or more")
    if limit == 0:
        frame = wb.calls(saved, sort=sort, descending=not asc)
        print_frame(frame, fmt, len(frame))
    else:
        page = wb.page(saved, sort=sort, descending=not asc, page_size=min(limit, 10_000))
        print_frame(page.rows, fmt, page.total)


@filters.command("rename")
@data_option
@as_option
@click.argument("name")
@click.argument("new_name")
def rename_command(data_dir: str, login: str, name: str, new_name: str) -> None:
    """Rename one of your saved filters."""
    saved = _workbench(data_dir, login).saved.rename(name, new_name)
    click.echo(f"renamed {name!r} to {saved.name!r}")


@filters.command("share")
@data_option
@as_option
@click.argument("name")
@click.argument("group", required=False)
@click.option("--stop", is_flag=True, help="Stop sharing it.")
def share_command(data_dir: str, login: str, name: str, group: str | None, stop: bool) -> None:
    """Share one of your saved filters with GROUP (read-only for its members), or --stop."""
    if bool(group) == stop:
        raise click.UsageError("give a GROUP, or --stop")
    saved = _workbench(data_dir, login).saved.share(name, None if stop else group)
    click.echo(f"{saved.name!r} is shared with {saved.shared_group}" if saved.shared_group
               else f"{saved.name!r} is no longer shared")


@filters.command("delete")
@data_option
@as_option
@click.argument("name")
def delete_command(data_dir: str, login: str, name: str) -> None:
    """Delete one of your saved filters."""
    _workbench(data_dir, login).saved.delete(name)
    click.echo(f"deleted {name!r}")
