"""``dimnb archive``: the nightly 3CX archive job (see dimnb/archive.py and docs/archive.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dimnb.commands.options import data_option


@click.command("archive")
@data_option
@click.option("--source", type=click.Path(exists=True, file_okay=False),
              help="The 3CX recordings folder, if it is not where the recordings were loaded from "
                   "(files are looked for at SOURCE/<path inside the folder they were loaded from>).")
@click.option("--before", metavar="TIMESTAMP",
              help="Only recordings that started before this ISO date or date-time (UTC unless it has an offset).")
@click.option("--dry-run", is_flag=True, help="Say what would be archived; copy and change nothing.")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, 16),
              help="Recordings copied and verified at once.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1), hidden=True,
              help="Recordings published per call-store generation.")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar (default: when standard error is a terminal).")
def archive(data_dir: str, source: str | None, before: str | None, dry_run: bool, jobs: int, batch_size: int,
            progress: bool | None) -> None:
    """Copy pending 3CX recordings into the archive store, verify them, then make them playable.

    Idempotent and safe to interrupt: run it again after a crash. Exits 1 if any recording failed
    (it stays pending) or if another run is in progress. Last, it folds the call store's grown delta
    into a new base when one is due (docs/architecture.md), so the day's appends never wait for that copy.
    """
    from dimnb import archive as archive_job
    from dimnb.store.stores import Stores

    stores = Stores.open(data_dir)
    summary = archive_job.run(
        stores,
        source=Path(source).resolve() if source else None,
        before=archive_job.parse_before(before) if before else None,
        dry_run=dry_run,
        progress=sys.stderr.isatty() if progress is None else progress,
        workers=jobs,
        batch_size=batch_size,
    )
    for line in summary.lines():
        click.echo(line)
    if not dry_run and stores.calls.compact_if_due():
        click.echo(f"call store compacted into a new base (generation {stores.calls.current_generation()})")
    if not summary.ok:
        raise SystemExit(1)
