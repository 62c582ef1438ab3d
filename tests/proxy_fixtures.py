"""`dimnb serve --behind-proxy` and Debian's nginx in front of it, running contrib/nginx-dimnb.conf itself.

The shipped site file is used as it is, with only its ports, certificate paths and upstream replaced, so
docs/deploy.md cannot drift from what the tests run. nginx runs in the foreground as one process
(``master_process off``) started by the test, with every file it writes in the test's folder, and is
stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from dimnb import access
from dimnb.store.stores import Stores
from server_fixtures import DEMO_NOW, ROOT, Server, free_port, wait_http

NGINX_SITE = ROOT / "contrib" / "nginx-dimnb.conf"


def start_serve(data: Path, log: Path, *options: str, ip: str = "127.0.0.1") -> Server:
    """``dimnb serve`` with extra options (e.g. ``--behind-proxy``) on ``ip`` and a free port."""
    server = launch_serve(data, log, *options, ip=ip)
    wait_http(server.base + "/login", server.process, log)
    return server


def launch_serve(data: Path, log: Path, *options: str, ip: str = "127.0.0.1") -> Server:
    """``start_serve`` without waiting for it to answer (start several at once, then ``wait_http`` each)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIMNB_NOW": DEMO_NOW}
    env.pop("DIMNB_USER", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dimnb", "serve", "--data", str(data), "--ip", ip, "--port", str(port), *options],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    return Server(f"http://{ip}:{port}", port, data, process, log)


def playable_recording(data: Path, login: str) -> int:
    """A recording ``login`` may play."""
    stores = Stores.open(str(data))
    try:
        actor = access.load_actor(stores.state, login)
        ids = [r[0] for r in stores.calls.query("SELECT recording_id FROM recordings WHERE state = 'available' "
                                                "ORDER BY 1")]
        return next(i for i in ids if access.can_play(stores.calls, actor, i))
    finally:
        stores.close()


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def require_nginx() -> str:
    """nginx's path; skips without one, except in CI (``$DIMNB_REQUIRE_BROWSER``), where it fails."""
    nginx = find_nginx()
    if nginx is None:
        if os.environ.get("DIMNB_REQUIRE_BROWSER"):
            pytest.fail("Debian's nginx is required (apt-get install nginx; .ci/run does)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return nginx


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, made with openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def render_site(text: str, *, https_port: int, http_port: int, upstream: str, cert: Path, key: Path) -> str:
    """The shipped site with test ports, paths and upstream; fails if the file no longer has what it replaces."""
    replacements = [
        ("    listen 443 ssl;\n", f"    listen 127.0.0.1:{https_port} ssl;\n", 1),
        ("    listen [::]:443 ssl;\n", "", 1),
        ("    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n", 1),
        ("    listen [::]:80;\n", "", 1),
        ("/etc/letsencrypt/live/calls.example.com/fullchain.pem", str(cert), 1),
        ("/etc/letsencrypt/live/calls.example.com/privkey.pem", str(key), 1),
        ("proxy_pass http://127.0.0.1:8866;", f"proxy_pass {upstream};", 2),
    ]
    for old, new, count in replacements:
        assert text.count(old) == count, f"{NGINX_SITE.name} no longer has {old!r} {count} time(s)"
        text = text.replace(old, new)
    return text


def _wait_listening(port: int, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nginx did not listen:\n{log.read_text()[-3000:]}")


MAIN_CONF = """\
daemon off;
master_process off;
pid {run}/nginx.pid;
error_log {run}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {run}/access.log;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {run}/dimnb-site.conf;
}}
"""


@dataclass
class Proxy:
    base: str
    http_base: str
    process: subprocess.Popen
    folder: Path

    @property
    def access_log(self) -> Path:
        return self.folder / "access.log"


def start_nginx(folder: Path, upstream: Server) -> Proxy:
    """nginx on free ports of 127.0.0.1 (https, and http that redirects), in front of ``upstream``."""
    nginx = require_nginx()
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(folder)
    https_port, http_port = free_port(), free_port()
    site = render_site(NGINX_SITE.read_text(), https_port=https_port, http_port=http_port,
                       upstream=f"http://127.0.0.1:{upstream.port}", cert=cert, key=key)
    (folder / "dimnb-site.conf").write_text(site)
    (folder / "nginx.conf").write_text(MAIN_CONF.format(run=folder))
    log = folder / "nginx.out"
    conf = ["-p", str(folder), "-e", str(folder / "error.log"), "-c", str(folder / "nginx.conf")]
    check = subprocess.run([nginx, "-t", *conf], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([nginx, *conf], stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"https://127.0.0.1:{https_port}"
    _wait_listening(https_port, process, folder / "error.log")
    return Proxy(base, f"http://127.0.0.1:{http_port}", process, folder)
