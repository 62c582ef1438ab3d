"""``dimnb serve``: the dashboards for managers, each signed in with their own account."""

from __future__ import annotations

import os
from pathlib import Path

import click

from dimnb.commands.options import audit_checkpoints_option, audit_key_option, data_option
from dimnb.datadir import resolve_data_dir
from dimnb.errors import NotInitialized
from dimnb.store.statestore import open_state_store


@click.command()
@data_option
@click.option("--ip", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address to listen on (0.0.0.0: every interface; keep 127.0.0.1 behind a proxy on this machine).")
@click.option("--port", default=8866, show_default=True, help="Port to listen on.")
@click.option("--behind-proxy", is_flag=True,
              help="Trust the reverse proxy's X-Forwarded-Proto / X-Forwarded-For / X-Real-Ip headers and send the "
                   "login cookie as Secure (the proxy serves https; see docs/deploy.md).")
@click.option("--notebooks", "notebooks_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder holding dashboard.ipynb and audit.ipynb (default: the ones shipped in the package).")
@click.option("--base-url", default="/", show_default=True, help="URL prefix, e.g. behind a reverse proxy.")
@click.option("--session-idle-minutes", type=click.FloatRange(min=0.01), default=30, show_default=True,
              help="Sign a user out after this long without a request.")
@click.option("--session-hours", type=click.FloatRange(min=0.001), default=12, show_default=True,
              help="Sign a user out this long after signing in, active or not (the cookie's lifetime too).")
@audit_key_option
@audit_checkpoints_option
@click.option("--kernels-per-user", default=3, show_default=True, type=click.IntRange(min=1),
              help="Open dashboards (kernels) one user may have at once; past it they get a page asking to "
                   "close one.")
@click.option("--max-kernels", type=click.IntRange(min=1),
              help="Dashboard kernels in all, pooled ones included (default: what fits in 70% of RAM at "
                   "130 MB each); past it newcomers get a 'server busy' page.")
@click.option("--kernel-pool", type=click.IntRange(min=0), envvar="DIMNB_KERNEL_POOL", show_envvar=True,
              help="Kernels started ahead, with the dashboard's imports done, so a login does not wait for "
                   "Python to start (0: none; default: a fifth of --max-kernels, at most 10 per core).")
@click.option("--page-gone-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds after its page went away (no websocket) that a dashboard's kernel is shut down.")
@click.option("--idle-timeout", default=1800.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds without any activity after which a dashboard's kernel is shut down.")
def serve(data_dir: str, ip: str, port: int, behind_proxy: bool, notebooks_dir: str | None, base_url: str,
          session_idle_minutes: float, session_hours: float, audit_key: str | None,
          audit_checkpoints: str | None, kernels_per_user: int, max_kernels: int | None, kernel_pool: int | None,
          page_gone_timeout: float, idle_timeout: float) -> None:
    """Serve the dashboards (login required; each user sees only their scope)."""
    from dimnb import audit_checkpoints as checkpoints
    from dimnb.server import identity
    from dimnb.server.app import serve as run
    from dimnb.server.kernel_limits import KernelLimits

    identity.configure_sessions(idle_seconds=session_idle_minutes * 60, lifetime_seconds=session_hours * 3600)
    # The server and its kernels append audit events: they sign checkpoints with this key, into this file.
    if audit_key:
        os.environ[checkpoints.KEY_ENV] = str(Path(audit_key).expanduser().resolve())
    if audit_checkpoints:
        os.environ[checkpoints.CHECKPOINTS_ENV] = str(Path(audit_checkpoints).expanduser().resolve())

    data = resolve_data_dir(data_dir)
    if not open_state_store(data.state_db).exists():
        raise NotInitialized(f"{data.root} is not a dimnb data directory (try `make demo` or `dimnb init`)")
    if not base_url.startswith("/") or not base_url.endswith("/"):
        raise click.BadParameter("must start and end with /", param_hint="--base-url")
    host = f"[{ip}]" if ":" in ip else ip
    proxied = " behind a proxy (trusting X-Forwarded-*)" if behind_proxy else ""
    click.echo(f"dimnb dashboards on http://{host}:{port}{base_url}{proxied} (data: {data.root}); Ctrl-C stops")
    run(data_dir=str(data.root), ip=ip, port=port, notebooks_dir=Path(notebooks_dir) if notebooks_dir else None,
        base_url=base_url, behind_proxy=behind_proxy,
        limits=KernelLimits(per_user=kernels_per_user, max_kernels=max_kernels, pool_size=kernel_pool,
                            page_gone_seconds=page_gone_timeout, idle_seconds=idle_timeout))
