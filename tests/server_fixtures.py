"""A real `dimnb serve` on 127.0.0.1 over the demo data, and a small HTTP client that signs in like a browser."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from dimnb.demo.setup import demo_password, setup_demo

ROOT = Path(__file__).resolve().parents[1]
# "Now" for the server's kernels (relative periods like "last 7 days"): the demo's last day.
DEMO_NOW = "2026-11-19T18:00:00Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


class Client:
    """One browser: a cookie jar, no automatic redirects."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, path: str, *, data: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                method: str | None = None) -> Response:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, headers=headers or {}, method=method)
        try:
            with self.opener.open(req, timeout=60) as resp:
                return Response(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as err:
            return Response(err.code, dict(err.headers), err.read())

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def login(self, username: str, password: str | None = None) -> Response:
        page = self.request("/login")
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        return self.request("/login?next=/dashboard", data={
            "_xsrf": xsrf, "username": username, "password": password or demo_password(username)})


@dataclass
class Server:
    base: str
    port: int
    data: Path
    process: subprocess.Popen
    log: Path

    def client(self) -> Client:
        return Client(self.base)


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 90, what: str = "dimnb serve") -> None:
    """Wait until ``url`` answers (any HTTP status); fail with the log's tail if ``process`` exits or times out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer:\n{log.read_text()[-3000:]}")


def start_server(data: Path, log: Path) -> Server:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIMNB_NOW": DEMO_NOW}
    env.pop("DIMNB_USER", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dimnb", "serve", "--data", str(data), "--port", str(port)],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/login", process, log)
    return Server(base, port, data, process, log)


def stop_process(process: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and its kernels: its process group, by its PID."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def stop_server(server: Server) -> None:
    stop_process(server.process)


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve") / "data"
    setup_demo(root)
    return root


@pytest.fixture(scope="module")
def server(demo_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    running = start_server(demo_data, log)
    yield running
    stop_server(running)
