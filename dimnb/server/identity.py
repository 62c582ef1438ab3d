"""Who is asking: logins checked against the state store, and a signed cookie that names a server-side session.

The cookie carries only a session token (signed with the server's persistent
secret, valid no longer than the session's lifetime). The session itself
lives in the state store (``login_sessions``): signing out closes it at once,
so a copied cookie stops working; it also ends after ``idle_seconds`` without
a request, ``lifetime_seconds`` after sign-in, when the user is deactivated
or the password changes. Grants are never taken from the cookie
(dimnb.access reads them per request).

Sign-out is a POST carrying the XSRF token (a GET shows a button, so a link
on another site cannot sign anyone out). Failed sign-ins lock the account
with growing delays and slow down a noisy address (``lockout``).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from traitlets import default

from dimnb.passwords import verify_password
from dimnb.server import login_sessions, pages
from dimnb.server.context import server_stores
from dimnb.server.lockout import LoginGuard, StoredAccounts
from dimnb.store import directory_repo

COOKIE_NAME = "dimnb-session"
WRONG = "Wrong username or password."

POLICY = login_sessions.SessionPolicy()
_GUARD: LoginGuard | None = None


def guard() -> LoginGuard:
    """This server's sign-in guard: account locks in the state store (shared by every node), wall-clock times."""
    global _GUARD
    if _GUARD is None:
        _GUARD = LoginGuard(clock=time.time, accounts=StoredAccounts(server_stores().state))
    return _GUARD

# scrypt takes ~50 ms of CPU and 16 MiB per check and releases the GIL: off the event loop, so one sign-in never
# holds up every other request; two at a time bounds the memory a flood of sign-ins can take.
_PASSWORD_CHECKS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dimnb-scrypt")


async def _password_matches(password: str, stored: str | None) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_PASSWORD_CHECKS, verify_password, password, stored)


def configure_sessions(*, idle_seconds: float, lifetime_seconds: float) -> None:
    """Set this server's session limits (``dimnb serve --session-idle-minutes/--session-hours``)."""
    global POLICY
    POLICY = login_sessions.SessionPolicy(idle_seconds=idle_seconds, lifetime_seconds=lifetime_seconds)


def _active_user(login: str) -> Any:
    return directory_repo.active_account(server_stores().state, login)


def session_token(handler: web.RequestHandler) -> str | None:
    """The session token the request's signed cookie carries (None without a valid cookie)."""
    raw = handler.get_secure_cookie(COOKIE_NAME, max_age_days=POLICY.lifetime_seconds / 86400)
    if not raw:
        return None
    try:
        token = json.loads(raw.decode())["s"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return token if isinstance(token, str) else None


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

    def get_user_token(self, handler: web.RequestHandler) -> None:  # type: ignore[override]
        return None  # no token logins: only the login form

    def set_login_cookie(self, handler: web.RequestHandler, user: User) -> None:
        """Open a server-side session and hand the browser a cookie that lives exactly as long."""
        token = login_sessions.open_session(server_stores().state, user.username, client=handler.request.remote_ip,
                                            policy=POLICY)
        options: dict[str, Any] = {**self.cookie_options, "expires_days": POLICY.lifetime_seconds / 86400}
        options.setdefault("httponly", True)
        secure = self.secure_cookie if self.secure_cookie is not None else handler.request.protocol == "https"
        if secure:
            options.setdefault("secure", True)
        options.setdefault("path", handler.base_url)  # type: ignore[attr-defined]
        handler.set_secure_cookie(self.get_cookie_name(handler), json.dumps({"s": token}), **options)

    def get_user_cookie(self, handler: web.RequestHandler) -> User | None:  # type: ignore[override]
        token = session_token(handler)
        login = login_sessions.resolve(server_stores().state, token, POLICY) if token else None
        row = _active_user(login) if login else None
        if row is None:
            return None
        return User(username=row["login"], name=row["name"], display_name=row["name"])

    def end_session(self, handler: web.RequestHandler) -> None:
        """Sign-out: close the session server-side (a copy of the cookie dies with it), then drop the cookie."""
        token = session_token(handler)
        if token:
            login_sessions.revoke(server_stores().state, token)
        self.clear_login_cookie(handler)

    def locked_message(self, login: str) -> str | None:
        wait = guard().locked_for(login)
        if wait <= 0:
            return None
        minutes = max(1, math.ceil(wait / 60))
        return (f"Too many failed sign-ins for this account. Try again in {minutes} minute"
                f"{'s' if minutes > 1 else ''}, or ask an administrator.")

    async def process_login_form(self, handler: web.RequestHandler) -> User | None:  # type: ignore[override]
        login = handler.get_argument("username", default="").strip()
        password = handler.get_argument("password", default="")
        address = str(handler.request.remote_ip)
        if not login or len(login) > 64 or len(password) > 1024:
            await _password_matches("x", None)  # same cost either way
            guard().failed(login[:64], address)
            return None
        row = _active_user(login)
        if not await _password_matches(password, row["password_hash"] if row else None):
            guard().failed(login, address)
            self.log.warning("dimnb: failed login for %r from %s", login, address)
            return None
        guard().succeeded(login)
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
    async def post(self) -> None:
        provider: DimnbIdentityProvider = self.identity_provider  # type: ignore[assignment]
        delay = guard().delay_for(str(self.request.remote_ip))
        if delay:
            await asyncio.sleep(delay)  # a noisy address waits; it locks no account
        login = self.get_argument("username", default="").strip()[:64]
        locked = provider.locked_message(login)
        if locked:
            self.log.warning("dimnb: sign-in refused for locked account %r from %s", login, self.request.remote_ip)
            self.set_status(429)
            self._render(message={"error": locked})
            return
        user = await provider.process_login_form(self)
        if user is None:
            self.set_status(401)
            self._render(message={"error": provider.locked_message(login) or WRONG})
            return
        self.current_user = user
        self.log.info("dimnb: %s signed in from %s", user.username, self.request.remote_ip)
        provider.set_login_cookie(self, user)
        self.redirect(_safe_next(self, self.get_argument("next", default=self.base_url)))


class DimnbLogoutHandler(JupyterHandler):
    """GET asks (a button that POSTs); only a POST with the XSRF token signs out."""

    @allow_unauthenticated
    def get(self) -> None:
        if not self.current_user:
            self.write(pages.logged_out_page(login_url=self.base_url + "login"))
            return
        self.write(pages.logout_page(action=self.request.path, xsrf_html=self.xsrf_form_html(),
                                     back_url=self.base_url))

    @allow_unauthenticated
    async def post(self) -> None:  # tornado has checked the XSRF token before we get here
        user = self.current_user
        token = session_token(self)
        self.identity_provider.end_session(self)  # type: ignore[attr-defined]
        if user:
            self.log.info("dimnb: %s signed out", user.username)
        manager: Any = self.settings.get("kernel_manager")
        if token and hasattr(manager, "end_session"):
            await manager.end_session(token, "signed out")  # its open dashboards end with it
        self.write(pages.logged_out_page(login_url=self.base_url + "login"))
