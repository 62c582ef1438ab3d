"""A lightweight dashboard user: HTTP login, the dashboard page, then the kernel websocket and widget protocol.

What a browser does after the page arrives, without the browser: connect the
kernel's websocket (``/api/kernels/<id>/channels``), open the
``jupyter.widget.control`` comm and ask for every widget's state
(ipywidgets 8), then talk to the widgets the way their ES modules do
(``{"method": "custom", "content": {...}}`` comm messages) and wait for the
kernel's state updates. Used by the kernel lifecycle tests and by
bench/concurrency.py; asyncio, one event loop for many users.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

KERNEL_ID_RE = re.compile(r'"kernelId": "([0-9a-f-]+)"')
XSRF_FIELD_RE = re.compile(r'name="_xsrf" value="([^"]+)"')


class DashboardError(Exception):
    pass


@dataclass
class Widget:
    comm_id: str
    name: str
    state: dict[str, Any]


@dataclass
class DashboardUser:
    """One user with one dashboard page, against a server at ``base`` (``http://127.0.0.1:PORT``)."""

    base: str
    login: str
    password: str
    timeout: float = 120.0
    cookies: dict[str, str] = field(default_factory=dict)
    kernel_id: str | None = None
    status: int | None = None
    page: str = ""
    ws: WebSocketClientConnection | None = None
    widgets: dict[str, Widget] = field(default_factory=dict)
    _session: str = field(default_factory=lambda: uuid.uuid4().hex)
    _updates: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None
    _reader: asyncio.Task[None] | None = None
    _replies: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    last_filter_seconds: float | None = None

    # ------------------------------------------------------------------ HTTP

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    async def fetch(self, path: str, *, method: str = "GET", body: str | None = None,
                    headers: dict[str, str] | None = None) -> HTTPResponse:
        request = HTTPRequest(self.base + path, method=method, body=body, follow_redirects=False,
                              headers={"Cookie": self.cookie_header(), **(headers or {})},
                              request_timeout=self.timeout, connect_timeout=self.timeout)
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except HTTPClientError as err:  # pragma: no cover (raise_error=False)
            response = err.response
        for value in response.headers.get_list("Set-Cookie"):
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        return response

    async def sign_in(self) -> None:
        page = await self.fetch("/login")
        match = XSRF_FIELD_RE.search(page.body.decode())
        if match is None:
            raise DashboardError(f"no login form ({page.code})")
        body = urllib.parse.urlencode({"_xsrf": match.group(1), "username": self.login, "password": self.password})
        answer = await self.fetch("/login?next=/dashboard", method="POST", body=body)
        if answer.code != 302:
            raise DashboardError(f"login refused for {self.login} ({answer.code})")

    async def open_dashboard(self) -> int:
        """GET /dashboard: the HTTP status; on 200 the page's kernel id is kept."""
        response = await self.fetch("/dashboard")
        self.status, self.page = response.code, response.body.decode("utf-8", errors="replace")
        if response.code == 200:
            match = KERNEL_ID_RE.search(self.page)
            if match is None:
                raise DashboardError("the dashboard page names no kernel")
            self.kernel_id = match.group(1)
        return response.code

    # ------------------------------------------------------------------ the kernel websocket

    async def connect(self) -> None:
        """Connect the page's kernel websocket and load every widget's state (what the page's JS does)."""
        url = (self.base.replace("http://", "ws://") + f"/api/kernels/{self.kernel_id}/channels"
               f"?session_id={self._session}")
        self.ws = await websocket_connect(HTTPRequest(url, headers={"Cookie": self.cookie_header()},
                                                      connect_timeout=self.timeout, request_timeout=self.timeout))
        self._updates = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())
        control = uuid.uuid4().hex
        reply = self._expect_comm(control)
        self._send("comm_open", {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
                   metadata={"version": "1.0.0"})
        self._send("comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
        states = await asyncio.wait_for(reply, self.timeout)
        for model_id, model in states["data"]["states"].items():
            self.widgets[model_id] = Widget(model_id, model.get("model_name", ""), dict(model.get("state", {})))

    def find(self, *keys: str) -> Widget:
        """The widget whose state has all ``keys`` (e.g. the call table: ``rows``, ``columns``)."""
        for widget in self.widgets.values():
            if all(k in widget.state for k in keys):
                return widget
        raise DashboardError(f"no widget with {keys}")

    async def send_custom(self, widget: Widget, content: dict[str, Any]) -> None:
        self._send("comm_msg", {"comm_id": widget.comm_id, "data": {"method": "custom", "content": content}})

    async def wait_for(self, widget: Widget, key: str, *, predicate: Any = None, timeout: float | None = None) -> Any:
        """Wait until the kernel updates ``widget``'s ``key`` (and ``predicate(value)`` holds); its new value."""
        assert self._updates is not None
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"no update of {key}")
            try:
                comm_id, state = await asyncio.wait_for(self._updates.get(), remaining)
            except asyncio.TimeoutError:
                raise asyncio.TimeoutError(f"no update of {key} within {timeout or self.timeout:.0f} s") from None
            if comm_id == widget.comm_id and key in state and (predicate is None or predicate(state[key])):
                return state[key]

    async def apply_filter(self, **changes: Any) -> list[dict[str, Any]]:
        """Change the filter bar's form as a user would; the Call List's rows once the kernel has answered.

        The answer is the table's new ``summary`` (the filters in words), sent with the new rows; an
        unchanged list (say, empty both times) sends no rows, so the summary is what is waited for.
        ``last_filter_seconds`` keeps the round trip.
        """
        bar, table = self.find("form", "options"), self.find("rows", "columns")
        before = table.state.get("summary")
        t0 = time.perf_counter()
        await self.send_custom(bar, {"type": "apply", "form": {**bar.state["form"], **changes}})
        await self.wait_for(table, "summary", predicate=lambda text: text != before)
        self.last_filter_seconds = time.perf_counter() - t0
        try:  # the rows follow the summary in the same kernel reply, when they changed
            await self.wait_for(table, "rows", timeout=0.5)
        except asyncio.TimeoutError:
            pass
        return list(table.state.get("rows") or [])

    async def sign_out(self) -> int:
        """Sign out as the logout page's button does (POST with the XSRF token); the HTTP status."""
        page = await self.fetch("/logout")
        match = XSRF_FIELD_RE.search(page.body.decode())
        if match is None:
            raise DashboardError(f"no logout form ({page.code})")
        answer = await self.fetch("/logout", method="POST", body=urllib.parse.urlencode({"_xsrf": match.group(1)}))
        return answer.code

    async def websocket_closed(self, timeout: float) -> bool:
        """Whether the server closes this page's kernel websocket within ``timeout`` seconds."""
        if self._reader is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self, *, cleanly: bool = True) -> None:
        """Leave: ``cleanly`` closes the websocket (a closed tab); otherwise the socket is dropped (a vanished one)."""
        if self.ws is not None:
            if cleanly:
                self.ws.close()
            else:
                stream = getattr(self.ws, "stream", None)
                if stream is not None:
                    stream.close()  # no close frame: the server finds out when the TCP connection ends
                else:
                    self.ws.close()
        if self._reader is not None:
            self._reader.cancel()

    # ------------------------------------------------------------------ plumbing

    def _send(self, msg_type: str, content: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
        assert self.ws is not None
        msg_id = uuid.uuid4().hex
        self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": self.login, "session": self._session, "msg_type": msg_type,
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": metadata or {}, "content": content, "buffers": [], "channel": "shell",
        }))
        return msg_id

    def _expect_comm(self, comm_id: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[comm_id] = future
        return future

    async def _read(self) -> None:
        assert self.ws is not None and self._updates is not None
        while True:
            raw = await self.ws.read_message()
            if raw is None:
                return
            message = json.loads(raw) if isinstance(raw, str) else _binary_message(raw)
            if message.get("msg_type") != "comm_msg" and message.get("header", {}).get("msg_type") != "comm_msg":
                continue
            content = message.get("content", {})
            comm_id = content.get("comm_id")
            data = content.get("data", {})
            waiting = self._replies.pop(comm_id, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(content)
                continue
            if data.get("method") == "update":
                widget = self.widgets.get(comm_id)
                if widget is not None:
                    widget.state.update(data.get("state", {}))
                await self._updates.put((comm_id, data.get("state", {})))


def _binary_message(raw: bytes) -> dict[str, Any]:
    """jupyter_server's binary frame (a message with buffers): count, offsets, JSON, buffers; buffers dropped."""
    count = int.from_bytes(raw[:4], "big")
    offsets = [int.from_bytes(raw[4 * (i + 1):4 * (i + 2)], "big") for i in range(count)]
    end = offsets[1] if count > 1 else len(raw)
    return json.loads(raw[offsets[0]:end].decode("utf-8"))


async def first_list(user: DashboardUser) -> list[dict[str, Any]]:
    """Sign in, open the dashboard, connect, and return the Call List's first rows (what 'login → list' means)."""
    await user.sign_in()
    if await user.open_dashboard() != 200:
        raise DashboardError(f"dashboard refused ({user.status})")
    await user.connect()
    # The table ran its first page before the page was rendered: its state holds the rows (maybe none).
    return list(user.find("rows", "columns").state.get("rows") or [])
