"""Only a kernel's owner may reach it (websocket, REST, shutdown); nobody may list or create kernels."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import User
from tornado import web


def kernel_id_of(handler: web.RequestHandler) -> str | None:
    kernel_id = getattr(handler, "kernel_id", None) or handler.path_kwargs.get("kernel_id")
    if not kernel_id and handler.path_args:
        kernel_id = handler.path_args[0]
    return kernel_id if isinstance(kernel_id, str) else None


class DimnbAuthorizer(Authorizer):
    def is_authorized(self, handler: web.RequestHandler, user: User, action: str, resource: str) -> bool:
        if user is None:
            return False
        if resource == "kernels":
            manager: Any = handler.settings.get("kernel_manager")
            owner = manager.owner(kernel_id_of(handler)) if hasattr(manager, "owner") else None
            return owner is not None and owner == user.username
        # Dashboards use kernels only; every other Jupyter API stays closed.
        return False
