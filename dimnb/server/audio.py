"""``/dimnb/audio/<recording_id>``: recordings over HTTP, with Range, for the authenticated user only.

Every request (each Range chunk too) re-checks ``access.can_play`` for the
user the server authenticated, through ``audit.authorize_playback``, which
also writes the audit event: once per play token (``?play=<uuid>``), once
per download (``?download=1``), and a ``denied`` event for a refusal. A
recording the user may not play and one that does not exist get the same
404. The URL names a recording id, never a path. Tornado's static file
machinery does Range (206/416), HEAD, ETag and conditional requests.
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

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # The same plain body for "not permitted" and "not there"; never a traceback.
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.clear_header("Content-Disposition")
        self.finish(pages.not_found_page() if status_code == 404 else f"<p>Error {status_code}</p>")

    def _not_found(self) -> web.HTTPError:
        return web.HTTPError(404)

    def _check(self, recording_id: str, *, audit_it: bool) -> None:
        login = login_of(self)
        if login is None:
            raise web.HTTPError(403)
        stores = server_stores(self.settings.get("dimnb_data"))
        download = self.get_argument("download", "") in ("1", "true", "yes")
        play_id = self.get_argument("play", "")[:PLAY_ID_MAX] or None
        if audit_it:
            try:
                decision = audit.authorize_playback(
                    stores, login, recording_id, download=download, play_id=play_id,
                    client=self.request.remote_ip, user_agent=self.request.headers.get("User-Agent"),
                )
            except NotFound:
                raise self._not_found() from None
        else:
            rid = int(recording_id) if recording_id.isdigit() else None
            try:
                actor = access.load_actor(stores.state, login)
            except Exception:
                raise self._not_found() from None
            decision = access.can_play(stores.calls, actor, rid) if rid is not None else None
            if decision is None:
                raise self._not_found()
        path = sessions.recording_path(stores.data, decision)
        if not os.path.isfile(path):
            self.log.warning("dimnb: recording %s is available but its file %s is missing", decision.recording_id, path)
            raise self._not_found()
        self._decision, self._file = decision, str(path)
        if download:
            name = sessions.download_name_for(stores.calls, access.load_actor(stores.state, login),
                                              decision.recording_id) or os.path.basename(path)
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.set_header("Cache-Control", "private, no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    @web.authenticated
    async def get(self, recording_id: str, include_body: bool = True) -> None:  # type: ignore[override]
        self._check(recording_id, audit_it=include_body)
        await web.StaticFileHandler.get(self, recording_id, include_body=include_body)

    @web.authenticated
    async def head(self, recording_id: str) -> None:  # type: ignore[override]
        await self.get(recording_id, include_body=False)

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
