"""Dashboard kernels know their user from the server, and only their owner may talk to them.

The dashboard handler authenticates the request, then puts the login in a
context variable while Voilà starts the kernel; ``DimnbKernelManager`` reads
it and sets ``DIMNB_USER`` in the kernel's environment. The user never comes
from a URL, a header, a cookie the page sets or a widget value, and a kernel
started without an authenticated user is refused.
"""

from __future__ import annotations

import contextvars
import os
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web

from dimnb.datadir import DATA_ENV
from dimnb.workbench import USER_ENV

REQUEST_LOGIN: contextvars.ContextVar[str | None] = contextvars.ContextVar("dimnb_request_login", default=None)

AUDIO_BASE_ENV = "DIMNB_AUDIO_BASE"
LOGOUT_ENV = "DIMNB_LOGOUT_URL"
BASE_URL_ENV = "DIMNB_BASE_URL"
SERVER_ENV = "DIMNB_SERVER"
# What the server's own environment must never hand to a kernel.
_NEVER_INHERITED = (USER_ENV, "QUERY_STRING")


class DimnbKernelManager(AsyncMappingKernelManager):
    """Starts dashboard kernels with the authenticated user, and remembers who owns each one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owners: dict[str, str] = {}

    async def start_kernel(self, *, kernel_id: str | None = None, path: str | None = None, **kwargs: Any) -> str:
        login = REQUEST_LOGIN.get()
        if not login:
            raise web.HTTPError(403, "no authenticated user to start a kernel for")
        base_url = self.parent.base_url if self.parent is not None else "/"
        env = {k: v for k, v in dict(kwargs.pop("env", None) or os.environ).items() if k not in _NEVER_INHERITED}
        env.update({
            USER_ENV: login,
            DATA_ENV: os.environ[DATA_ENV],
            AUDIO_BASE_ENV: base_url + "dimnb/audio/",
            LOGOUT_ENV: base_url + "logout",
            BASE_URL_ENV: base_url,
            SERVER_ENV: "voila",
        })
        kernel_id = await super().start_kernel(kernel_id=kernel_id, path=path, env=env, **kwargs)
        self.owners[kernel_id] = login
        self.log.info("dimnb: kernel %s started for %s", kernel_id, login)
        return kernel_id

    async def shutdown_kernel(self, kernel_id: str, now: bool = False, restart: bool = False) -> None:
        await super().shutdown_kernel(kernel_id, now=now, restart=restart)
        self.owners.pop(kernel_id, None)

    def owner(self, kernel_id: str | None) -> str | None:
        return self.owners.get(kernel_id) if kernel_id else None
