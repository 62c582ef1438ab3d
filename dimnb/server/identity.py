"""Who is asking: logins checked against the state store, and a signed cookie that names the user.

The cookie carries only the login, when it was issued and a fingerprint of
the password's last change; it is signed with the server's persistent
secret. Every request re-reads the user from the state store, so a
deactivated user or a changed password ends the session at once, and grants
are never taken from the cookie (dimnb.access reads them per request).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from typing import Any
from urllib.parse import urlparse

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from traitlets import default

from dimnb.passwords import verify_password
from dimnb.server import pages
from dimnb.server.context import server_stores

COOKIE_NAME = "dimnb-session"
SESSION_HOURS = 12
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 300


class _Throttle:
    """At most MAX_FAILURES failed logins per username (and per client) in a sliding window."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                recent = self._failures[key]
                while recent and now - recent[0] > FAILURE_WINDOW_SECONDS:
                    recent.popleft()
                if len(recent) >= MAX_FAILURES:
                    return True
        return False

    def fail(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures[key].append(time.monotonic())

    def clear(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


THROTTLE = _Throttle()


def _active_user(login: str) -> Any:
    return server_stores().state.connection().execute(
        "SELECT login, name, password_hash, password_changed_at FROM users WHERE login = ? AND active = 1", (login,)
    ).fetchone()


class DimnbIdentityProvider(IdentityProvider):
    """Username + password from the state store; no tokens, no anonymous users."""

    cookie_name = COOKIE_NAME

    @default("token")
    def _token_default(self) -> str:
        return ""

    @default("need_token")
    def _need_token_default(self) -> bool:
        return False

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return True

    def get_handlers(self) -> list[tuple[str, object]]:
        # Voilà passes its own login handler class; ours has the username field and our page.
        return [(r"/login", DimnbLoginHandler), (r"/logout", DimnbLogoutHandler)]

    @default("cookie_options")
    def _cookie_options_default(self) -> dict[str, Any]:
        return {"httponly": True, "samesite": "Strict"}

    @default("get_secure_cookie_kwargs")
    def _secure_cookie_kwargs_default(self) -> dict[str, Any]:
        return {"max_age_days": SESSION_HOURS / 24}

    def get_user_token(self, handler: web.RequestHandler) -> None:  # type: ignore[override]
        return None  # no token logins: only the login form

    def user_to_cookie(self, user: User) -> str:
        row = _active_user(user.username)
        return json.dumps({"u": user.username, "t": int(time.time()), "p": row["password_changed_at"] if row else ""})

    def user_from_cookie(self, cookie_value: str) -> User | None:
        try:
            data = json.loads(cookie_value)
            login, issued, fingerprint = str(data["u"]), int(data["t"]), data.get("p")
        except (ValueError, KeyError, TypeError):
            return None
        if time.time() - issued > SESSION_HOURS * 3600:
            return None
        row = _active_user(login)
        if row is None or (row["password_changed_at"] or "") != (fingerprint or ""):
            return None
        return User(username=row["login"], name=row["name"], display_name=row["name"])

    def process_login_form(self, handler: web.RequestHandler) -> User | None:
        login = handler.get_argument("username", default="").strip()
        password = handler.get_argument("password", default="")
        client = f"ip:{handler.request.remote_ip}"
        if not login or len(login) > 64 or len(password) > 1024 or THROTTLE.blocked(f"user:{login}", client):
            verify_password("x", None)  # same cost either way
            THROTTLE.fail(f"user:{login}", client)
            return None
        row = _active_user(login)
        if not verify_password(password, row["password_hash"] if row else None):
            THROTTLE.fail(f"user:{login}", client)
            self.log.warning("dimnb: failed login for %r from %s", login, handler.request.remote_ip)
            return None
        THROTTLE.clear(f"user:{login}")
        return User(username=row["login"], name=row["name"], display_name=row["name"])


def _safe_next(handler: JupyterHandler, url: str) -> str:
    """Only local paths under the server's base URL; anything else goes to the dashboard."""
    parsed = urlparse(url.replace("\\", "/"))
    if parsed.scheme or parsed.netloc or not parsed.path.startswith(handler.base_url) or url.startswith("//"):
        return handler.base_url
    return url


class DimnbLoginHandler(LoginFormHandler):
    def _render(self, message: dict[str, str] | None = None) -> None:
        next_url = _safe_next(self, self.get_argument("next", default=self.base_url))
        self.write(pages.login_page(
            action=self.request.path, next_url=next_url, xsrf_html=self.xsrf_form_html(),
            error=(message or {}).get("error"), username=self.get_argument("username", default="")[:64],
        ))

    @allow_unauthenticated
    def get(self) -> None:
        if self.current_user:
            self.redirect(_safe_next(self, self.get_argument("next", default=self.base_url)))
        else:
            self._render()

    @allow_unauthenticated
    def post(self) -> None:
        user = self.identity_provider.process_login_form(self)
        if user is None:
            self.set_status(401)
            self._render(message={"error": "Wrong username or password."})
            return
        self.current_user = user
        self.log.info("dimnb: %s signed in from %s", user.username, self.request.remote_ip)
        self.identity_provider.set_login_cookie(self, user)
        self.redirect(_safe_next(self, self.get_argument("next", default=self.base_url)))


class DimnbLogoutHandler(JupyterHandler):
    @allow_unauthenticated
    def get(self) -> None:
        user = self.current_user
        self.identity_provider.clear_login_cookie(self)
        if user:
            self.log.info("dimnb: %s signed out", user.username)
        self.write(pages.logged_out_page(login_url=self.base_url + "login"))
