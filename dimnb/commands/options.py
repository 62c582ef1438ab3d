"""Options and output every ``dimnb`` command shares (one definition, so they read the same everywhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dimnb.datadir import DATA_ENV


def data_dir_option(default: str = "data", what: str = "Data directory"
                    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--data DIR`` (also ``$DIMNB_DATA``), passed to the command as ``data_dir``."""
    return click.option("--data", "data_dir", envvar=DATA_ENV, default=default, show_default=True,
                        type=click.Path(file_okay=False), help=f"{what}. Also ${DATA_ENV}.")


data_option = data_dir_option()
progress_option = click.option("--progress/--no-progress", default=True, show_default=True,
                               help="Show progress bars on a terminal.")


def print_load_summary(summary: Any) -> None:
    """A load's lines; exit 1 when no file gave anything (the loaders' contract)."""
    for line in summary.lines():
        click.echo(line)
    if not summary.anything_read:
        raise SystemExit(1)
