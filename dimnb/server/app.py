"""``dimnb serve``: Voilà, made multi-user and locked down.

Standalone Voilà has no login, takes no ``ServerApp`` config and lets any
visitor start kernels. This subclass adds, and routes in one table:

- the login/logout pages and an identity provider backed by the state store
  (``identity.py``), with a cookie secret kept in the data directory;
- dashboards (``/dashboard``; ``/audit`` for auditors only, 404 for anyone
  else) whose kernels are handed to the authenticated user by the server
  (``kernels.py``: a pool of pre-started kernels, caps per user and in all
  with a plain refusal page past them, and a reaper for kernels whose page
  is gone or that sat idle), with sources stripped, tracebacks hidden, and
  not Voilà's preheated kernels (they would run the notebook before anyone
  is identified);
- an authorizer that lets only a kernel's owner reach it (``authorizer.py``);
- the audio handler (``audio.py``), before Voilà's catch-all.

Voilà's directory listing, contents API and file handler are not served, so
nothing in the notebook folder is reachable except the two dashboards.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop
from voila.app import Voila
from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler
from voila.tornado.contentshandler import VoilaContentsHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler
from voila.tornado.treehandler import TornadoVoilaTreeHandler
from voila.static_file_handler import AllowListFileHandler

from dimnb import audit
from dimnb.datadir import DATA_ENV
from dimnb.notebook_runner import PACKAGED_NOTEBOOKS
from dimnb.server import pages, template_cache
from dimnb.server.audio import ROUTE as AUDIO_ROUTE
from dimnb.server.audio import AudioHandler
from dimnb.server.authorizer import DimnbAuthorizer, kernel_id_of
from dimnb.server.context import cookie_secret, server_stores
from dimnb.server.identity import DimnbIdentityProvider, session_token
from dimnb.server.busy_page import refusal_page, status_of
from dimnb.server.kernel_limits import KernelCapReached, KernelLimits
from dimnb.server.kernels import REQUEST, DimnbKernelManager, PageRequest
from dimnb.workbench import USER_ENV

DASHBOARD = "dashboard.ipynb"
AUDIT = "audit.ipynb"


def default_notebooks_dir() -> Path:
    """The dashboards shipped inside the package (``dimnb/notebooks/``), in a checkout or an installed wheel."""
    return PACKAGED_NOTEBOOKS


class DashboardHandler(TornadoVoilaHandler):
    """Renders one dashboard notebook in a kernel that belongs to the signed-in user."""

    def allowed_for(self, login: str) -> bool:
        return True

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(pages.not_found_page() if status_code == 404 else f"<p>Error {status_code}</p>")

    @web.authenticated
    async def get(self, path: str | None = None) -> None:  # type: ignore[override]
        login = self.current_user.username
        if not self.allowed_for(login):
            raise web.HTTPError(404)
        request = PageRequest(login, session=session_token(self))
        token = REQUEST.set(request)
        try:
            await super().get(path)
        except KernelCapReached as refusal:
            self.log.info("dimnb: no dashboard for %s: %s", login, refusal)
            if self._headers_written:
                raise
            self.clear()
            self.set_status(status_of(refusal))
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Cache-Control", "no-store")
            self.set_header("Retry-After", "60")
            self.finish(refusal_page(refusal, reload_url=self.request.path))
        finally:
            REQUEST.reset(token)
            for kernel_id in request.kernel_ids:
                self.kernel_manager.page_rendered(kernel_id)


class AuditDashboardHandler(DashboardHandler):
    """The audit reports: auditors only; for anyone else the page does not exist."""

    def allowed_for(self, login: str) -> bool:
        return audit.may_view_audit(server_stores().state, login)


class OwnedShutdownKernelHandler(VoilaShutdownKernelHandler):
    """Voilà's shutdown-on-unload, limited to the kernel's owner."""

    @web.authenticated
    async def post(self, kernel_id: str) -> None:  # type: ignore[override]
        manager: Any = self.kernel_manager
        if manager.owner(kernel_id) != self.current_user.username:
            raise web.HTTPError(404)
        await super().post(kernel_id)


class SessionKernelWebsocketHandler(VoilaKernelWebsocketHandler):
    """Voilà's kernel websocket, known to the kernel manager so it can be closed when its session ends."""

    async def open(self, kernel_id: str) -> None:  # type: ignore[override]
        self.kernel_manager.websocket_opened(kernel_id, self)
        await super().open(kernel_id)

    def on_close(self) -> None:
        self.kernel_manager.websocket_closed(getattr(self, "kernel_id", ""), self)
        if self.connection is not None:  # closed by the server before it finished opening
            super().on_close()


class RootHandler(JupyterHandler):
    @web.authenticated
    def get(self) -> None:
        self.redirect(url_path_join(self.base_url, "dashboard"))


class NotFoundHandler(JupyterHandler):
    def prepare(self) -> None:  # type: ignore[override]
        self.set_status(404)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(pages.not_found_page())


_DROPPED = (TornadoVoilaTreeHandler, VoilaContentsHandler, AllowListFileHandler, TornadoVoilaHandler,
            VoilaShutdownKernelHandler, VoilaKernelWebsocketHandler)
KERNEL_ID = r"(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)"


class DimnbVoila(Voila):
    name = "dimnb-serve"
    description = "dimnb dashboards: per-user Voilà with scoped call lists, sessions and audio"

    def __init__(self, *, data_dir: str, notebooks_dir: Path | None = None, behind_proxy: bool = False,
                 limits: KernelLimits | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dimnb_data = data_dir
        self.dimnb_limits = limits or KernelLimits()
        self.dimnb_notebooks = Path(notebooks_dir or default_notebooks_dir()).resolve()
        self.dimnb_behind_proxy = behind_proxy

    def initialize(self, argv: list[str] | None = None) -> None:
        os.environ[DATA_ENV] = self.dimnb_data
        os.environ.pop(USER_ENV, None)  # the server itself is nobody; kernels get their user per request
        stores = server_stores(self.dimnb_data)
        audit.start_hourly_checkpoints(stores.state)  # and every few events, from whoever appends them
        template_cache.install()
        # Kernel channels as unix sockets in Voilà's private (0700) connection folder, not TCP ports.
        self.config.KernelManager.transport = "ipc"
        self.config.DimnbKernelManager.limits = self.dimnb_limits
        if self.dimnb_behind_proxy:
            # TLS ends at the proxy: the login cookie must still only travel over https.
            self.config.IdentityProvider.secure_cookie = True
        super().initialize([str(self.dimnb_notebooks)])
        self.open_browser = False
        self.cookie_secret = cookie_secret(stores)
        self.identity_provider_class = DimnbIdentityProvider
        self.authorizer_class = DimnbAuthorizer
        conf = self.voila_configuration
        conf.multi_kernel_manager_class = DimnbKernelManager
        conf.preheat_kernel = False
        conf.strip_sources = True
        conf.show_tracebacks = False
        conf.allow_template_override = "NO"
        conf.allow_theme_override = "NO"
        conf.file_allowlist = []
        for notebook in (DASHBOARD, AUDIT):
            if not (self.dimnb_notebooks / notebook).is_file():
                raise FileNotFoundError(f"{self.dimnb_notebooks / notebook} is missing")
        self.tornado_settings = {**self.tornado_settings, "dimnb_data": self.dimnb_data, "serve_traceback": False,
                                 "xsrf_cookies": True}
        if self.dimnb_behind_proxy:
            self.tornado_settings["xsrf_cookie_kwargs"] = {"secure": True}

    def listen(self) -> None:
        # Runs once the kernel manager exists and just before the event loop starts (Voilà's start()).
        IOLoop.current().add_callback(self.kernel_manager.start_reclaiming)
        if self.dimnb_behind_proxy:
            # Voilà's listen() calls app.listen(port, ip) itself; xheaders makes tornado take the scheme and the
            # client address from the proxy's X-Forwarded-Proto / X-Real-Ip / X-Forwarded-For. Only behind a
            # proxy: anywhere else a client could claim any address.
            plain_listen = self.app.listen
            self.app.listen = functools.partial(plain_listen, xheaders=True)  # type: ignore[method-assign]
        super().listen()

    def init_handlers(self) -> list[Any]:
        base = self.server_url
        common = {"template_paths": self.template_paths, "config": self.config,
                  "voila_configuration": self.voila_configuration}
        ours = [
            (url_path_join(base, AUDIO_ROUTE), AudioHandler),
            (url_path_join(base, r"/dashboard/?"), DashboardHandler, {**common, "notebook_path": DASHBOARD}),
            (url_path_join(base, r"/audit/?"), AuditDashboardHandler, {**common, "notebook_path": AUDIT}),
            (url_path_join(base, r"/voila/api/shutdown/(.*)"), OwnedShutdownKernelHandler),
            (url_path_join(base, rf"/api/kernels/{KERNEL_ID}/channels"), SessionKernelWebsocketHandler),
            (base, RootHandler),
        ]
        kept = [h for h in super().init_handlers() if not (len(h) > 1 and h[1] in _DROPPED)]
        return ours + kept + [(url_path_join(base, r"/(.*)"), NotFoundHandler)]


def serve(*, data_dir: str, port: int, ip: str = "127.0.0.1", notebooks_dir: Path | None = None,
          base_url: str = "/", behind_proxy: bool = False, limits: KernelLimits | None = None) -> None:
    """Run the dashboards on ``ip``:``port`` until interrupted."""
    app = DimnbVoila(data_dir=data_dir, notebooks_dir=notebooks_dir, behind_proxy=behind_proxy, limits=limits,
                     port=port, ip=ip,
                     base_url=base_url, port_retries=0)
    app.initialize()
    app.start()


__all__ = ["DimnbVoila", "serve", "kernel_id_of"]
