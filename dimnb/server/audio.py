"""``/dimnb/audio/<recording_id>``: recordings over HTTP, with Range, for the authenticated user only.

Every request (each Range chunk too, GET and HEAD alike) goes through the one
audio gate, ``audit.authorize_playback``: it parses the id (ASCII digits
only), re-checks ``access.can_play`` for the user the server authenticated
and writes the audit event: a play once per play token (``?play=<uuid>``)
until that token has served a whole file or grown old, a download for any
truthy ``?download=`` (``1``, ``on``, ``yes``...), a ``denied`` event for a
refusal. A recording the user may not play and one that does not exist get
the same 404, for HEAD as for GET. The URL names a recording id, never a
path. Tornado's static file machinery does Range (206/416), HEAD, ETag and
conditional requests.
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from dimnb import access, audit, sessions
from dimnb.audiofiles import mime_type
from dimnb.errors import NotFound
from dimnb.server import pages
from dimnb.server.context import server_stores

ROUTE = r"/dimnb/audio/([^/]+)"
PLAY_ID_MAX = 64


def login_of(handler: JupyterHandler) -> str | None:
    """The dimnb login for this request: the dashboard's user, or the analyst's configured login in JupyterLab."""
    user = handler.current_user
    if user is None:
        return None
    mapped = handler.settings.get("dimnb_login")  # JupyterLab: one analyst per server
    return mapped or getattr(user, "username", None)


class AudioHandler(JupyterHandler, web.StaticFileHandler):
    """Streams one recording the current user may play."""

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        web.StaticFileHandler.initialize(self, path="/")
        self._file: str | None = None
        self._decision: access.PlayDecision | None = None
        self._login: str | None = None
        self._play_id: str | None = None
        self._served = 0

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # The same plain body for "not permitted" and "not there"; never a traceback.
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.clear_header("Content-Disposition")
        self.finish(pages.not_found_page() if status_code == 404 else f"<p>Error {status_code}</p>")

    def _not_found(self) -> web.HTTPError:
        return web.HTTPError(404)

    def _check(self, recording_id: str) -> None:
        login = login_of(self)
        if login is None:
            raise web.HTTPError(403)
        stores = server_stores(self.settings.get("dimnb_data"))
        download = audit.download_flag(self.get_argument("download", None))
        play_id = self.get_argument("play", "")[:PLAY_ID_MAX] or None
        try:
            decision = audit.authorize_playback(
                stores, login, recording_id, download=download, play_id=play_id, method=self.request.method or "GET",
                client=self.request.remote_ip, user_agent=self.request.headers.get("User-Agent"),
            )
        except NotFound:
            raise self._not_found() from None
        path = sessions.recording_path(stores.data, decision)
        if not os.path.isfile(path):
            self.log.warning("dimnb: recording %s is available but its file %s is missing", decision.recording_id, path)
            raise self._not_found()
        self._decision, self._file = decision, str(path)
        self._login, self._play_id = login, None if download else play_id
        if download:
            name = sessions.download_name_for(stores.calls, access.load_actor(stores.state, login),
                                              decision.recording_id) or os.path.basename(path)
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.set_header("Cache-Control", "private, no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    @web.authenticated
    async def get(self, recording_id: str, include_body: bool = True) -> None:  # type: ignore[override]
        self._check(recording_id)
        try:
            await web.StaticFileHandler.get(self, recording_id, include_body=include_body)
        finally:
            if self._served and self._decision is not None and self._login is not None:
                audit.count_served(server_stores(self.settings.get("dimnb_data")), self._login, self._decision,
                                   self._play_id, self._served)

    @web.authenticated
    async def head(self, recording_id: str) -> None:  # type: ignore[override]
        await self.get(recording_id, include_body=False)

    def write(self, chunk: Any) -> None:  # type: ignore[override]
        if self._file is not None and isinstance(chunk, bytes):
            self._served += len(chunk)  # audio bytes this request sent under its play token
        super().write(chunk)

    # StaticFileHandler asks where the file is: always the one the access check resolved.
    def get_absolute_path(self, root: str, path: str) -> str:  # type: ignore[override]
        if self._file is None:
            raise self._not_found()
        return self._file

    def validate_absolute_path(self, root: str, absolute_path: str) -> str:  # type: ignore[override]
        if self._file is None or absolute_path != self._file:
            raise self._not_found()
        return absolute_path

    def get_content_type(self) -> str:  # type: ignore[override]
        return mime_type(self._decision.format if self._decision else None)

    def compute_etag(self) -> str | None:  # type: ignore[override]
        if self._decision is not None and self._decision.checksum:
            return f'"{self._decision.checksum[:32]}"'
        return super().compute_etag()
