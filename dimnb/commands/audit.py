"""``dimnb audit …``: verify, export and report the playback audit trail."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from dimnb.commands.options import audit_checkpoints_option, audit_key_option, data_option
from dimnb.datadir import DATA_ENV
from dimnb.errors import DimnbError, InvalidInput


class AuditChainBroken(DimnbError):
    """``dimnb audit verify`` found an event that breaks the hash chain."""


def _when(text: str | None, option: str, *, end: bool) -> datetime | None:
    from dimnb.audit_report import parse_instant

    if not text:
        return None
    try:
        return parse_instant(text, end=end)
    except ValueError as exc:
        raise InvalidInput(f"{option} must be a date (2026-11-17) or an ISO date-time, not {text!r}",
                           field=option) from exc


@click.group()
def audit() -> None:
    """The playback audit trail: every play, download and denied attempt (append-only, hash-chained)."""


@audit.command("verify")
@data_option
@click.option("--head", "anchor", help="SEQ:HASH recorded earlier (by verify or a report): also catches a "
                                       "rewritten or truncated tail.")
@audit_key_option
@audit_checkpoints_option
def audit_verify(data_dir: str, anchor: str | None, audit_key: str | None, audit_checkpoints: str | None) -> None:
    """Check the hash chain and its signed checkpoints; name the first problem (exit 1).

    Catches a modified, deleted, reordered or inserted event, events removed
    from the end, a chain recomputed after a change, and checkpoints signed
    with another key.
    """
    from dimnb import audit as trail
    from dimnb.store.stores import Stores

    stores = Stores.open(data_dir)
    result = trail.verify_signed(stores.state, key_file=audit_key, checkpoints_file=audit_checkpoints,
                                 anchor=trail.ChainHead.parse(anchor, "--head") if anchor else None)
    if not result.ok:
        raise AuditChainBroken(str(result))
    click.echo(str(result))


@audit.command("checkpoint")
@data_option
@audit_key_option
@audit_checkpoints_option
def audit_checkpoint(data_dir: str, audit_key: str | None, audit_checkpoints: str | None) -> None:
    """Sign the chain's head now and append it to the checkpoint file (the server does this every hour)."""
    from dimnb import audit as trail
    from dimnb import audit_checkpoints as checkpoints
    from dimnb.store.stores import Stores

    stores = Stores.open(data_dir)
    key = checkpoints.key_path(stores.data.root, audit_key)
    if checkpoints.read_key(key) is None:
        raise InvalidInput(f"no audit checkpoint key at {key}: run `dimnb init` or pass --audit-key",
                           field="--audit-key")
    written = trail.checkpoint(stores.state, key_file=key,
                               checkpoints_file=checkpoints.checkpoints_path(stores.data.root, audit_checkpoints))
    head = trail.head(stores.state)
    click.echo(f"checkpoint written at event {written.seq}" if written else
               f"nothing new to sign (head {head})" if head else "no events yet")


@audit.command("export")
@data_option
@click.option("--from", "start", help="From this date or date-time, UTC (inclusive).")
@click.option("--to", "end", help="Until this date (inclusive) or date-time (exclusive), UTC.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True,
              help="File format of the export.")
@click.option("--out", type=click.Path(dir_okay=False), help="Output file (CSV: default standard output).")
def audit_export(data_dir: str, start: str | None, end: str | None, fmt: str, out: str | None) -> None:
    """Export events with every column, hashes included (a range can be re-checked link by link)."""
    from dimnb import audit as trail
    from dimnb.store.stores import Stores

    stores = Stores.open(data_dir)
    since, until = _when(start, "--from", end=False), _when(end, "--to", end=True)
    if since and until and until <= since:
        raise InvalidInput("--to is before --from", field="--to")
    count = trail.export(stores.state, out, fmt, start=since, end=until)
    if out and out != "-":
        click.echo(f"{count} events written to {out}", err=True)


@audit.command("report")
@data_option
@click.option("--period", help="all, 2026-11, 2026-11-17, 2026-11-01..2026-11-15, or 7d / 12h before now "
                               "(default: the notebook's, all).")
@click.option("--user", help="Only this login's events.")
@click.option("--group", help="Only events by members of this group at the time.")
@click.option("--head", "audit_head", help="SEQ:HASH: read the trail up to there and check it (a re-run's pin).")
@click.option("--generation", "call_generation", type=int, help="Call-store generation to read (a re-run's pin).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="report.ipynb or report.html")
@click.option("--show-code", is_flag=True, help="Keep the code cells in the HTML.")
@click.option("--notebook", type=click.Path(exists=True, dir_okay=False), help="Another audit notebook to run.")
def audit_report(data_dir: str, period: str | None, user: str | None, group: str | None, audit_head: str | None,
                 call_generation: int | None, out: str, show_code: bool, notebook: str | None) -> None:
    """Run the audit notebook headless for a period and save it (.ipynb or .html)."""
    from dimnb import audit_report as report
    from dimnb import notebook_runner
    from dimnb.store.stores import Stores

    stores = Stores.open(data_dir)  # fail here, not inside the kernel, on a missing data directory
    path = Path(notebook) if notebook else report.NOTEBOOK
    if not path.exists():
        raise InvalidInput(f"the audit notebook is not at {path}; pass --notebook", field="--notebook")
    target = Path(out)
    if target.suffix.lower() not in (".ipynb", ".html", ".htm"):
        raise InvalidInput(f"--out must end in .ipynb or .html, not {target.name!r}", field="--out")
    if period:
        report.Period.parse(period)  # a bad period is the user's mistake: say so before starting a kernel
    values = {k: v for k, v in (("period", period), ("user", user), ("group", group), ("audit_head", audit_head),
                                ("call_generation", call_generation)) if v is not None}
    nb = notebook_runner.run_notebook(path, values, env={DATA_ENV: str(stores.data.root)})
    notebook_runner.save(nb, target, show_code=show_code)
    click.echo(f"audit report written to {target}")


@audit.command("seed-demo")
@data_option
def audit_seed_demo(data_dir: str) -> None:
    """Append the demo's fixed audit events (only into an empty audit trail)."""
    from dimnb import audit as trail
    from dimnb.demo.audit_events import seed_demo_audit
    from dimnb.store.stores import Stores

    stores = Stores.open(data_dir)
    count = seed_demo_audit(stores)
    if count:
        click.echo(f"{count} demo audit events appended; {trail.verify(stores.state)}")
    else:
        click.echo("the audit trail already has events: nothing appended")
