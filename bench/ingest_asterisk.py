"""Benchmark: `dimnb load asterisk` on a generated 1M-row cdr_csv Master.csv against a bare DuckDB read_csv.

    python bench/ingest_asterisk.py            # 1,000,000 rows, 3 rounds
    python bench/ingest_asterisk.py --quick    # 100,000 rows, 3 rounds (< 1 minute)

Both sides run in their own process, alternately, on the same file: the
load is `python -m dimnb load asterisk` into a fresh data directory (the
real code: hashing, layout recognition, parsing, legs → calls, merge,
access tables, publish); the baseline is `CREATE TABLE t AS SELECT * FROM
read_csv(file)` into a fresh DuckDB file (what a person would type). The
median of the rounds is compared; peak memory is the load process's
maximum resident set size. Targets: ratio <= 2.0, peak <= 1 GiB.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 2.0
TARGET_PEAK_MIB = 1024


def generate(path: Path, rows: int, *, seed: int = 11) -> int:
    """A cdr_csv Master.csv with every optional column (21), ``rows`` lines of plausible traffic; returns calls."""
    rnd = random.Random(seed)
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    fmt = "%Y-%m-%d %H:%M:%S"
    written = calls = seq = chan = 0
    out = []

    def ts(t: datetime | None) -> str:
        return f'"{t.strftime(fmt)}"' if t else ""

    def row(src, dst, ctx, clid, ch, dch, app, data, start, answer, end, disp, uid, linked):
        nonlocal seq, written
        duration = int((end - start).total_seconds())
        billsec = int((end - answer).total_seconds()) if answer else 0
        out.append(f'"","{src}","{dst}","{ctx}","{clid}","{ch}","{dch}","{app}","{data}",{ts(start)},{ts(answer)},'
                   f'{ts(end)},{duration},{billsec},"{disp}","DOCUMENTATION","{uid}","","","{linked}",{seq}\n')
        seq += 1
        written += 1

    def name() -> str:
        nonlocal chan
        chan += 1
        return f"{chan:08x}"

    with open(path, "w", encoding="utf-8") as handle:
        while written < rows:
            start = t0 + timedelta(seconds=calls * 3)
            uid = f"{int(start.timestamp())}.{calls}"
            ext = 100 + rnd.randrange(300)
            kind = rnd.random()
            if kind < 0.35:  # outbound, answered or busy
                number = f"0044207946{rnd.randrange(10000):04d}"
                answer = start + timedelta(seconds=rnd.randrange(3, 20)) if kind < 0.32 else None
                end = (answer or start) + timedelta(seconds=rnd.randrange(5, 600) if answer else 4)
                row(ext, number, "from-internal", f'""Agent {ext}"" <{ext}>', f"PJSIP/{ext}-{name()}",
                    f"PJSIP/trunk-{name()}", "Dial", f"PJSIP/{number}@trunk,300,Tt", start, answer, end,
                    "ANSWERED" if answer else "BUSY", uid, uid)
            elif kind < 0.55:  # internal
                other = 100 + rnd.randrange(300)
                answer = start + timedelta(seconds=rnd.randrange(2, 15)) if kind < 0.5 else None
                end = (answer or start) + timedelta(seconds=rnd.randrange(5, 300) if answer else 20)
                row(ext, other, "from-internal", f'""Agent {ext}"" <{ext}>', f"PJSIP/{ext}-{name()}",
                    f"PJSIP/{other}-{name()}", "Dial", f"PJSIP/{other},30", start, answer, end,
                    "ANSWERED" if answer else "NO ANSWER", uid, uid)
            elif kind < 0.85:  # inbound to ring group 600 (two members through Local channels)
                caller = f"+44161496{rnd.randrange(10000):04d}"
                trunk = f"PJSIP/trunk-{name()}"
                a, b = ext, ext + 1
                la, lb = name(), name()
                answer = start + timedelta(seconds=rnd.randrange(4, 18))
                end = answer + timedelta(seconds=rnd.randrange(10, 900))
                clid = f'""{caller}"" <{caller}>'
                row(caller, "600", "ext-group", clid, trunk, f"Local/{a}@from-queue-{la};1", "Dial",
                    f"Local/{a}@from-queue/n&Local/{b}@from-queue/n,20", start, answer, end, "ANSWERED", uid, uid)
                row(caller, "600", "ext-group", clid, trunk, f"Local/{b}@from-queue-{lb};1", "Dial",
                    f"Local/{a}@from-queue/n&Local/{b}@from-queue/n,20", start, None, answer, "NO ANSWER", uid, uid)
                row(caller, str(a), "from-queue", clid, f"Local/{a}@from-queue-{la};2", f"PJSIP/{a}-{name()}", "Dial",
                    f"PJSIP/{a},,tr", start, answer, end, "ANSWERED", f"{uid}1", uid)
                row(caller, str(b), "from-queue", clid, f"Local/{b}@from-queue-{lb};2", f"PJSIP/{b}-{name()}", "Dial",
                    f"PJSIP/{b},,tr", start, None, answer, "NO ANSWER", f"{uid}2", uid)
            else:  # inbound, no answer, voicemail
                caller = f"+44161496{rnd.randrange(10000):04d}"
                trunk = f"PJSIP/trunk-{name()}"
                ring_end = start + timedelta(seconds=20)
                end = ring_end + timedelta(seconds=rnd.randrange(5, 60))
                clid = f'""{caller}"" <{caller}>'
                row(caller, str(ext), "ext-local", clid, trunk, f"PJSIP/{ext}-{name()}", "Dial", f"PJSIP/{ext},20",
                    start, None, ring_end, "NO ANSWER", uid, uid)
                row(caller, f"vmu{ext}", "ext-local", clid, trunk, "", "VoiceMail", f"{ext}@default,u",
                    ring_end, ring_end, end, "ANSWERED", uid, uid)
            calls += 1
            if len(out) >= 10000:
                handle.write("".join(out))
                out.clear()
        handle.write("".join(out[: max(0, len(out) - (written - rows))]))
    return calls


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (KiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out}\n{err}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


BASELINE = """
import sys, duckdb
con = duckdb.connect(sys.argv[2])
con.execute("CREATE TABLE t AS SELECT * FROM read_csv($f)", {"f": sys.argv[1]})
con.close()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    parser.add_argument("--rows", type=int, help="rows to generate (overrides --quick)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("DIMNB_DATA", None)
    work = Path(tempfile.mkdtemp(prefix="dimnb-bench-asterisk-"))
    try:
        csv_path = work / "Master.csv"
        started = time.perf_counter()
        calls = generate(csv_path, rows)
        print(f"generated {rows:,} rows ({calls:,} calls, {csv_path.stat().st_size / 2**20:.0f} MiB) "
              f"in {time.perf_counter() - started:.1f} s")
        loads, bases, peaks, load_cpu, base_cpu = [], [], [], [], []
        for n in range(args.rounds):
            data = work / f"data{n}"
            subprocess.run([sys.executable, "-m", "dimnb", "init", "--data", str(data)], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            base_seconds, base_cpu_seconds, _ = _run([sys.executable, "-c", BASELINE, str(csv_path), str(work / f"base{n}.duckdb")], env)
            load_seconds, load_cpu_seconds, peak = _run([sys.executable, "-m", "dimnb", "load", "asterisk", str(csv_path), "--data",
                                       str(data), "--timezone", "UTC", "--no-progress"], env)
            shutil.rmtree(data, ignore_errors=True)
            (work / f"base{n}.duckdb").unlink(missing_ok=True)
            loads.append(load_seconds)
            bases.append(base_seconds)
            load_cpu.append(load_cpu_seconds)
            base_cpu.append(base_cpu_seconds)
            peaks.append(peak / 1024)
            print(f"round {n + 1}: load {load_seconds:.2f} s ({load_cpu_seconds:.1f} s CPU, peak {peak / 1024:.0f} MiB), "
                  f"bare read_csv {base_seconds:.2f} s ({base_cpu_seconds:.1f} s CPU), "
                  f"ratio {load_seconds / base_seconds:.2f}")
        ratio = statistics.median(loads) / statistics.median(bases)
        peak_mib = max(peaks)
        print(f"median: load {statistics.median(loads):.2f} s, bare read_csv {statistics.median(bases):.2f} s "
              f"({rows / statistics.median(loads):,.0f} rows/s loaded)")
        print(f"CPU time ratio (less sensitive to other load on the machine): "
              f"{statistics.median(load_cpu) / statistics.median(base_cpu):.2f}")
        print(f"peak memory of the load: {peak_mib:.0f} MiB (target <= {TARGET_PEAK_MIB} MiB)")
        print(f"asterisk load / bare read_csv: {ratio:.2f} (target <= {TARGET_RATIO})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
