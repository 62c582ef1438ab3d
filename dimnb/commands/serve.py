"""``dimnb serve``: the dashboards for managers, each signed in with their own account."""

from __future__ import annotations

from pathlib import Path

import click

from dimnb.commands.options import data_option
from dimnb.datadir import resolve_data_dir
from dimnb.errors import NotInitialized


@click.command()
@data_option
@click.option("--port", default=8866, show_default=True, help="Port on 127.0.0.1.")
@click.option("--notebooks", "notebooks_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder holding dashboard.ipynb and audit.ipynb (default: the checkout's notebooks/).")
@click.option("--base-url", default="/", show_default=True, help="URL prefix, e.g. behind a reverse proxy.")
@click.option("--kernels-per-user", default=3, show_default=True, type=click.IntRange(min=1),
              help="Open dashboards (kernels) one user may have at once; past it they get a page asking to "
                   "close one.")
@click.option("--max-kernels", type=click.IntRange(min=1),
              help="Dashboard kernels in all, pooled ones included (default: what fits in 70% of RAM at "
                   "130 MB each); past it newcomers get a 'server busy' page.")
@click.option("--kernel-pool", default=4, show_default=True, type=click.IntRange(min=0),
              help="Kernels started ahead, with the dashboard's imports done, so a login does not wait for "
                   "Python to start (0: none).")
@click.option("--page-gone-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds after its page went away (no websocket) that a dashboard's kernel is shut down.")
@click.option("--idle-timeout", default=1800.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds without any activity after which a dashboard's kernel is shut down.")
def serve(data_dir: str, port: int, notebooks_dir: str | None, base_url: str, kernels_per_user: int,
          max_kernels: int | None, kernel_pool: int, page_gone_timeout: float, idle_timeout: float) -> None:
    """Serve the dashboards on 127.0.0.1 (login required; each user sees only their scope)."""
    from dimnb.server.app import serve as run
    from dimnb.server.kernel_limits import KernelLimits

    data = resolve_data_dir(data_dir)
    if not data.state_db.exists():
        raise NotInitialized(f"{data.root} is not a dimnb data directory (try `make demo` or `dimnb init`)")
    if not base_url.startswith("/") or not base_url.endswith("/"):
        raise click.BadParameter("must start and end with /", param_hint="--base-url")
    click.echo(f"dimnb dashboards on http://127.0.0.1:{port}{base_url} (data: {data.root}); Ctrl-C stops")
    run(data_dir=str(data.root), port=port, notebooks_dir=Path(notebooks_dir) if notebooks_dir else None,
        base_url=base_url, limits=KernelLimits(per_user=kernels_per_user, max_kernels=max_kernels,
                                               pool_size=kernel_pool, page_gone_seconds=page_gone_timeout,
                                               idle_seconds=idle_timeout))
