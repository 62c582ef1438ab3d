"""Dashboard kernels over a real `dimnb serve`: reclaimed, bounded, pooled, and always handed to the right user.

Each scenario runs its own server (short timeouts as `dimnb serve` options)
on the demo data, and talks to it like a page would: HTTP login and
dashboard, then the kernel websocket and the widget protocol
(tests/dashboard_client.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from dashboard_client import DashboardUser, first_list
from dimnb.demo.setup import demo_password
from dimnb.server import kernel_side
from dimnb.server.busy_page import SERVER_FULL, TOO_MANY_TABS
from dimnb.server.kernel_limits import KernelLimits, default_max_kernels, default_pool_size
from dimnb.workbench import USER_ENV
from server_fixtures import DEMO_NOW, ROOT, Server, demo_data, free_port, stop_process, wait_http  # noqa: F401

pytestmark = pytest.mark.slow


def kernel_processes(server_pid: int) -> dict[str, psutil.Process]:
    """The server's kernels by kernel id (read from the connection file named on their command line)."""
    found = {}
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            match = re.search(r"kernel-([0-9a-f-]{36})\.json", " ".join(child.cmdline()))
        except psutil.Error:
            continue
        if match:
            found[match.group(1)] = child
    return found


@contextmanager
def serving(data: Path, tmp_path: Path, *options: str) -> Iterator[Server]:
    log = tmp_path / "serve.log"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIMNB_NOW": DEMO_NOW}
    env.pop(USER_ENV, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dimnb", "serve", "--data", str(data), "--port", str(port), *options],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    kernels: dict[str, psutil.Process] = {}
    try:
        wait_http(f"http://127.0.0.1:{port}/login", process, log)
        yield Server(f"http://127.0.0.1:{port}", port, data, process, log)
    finally:
        if process.poll() is None:
            kernels = kernel_processes(process.pid)
        stop_process(process)
        for leftover in kernels.values():  # kernels run in their own sessions: never let one outlive the test
            try:
                leftover.kill()
            except psutil.Error:
                pass


def user(server: Server, login: str) -> DashboardUser:
    return DashboardUser(server.base, login, demo_password(login), timeout=90)


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def pooled_ready(server: Server) -> list[str]:
    return re.findall(r"pooled kernel ([0-9a-f-]{36}) ready", server.log.read_text())


# ---------------------------------------------------------------------------- without a server


def test_limits_defaults_and_the_memory_cap() -> None:
    limits = KernelLimits()
    assert (limits.per_user, limits.idle_seconds) == (3, 1800)
    assert limits.page_gone_seconds + limits.check_every <= 60  # a gone page's kernel ends within 60 s
    assert default_max_kernels(ram_bytes=24 * 2**30, kernel_mb=120) == int(24 * 2**30 * 0.7) // (120 * 2**20)
    assert default_max_kernels(ram_bytes=10 * 2**20) == 1
    # the pool: a fifth of the cap, at most 10 per core, at least 1
    assert default_pool_size(129, cores=2) == 20 and default_pool_size(60, cores=2) == 12
    assert default_pool_size(3, cores=8) == 1
    assert KernelLimits(max_kernels=50).pool == default_pool_size(50) and KernelLimits(pool_size=0).pool == 0
    with pytest.raises(ValueError):
        KernelLimits(per_user=0)


def test_a_kernel_is_adopted_once_and_the_statement_is_a_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kernel_side.USER_ENV == USER_ENV
    monkeypatch.setenv(USER_ENV, "")  # recorded, so what adopt() sets is undone after the test
    monkeypatch.delenv(USER_ENV)
    statement = kernel_side.adopt_statement("o'brien\"); import os #")
    exec(statement, {})  # noqa: S102  (the statement the server sends: one call with one string literal)
    assert os.environ[USER_ENV] == "o'brien\"); import os #"
    with pytest.raises(RuntimeError):
        kernel_side.adopt("maria")
    assert os.environ[USER_ENV] == "o'brien\"); import os #"
    with pytest.raises(ValueError):
        kernel_side.adopt_statement("a\nb")


def test_a_dashboard_kernel_imports_no_pandas_matplotlib_or_arrow() -> None:
    probe = ("import sys; from dimnb.server import kernel_side; kernel_side.warm(); "
             "print(sorted(m for m in ('pandas', 'matplotlib', 'pyarrow', 'numpy', 'soundfile') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"


def test_the_tables_plain_rows_match_the_dataframe(demo_data: Path) -> None:
    from dimnb import access, reports
    from dimnb.filters import Filters
    from dimnb.store.stores import Stores

    stores = Stores.open(str(demo_data))
    actor = access.load_actor(stores.state, "maria")
    filters = Filters(timezone="Europe/Paris")
    for sort, descending in (("start_time", True), ("duration_seconds", False)):
        frame = reports.list_calls(stores.calls, actor, filters, sort=sort, descending=descending, page=2)
        plain = reports.list_call_rows(stores.calls, actor, filters, sort=sort, descending=descending, page=2)
        assert plain.total == frame.total and plain.call_ids == frame.call_ids
        for row, record in zip(plain.rows, frame.rows.to_dict("records")):
            assert row["start_time"] == record["start_time"].to_pydatetime()
            assert str(row["start_time"].tzinfo) == "Europe/Paris"
            for column in ("talk_seconds", "duration_seconds", "recording", "groups", "from_party"):
                assert row[column] == record[column] or (row[column] is None and record[column] != record[column])
    stores.close()


# ---------------------------------------------------------------------------- reclaiming


def test_a_kernel_whose_page_is_gone_is_shut_down_and_an_open_page_keeps_its_own(demo_data: Path,
                                                                                    tmp_path: Path) -> None:
    with serving(demo_data, tmp_path, "--page-gone-timeout", "2", "--kernel-pool", "0") as server:
        async def scenario() -> tuple[str, str, str]:
            gone, closed, staying = user(server, "maria"), user(server, "olivia"), user(server, "paul")
            for who in (gone, closed, staying):
                assert await first_list(who)
            await gone.close(cleanly=False)  # the tab vanished: no close frame
            await closed.close(cleanly=True)
            await asyncio.sleep(7)  # past the timeout and a few reaper rounds
            table = staying.find("rows", "columns")
            await staying.send_custom(table, {"type": "refresh"})
            await staying.wait_for(table, "loading", predicate=lambda v: v is False, timeout=30)
            await staying.close()
            return gone.kernel_id, closed.kernel_id, staying.kernel_id  # type: ignore[return-value]

        gone, closed, staying = asyncio.run(scenario())
        alive = kernel_processes(server.process.pid)
        assert gone not in alive and closed not in alive
        assert staying in alive
        assert f"kernel {gone} of maria (page gone)" in server.log.read_text()


def test_an_idle_kernel_is_shut_down_with_its_page_open(demo_data: Path, tmp_path: Path) -> None:
    with serving(demo_data, tmp_path, "--idle-timeout", "3", "--kernel-pool", "0") as server:
        async def scenario() -> str:
            maria = user(server, "maria")
            assert await first_list(maria)
            kernel = maria.kernel_id
            assert kernel in kernel_processes(server.process.pid)
            await asyncio.sleep(8)
            await maria.close()
            return kernel  # type: ignore[return-value]

        kernel = asyncio.run(scenario())
        assert kernel not in kernel_processes(server.process.pid)
        assert f"kernel {kernel} of maria (idle)" in server.log.read_text()


def test_a_dashboard_ends_with_its_sign_in_session(demo_data: Path, tmp_path: Path) -> None:
    """Sign-out closes that session's kernel websockets and kernels at once; an idle session's too; a busy one stays."""
    with serving(demo_data, tmp_path, "--kernel-pool", "0", "--page-gone-timeout", "3",
                 "--session-idle-minutes", "0.2") as server:
        async def scenario() -> tuple[DashboardUser, DashboardUser, DashboardUser, list[str]]:
            leaving, idle, busy = user(server, "maria"), user(server, "olivia"), user(server, "paul")
            await asyncio.gather(first_list(leaving), first_list(idle), first_list(busy))
            assert await leaving.sign_out() == 200
            assert await leaving.websocket_closed(timeout=5)  # at once, not when the page goes away
            gone_at_sign_out = [kid for kid in (leaving.kernel_id,) if kid not in kernel_processes(server.process.pid)]
            # olivia does nothing past the 12 s idle limit; paul keeps filtering: his widget traffic keeps him in
            for step in range(9):
                await busy.apply_filter(direction="inbound" if step % 2 else "outbound")
                await asyncio.sleep(1.5)
            assert await idle.websocket_closed(timeout=5)
            assert not await busy.websocket_closed(timeout=0.1)
            assert await busy.apply_filter(direction="inbound")
            await busy.close()
            return leaving, idle, busy, gone_at_sign_out

        leaving, idle, busy, gone_at_sign_out = asyncio.run(scenario())
        assert gone_at_sign_out == [leaving.kernel_id]
        alive = kernel_processes(server.process.pid)
        assert leaving.kernel_id not in alive and idle.kernel_id not in alive
        log = server.log.read_text()
        assert f"kernel {leaving.kernel_id} of maria (signed out)" in log
        assert f"kernel {idle.kernel_id} of olivia (session ended)" in log


# ---------------------------------------------------------------------------- caps


def test_caps_give_a_refusal_page_and_leave_everyone_else_alone(demo_data: Path, tmp_path: Path) -> None:
    with serving(demo_data, tmp_path, "--kernels-per-user", "2", "--max-kernels", "3", "--kernel-pool", "0",
                 "--page-gone-timeout", "120") as server:
        async def scenario() -> None:
            maria_1, maria_2, maria_3 = user(server, "maria"), user(server, "maria"), user(server, "maria")
            assert await first_list(maria_1) and await first_list(maria_2)
            await maria_3.sign_in()
            assert await maria_3.open_dashboard() == 429
            assert TOO_MANY_TABS in maria_3.page and "Traceback" not in maria_3.page

            # Another user is not affected by maria's cap...
            olivia = user(server, "olivia")
            assert await first_list(olivia)
            # ...but now the server is full (3): a newcomer gets the "server busy" page.
            paul = user(server, "paul")
            await paul.sign_in()
            assert await paul.open_dashboard() == 503
            assert SERVER_FULL in paul.page and "Traceback" not in paul.page

            # Those already in keep working.
            for inside in (maria_1, olivia):
                rows = await inside.apply_filter(direction="inbound")
                assert rows and all(row["direction"] == "inbound" for row in rows)

            # A reload (its page's websocket closed) takes back that page's kernel instead of refusing.
            await maria_2.close()
            await asyncio.sleep(0.5)
            assert await maria_3.open_dashboard() == 200
            assert maria_2.kernel_id not in kernel_processes(server.process.pid)
            await maria_3.connect()
            assert maria_3.find("login", "user_name").state["login"] == "maria"
            for page in (maria_1, maria_3, olivia):
                await page.close()

        asyncio.run(scenario())


# ---------------------------------------------------------------------------- the pool


def test_pooled_kernels_are_handed_to_the_logged_in_user_and_never_shared(demo_data: Path, tmp_path: Path) -> None:
    with serving(demo_data, tmp_path, "--kernel-pool", "2") as server:
        wait_until(lambda: len(pooled_ready(server)) >= 2, 90, "two pooled kernels")
        pooled = pooled_ready(server)[:2]
        started_before_login = {kid: proc.create_time() for kid, proc in kernel_processes(server.process.pid).items()}
        # started without the debugger (kernel_main), which a dashboard kernel never offers
        assert all("dimnb.server.kernel_main" in proc.cmdline()
                   for proc in kernel_processes(server.process.pid).values())

        async def scenario() -> list[DashboardUser]:
            # A pooled kernel has no owner yet: nobody's websocket reaches it.
            intruder = user(server, "alex")
            await intruder.sign_in()
            intruder.kernel_id = pooled[0]
            with pytest.raises(Exception) as refused:
                await intruder.connect()
            assert getattr(refused.value, "code", None) == 403

            maria, olivia = user(server, "maria"), user(server, "olivia")
            await asyncio.gather(first_list(maria), first_list(olivia))
            await maria.close()
            await olivia.close()
            return [maria, olivia]

        maria, olivia = asyncio.run(scenario())
        assert {maria.kernel_id, olivia.kernel_id} == set(pooled)  # both came from the pool...
        assert maria.kernel_id != olivia.kernel_id  # ...one each
        assert all(kid in started_before_login for kid in pooled)  # started before anyone logged in
        assert maria.find("login", "user_name").state["login"] == "maria"
        assert olivia.find("login", "user_name").state["login"] == "olivia"
        log = server.log.read_text()
        assert f"kernel {maria.kernel_id} handed to maria (from the pool)" in log
        assert f"kernel {olivia.kernel_id} handed to olivia (from the pool)" in log
        # The pool refills for the next login.
        wait_until(lambda: len(pooled_ready(server)) >= 4, 90, "the pool to refill")
