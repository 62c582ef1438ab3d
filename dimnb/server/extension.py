"""The audio handler as a jupyter_server extension, so analysts' players stream in JupyterLab too.

JupyterLab is one analyst's own server (anyone who can use it can run code,
so it is for people trusted with the data files). Its dimnb login comes from
``$DIMNB_USER`` (or ``c.ServerApp.tornado_settings = {"dimnb_login": ...}``)
and its data directory from ``$DIMNB_DATA``. Without a login the handler is
not registered and the player sends audio through the widget instead.
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_server.utils import url_path_join

from dimnb.datadir import DATA_ENV, resolve_data_dir
from dimnb.server.audio import ROUTE, AudioHandler
from dimnb.server.kernels import AUDIO_BASE_ENV
from dimnb.store.statestore import open_state_store
from dimnb.workbench import USER_ENV


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "dimnb.server.extension"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    settings = serverapp.web_app.settings
    login = settings.get("dimnb_login") or os.environ.get(USER_ENV)
    data = resolve_data_dir(settings.get("dimnb_data") or os.environ.get(DATA_ENV))
    if not login or not open_state_store(data.state_db).exists():
        serverapp.log.info("dimnb: no $DIMNB_USER or no data directory at %s; audio streams through the widget",
                           data.root)
        return
    settings["dimnb_login"] = login
    settings["dimnb_data"] = str(data.root)
    base_url = settings.get("base_url", "/")
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base_url, ROUTE), AudioHandler)])
    # Kernels started from now on inherit this and hand the player authenticated URLs.
    os.environ[AUDIO_BASE_ENV] = url_path_join(base_url, "dimnb/audio/")
    serverapp.log.info("dimnb: streaming recordings at %sdimnb/audio/ for %s", base_url, login)
