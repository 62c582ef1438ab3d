"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl on a temporary folder, reached by a Unix socket only.

One cluster per test session (a second or two to start); each test gets its own
database in it. The server is stopped by the PID in its ``postmaster.pid``.
initdb refuses to run as root, so under root the cluster belongs to ``nobody``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "dimnb"


def postgres_bin() -> Path | None:
    """The newest installed server binaries (Debian: /usr/lib/postgresql/<version>/bin), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_owner() -> list[str]:
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] if os.geteuid() == 0 else []


@dataclass
class PostgresCluster:
    directory: Path

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def pid(self) -> int:
        return int((self.directory / "data" / "postmaster.pid").read_text().split()[0])


def start_cluster(bindir: Path) -> PostgresCluster:
    root = Path(tempfile.mkdtemp(prefix="dimnb-pg-"))
    cluster = PostgresCluster(root)
    cluster.socket_dir.mkdir()
    if os.geteuid() == 0:
        for path in (root, cluster.socket_dir):
            os.chown(path, 65534, 65534)
    data = root / "data"
    subprocess.run([*_as_owner(), str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                    "--no-sync", "-E", "UTF8", "--locale=C"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    options = (f"-k {cluster.socket_dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c shared_buffers=16MB -c max_connections=60")
    subprocess.run([*_as_owner(), str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                    str(root / "server.log"), "-w", "-t", "60", "start"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return cluster


def stop_cluster(cluster: PostgresCluster) -> None:
    try:
        pid = cluster.pid()
    except (OSError, ValueError):
        pid = None
    if pid is not None:
        os.kill(pid, signal.SIGQUIT)  # "immediate" shutdown: a throwaway cluster needs no checkpoint
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(cluster.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    bindir = postgres_bin()
    if bindir is None:
        if os.environ.get("DIMNB_REQUIRE_BROWSER"):  # CI: .ci/run installs it, so never skip there
            pytest.fail("Debian's postgresql is required (apt-get install postgresql; .ci/run does)")
        pytest.skip("PostgreSQL server binaries not installed (.ci/run installs Debian's postgresql)")
    pytest.importorskip("psycopg", reason="the [postgresql] extra (psycopg) is not installed")
    cluster = start_cluster(bindir)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once on the embedded SQLite store and once on PostgreSQL (``$DIMNB_STATE_URL``, fresh database)."""
    from dimnb.store.statestore import STATE_URL_ENV

    if request.param == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        monkeypatch.setenv(STATE_URL_ENV, cluster.new_database())
    else:
        monkeypatch.delenv(STATE_URL_ENV, raising=False)
    return str(request.param)
