"""``dimnb load asterisk …`` and ``dimnb load freeswitch …``: CDRs from Asterisk / FreePBX and FreeSWITCH."""

from __future__ import annotations

from pathlib import Path

import click

from dimnb.commands.options import data_option, print_load_summary, progress_option

_timezone = click.option(
    "--timezone",
    help="Time zone the PBX wrote its times in (IANA name, UTC, or local). Default: local, this machine's zone. "
         "Asterisk with usegmtime=yes writes UTC.",
)
_date_order = click.option(
    "--date-order", type=click.Choice(["dmy", "mdy", "ymd"]),
    help="How the file writes dates like 1/9/2017 (a spreadsheet re-saved it): day-month-year, month-day-year or "
         "year-month-day. Default: what the file's dates prove; a file whose dates fit both is refused.",
)
_recordings = click.option("--recordings", type=click.Path(exists=True, file_okay=False),
                           help="Recordings folder (FreePBX: the monitor folder holding YYYY/MM/DD/).")


@click.command("asterisk")
@data_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--columns", help="Column order: Asterisk field names comma-separated (_ skips one), or a layout "
                                "name (cdr_custom, cdr_csv-16 … cdr_csv-21). Default: recognised from the file.")
@_timezone
@_recordings
@click.option("--recording-pattern", help="Recording file names, with {uniqueid} or {linkedid}; * and ? are "
                                          "wildcards. Default: *{uniqueid}.* (fits FreePBX's names).")
@click.option("--trunks", default="", help="Comma-separated endpoint names of trunks (PJSIP/<name>-…): their side of "
                                           "a call is external. Default: decided by the numbers.")
@_date_order
@progress_option
def asterisk_command(data_dir: str, paths: tuple[str, ...], columns: str | None, timezone: str | None,
                     recordings: str | None, recording_pattern: str | None, trunks: str, date_order: str | None,
                     progress: bool) -> None:
    """Load Asterisk CDRs: cdr_csv Master.csv (16-21 columns), cdr_custom files, FreePBX and PBXware cdr exports."""
    from dimnb.ingest.asterisk import load_asterisk
    from dimnb.store.stores import Stores

    summary = load_asterisk(
        Stores.open(data_dir), paths, columns=columns, timezone=timezone,
        recordings=Path(recordings) if recordings else None, recording_pattern=recording_pattern,
        trunks=[t for t in trunks.split(",") if t.strip()], date_order=date_order, progress=progress,
    )
    print_load_summary(summary)


@click.command("freeswitch")
@data_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--columns", help="The cdr_csv template's variables in order, comma-separated (_ skips one), or a "
                                "template name (example, snom). Default: recognised from the file.")
@_timezone
@_recordings
@click.option("--recording-pattern", help="Recording file names, with {uuid}; * and ? are wildcards. "
                                          "Default: *{uuid}*.")
@click.option("--extensions", help="Numbers that are extensions whatever their length, for users not in the "
                                   "directory yet: ranges and numbers (1000-1999,20172519) or a regular expression. "
                                   "Numbers of directory users are extensions anyway; other numbers of 7+ digits "
                                   "are external.")
@_date_order
@progress_option
def freeswitch_command(data_dir: str, paths: tuple[str, ...], columns: str | None, timezone: str | None,
                       recordings: str | None, recording_pattern: str | None, extensions: str | None,
                       date_order: str | None, progress: bool) -> None:
    """Load FreeSWITCH mod_cdr_csv files (the example template, or any template given with --columns)."""
    from dimnb.ingest.freeswitch import load_freeswitch
    from dimnb.store.stores import Stores

    summary = load_freeswitch(
        Stores.open(data_dir), paths, columns=columns, timezone=timezone,
        recordings=Path(recordings) if recordings else None, recording_pattern=recording_pattern,
        extensions=extensions, date_order=date_order, progress=progress,
    )
    print_load_summary(summary)
