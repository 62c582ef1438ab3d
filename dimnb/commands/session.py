"""``dimnb session CALL_ID --as LOGIN``: one call's session, as that user may see it."""

from __future__ import annotations

import json

import click

from dimnb.commands.options import data_option


@click.command("session")
@data_option
@click.argument("call_id", type=int)
@click.option("--as", "login", required=True, help="Whose scope to apply (login).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output: text for people, JSON for scripts.")
def session(data_dir: str, call_id: int, login: str, fmt: str) -> None:
    """A call's session: summary, segments, conference joins and leaves, and the recordings LOGIN may play.

    A call that does not exist and one outside LOGIN's scope give the same message.
    """
    from dimnb.store.stores import Stores
    from dimnb.workbench import Workbench

    found = Workbench(Stores.open(data_dir), login).session(call_id)
    if fmt == "json":
        click.echo(json.dumps(found.to_dict(), indent=1, ensure_ascii=False))
    else:
        click.echo(found.to_text())
