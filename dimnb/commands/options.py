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
audit_key_option = click.option(
    "--audit-key", "audit_key", type=click.Path(dir_okay=False),
    help="Key that signs audit checkpoints, kept outside the data directory. Also $DIMNB_AUDIT_KEY; "
         "default: <data>.audit-key next to the data directory.")
audit_checkpoints_option = click.option(
    "--audit-checkpoints", "audit_checkpoints", type=click.Path(dir_okay=False),
    help="File the signed audit checkpoints are appended to, outside the data directory. Also "
         "$DIMNB_AUDIT_CHECKPOINTS; default: <data>.audit-checkpoints.jsonl next to the data directory.")
progress_option = click.option("--progress/--no-progress", default=True, show_default=True,
                               help="Show progress bars on a terminal.")


def print_load_summary(summary: Any) -> None:
    """A load's lines; exit 1 when no file gave anything (the loaders' contract)."""
    for line in summary.lines():
        click.echo(line)
    if not summary.anything_read:
        raise SystemExit(1)
