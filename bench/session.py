"""How fast a Call Session builds on a big call store, and how fast waveform peaks of a 1-hour recording are.

    python bench/session.py            # 1,000,000 demo calls (built once into .bench/, ~2 minutes the first time)
    python bench/session.py --quick    # 50,000 calls, under a minute
    python bench/session.py --calls 10000000
    python bench/session.py --data DIR # a demo data directory built before (e.g. by bench/reports.py)

The store is the demo company at scale (``dimnb.demo.generate`` without audio,
then the production directory import and ``load_3cx``); its recordings, which
have no files, are marked available so sessions list them. Baselines measured
in the same run: a bare ``SELECT`` of one call's row by id (the floor of any
session), and reading the 1-hour file once with soundfile (the floor of peaks).
``wb.session`` (the Python API: grants read afresh, then ``build_session``) is
timed as Maria. The target holds for every user: the last line is the worst
user's median. Last line: ``metric: value (target op value)``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dimnb import access, peaks, sessions  # noqa: E402
from dimnb.errors import NotFound  # noqa: E402
from dimnb.store.stores import Stores  # noqa: E402
from dimnb.workbench import open_workbench  # noqa: E402

TARGET_MS = 20.0
LOGINS = ("alex", "maria", "paul", "olivia", "sam", "nina")


def build_store(calls: int) -> Path:
    """The demo company at ``calls`` calls, loaded through the production loader; cached under .bench/."""
    from dimnb.demo.generate import generate
    from dimnb.demo.setup import setup_demo

    data_dir = ROOT / ".bench" / f"session-{calls}"
    done = data_dir / ".complete"
    if done.exists():
        return data_dir
    if data_dir.exists():
        shutil.rmtree(data_dir)
    t0 = time.perf_counter()
    generate(data_dir / "pbx", calls=calls, audio=False, progress=True)
    summary = setup_demo(data_dir, calls=calls, progress=True).load
    if summary is None or summary.failed or summary.total("quarantined") or not summary.total("calls_added"):
        raise SystemExit("the load of the bench store did not load everything:\n"
                         + "\n".join(summary.lines() if summary else []))
    stores = Stores.open(str(data_dir))
    with stores.calls.write() as con:
        con.execute("UPDATE recordings SET state = 'available', archive_path = NULL")
        con.execute("UPDATE calls SET recordings_available = recordings_total, recordings_pending = 0")
    stores.close()
    done.write_text("ok\n")
    print(f"built {data_dir} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return data_dir


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_sessions(data_dir: Path, rounds: int) -> tuple[float, float, dict[str, float]]:
    stores = Stores.open(str(data_dir))
    rng = random.Random(1)
    max_id = stores.calls.query("SELECT max(call_id) FROM calls")[0][0]
    recorded = [r[0] for r in stores.calls.query(
        "SELECT call_id FROM calls WHERE recordings_total > 0 USING SAMPLE 200 ROWS")]
    ids = [rng.randint(1, max_id) for _ in range(rounds // 2)] + [rng.choice(recorded) for _ in range(rounds // 2)]
    actors = {login: access.load_actor(stores.state, login) for login in LOGINS}
    cur = stores.calls.cursor()
    for call_id in ids[:5]:  # warm the caches
        sessions.build_session(stores.calls, actors["alex"], call_id, state=stores.state)
    floor = []
    for call_id in ids:
        t = time.perf_counter()
        cur.execute("SELECT * FROM calls WHERE call_id = $id", {"id": call_id}).fetchall()
        floor.append(time.perf_counter() - t)
    per_login: dict[str, float] = {}
    every = []
    for login, actor in actors.items():
        times = []
        for call_id in ids:
            t = time.perf_counter()
            sessions.build_session(stores.calls, actor, call_id, state=stores.state)
            times.append(time.perf_counter() - t)
        per_login[login] = median_ms(times)
        every += times
    stores.close()
    wb = open_workbench(str(data_dir), user="maria")
    times = []
    for call_id in ids:
        t = time.perf_counter()
        try:
            wb.session(call_id)
        except NotFound:
            pass  # out of Maria's scope: the same work, then NotFound
        times.append(time.perf_counter() - t)
    per_login["wb.session as maria"] = median_ms(times)
    wb.stores.close()
    return median_ms(every), median_ms(floor), per_login


def bench_peaks(seconds: float) -> tuple[float, float, float]:
    import soundfile as sf

    from dimnb.demo import tonecode

    work = Path(tempfile.mkdtemp(prefix="dimnb-bench-peaks-"))
    try:
        path = work / "hour.wav"
        sf.write(path, tonecode.synthesize(3, 1, seconds), 8000, subtype="PCM_16", format="WAV")
        t = time.perf_counter()
        with sf.SoundFile(path) as f:
            while len(f.read(1 << 18, dtype="float32")):
                pass
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        computed = peaks.compute_peaks(path)
        compute_s = time.perf_counter() - t
        cache = work / "cache"
        peaks.peaks_for(path, "0" * 64, cache)
        t = time.perf_counter()
        cached = peaks.peaks_for(path, "0" * 64, cache)
        cached_s = time.perf_counter() - t
        assert len(cached.values) == len(computed.values)
        return compute_s, read_s, cached_s
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 calls and a 10-minute recording")
    parser.add_argument("--calls", type=int, help="override the number of calls")
    parser.add_argument("--rounds", type=int, default=200, help="sessions built per user")
    parser.add_argument("--data", type=Path, help="measure this demo company data directory instead of building one")
    args = parser.parse_args()
    calls = args.calls or (50_000 if args.quick else 1_000_000)
    audio_seconds = 600.0 if args.quick else 3600.0

    data_dir = args.data or build_store(calls)
    if args.data:
        calls = Stores.open(str(data_dir)).calls.query("SELECT count(*) FROM calls")[0][0]
    session_ms, floor_ms, per_login = bench_sessions(data_dir, 60 if args.quick else args.rounds)
    print(f"calls in store: {calls:,}")
    for login, ms in per_login.items():
        print(f"  {login if login.startswith('wb.') else 'build_session as ' + login:<24} median {ms:7.2f} ms")
    print(f"build_session median (all users): {session_ms:.2f} ms; one-row SELECT by id: {floor_ms:.2f} ms "
          f"(ratio {session_ms / floor_ms:.1f}x)")
    compute_s, read_s, cached_s = bench_peaks(audio_seconds)
    print(f"waveform peaks of a {audio_seconds / 60:.0f}-minute 8 kHz WAV: {compute_s * 1000:.0f} ms "
          f"(plain soundfile read {read_s * 1000:.0f} ms, ratio {compute_s / read_s:.2f}x); "
          f"from cache {cached_s * 1000:.1f} ms")
    worst_login = max(per_login, key=lambda k: per_login[k])
    print(f"session_build_median_ms (worst user, {worst_login}): {per_login[worst_login]:.2f} (target <= {TARGET_MS:.0f})")


if __name__ == "__main__":
    main()
