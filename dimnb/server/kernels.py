"""Dashboard kernels: handed to their user by the server alone, bounded, pooled and reclaimed.

Who a kernel belongs to: the dashboard handler authenticates the request and
puts the login in a context variable while Voilà asks for a kernel;
``DimnbKernelManager.start_kernel`` takes a pre-started kernel from the pool
(or starts one) and hands it to that login by executing
``kernel_side.adopt(login)`` over the kernel's shell channel with the
server's own client, before the notebook runs. Only then is the kernel
recorded as the login's, and only its owner's websocket is let in
(``authorizer.py``). The user never comes from a URL, a header, a cookie the
page sets or a widget value; pooled kernels have no user and no owner, so no
page can reach them; a kernel is never adopted twice.

Bounds (``KernelLimits``, the ``dimnb serve`` options):
- at most ``per_user`` kernels per user and ``total`` in all (pooled ones
  included); past a cap ``start_kernel`` raises ``KernelCapReached`` (the
  handler answers with a plain page), after first taking back a kernel of
  that user whose page is gone;
- the reaper shuts down a kernel whose page is gone (no websocket) for
  ``page_gone_seconds`` (a page still loading its scripts, never connected
  yet, gets at least ``FIRST_CONNECT_GRACE``), and one idle (no message) for
  ``idle_seconds``.

A kernel lives no longer than the sign-in session it was opened in: signing
out (``end_session``) closes that session's kernel websockets and shuts its
kernels down at once, and the reaper does the same for a session that has
expired or was revoked (password changed, user deactivated). Widget traffic
on a kernel's websocket counts as activity of its session.

The pool refills one kernel at a time and waits while logins are in flight
(at most ``REFILL_PATIENCE``), so starting spare kernels never competes with
the people logging in for the machine's cores.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager, ServerKernelManager
from tornado import web
from tornado.ioloop import PeriodicCallback
from traitlets import Instance, default

from dimnb.datadir import DATA_ENV
from dimnb.server import identity, kernel_side, login_sessions
from dimnb.server.context import server_stores
from dimnb.server.kernel_limits import KernelCapReached, KernelLimits
from dimnb.workbench import USER_ENV


@dataclass
class PageRequest:
    """An authenticated dashboard request: its login, and the kernel it was given."""

    login: str
    session: str | None = None  # the sign-in session's token: the kernel ends with that session
    kernel_ids: list[str] = field(default_factory=list)


REQUEST: contextvars.ContextVar[PageRequest | None] = contextvars.ContextVar("dimnb_page_request", default=None)

AUDIO_BASE_ENV = "DIMNB_AUDIO_BASE"
LOGOUT_ENV = "DIMNB_LOGOUT_URL"
BASE_URL_ENV = "DIMNB_BASE_URL"
SERVER_ENV = "DIMNB_SERVER"
# What the server's own environment must never hand to a kernel.
_NEVER_INHERITED = (USER_ENV, "QUERY_STRING")
HANDOVER_TIMEOUT = 60.0
# A page loads its scripts before it connects: a kernel whose page never connected gets this long (at least),
# short enough that a page abandoned while loading still ends within 60 s (plus one reaper round).
FIRST_CONNECT_GRACE = 45.0
# A kernel of someone else whose page went away this long ago may make room for a newcomer at the server cap.
RECLAIM_AFTER_SECONDS = 5.0
# A login is "in flight" from its claim until its page's websocket connects (at most this long after hand-over).
LOGIN_IN_FLIGHT_SECONDS = 20.0
# The pool's refill waits while logins are in flight, but no longer than this per kernel.
REFILL_PATIENCE = 15.0


@dataclass
class KernelRecord:
    owner: str | None  # None while pooled
    page_seen: float  # monotonic: the last moment its page was known to be there (or it was handed over)
    rendering: bool = False
    ever_connected: bool = False
    session: str | None = None
    handed_at: float = 0.0  # monotonic


class DashboardKernel(ServerKernelManager):
    """One dashboard kernel: started by ``kernel_main`` (ipykernel without the debugger) instead of the launcher."""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        for i in range(len(cmd) - 1):
            if cmd[i] == "-m" and cmd[i + 1] == "ipykernel_launcher":
                cmd[i + 1] = "dimnb.server.kernel_main"
        return cmd


class DimnbKernelManager(AsyncMappingKernelManager):
    """Starts, pools, hands over, bounds and reclaims dashboard kernels; remembers who owns each one."""

    limits = Instance(KernelLimits, args=(), config=True, help="Caps, pool size and timeouts (KernelLimits).")

    @default("kernel_manager_class")
    def _dashboard_kernels(self) -> str:
        return "dimnb.server.kernels.DashboardKernel"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owners: dict[str, str] = {}
        self.records: dict[str, KernelRecord] = {}
        self._pool: list[asyncio.Task[str]] = []
        self._starting = 0  # kernels being started (pooled or not) that are not yet in the map
        self._claims: dict[str, int] = {}  # logins with a kernel being handed to them (counts towards their cap)
        self._filling: asyncio.Task[None] | None = None
        self._reaper: PeriodicCallback | None = None
        self._reaped_at = datetime.now(timezone.utc).timestamp()  # the last round's wall time
        self.websockets: dict[str, set[Any]] = {}  # kernel id -> its open websocket handlers
        self.reaped: list[tuple[str, str]] = []  # (kernel id, reason), newest last

    # ------------------------------------------------------------------ lifecycle of the manager

    def start_reclaiming(self) -> None:
        """Start the reaper and fill the pool (call once the event loop runs)."""
        if self._reaper is None:
            self._reaper = PeriodicCallback(self.reap, self.limits.check_every * 1000)
            self._reaper.start()
        self.log.info("dimnb: keeping %d kernels ready (pool), at most %d in all, %d per user",
                      min(self.limits.pool, self.limits.total), self.limits.total, self.limits.per_user)
        self.fill_pool()

    async def shutdown_all(self, now: bool = False) -> None:
        if self._reaper is not None:
            self._reaper.stop()
        if self._filling is not None:
            self._filling.cancel()
        for task in self._pool:  # Voilà stops on another event loop: cancel, do not await
            task.cancel()
        self._pool.clear()
        await super().shutdown_all(now=now)

    # ------------------------------------------------------------------ kernels for users

    async def start_kernel(self, *, kernel_id: str | None = None, path: str | None = None, **kwargs: Any) -> str:
        request = REQUEST.get()
        if request is None or not request.login:
            raise web.HTTPError(403, "no authenticated user to start a kernel for")
        login = request.login
        kwargs.pop("env", None)  # Voilà's request environment: the kernel gets ours (no query string, no user)
        await self._make_room_for(login)
        self._claims[login] = self._claims.get(login, 0) + 1
        pooled = self._pool.pop(0) if self._pool else None
        kernel_id = None
        try:
            if pooled is not None:
                kernel_id = await self._take_pooled(pooled)
            warmed = kernel_id is not None  # a pooled kernel has answered the server already
            if kernel_id is None:
                self._starting += 1
                try:
                    kernel_id = await self._start_anonymous(path=path, **kwargs)
                finally:
                    self._starting -= 1
            await self._hand_over(kernel_id, login, request.session, ready=warmed)
        except BaseException:
            if kernel_id is not None and kernel_id in self:
                await self._shutdown_quietly(kernel_id)
            raise
        finally:
            self._claims[login] -= 1
            self.fill_pool()
        request.kernel_ids.append(kernel_id)
        self.log.info("dimnb: kernel %s handed to %s%s", kernel_id, login, " (from the pool)" if pooled else "")
        return kernel_id

    async def _take_pooled(self, pooled: asyncio.Task[str]) -> str | None:
        """A pooled kernel (waiting for it if it is still warming up); None if it failed to start."""
        try:
            return await pooled
        except Exception:
            self.log.exception("dimnb: a pooled kernel failed; starting one for the user instead")
            return None

    def owner(self, kernel_id: str | None) -> str | None:
        return self.owners.get(kernel_id) if kernel_id else None

    def kernels_of(self, login: str) -> list[str]:
        return [kid for kid, who in self.owners.items() if who == login]

    def count(self) -> int:
        """Kernels alive or on their way (pooled ones included): what the server-wide cap bounds."""
        return len(self._kernels) + self._starting

    def page_rendered(self, kernel_id: str) -> None:
        """The dashboard's HTML went out: from now on a kernel without a websocket has lost its page."""
        record = self.records.get(kernel_id)
        if record is not None:
            record.rendering = False
            record.page_seen = time.monotonic()

    # ------------------------------------------------------------------ caps

    async def _make_room_for(self, login: str) -> None:
        limits = self.limits
        while len(self.kernels_of(login)) + self._claims.get(login, 0) >= limits.per_user:
            gone = self._gone_pages(self.kernels_of(login), after=0.0)
            if not gone:
                raise KernelCapReached("user", limits.per_user)
            await self._reap_one(gone[0], "page gone; its user opened another")
        while not self._pool and self.count() >= limits.total:
            gone = self._gone_pages(list(self.owners), after=RECLAIM_AFTER_SECONDS)
            if not gone:
                raise KernelCapReached("server", limits.total)
            await self._reap_one(gone[0], "page gone; the server is full")

    def _gone_pages(self, kernel_ids: list[str], *, after: float) -> list[str]:
        """Owned kernels whose page has been gone (no websocket, not rendering) for ``after`` seconds, oldest first."""
        now = time.monotonic()
        found = []
        for kid in kernel_ids:
            record = self.records.get(kid)
            if record is None or record.rendering or record.owner is None or self._connections(kid):
                continue
            if record.ever_connected and now - record.page_seen >= after:
                found.append((record.page_seen, kid))
        return [kid for _seen, kid in sorted(found)]

    # ------------------------------------------------------------------ the pool

    def fill_pool(self) -> None:
        """Start pooled kernels, one at a time, until the pool is full (never past the server-wide cap)."""
        if self._filling is None or self._filling.done():
            self._filling = asyncio.ensure_future(self._fill())

    async def _fill(self) -> None:
        limits = self.limits
        while len(self._pool) < min(limits.pool, limits.total) and self.count() < limits.total:
            await self._while_logins_in_flight(REFILL_PATIENCE)
            if not (len(self._pool) < min(limits.pool, limits.total) and self.count() < limits.total):
                break
            task = asyncio.ensure_future(self._start_pooled())
            self._pool.append(task)
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("dimnb: a pooled kernel failed to start")
                if task in self._pool:
                    self._pool.remove(task)
                return

    def logins_in_flight(self) -> int:
        """Logins between their claim and their page's websocket (what a pool refill must not slow down)."""
        now = time.monotonic()
        handing = sum(self._claims.values())
        loading = sum(1 for r in self.records.values()
                      if r.owner is not None and not r.ever_connected and now - r.handed_at < LOGIN_IN_FLIGHT_SECONDS)
        return handing + loading

    async def _while_logins_in_flight(self, patience: float) -> None:
        deadline = time.monotonic() + patience
        while self.logins_in_flight() and time.monotonic() < deadline:
            await asyncio.sleep(0.25)

    async def _start_pooled(self) -> str:
        self._starting += 1
        try:
            kernel_id = await self._start_anonymous(path="")
        finally:
            self._starting -= 1
        try:
            await self._execute(kernel_id, kernel_side.WARM_STATEMENT)
        except BaseException:
            await self._shutdown_quietly(kernel_id)
            raise
        self.log.info("dimnb: pooled kernel %s ready", kernel_id)
        return kernel_id

    async def _start_anonymous(self, **kwargs: Any) -> str:
        """A kernel with the dashboards' environment and no user (it gets one by ``_hand_over``)."""
        base_url = self.parent.base_url if self.parent is not None else "/"
        env = {k: v for k, v in os.environ.items() if k not in _NEVER_INHERITED}
        env.update({
            DATA_ENV: os.environ[DATA_ENV],
            AUDIO_BASE_ENV: base_url + "dimnb/audio/",
            LOGOUT_ENV: base_url + "logout",
            BASE_URL_ENV: base_url,
            SERVER_ENV: "voila",
            "VOILA_PREHEAT": "False",
            # Fewer malloc arenas: a dashboard kernel's few threads (ZMQ, DuckDB) otherwise each hold their own.
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
            # numpy (the waveform) starts OpenBLAS with a thread and buffer per core, for math it never does here.
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
            "VOILA_BASE_URL": base_url,
            "VOILA_SERVER_URL": getattr(self.parent, "server_url", base_url) if self.parent is not None else "/",
        })
        kwargs.setdefault("kernel_name", "python3")
        kernel_id = await super().start_kernel(env=env, **kwargs)
        self.records[kernel_id] = KernelRecord(owner=None, page_seen=time.monotonic(), rendering=True)
        return kernel_id

    async def _hand_over(self, kernel_id: str, login: str, session: str | None, *, ready: bool = False) -> None:
        await self._execute(kernel_id, kernel_side.adopt_statement(login), ready=ready)
        record = self.records[kernel_id]
        record.owner, record.page_seen, record.rendering = login, time.monotonic(), True
        record.session, record.handed_at = session, time.monotonic()
        self.owners[kernel_id] = login

    async def _execute(self, kernel_id: str, code: str, *, ready: bool = False) -> None:
        """Run one statement in a kernel with the server's own client; raise unless it succeeded.

        ``ready``: the kernel has answered before (a pooled one), so only the shell channel is opened and the
        wait for ready (a kernel_info round trip and a 0.2 s drain of IOPub) is skipped: that is per login.
        """
        client = self.get_kernel(kernel_id).client()
        client.start_channels(shell=True, iopub=not ready, stdin=False, hb=False, control=False)
        try:
            if not ready:
                await client.wait_for_ready(timeout=HANDOVER_TIMEOUT)
            msg_id = client.execute(code, silent=True, store_history=False, allow_stdin=False)
            deadline = time.monotonic() + HANDOVER_TIMEOUT
            while True:
                reply = await client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            if reply["content"].get("status") != "ok":
                raise RuntimeError(f"kernel {kernel_id} refused a server statement: "
                                   f"{reply['content'].get('ename')}")
        finally:
            client.stop_channels()

    # ------------------------------------------------------------------ reclaiming

    async def reap(self) -> None:
        """Shut down kernels whose page is gone, idle ones, and those of ended sessions (pooled ones are left alone)."""
        limits = self.limits
        now = time.monotonic()
        idle_since = datetime.now(timezone.utc).timestamp() - limits.idle_seconds
        await self._end_closed_sessions()
        for kid in list(self.owners):
            record = self.records.get(kid)
            if record is None or record.rendering:
                continue
            grace = limits.page_gone_seconds if record.ever_connected else max(limits.page_gone_seconds,
                                                                              FIRST_CONNECT_GRACE)
            if not self._connections(kid) and now - record.page_seen > grace:
                await self._reap_one(kid, "page gone")
                continue
            last = getattr(self._kernels.get(kid), "last_activity", None)
            if last is not None and last.timestamp() < idle_since:
                await self._reap_one(kid, "idle")

    async def _reap_one(self, kernel_id: str, reason: str) -> None:
        owner = self.owners.pop(kernel_id, None)  # at once: it no longer counts for its user nor lets them in
        self.log.info("dimnb: shutting down kernel %s of %s (%s)", kernel_id, owner, reason)
        self.reaped.append((kernel_id, reason))
        for websocket in list(self.websockets.pop(kernel_id, ())):
            try:
                websocket.close(1000, "dashboard closed")
            except Exception:
                self.log.exception("dimnb: closing a websocket of kernel %s failed", kernel_id)
        await self._shutdown_quietly(kernel_id)

    # ------------------------------------------------------------------ sessions

    async def end_session(self, token: str, reason: str) -> None:
        """The sign-in session ``token`` ended: close its dashboards' websockets and shut their kernels down."""
        for kid in [kid for kid, record in self.records.items() if record.session == token and kid in self.owners]:
            await self._reap_one(kid, reason)

    async def _end_closed_sessions(self) -> None:
        """End the kernels of sessions that expired or were revoked; widget traffic keeps a session alive."""
        now = datetime.now(timezone.utc).timestamp()
        since, self._reaped_at = self._reaped_at, now
        active: dict[str, bool] = {}
        for kid in self.owners:
            record = self.records.get(kid)
            if record is None or record.session is None:
                continue
            last = getattr(self._kernels.get(kid), "last_activity", None)
            used = bool(self._connections(kid)) and last is not None and last.timestamp() >= since
            active[record.session] = active.get(record.session, False) or used
        if not active:
            return
        state = server_stores().state
        for token, used in active.items():
            if login_sessions.resolve(state, token, identity.POLICY, touch=used) is None:
                await self.end_session(token, "session ended")

    def websocket_opened(self, kernel_id: str, websocket: Any) -> None:
        self.websockets.setdefault(kernel_id, set()).add(websocket)

    def websocket_closed(self, kernel_id: str, websocket: Any) -> None:
        sockets = self.websockets.get(kernel_id)
        if sockets is not None:
            sockets.discard(websocket)
            if not sockets:
                self.websockets.pop(kernel_id, None)

    async def _shutdown_quietly(self, kernel_id: str) -> None:
        try:
            await self.shutdown_kernel(kernel_id, now=True)
        except Exception:
            self.log.exception("dimnb: shutting down kernel %s failed", kernel_id)
            self._forget(kernel_id)

    # ------------------------------------------------------------------ bookkeeping hooks

    def _connections(self, kernel_id: str) -> int:
        return int(self._kernel_connections.get(kernel_id, 0))

    def notify_connect(self, kernel_id: str) -> None:
        super().notify_connect(kernel_id)
        record = self.records.get(kernel_id)
        if record is not None:
            record.ever_connected = True
            record.rendering = False
            record.page_seen = time.monotonic()

    def notify_disconnect(self, kernel_id: str) -> None:
        super().notify_disconnect(kernel_id)
        record = self.records.get(kernel_id)
        if record is not None:
            record.page_seen = time.monotonic()

    async def shutdown_kernel(self, kernel_id: str, now: bool = False, restart: bool = False) -> None:
        try:
            await super().shutdown_kernel(kernel_id, now=now, restart=restart)
        finally:
            if not restart:
                self._forget(kernel_id)

    def remove_kernel(self, kernel_id: str) -> Any:
        self._forget(kernel_id)
        return super().remove_kernel(kernel_id)

    def _forget(self, kernel_id: str) -> None:
        self.owners.pop(kernel_id, None)
        self.records.pop(kernel_id, None)
        self.websockets.pop(kernel_id, None)
