"""Dashboard speed as a manager feels it, measured against baselines in the same run.

    python bench/dashboard.py           # 5 browser logins, 30 first-byte samples
    python bench/dashboard.py --quick

1. login → call list visible: headless Chromium signs in on the login page
   and waits for the first call row (target ≤ 4 s, median).
2. time to first byte of a 1-hour recording through `/dimnb/audio/<id>`
   (authentication, access check, audit, then the file), next to reading the
   first 64 KiB of the same file straight from disk (target ≤ 50 ms, median).
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dimnb.audiofiles import sha256_file  # noqa: E402
from dimnb.demo import tonecode  # noqa: E402
from dimnb.demo.setup import setup_demo  # noqa: E402
from dimnb.ingest import staging  # noqa: E402
from dimnb.store.stores import Stores  # noqa: E402
from server_fixtures import start_server, stop_server  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FIRST_ROW = ".dimnb-calls tr.dimnb-call-row"


def hour_long_recording(data: Path) -> int:
    """Give one archived recording of the demo a 1-hour file (tone-coded audio), as a long call would have."""
    stores = Stores.open(str(data))
    rid, call_id = stores.calls.query(
        "SELECT recording_id, call_id FROM recordings WHERE state = 'available' ORDER BY recording_id LIMIT 1")[0]
    path = stores.data.archive_dir / "bench" / f"{rid}-one-hour.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tonecode.synthesize(3, 1, 3600.0), 8000, subtype="PCM_16")
    with stores.calls.write() as con:
        con.execute(
            "UPDATE recordings SET archive_path = $p, duration_seconds = 3600, size_bytes = $s, checksum = $c "
            "WHERE recording_id = $r",
            {"p": str(path.relative_to(stores.data.archive_dir)), "s": path.stat().st_size,
             "c": sha256_file(path), "r": rid})
        staging.refresh_recording_counts(con, f"SELECT {int(call_id)} AS call_id")
    stores.close()
    return int(rid)


def first_byte(port: int, path: str, cookie: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": cookie})
    resp = conn.getresponse()
    resp.read(1)
    elapsed = time.perf_counter() - t0
    assert resp.status == 200, resp.status
    conn.close()
    return elapsed


def plain_read(path: Path) -> float:
    t0 = time.perf_counter()
    with open(path, "rb") as handle:
        handle.read(65536)
    return time.perf_counter() - t0


def browser_logins(base: str, user: str, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            page = context.new_page()
            page.goto(base + "/login")
            page.fill("#username", user)
            page.fill("#password", f"{user}-demo")
            t0 = time.perf_counter()
            page.click("#login_submit")
            page.wait_for_selector(FIRST_ROW, timeout=120_000)
            times.append(time.perf_counter() - t0)
            context.close()
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    logins, samples = (2, 10) if args.quick else (5, 30)
    work = ROOT / ".bench" / "dashboard"
    data = work / "data"
    if not (data / "state.sqlite").exists():
        setup_demo(data)
    rid = hour_long_recording(data)
    server = start_server(data, work / "serve.log")
    try:
        client = server.client()
        assert client.login("alex").status == 302
        cookie = client.cookie_header()
        stores = Stores.open(str(data))
        file = stores.data.archive_dir / stores.calls.query(
            "SELECT archive_path FROM recordings WHERE recording_id = $r", {"r": rid})[0][0]
        stores.close()
        first_byte(server.port, f"/dimnb/audio/{rid}?play=warmup", cookie)
        ttfb = [first_byte(server.port, f"/dimnb/audio/{rid}?play={uuid.uuid4().hex}", cookie) for _ in range(samples)]
        reads = [plain_read(file) for _ in range(samples)]
        print(f"1-hour recording: {file.stat().st_size / 2**20:.0f} MiB")
        print(f"time to first byte through /dimnb/audio (median of {samples}): {statistics.median(ttfb) * 1000:.1f} ms")
        print(f"plain read of the first 64 KiB (median): {statistics.median(reads) * 1000:.2f} ms")
        login_times = browser_logins(server.base, "maria", logins)
        print(f"login -> call list visible, headless Chromium (median of {logins}): "
              f"{statistics.median(login_times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in login_times)})")
        print(f"first byte: {statistics.median(ttfb) * 1000:.1f} ms (target <= 50 ms)")
        print(f"login to call list: {statistics.median(login_times):.2f} s (target <= 4 s)")
    finally:
        stop_server(server)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
