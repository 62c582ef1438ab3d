"""Many managers at once against a real `dimnb serve` on 127.0.0.1 (demo data), measured in one run.

    python bench/concurrency.py                   # burst, working day, 100 users against the caps
    python bench/concurrency.py --quick           # 10 users (a burst with every action, no Chromium), then the caps
    python bench/concurrency.py --scenario caps   # only one scenario: burst, day or caps

The crowd is lightweight clients that do what a page does after its HTML
(tests/dashboard_client.py): log in over HTTP, GET /dashboard, connect the
kernel websocket, load the widgets' state, then page, filter, open a
session, play a recording (the player's URL fetched with Range requests)
and leave: half close their page (websocket close), half just vanish (the
TCP connection dropped). A few real Chromium pages log in alongside and
wait for the first call row, to check what people see.

Scenarios:
- baseline: one manager alone (the ratios below are against it);
- burst: 20 logins within 2 s;
- working day: 50 managers arriving over 60 s, each acting every 2-5 s for
  about a minute;
- caps: 100 users arriving over 10 s against `--max-kernels 20`: the rest
  get the refusal page, and those already in keep working (a filter round
  trip each after the wave); one user opening 4 tabs gets a 429 on the 4th.

Reported: p50/p95 login → first list, p95 filter round trip, total RSS of
server + kernels (sampled every second; the peak), RSS per dashboard kernel,
dashboard kernels alive 2 minutes after everyone left, errors. Every request
goes to 127.0.0.1, bounded in count and time.

The machine may be shared: every figure is printed with the load average
beside it, and the baseline also gives what one login costs in CPU-seconds
(server + its kernel, from pooled kernel to first list; and what starting one
pooled kernel costs), which does not depend on the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dashboard_client import DashboardUser, first_list  # noqa: E402
from dimnb.demo.setup import demo_password, setup_demo  # noqa: E402
from dimnb.directory import set_password  # noqa: E402
from dimnb.server.busy_page import SERVER_FULL, TOO_MANY_TABS  # noqa: E402
from dimnb.store.stores import Stores  # noqa: E402
from server_fixtures import DEMO_NOW, free_port, stop_process, wait_http  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio"]
FIRST_ROW = ".dimnb-calls tr.dimnb-call-row"
KERNEL_FILE_RE = re.compile(r"kernel-([0-9a-f-]{36})\.json")
STEP_TIMEOUT = 120.0


# ---------------------------------------------------------------------------- the server and its processes


@dataclass
class Served:
    base: str
    process: subprocess.Popen
    log: Path

    def handed(self) -> set[str]:
        return set(re.findall(r"kernel ([0-9a-f-]{36}) handed to", self.log.read_text()))

    def processes(self) -> tuple[psutil.Process, dict[str, psutil.Process]]:
        server = psutil.Process(self.process.pid)
        kernels = {}
        for child in server.children(recursive=True):
            try:
                match = KERNEL_FILE_RE.search(" ".join(child.cmdline()))
            except psutil.Error:
                continue
            if match:
                kernels[match.group(1)] = child
        return server, kernels

    def user_kernels(self) -> dict[str, psutil.Process]:
        """Kernels handed to a user and still running (pooled ones, waiting for a user, are not counted)."""
        handed = self.handed()
        return {kid: p for kid, p in self.processes()[1].items() if kid in handed}


@contextmanager
def serving(data: Path, log: Path, *options: str) -> Iterator[Served]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIMNB_NOW": DEMO_NOW}
    env.pop("DIMNB_USER", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dimnb", "serve", "--data", str(data), "--port", str(port), *options],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    kernels: dict[str, psutil.Process] = {}
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_http(served.base + "/login", process, log)
        yield served
    finally:
        if process.poll() is None:
            kernels = served.processes()[1]
        stop_process(process)
        for leftover in kernels.values():  # kernels run in their own sessions: none may outlive the bench
            try:
                leftover.kill()
            except psutil.Error:
                pass


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"[load {one:.1f}/{five:.1f}]"


def cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


def uss(process: psutil.Process) -> int:
    try:
        return process.memory_full_info().uss
    except psutil.Error:
        return 0


class MemoryWatch:
    """Samples the RSS of the server and its kernels every second; keeps the peak total."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.peak = 0
        self.kernel_sizes: dict[str, int] = {}
        self.kernel_unique: dict[str, int] = {}  # USS: what the kernel does not share (libraries, page cache)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            server, kernels = self.served.processes()
            sizes = {kid: rss(p) for kid, p in kernels.items()}
            handed = self.served.handed()
            for kid, size in sizes.items():
                if kid in handed:
                    self.kernel_sizes[kid] = max(size, self.kernel_sizes.get(kid, 0))
                    if len(self.kernel_unique) < 12 or kid in self.kernel_unique:  # smaps is slow: a sample
                        self.kernel_unique[kid] = max(uss(kernels[kid]), self.kernel_unique.get(kid, 0))
            self.peak = max(self.peak, rss(server) + sum(sizes.values()))
            await asyncio.sleep(1.0)

    def __enter__(self) -> MemoryWatch:
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *_exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()


# ---------------------------------------------------------------------------- one manager


@dataclass
class Tally:
    logins: list[float] = field(default_factory=list)
    filters: list[float] = field(default_factory=list)
    actions: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    refused: Counter[int] = field(default_factory=Counter)
    inside: list[DashboardUser] = field(default_factory=list)

    def error(self, what: str, exc: BaseException) -> None:
        self.errors[f"{what}: {type(exc).__name__} {str(exc)[:80]}"] += 1


async def timed(coro: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = await asyncio.wait_for(coro, STEP_TIMEOUT)
    return result, time.perf_counter() - t0


async def play_a_recording(user: DashboardUser, stage: list[str]) -> None:
    """Open a session with a recording the user may play, play it, and fetch the audio with Range requests."""
    table, view = user.find("rows", "columns"), user.find("session", "peaks")
    player = user.find("source", "volume")
    candidates = [r for r in table.state.get("rows", []) if r.get("recording") == "playable"]
    if not candidates:
        return
    call_id = random.choice(candidates)["call_id"]
    stage[0] = "session: open"
    await user.send_custom(table, {"type": "open", "call_id": call_id})
    # The view sends its waveforms again on every open, but the session only when it changed: for the call
    # already on show (the same one opened twice) no session comes, and waiting for one would never end.
    if (view.state.get("session") or {}).get("call_id") == call_id:
        stage[0] = "session: waveform"
        peaks = await user.wait_for(view, "peaks", predicate=bool)
    else:
        await user.wait_for(view, "session", predicate=lambda s: bool(s) and s.get("call_id") == call_id)
        stage[0] = "session: waveform"
        peaks = view.state.get("peaks") or await user.wait_for(view, "peaks", predicate=bool)
    stage[0] = "session: play"
    await user.send_custom(view, {"type": "play", "recording_id": int(next(iter(peaks))), "offset_seconds": 1.0})
    source = await user.wait_for(player, "source", predicate=lambda s: bool(s and s.get("url")))
    stage[0] = "session: audio"
    for first, last in ((0, 65535), (65536, 131071)):
        answer = await user.fetch(source["url"], headers={"Range": f"bytes={first}-{last}"})
        if answer.code not in (206, 416):
            raise RuntimeError(f"audio Range request answered {answer.code}")
    await user.send_custom(user.find("login", "user_name"), {"type": "nav", "to": "calls"})


async def act(user: DashboardUser, tally: Tally, step: int, stage: list[str]) -> None:
    """One thing a manager does: page, filter (timed), or open a session and play."""
    table = user.find("rows", "columns")
    kind = step % 3
    stage[0] = ("page", "filter", "session and audio")[kind]
    if kind == 0:
        if table.state.get("pages", 1) > 1:
            page = 2 if table.state.get("page", 1) == 1 else 1
            await user.send_custom(table, {"type": "page", "page": page})
            await user.wait_for(table, "page", predicate=lambda p: p == page)
    elif kind == 2:
        await play_a_recording(user, stage)
    else:
        current = user.find("form", "options").state["form"].get("direction") or []  # the form sends a list
        await user.apply_filter(direction=["outbound"] if current == ["inbound"] else ["inbound"])
        tally.filters.append(user.last_filter_seconds or 0.0)
    tally.actions += 1


async def manager(base: str, login: str, tally: Tally, *, delay: float, actions: int, every: tuple[float, float],
                  vanish: bool, stay: bool = False) -> None:
    await asyncio.sleep(delay)
    user = DashboardUser(base, login, demo_password(login), timeout=STEP_TIMEOUT)
    stage = ["login"]
    try:
        t0 = time.perf_counter()
        await user.sign_in()
        stage[0] = "dashboard page"
        status = await asyncio.wait_for(user.open_dashboard(), STEP_TIMEOUT)
        if status != 200:
            expected = TOO_MANY_TABS if status == 429 else SERVER_FULL
            if status in (429, 503) and expected in user.page:
                tally.refused[status] += 1
            else:
                tally.errors[f"dashboard answered {status}"] += 1
            return
        stage[0] = "websocket and widgets"
        await asyncio.wait_for(user.connect(), STEP_TIMEOUT)
        tally.logins.append(time.perf_counter() - t0)
        for step in range(actions):
            await asyncio.sleep(random.uniform(*every))
            await asyncio.wait_for(act(user, tally, step + 1, stage), STEP_TIMEOUT)
    except Exception as exc:  # every failure is counted, none stops the crowd
        tally.error(stage[0], exc)
        await user.close(cleanly=True)
        return
    if stay:
        tally.inside.append(user)
    else:
        await user.close(cleanly=not vanish)


async def browser_pages(base: str, logins: list[str], delay: float) -> tuple[list[float], list[str]]:
    """Real Chromium pages: sign in on the login page, wait for the first call row; then close."""
    from playwright.async_api import async_playwright

    await asyncio.sleep(delay)
    times, errors = [], []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for login in logins:
                context = await browser.new_context(viewport={"width": 1366, "height": 768})
                try:
                    page = await context.new_page()
                    await page.goto(base + "/login")
                    await page.fill("#username", login)
                    await page.fill("#password", demo_password(login))
                    t0 = time.perf_counter()
                    await page.click("#login_submit")
                    await page.wait_for_selector(FIRST_ROW, timeout=STEP_TIMEOUT * 1000)
                    times.append(time.perf_counter() - t0)
                except Exception as exc:
                    errors.append(f"chromium {login}: {type(exc).__name__}")
                finally:
                    await context.close()
        finally:
            await browser.close()
    return times, errors


# ---------------------------------------------------------------------------- scenarios


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def crowd(served: Served, logins: list[str], *, spread: float, actions: int, every: tuple[float, float],
                browsers: list[str]) -> tuple[Tally, MemoryWatch, list[float]]:
    tally = Tally()
    with MemoryWatch(served) as memory:
        jobs = [manager(served.base, login, tally, delay=random.uniform(0, spread), actions=actions, every=every,
                        vanish=i % 2 == 1) for i, login in enumerate(logins)]
        results = await asyncio.gather(browser_pages(served.base, browsers, spread / 2), *jobs) if browsers \
            else [([], [])] + await asyncio.gather(*jobs)
        chromium_times, chromium_errors = results[0]
        for err in chromium_errors:
            tally.errors[err] += 1
        await asyncio.sleep(1.5)
    return tally, memory, chromium_times


async def wait_for_reclaim(served: Served, seconds: float) -> int:
    """Dashboard kernels still alive ``seconds`` after everyone left (checked every second; 0 ends the wait)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not served.user_kernels():
            return 0
        await asyncio.sleep(1.0)
    return len(served.user_kernels())


def report(name: str, tally: Tally, memory: MemoryWatch, alone: float, chromium: list[float]) -> dict[str, float]:
    login50, login95, filter95 = p(tally.logins, 0.5), p(tally.logins, 0.95), p(tally.filters, 0.95)
    kernels = sorted(memory.kernel_sizes.values())
    per_kernel = statistics.median(kernels) / 2**20 if kernels else float("nan")
    unique = statistics.median(memory.kernel_unique.values()) / 2**20 if memory.kernel_unique else float("nan")
    print(f"{name} {load()}: {len(tally.logins)} in, login -> first list p50 {login50:.2f} s, p95 {login95:.2f} s "
          f"({login95 / alone:.1f}x one manager alone); filter round trip p95 {filter95 * 1000:.0f} ms "
          f"({len(tally.filters)} filters, {tally.actions} actions)")
    if chromium:
        print(f"{name}: Chromium pages, login -> first call row: {', '.join(f'{t:.2f}' for t in chromium)} s")
    print(f"{name}: peak RSS server + kernels {memory.peak / 2**30:.2f} GB; dashboard kernel RSS median "
          f"{per_kernel:.0f} MB (max {kernels[-1] / 2**20 if kernels else float('nan'):.0f} MB; unshared USS "
          f"median {unique:.0f} MB); "
          f"errors {sum(tally.errors.values())}")
    for what, count in tally.errors.most_common(8):
        print(f"  error x{count}: {what}")
    return {"login50": login50, "login95": login95, "filter95": filter95, "rss": memory.peak / 2**30,
            "kernel_mb": per_kernel, "errors": float(sum(tally.errors.values()))}


async def against_the_caps(served: Served, logins: list[str], cap: int, spread: float) -> dict[str, float]:
    tally = Tally()
    # the first `cap` users come in and stay; then the wave; then those inside must still work
    jobs = [manager(served.base, login, tally, delay=random.uniform(0, spread), actions=0, every=(0, 0),
                    vanish=False, stay=True) for login in logins]
    await asyncio.gather(*jobs)
    inside, still = list(tally.inside), 0
    for user in inside:
        try:
            await asyncio.wait_for(user.apply_filter(direction="inbound"), STEP_TIMEOUT)
            tally.filters.append(user.last_filter_seconds or 0.0)
            still += 1
        except Exception as exc:
            tally.error("inside after the wave", exc)
    # one user, four tabs: the per-user cap
    tabs = [DashboardUser(served.base, "maria", demo_password("maria"), timeout=STEP_TIMEOUT) for _ in range(4)]
    for tab in inside:
        await tab.close()
    await asyncio.sleep(6)  # their pages are gone: their kernels may now make room (kernels.RECLAIM_AFTER_SECONDS)
    statuses = []
    for tab in tabs:
        await tab.sign_in()
        statuses.append(await tab.open_dashboard())
        if statuses[-1] == 200:
            await tab.connect()
    for tab in tabs:
        await tab.close()
    print(f"caps ({len(logins)} users over {spread:.0f} s, --max-kernels {cap}) {load()}: {len(inside)} in, "
          f"{sum(tally.refused.values())} refused with the refusal page ({dict(tally.refused)}), "
          f"{still}/{len(inside)} inside still filtering after the wave (p95 {p(tally.filters, 0.95) * 1000:.0f} ms); "
          f"one user's 4 tabs: {statuses}; errors {sum(tally.errors.values())}")
    for what, count in tally.errors.most_common(8):
        print(f"  error x{count}: {what}")
    return {"refused": float(sum(tally.refused.values())), "inside": float(len(inside)), "still": float(still),
            "errors": float(sum(tally.errors.values())), "tab4": float(statuses[-1] if statuses else 0)}


# ---------------------------------------------------------------------------- main


def prepare(work: Path) -> tuple[Path, list[str]]:
    """The demo company, with a password for everyone in its directory (the crowd's logins)."""
    data = work / "data"
    if not (data / "state.sqlite").exists():
        setup_demo(data)
    stores = Stores.open(str(data))
    logins = [r[0] for r in stores.state.connection().execute(
        "SELECT login FROM users WHERE active = 1 ORDER BY login").fetchall()]
    marker = work / "passwords.done"
    if not marker.exists():
        for login in logins:
            set_password(stores.state, login, demo_password(login))
        marker.write_text("\n".join(logins))
    stores.close()
    return data, logins


def crowd_logins(logins: list[str], n: int) -> list[str]:
    """``n`` sessions over the directory's users, round robin (at most 3 per user while n <= 3 x users)."""
    return [logins[i % len(logins)] for i in range(n)]


def pool_size(served: Served) -> int:
    """The pool the server keeps (it says so when it starts)."""
    found = re.search(r"keeping (\d+) kernels ready", served.log.read_text())
    return int(found.group(1)) if found else -1


async def wait_pool(served: Served, size: int | None = None, timeout: float = 90) -> int:
    """Wait until ``size`` (default: the whole pool) pooled kernels are ready (counting those handed out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wanted = size if size is not None else pool_size(served)
        ready = len(re.findall(r"pooled kernel \S+ ready", served.log.read_text()))
        if wanted >= 0 and ready >= wanted:
            return ready
        await asyncio.sleep(0.3)
    return 0


async def alone(served: Served, login: str) -> float:
    """One manager alone: login -> first list in seconds; also prints what it cost in CPU-seconds."""
    server, before = served.processes()
    kernel_cpu = {kid: cpu_seconds(proc) for kid, proc in before.items()}
    server_cpu = cpu_seconds(server)
    user = DashboardUser(served.base, login, demo_password(login), timeout=STEP_TIMEOUT)
    _rows, took = await timed(first_list(user))
    server_used = cpu_seconds(server) - server_cpu
    kernel = served.processes()[1].get(user.kernel_id or "")
    await user.close()
    if kernel is not None:
        pooled = user.kernel_id in kernel_cpu
        kernel_used = cpu_seconds(kernel) - kernel_cpu.get(user.kernel_id or "", 0.0)
        started = f"; starting a pooled kernel took {statistics.median(kernel_cpu.values()):.2f} CPU-s" \
            if kernel_cpu else ""
        print(f"baseline CPU: one login -> first list costs {server_used + kernel_used:.2f} CPU-s "
              f"(server {server_used:.2f}, its {'pooled' if pooled else 'new'} kernel {kernel_used:.2f}){started}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 users, then 10 against a cap of 4")
    parser.add_argument("--no-browser", action="store_true", help="leave out the Chromium pages")
    parser.add_argument("--kernel-pool", type=int, help="the server's --kernel-pool (default: dimnb serve's)")
    parser.add_argument("--scenario", choices=("all", "burst", "day", "caps"), default="all",
                        help="run one scenario only (burst and day share one server; caps has its own)")
    parser.add_argument("--burst-only", action="store_true", help="same as --scenario burst")
    args = parser.parse_args()
    if args.burst_only:
        args.scenario = "burst"
    random.seed(14)
    work = ROOT / ".bench" / "concurrency"
    work.mkdir(parents=True, exist_ok=True)
    data, logins = prepare(work)
    browsers = [] if args.no_browser or not Path("/usr/bin/chromium").exists() else ["maria", "alex"]
    results: dict[str, dict[str, float]] = {}

    async def run_crowds() -> None:
        options = ["--page-gone-timeout", "3"] if args.quick else []
        if args.quick and args.kernel_pool is None:
            args.kernel_pool = 10  # the quick burst's size
        if args.kernel_pool is not None:
            options += ["--kernel-pool", str(args.kernel_pool)]
            print(f"server: --kernel-pool {args.kernel_pool}")
        with serving(data, work / "serve.log", *options) as served:
            await wait_pool(served, 2)
            baseline = await alone(served, "maria")
            print(f"baseline {load()}: one manager alone, login -> first list {baseline:.2f} s")
            ready = await wait_pool(served, None, timeout=300)
            print(f"server: {pool_size(served)} pooled kernels ready ({ready} started so far) {load()}")
            if args.quick:
                tally, memory, chromium = await crowd(served, crowd_logins(logins, 10), spread=2, actions=3,
                                                      every=(0.2, 0.8), browsers=[])
                results["burst"] = report("burst (10 users within 2 s)", tally, memory, baseline, chromium)
                left = await wait_for_reclaim(served, 20)
                print(f"dashboard kernels alive 20 s after everyone left (--page-gone-timeout 3): {left}")
            else:
                if args.scenario in ("all", "burst"):
                    tally, memory, chromium = await crowd(served, crowd_logins(logins, 20), spread=2, actions=2,
                                                          every=(1, 3), browsers=[])
                    results["burst"] = report("burst (20 logins within 2 s)", tally, memory, baseline, chromium)
                    left = await wait_for_reclaim(served, 120)
                    print(f"dashboard kernels alive 2 minutes after the burst left: {left}")
                    if args.scenario == "burst":
                        results["left"] = {"kernels": float(left)}
                        return
                    ready = await wait_pool(served, pool_size(served) * 2, timeout=300)  # the pool refilled
                    print(f"server: the pool refilled ({ready} pooled kernels started so far) {load()}")
                tally, memory, chromium = await crowd(served, crowd_logins(logins, 50), spread=60, actions=15,
                                                      every=(2, 5), browsers=browsers)
                results["day"] = report("working day (50 managers over 60 s)", tally, memory, baseline, chromium)
                left = await wait_for_reclaim(served, 120)
                print(f"dashboard kernels alive 2 minutes after everyone left: {left}")
            results["left"] = {"kernels": float(left)}

    async def run_caps() -> None:
        cap, users = (4, 10) if args.quick else (20, 100)
        with serving(data, work / "serve-caps.log", "--max-kernels", str(cap)) as served:
            await wait_pool(served, 2)
            results["caps"] = await against_the_caps(served, crowd_logins(logins, users), cap, 2 if args.quick else 10)

    t0 = time.perf_counter()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GB {load()}")
    if args.scenario != "caps":
        asyncio.run(run_crowds())
    if args.scenario in ("all", "caps"):
        asyncio.run(run_caps())
    burst, caps = results.get("burst"), results.get("caps")
    errors = sum(r.get("errors", 0) for r in results.values())
    if burst is not None:
        print(f"burst p95 login -> list: {burst['login95']:.2f} s (target <= 10 s)")
    if "day" in results:
        day = results["day"]
        print(f"working day p95 login -> list: {day['login95']:.2f} s (target <= 5 s)")
        print(f"working day p95 filter round trip: {day['filter95'] * 1000:.0f} ms (target <= 1000 ms)")
        print(f"working day peak RSS server + kernels: {day['rss']:.2f} GB (target <= 8 GB)")
    sized = burst or results.get("day")
    if sized is not None:
        print(f"dashboard kernel RSS (median): {sized['kernel_mb']:.0f} MB (target <= 120 MB)")
    if caps is not None:
        print(f"caps: refused {caps['refused']:.0f} with the refusal page, {caps['still']:.0f}/{caps['inside']:.0f} "
              f"inside unaffected, 4th tab answered {caps['tab4']:.0f} (target 429)")
    if "left" in results:
        print(f"kernels left after everyone left: {results['left']['kernels']:.0f} (target == 0)")
    print(f"errors: {errors:.0f} (target == 0)")
    print(f"total time {time.perf_counter() - t0:.0f} s {load()}")
    if "day" in results:
        print(f"working day p95 login to list: {results['day']['login95']:.2f} s (target <= 5 s)")
    elif burst is not None:
        print(f"burst p95 login to list: {burst['login95']:.2f} s (target <= 10 s)")
    else:
        print(f"caps: clients refused without the refusal page or hurt inside: "
              f"{caps['errors'] + caps['inside'] - caps['still']:.0f} (target == 0)")


if __name__ == "__main__":
    main()
