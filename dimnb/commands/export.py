"""``dimnb export parquet``: the call store as date-partitioned Parquet for Spark (dimnb/export_parquet.py)."""

from __future__ import annotations

import sys

import click

from dimnb.commands.options import data_option


@click.group("export")
def export() -> None:
    """Copies of the call store for other engines (Spark, DuckDB, pandas)."""


@export.command("parquet")
@data_option
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output directory (created if needed; a previous export there is updated in place).")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar (default: when standard error is a terminal).")
def parquet(data_dir: str, out: str, progress: bool | None) -> None:
    """Write calls, segments, participants, group tags, recordings' metadata and the directory history as Parquet.

    Hive layout by the call's start month (TABLE/year=2026/month=3/data.parquet) with a manifest.json naming
    the call-store generation. A re-run writes only the months that changed. Each month's file is replaced
    atomically, so a reader (or a kill, or a full disk) never leaves half a month; run it again to finish.
    """
    from dimnb import export_parquet
    from dimnb.store.stores import Stores

    summary = export_parquet.export(Stores.open(data_dir), out,
                                    progress=sys.stderr.isatty() if progress is None else progress)
    for line in summary.lines():
        click.echo(line)
