"""Load a 1M-row 3CX legacy CDR file with `dimnb load 3cx` and compare with a bare DuckDB read_csv.

    python bench/ingest.py            # 1,000,000 rows
    python bench/ingest.py --quick    # 200,000 rows
    python bench/ingest.py --rows N

Both sides run as separate processes on the same file, in the same run, so
the ratio holds on a noisy machine; peak memory is the child's max RSS.
Target: load ≤ 2.0× the bare read, peak ≤ 1 GiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dimnb.ingest.threecx_legacy import FIELDS  # noqa: E402


def write_legacy_csv(path: Path, rows: int, seed: int = 1) -> None:
    """A realistic legacy export: inbound/outbound/internal, transfers, unanswered and failed calls."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01T08:00:00Z") + pd.to_timedelta(np.sort(rng.integers(0, 90 * 86400, rows)), "s")
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
        "historyid": np.char.add("Call ", np.arange(rows).astype(str)),
        "callid": np.char.add("00000000BENCH", np.arange(rows).astype(str)),
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
    frame.to_csv(path, header=False, index=False)


BARE = """
import sys, duckdb
from dimnb.ingest.threecx_legacy import FIELDS
con = duckdb.connect(sys.argv[2])
con.execute("SET enable_progress_bar = false")
spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in FIELDS) + "}"
con.execute(f"CREATE TABLE cdr AS SELECT * FROM read_csv($f, columns = {spec}, header = false, auto_detect = false)",
            {"f": sys.argv[1]})
con.execute("CHECKPOINT")
print(con.execute("SELECT count(*) FROM cdr").fetchone()[0])
"""


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
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="200,000 rows")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the median counts")
    parser.add_argument("--write", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write_legacy_csv(Path(args.write), args.rows)
        return
    rows = 200_000 if args.quick else args.rows
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="dimnb-bench-ingest-") as tmp:
        work = Path(tmp)
        csv_path = work / "cdr.csv"
        t0 = time.perf_counter()
        # Generate in a child: Linux carries a parent's peak RSS into children it spawns, which would
        # make the load's peak look as big as the generator's.
        subprocess.run([sys.executable, __file__, "--write", str(csv_path), "--rows", str(rows)], env=env, check=True)
        print(f"generated {rows:,} rows ({csv_path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s")
        bare_times, load_times, peaks, ratios, cpu_ratios = [], [], [], [], []
        for attempt in range(args.repeat):
            seconds, bare_cpu, out = run([sys.executable, "-c", BARE, str(csv_path), str(work / f"bare{attempt}.duckdb")], env)
            assert int(out.strip()) == rows
            bare_times.append(seconds)
            data = work / f"data{attempt}"
            subprocess.run([sys.executable, "-m", "dimnb", "init", "--data", str(data)], env=env, check=True,
                           capture_output=True)
            # Measure the load alone: a fresh interpreter whose only job is `dimnb load`.
            seconds, load_cpu, out = run([sys.executable, "-c",
                                       "import resource, sys; from dimnb.cli import main; "
                                       "sys.argv = ['dimnb'] + sys.argv[1:]\n"
                                       "try:\n    main()\nexcept SystemExit:\n    pass\n"
                                       "print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
                                       "load", "3cx", str(csv_path), "--data", str(data), "--no-progress"], env)
            assert f"{rows} calls loaded" in out, out
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
        print(f"dimnb load 3cx (median): {load:.2f} s  ({rows / load:,.0f} rows/s)")
        print(f"peak memory of the load: {peak / 2**20:.0f} MiB (target <= 1024 MiB)")
        print(f"CPU-time ratio (median of runs): {float(np.median(cpu_ratios)):.2f}")
        # Each run times both sides back to back, so the per-run ratio cancels most of the machine's noise.
        print(f"ratio: {float(np.median(ratios)):.2f} (target <= 2.0)")


if __name__ == "__main__":
    main()
