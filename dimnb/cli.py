"""``dimnb …`` commands. A thin layer: each command parses options and calls the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from dimnb import access, model
from dimnb.commands.options import audit_key_option, data_option, print_load_summary, progress_option
from dimnb.errors import DimnbError
from dimnb.store import directory_repo
from dimnb.store.stores import Stores


def _open(data_dir: str) -> Stores:
    return Stores.open(data_dir)


class DimnbGroup(click.Group):
    """Shows a DimnbError as a plain message and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DimnbError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=DimnbGroup)
@click.version_option(package_name="dimnb")
@click.option("--state", "state_url", envvar="DIMNB_STATE_URL", default=None, metavar="URL",
              help="State store on PostgreSQL (postgresql://…) shared by several nodes; default: the data "
                   "directory's SQLite file. Also $DIMNB_STATE_URL.")
def main(state_url: str | None) -> None:
    """dimnb: find, replay and audit recorded phone calls."""
    if state_url:
        import os

        from dimnb.store.statestore import STATE_URL_ENV

        os.environ[STATE_URL_ENV] = state_url  # the server's kernels and the CLI's children inherit it


# ------------------------------------------------------------------------------------------ setup


@main.command()
@data_option
@audit_key_option
def init(data_dir: str, audit_key: str | None) -> None:
    """Create (or migrate) the data directory: the call store, the state store and the audit key."""
    from dimnb import audit_checkpoints

    stores = Stores.open(data_dir, create=True)
    click.echo(f"initialised {stores.data.root} (call store generation {stores.calls.current_generation()})")
    key = audit_checkpoints.key_path(stores.data.root, audit_key)
    if audit_checkpoints.create_key(key):
        click.echo(f"audit checkpoint key created: {key} (mode 0600; keep it outside the data directory)")


@main.command()
@data_option
def status(data_dir: str) -> None:
    """What a data directory holds."""
    stores = _open(data_dir)
    counts = stores.calls.query(
        "SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM recordings), "
        "(SELECT count(*) FROM recordings WHERE state = 'pending_archive'), "
        "(SELECT count(*) FROM recordings WHERE state = 'missing'), (SELECT count(*) FROM quarantine), "
        "(SELECT min(start_time) FROM calls), (SELECT max(start_time) FROM calls)"
    )[0]
    users = directory_repo.active_count(stores.state)
    click.echo(f"data directory: {stores.data.root}")
    click.echo(f"call store generation: {stores.calls.current_generation()}")
    click.echo(f"calls: {counts[0]} ({counts[5]} .. {counts[6]})")
    click.echo(f"recordings: {counts[1]} ({counts[2]} pending archive, {counts[3]} missing)")
    click.echo(f"quarantined rows: {counts[4]}")
    click.echo(f"active users: {users}")


# ------------------------------------------------------------------------------------------ directory


@main.group()
def directory() -> None:
    """The company directory (users, groups, extensions, memberships)."""


@directory.command("import")
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def directory_import(data_dir: str, file: str) -> None:
    """Replace the directory with FILE (JSON or CSV; see docs/directory.md)."""
    from dimnb.directory import import_directory
    from dimnb.ingest.loader import sync_directory

    stores = _open(data_dir)
    summary = import_directory(stores.state, Path(file))
    for line in summary.lines():
        click.echo(line)
    with stores.calls.write() as con:
        sync_directory(con, stores)
    click.echo(f"call tags re-derived (call store generation {stores.calls.current_generation()})")


@main.group()
def users() -> None:
    """Users, passwords and grants."""


@users.command("list")
@data_option
def users_list(data_dir: str) -> None:
    """List users with their scopes."""
    stores = _open(data_dir)
    rows = directory_repo.listing(stores.state)
    click.echo(f"{'login':<12} {'name':<24} {'report scope':<14} {'playback':<14} {'roles':<14} password")
    for r in rows:
        flag = "" if r["active"] else " (inactive)"
        click.echo(
            f"{r['login']:<12} {r['name'][:24]:<24} {r['report_scope']:<14} {r['playback']:<14} "
            f"{r['roles'] or '-':<14} {'set' if r['has_password'] else 'not set'}{flag}"
        )


@users.command("set-password")
@data_option
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
def users_set_password(data_dir: str, login: str, password_stdin: bool) -> None:
    """Set LOGIN's password (prompted twice, never echoed)."""
    from dimnb.directory import set_password
    from dimnb.passwords import check_password_rule

    stores = _open(data_dir)
    access.load_actor(stores.state, login)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        check_password_rule(password)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    set_password(stores.state, login, password)
    click.echo(f"password set for {login}")


@users.command("grant")
@data_option
@click.argument("login")
@click.option("--playback", type=click.Choice(model.PLAYBACK_GRANTS), help="Playback grant.")
@click.option("--report-scope", type=click.Choice(model.REPORT_SCOPES), help="Which calls the user may list.")
def users_grant(data_dir: str, login: str, playback: str | None, report_scope: str | None) -> None:
    """Change a user's playback grant or report scope (takes effect on their next request)."""
    from dimnb.directory import set_grants

    stores = _open(data_dir)
    set_grants(stores.state, login, playback=playback, report_scope=report_scope)
    actor = access.load_actor(stores.state, login)
    click.echo(f"{login}: report scope {actor.report_scope}, playback {actor.playback}")


# ------------------------------------------------------------------------------------------ loading


@main.group()
def load() -> None:
    """Load call records (and link recordings) from a phone system."""


@load.command("3cx")
@data_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--columns", help="Legacy CDR column order, 3CX field names comma-separated (default: the usual 27).")
@click.option("--recordings", type=click.Path(exists=True, file_okay=False),
              help="3CX recordings folder (default: Recordings/ next to each file).")
@click.option("--queues", default="", help="Comma-separated queue extensions (legacy CDRs cannot tell them apart).")
@progress_option
def load_3cx_command(data_dir: str, paths: tuple[str, ...], columns: str | None, recordings: str | None,
                     queues: str, progress: bool) -> None:
    """Load 3CX CDRs: legacy CSV, cdr-*.log per-call files, or a v20 cdroutput/cdrrecordings export."""
    from dimnb.ingest.threecx import load_3cx

    stores = _open(data_dir)
    summary = load_3cx(stores, paths, columns=columns, recordings=Path(recordings) if recordings else None,
                       queues=[q.strip() for q in queues.split(",") if q.strip()], progress=progress)
    print_load_summary(summary)


@main.command()
@data_option
@click.option("--limit", default=50, show_default=True, help="How many rows to show (newest loads first).")
def quarantine(data_dir: str, limit: int) -> None:
    """Rows that could not be loaded, with file, line and reason."""
    stores = _open(data_dir)
    rows = stores.calls.query(
        "SELECT file, line, reason FROM quarantine ORDER BY load_id DESC, file, line LIMIT $n", {"n": limit}
    )
    total = stores.calls.query("SELECT count(*) FROM quarantine")[0][0]
    for file, line, reason in rows:
        click.echo(f"{file}:{line}: {reason}")
    click.echo(f"{total} quarantined rows in all")


# ------------------------------------------------------------------------------------------ calls


@main.command()
@data_option
@click.argument("call_id", type=int)
@click.option("--as", "login", required=True, help="Whose scope to apply (login).")
def why(data_dir: str, call_id: int, login: str) -> None:
    """Which rule lets a user see and play a call ("not permitted" also for a call that does not exist)."""
    from dimnb.workbench import Workbench

    answer = Workbench(_open(data_dir), login).why(call_id)
    click.echo(f"view: {answer['view'] or 'not permitted'}")
    click.echo(f"play: {answer['play'] or 'not permitted'}")


# ------------------------------------------------------------------------------------------ topic commands
# Each topic's commands live in dimnb/commands/<topic>.py and are registered here, one line each.
from dimnb.commands.archive import archive  # noqa: E402
from dimnb.commands.audit import audit  # noqa: E402
from dimnb.commands.calls import calls  # noqa: E402
from dimnb.commands.demo import demo  # noqa: E402
from dimnb.commands.export import export  # noqa: E402
from dimnb.commands.filters import filters  # noqa: E402
from dimnb.commands.listen import listen  # noqa: E402
from dimnb.commands.pbx import asterisk_command, freeswitch_command  # noqa: E402
from dimnb.commands.serve import serve  # noqa: E402
from dimnb.commands.session import session  # noqa: E402

for _command in (archive, audit, demo, serve, session):
    main.add_command(_command)
main.add_command(calls)
main.add_command(filters)
main.add_command(export)
main.add_command(listen)
from dimnb.commands.report import report  # noqa: E402

main.add_command(report)
load.add_command(asterisk_command)
load.add_command(freeswitch_command)


if __name__ == "__main__":
    main()
