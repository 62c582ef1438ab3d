"""``dimnb demo …``: the demo company, generated and set up."""

from __future__ import annotations

from pathlib import Path

import click

from dimnb.commands.options import data_dir_option


@click.group()
def demo() -> None:
    """The demo company: 3CX v20 records, recordings and a directory, all fictional."""


@demo.command("generate")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--calls", default=500, show_default=True, help="How many calls.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same files, byte for byte.")
@click.option("--days", default=30, show_default=True, help="Length of the period the calls fall in.")
@click.option("--audio/--no-audio", default=True, show_default=True, help="Write the recordings' WAV files.")
def demo_generate(directory: str, calls: int, seed: int, days: int, audio: bool) -> None:
    """Write the demo company's 3CX export, recordings and directory into DIRECTORY (deterministic)."""
    from dimnb.demo.generate import generate

    if calls < 1:
        raise click.BadParameter("must be at least 1", param_hint="--calls")
    manifest = generate(Path(directory), calls=calls, seed=seed, days=days, audio=audio, progress=True)
    counts = manifest["counts"]
    click.echo(f"{counts['calls']} calls, {counts['cdrs']} CDRs, {counts['recordings']} recordings "
               f"({counts['recordings_files_missing']} files missing) written to {directory}")


@demo.command("setup")
@data_dir_option(default="data/demo", what="Demo data directory")
@click.option("--calls", default=500, show_default=True, help="How many calls, if the demo is generated.")
@click.option("--seed", default=7, show_default=True, help="Generator seed, if the demo is generated.")
def demo_setup(data_dir: str, calls: int, seed: int) -> None:
    """Generate (if absent) and load the demo into a data directory, then print the demo logins."""
    from dimnb.demo.setup import demo_password, setup_demo

    result = setup_demo(Path(data_dir), calls=calls, seed=seed, progress=True)
    if result.created and result.load is not None:
        for line in result.load.lines():
            click.echo(line)
        click.echo(f"archived {result.archived} recordings (the last day's wait for the next archive run)")
    else:
        click.echo(f"demo data already in {result.data_dir}")
    click.echo("")
    click.echo("Demo logins (password = login + '-demo'):")
    for entry in result.logins:
        roles = ", ".join(entry.get("roles") or []) or "-"
        click.echo(f"  {entry['login']:<8} {demo_password(entry['login']):<13} report: {entry['report_scope']:<14} "
                   f"playback: {entry['playback']:<14} roles: {roles:<8} {entry.get('description', '')}")
