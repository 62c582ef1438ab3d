"""``dimnb listen 3cx``: receive 3CX's live CDR socket feed, spool it to disk and load it in small batches."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from dimnb.commands.options import data_option


@click.group()
def listen() -> None:
    """Receive call records live from a phone system (docs/live-feed.md)."""


@listen.command("3cx")
@data_option
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port 3CX connects to (3CX: \"CDR service is client / Active Socket\").")
@click.option("--ip", default="127.0.0.1", show_default=True,
              help="Address to listen on: the one 3CX reaches (0.0.0.0: every interface).")
@click.option("--passive", metavar="HOST:PORT",
              help="Connect to 3CX instead and read its feed (3CX: \"CDR service is server / Passive Socket\").")
@click.option("--allow", multiple=True, metavar="ADDRESS",
              help="Accept connections only from this address or network (repeat for more). Default: any.")
@click.option("--batch-seconds", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Load at most this often: a call is in the Call List at most this long after its record, "
                   "plus the load (at once after a quiet spell).")
@click.option("--batch-lines", type=click.IntRange(min=1), default=500, show_default=True,
              help="Load at once when this many lines are waiting.")
@click.option("--columns", help="The feed's field order as set in 3CX, field names comma-separated "
                                "(default: the usual 27).")
@click.option("--queues", default="", help="Comma-separated queue extensions (legacy CDRs cannot tell them apart).")
@click.option("--recordings", type=click.Path(exists=True, file_okay=False),
              help="3CX recordings folder, to link recordings as calls arrive.")
@click.option("--spool", type=click.Path(file_okay=False),
              help="Where received lines are kept. Default: <data>/feeds/3cx.")
@click.option("--ack", is_flag=True,
              help="Answer every flush to disk with the number of lines this connection has spooled (for "
                   "senders that resend what was not acknowledged; 3CX does not need it).")
@click.option("--verbose", is_flag=True, help="Log each batch's timing too.")
def listen_3cx(data_dir: str, port: int | None, ip: str, passive: str | None, allow: tuple[str, ...],
               batch_seconds: float, batch_lines: int, columns: str | None, queues: str, recordings: str | None,
               spool: str | None, ack: bool, verbose: bool) -> None:
    """Receive 3CX's CDR socket feed (a CSV line per call as it ends): every line is flushed to disk before
    anything else, then loaded as `dimnb load 3cx` loads a file. Stops on SIGTERM or Ctrl-C after loading what
    it received."""
    from dimnb.ingest import threecx_feed, threecx_legacy
    from dimnb.store.stores import Stores

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    if (port is None) == (passive is None):
        raise click.UsageError("give either --port (3CX connects to us) or --passive HOST:PORT (we connect to 3CX)")
    options = threecx_feed.FeedOptions(
        columns=threecx_legacy.parse_columns(columns) if columns else list(threecx_legacy.DEFAULT_COLUMNS),
        queues=[q.strip() for q in queues.split(",") if q.strip()],
        recordings=Path(recordings) if recordings else None,
        batch_seconds=batch_seconds, batch_lines=batch_lines, ack=ack,
    )
    threecx_feed.listen(
        Stores.open(data_dir), options, ip=ip, port=port,
        passive=threecx_feed.parse_endpoint(passive) if passive else None,
        peers=threecx_feed.Peers.parse(allow), spool_dir=Path(spool) if spool else None,
    )
