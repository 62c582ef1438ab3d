"""Load a 1M-row CDR file with `dimnb load` and compare with a bare DuckDB read_csv of the same file.

    python bench/ingest.py                      # 1,000,000-row 3CX legacy CDR file
    python bench/ingest.py --system asterisk    # 1,000,000-row Asterisk cdr_csv Master.csv (21 columns)
    python bench/ingest.py --system 3cx-v20     # 3CX v20 export of 1,000,000 demo calls (cdroutput + cdrrecordings)
    python bench/ingest.py --quick              # 200,000 rows (3cx-v20: 50,000 calls), any system
    python bench/ingest.py --rows 10000000 --repeat 1

The bare read is what a person would type for a file whose layout they
know: `CREATE TABLE cdr AS SELECT * FROM read_csv(file, columns = <every
column VARCHAR>, header = false)` into a fresh DuckDB file, then CHECKPOINT.
The load is the real `dimnb load` into a fresh data directory (hashing,
layout recognition, parsing, rows → calls, merge, access tables, publish).
Both sides run as separate processes on the same file, back to back in each
run, so the per-run ratio holds on a noisy machine; the median of the runs
counts. Peak memory is the load process's max RSS.
For ``3cx-v20`` the file is a folder: the demo generator's export (no audio,
so every recording link is checked on disk and found missing), read bare as
its two CSV files. The load's summary must show every row loaded and none
quarantined, else the bench stops. Target: load ≤ 2.0× the bare read, peak ≤ 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dimnb.ingest.asterisk import CDR_CSV_LAYOUTS  # noqa: E402
from dimnb.ingest.threecx_legacy import FIELDS  # noqa: E402


CHUNK_ROWS = 1_000_000  # rows generated at once: numpy's fixed-width strings take GBs past a few million


def write_legacy_csv(path: Path, rows: int, seed: int = 1) -> None:
    """A realistic legacy export: inbound/outbound/internal, transfers, unanswered and failed calls.

    Written in chunks of CHUNK_ROWS (each its own slice of the 90 days, so the file stays in time order);
    up to one chunk the file is what one draw gives, as before.
    """
    chunks = max(1, -(-rows // CHUNK_ROWS))
    span = 90 * 86400
    path.unlink(missing_ok=True)
    for i in range(chunks):
        first, n = i * CHUNK_ROWS, min(CHUNK_ROWS, rows - i * CHUNK_ROWS)
        rng = np.random.default_rng(seed if chunks == 1 else (seed, i))
        low, high = span * i // chunks, span * (i + 1) // chunks
        _write_legacy_chunk(path, rng, first, n, low, high)


def _write_legacy_chunk(path: Path, rng: np.random.Generator, first: int, rows: int, low: int, high: int) -> None:
    start = pd.Timestamp("2026-01-01T08:00:00Z") + pd.to_timedelta(np.sort(rng.integers(low, high, rows)), "s")
    ring = rng.integers(0, 25, rows)
    talk = rng.lognormal(4.0, 1.0, rows).astype(int).clip(1, 7200)
    answered = rng.random(rows) < 0.8
    kind = rng.choice(3, rows, p=[0.5, 0.3, 0.2])  # inbound, outbound, internal
    transfers = rng.choice(3, rows, p=[0.8, 0.17, 0.03])
    ext_a = rng.integers(100, 400, rows).astype(str)
    ext_b = rng.integers(100, 400, rows).astype(str)
    ext_c = rng.integers(100, 400, rows).astype(str)
    number = np.char.add("+44207946", rng.integers(1000, 9999, rows).astype(str))
    answer_time = start + pd.to_timedelta(ring, "s")
    end_time = np.where(answered, answer_time + pd.to_timedelta(talk, "s"), answer_time)
    fmt = "%Y/%m/%d %H:%M:%S"
    caller = np.where(kind == 0, number, np.char.add("Ext.", ext_a))
    callee = np.where(kind == 1, number, np.char.add("Ext.", ext_b))
    chain = np.char.add(np.char.add(np.char.add("Chain: ", caller), ","), callee)
    chain = np.where(transfers >= 1, np.char.add(np.char.add(chain, ",Ext."), ext_c), chain)
    chain = np.where(transfers >= 2, np.char.add(np.char.add(chain, ",Ext."), ext_a), chain)
    chain = np.char.add(chain, ",")
    frame = pd.DataFrame({
        "historyid": np.char.add("Call ", np.arange(first, first + rows).astype(str)),
        "callid": np.char.add("00000000BENCH", np.arange(first, first + rows).astype(str)),
        "duration": "",
        "time_start": start.strftime(fmt),
        "time_answered": np.where(answered, pd.DatetimeIndex(answer_time).strftime(fmt), ""),
        "time_end": pd.DatetimeIndex(end_time).strftime(fmt),
        "reason_terminated": np.where(answered, "TerminatedBySrc", "Failed_Cancelled"),
        "from_no": caller,
        "to_no": callee,
        "from_dn": np.where(kind == 0, "10000", ext_a),
        "to_dn": np.where(kind == 1, "10001", ext_b),
        "dial_no": callee,
        "reason_changed": np.where(transfers >= 1, "ReplacedDst", ""),
        "final_number": "", "final_dn": "", "bill_code": "", "bill_rate": "", "bill_cost": "", "bill_name": "",
        "chain": chain,
        "from_type": np.where(kind == 0, "External", "Internal"),
        "to_type": np.where(kind == 1, "External", "Internal"),
        "final_type": np.where(kind == 1, "External", "Internal"),
        "from_dispname": "", "to_dispname": "", "final_dispname": "", "missed_queue_calls": "",
    }, columns=list(FIELDS))
    frame.to_csv(path, header=False, index=False, mode="a")


def write_asterisk_csv(path: Path, rows: int, seed: int = 11) -> int:
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


def write_v20_export(path: Path, calls: int) -> None:
    """The demo company's 3CX v20 export of ``calls`` calls (cdroutput.csv, cdrrecordings.csv) in folder ``path``."""
    from dimnb.demo.generate import generate

    generate(path, calls=calls, audio=False)


BARE = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[2])
con.execute("SET enable_progress_bar = false")
rows = 0
for n, (path, columns, skip) in enumerate(json.loads(sys.argv[1])):
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
    con.execute(f"CREATE TABLE t{n} AS SELECT * FROM read_csv($f, columns = {spec}, header = false, skip = $skip, "
                "auto_detect = false)", {"f": path, "skip": skip})
    rows += con.execute(f"SELECT count(*) FROM t{n}").fetchone()[0]
con.execute("CHECKPOINT")
print(rows)
"""


def bare_files(system: str, path: Path, columns: tuple[str, ...]) -> list[tuple[str, list[str], int]]:
    """(file, columns, header lines) for the bare read of what ``write`` wrote at ``path``."""
    if system != "3cx-v20":
        return [(str(path), list(columns), 0)]
    from dimnb.demo.generate import CDR_COLUMNS, RECORDING_COLUMNS

    return [(str(path / "cdroutput.csv"), list(CDR_COLUMNS), 1),
            (str(path / "cdrrecordings.csv"), list(RECORDING_COLUMNS), 1)]


def check_summary(system: str, out: str, rows: int) -> None:
    """Stop unless the load's summary shows every row (v20: every call) loaded and nothing quarantined."""
    whole = f"total: {rows} calls loaded" in out if system == "3cx-v20" else f"{rows} rows" in out
    if not (whole and " 0 quarantined" in out):
        raise SystemExit(f"the load did not load everything:\n{out}")

# system -> what writes its file, the file's columns (for the bare read), the `dimnb load` arguments after it.
CASES: dict[str, tuple[Callable[[Path, int], object], tuple[str, ...], list[str]]] = {
    "3cx": (write_legacy_csv, tuple(FIELDS), []),
    "asterisk": (write_asterisk_csv, CDR_CSV_LAYOUTS["cdr_csv-21"], ["--timezone", "UTC"]),
    "3cx-v20": (write_v20_export, (), []),
}


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) of the child, stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=sorted(CASES), default="3cx", help="which loader (default: 3cx)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="200,000 rows (3cx-v20: 50,000 calls)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the median counts")
    parser.add_argument("--write", help=argparse.SUPPRESS)
    args = parser.parse_args()
    write, columns, load_args = CASES[args.system]
    if args.write:
        write(Path(args.write), args.rows)
        return
    rows = (50_000 if args.system == "3cx-v20" else 200_000) if args.quick else args.rows
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="dimnb-bench-ingest-") as tmp:
        work = Path(tmp)
        csv_path = work / ("export" if args.system == "3cx-v20" else "cdr.csv")
        t0 = time.perf_counter()
        # Generate in a child: Linux carries a parent's peak RSS into children it spawns, which would
        # make the load's peak look as big as the generator's.
        subprocess.run([sys.executable, __file__, "--write", str(csv_path), "--rows", str(rows), "--system", args.system],
                       env=env, check=True)
        files = bare_files(args.system, csv_path, columns)
        size = sum(Path(f).stat().st_size for f, _c, _s in files)
        unit = "calls" if args.system == "3cx-v20" else "rows"
        print(f"generated {rows:,} {unit} ({size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s")
        bare_times, load_times, peaks, ratios, cpu_ratios = [], [], [], [], []
        for attempt in range(args.repeat):
            seconds, bare_cpu, out = run([sys.executable, "-c", BARE, json.dumps(files),
                                          str(work / f"bare{attempt}.duckdb")], env)
            assert args.system == "3cx-v20" or int(out.strip()) == rows
            bare_times.append(seconds)
            data = work / f"data{attempt}"
            subprocess.run([sys.executable, "-m", "dimnb", "init", "--data", str(data)], env=env, check=True,
                           capture_output=True)
            # Measure the load alone: a fresh interpreter whose only job is `dimnb load`.
            seconds, load_cpu, out = run([sys.executable, "-c",
                                       "import resource, sys; from dimnb.cli import main; "
                                       "sys.argv = ['dimnb'] + sys.argv[1:]\n"
                                       "code = 0\ntry:\n    main()\nexcept SystemExit as exc:\n    code = exc.code or 0\n"
                                       "print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
                                       "sys.exit(code)",  # a failed load stops the bench (run() shows why)
                                       "load", args.system.split("-")[0], str(csv_path), "--data", str(data),
                                       "--no-progress",
                                       *load_args], env)
            check_summary(args.system, out, rows)
            peaks.append(int(out.strip().splitlines()[-1].split()[1]) * 1024)
            load_times.append(seconds)
            ratios.append(load_times[-1] / bare_times[-1])
            cpu_ratios.append(load_cpu / bare_cpu)
            print(f"run {attempt + 1}: bare read_csv {bare_times[-1]:.2f} s ({bare_cpu:.2f} s CPU), "
                  f"dimnb load {load_times[-1]:.2f} s ({load_cpu:.2f} s CPU), ratio {ratios[-1]:.2f}, "
                  f"peak {peaks[-1] / 2**20:.0f} MiB")
        bare = float(np.median(bare_times))
        load = float(np.median(load_times))
        peak = max(peaks)
        print(f"rows: {rows:,}")
        print(f"bare DuckDB read_csv (median): {bare:.2f} s")
        print(f"dimnb load {args.system} (median): {load:.2f} s  ({rows / load:,.0f} rows/s)")
        print(f"peak memory of the load: {peak / 2**20:.0f} MiB (target <= 1024 MiB)")
        print(f"CPU-time ratio (median of runs): {float(np.median(cpu_ratios)):.2f}")
        # Each run times both sides back to back, so the per-run ratio cancels most of the machine's noise.
        print(f"ratio: {float(np.median(ratios)):.2f} (target <= 2.0)")


if __name__ == "__main__":
    main()
