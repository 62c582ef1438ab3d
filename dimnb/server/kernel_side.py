"""What the server runs inside a dashboard kernel, over the kernel's own shell channel (never from a page).

- ``warm()``: a pooled kernel imports what the dashboard needs, opens the
  data directory's stores and reads the zone list before anyone logs in, so
  a login waits neither for a Python start nor for imports.
- ``stores()``: the kernel's stores, opened once (the dashboards use them).
- ``adopt(login)``: after the server has authenticated a request, it hands
  the kernel to that user: ``$DIMNB_USER`` is set once, here, before the
  dashboard notebook runs. A kernel is adopted at most once.

The server reaches these through its own kernel client on the kernel's ipc
sockets (in Voilà's private connection folder); a browser only reaches a
kernel through the websocket, which the authorizer opens to the kernel's
owner alone, and Voilà passes no ``execute_request`` from it.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from dimnb.datadir import DATA_ENV

if TYPE_CHECKING:
    from dimnb.store.stores import Stores

# dimnb.workbench.USER_ENV, spelt out: this module is imported before the kernel warms up.
USER_ENV = "DIMNB_USER"

# What the dashboards import (see dimnb/notebooks/dashboard.ipynb and audit.ipynb's first cell).
DASHBOARD_MODULES = ("dimnb.widgets.app", "dimnb.audit", "dimnb.store.stores", "dimnb.workbench")


_stores: Stores | None = None


def stores() -> Stores:
    """The stores of ``$DIMNB_DATA``, opened once per kernel (the same for every dashboard cell)."""
    global _stores
    if _stores is None:
        from dimnb.store.stores import Stores

        _stores = Stores.open(os.environ[DATA_ENV])
    return _stores


def warm() -> None:
    for name in DASHBOARD_MODULES:
        importlib.import_module(name)
    from dimnb.widgets.filter_bar import zone_names

    zone_names()
    if os.environ.get(DATA_ENV):
        stores()


def adopt(login: str) -> None:
    if os.environ.get(USER_ENV):
        raise RuntimeError("this kernel already belongs to someone")
    if not isinstance(login, str) or not login or not login.isprintable():
        raise ValueError("adopt() takes a login")
    os.environ[USER_ENV] = login


def adopt_statement(login: str) -> str:
    """The statement the server executes to hand a kernel to ``login`` (a Python literal, never spliced text)."""
    if not isinstance(login, str) or not login or not login.isprintable():
        raise ValueError("adopt_statement() takes a login")
    return f"__import__('dimnb.server.kernel_side', fromlist=['adopt']).adopt({login!r})"


WARM_STATEMENT = "__import__('dimnb.server.kernel_side', fromlist=['warm']).warm()"
