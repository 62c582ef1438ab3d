"""Throughput of `dimnb archive` as a ratio of `cp` copying the same files, measured in the same run.

    python bench/archive.py [--calls 1600] [--rounds 3] [--jobs 2] [--quick] [--keep DIR]

The demo generator writes a 3CX v20 export with WAV recordings (about 250 kB
per demo call; 1600 calls is ~400 MB, --quick 300 calls ~75 MB), which is
loaded into a fresh data directory. Each round then times, on the same files:

- `cp -r Recordings/. dest/`: the baseline the target is stated against;
- the same `cp` followed by `sync` of every copied file: a copy as durable as
  the job's (the job flushes each copy to disk before making it available);
- the whole job, `python -m dimnb archive` (process start, copy, fsync, sha256
  verification, rename, publish), from a freshly loaded call store and an
  empty archive.

Before every timed command the source files are evicted from the page cache
(posix_fadvise DONTNEED on each file: only these files, nothing else on the
machine), so each reads from disk as the nightly job does, and dirty data is
flushed so no command pays for another's writes. The median of the rounds is
reported. Last line: the job's throughput relative to cp (target >= 0.7).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def evict(paths: list[Path]) -> None:
    """Drop these files' pages from the page cache (they must be clean: fsync first)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def settle(sources: list[Path]) -> None:
    subprocess.run(["sync"], check=True)
    evict(sources)


def timed(command: list[str] | str, **kwargs) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return elapsed, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="dimnb archive --jobs")
    parser.add_argument("--quick", action="store_true", help="300 calls, 2 rounds (well under a minute)")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args(argv)
    calls, rounds = (300, 2) if args.quick else (args.calls, args.rounds)

    from dimnb.demo.generate import generate
    from dimnb.directory import import_directory
    from dimnb.ingest.threecx import load_3cx
    from dimnb.store.stores import Stores

    base = args.keep or Path(tempfile.mkdtemp(prefix="dimnb-bench-archive-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        pbx, data = base / "pbx", base / "data"
        generate(pbx, calls=calls, seed=11)
        stores = Stores.open(str(data), create=True)
        import_directory(stores.state, pbx / "directory.json")
        load_3cx(stores, [pbx])
        pending = stores.calls.query(
            "SELECT count(*), sum(size_bytes) FROM recordings WHERE state = 'pending_archive'")[0]
        stores.close()
        shutil.copytree(data / "calls", base / "calls.pristine", symlinks=True)
        recordings = pbx / "Recordings"
        sources = _files(recordings)
        total = sum(p.stat().st_size for p in sources)
        print(f"{len(sources)} WAV files, {total / 1e6:.0f} MB ({pending[0]} pending recordings, "
              f"{(pending[1] or 0) / 1e6:.0f} MB); {os.cpu_count()} CPUs; {rounds} rounds", flush=True)

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        job = [sys.executable, "-m", "dimnb", "archive", "--data", str(data), "--no-progress", "--jobs", str(args.jobs)]
        cp_times, cp_sync_times, job_times, in_job = [], [], [], []
        for round_no in range(1, rounds + 1):
            dest = base / "cp-dest"
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            settle(sources)
            seconds, _ = timed(["cp", "-r", f"{recordings}/.", f"{dest}/"])
            cp_times.append(seconds)

            shutil.rmtree(dest)
            dest.mkdir()
            settle(sources)
            seconds, _ = timed(f"cp -r '{recordings}/.' '{dest}/' && find '{dest}' -type f -exec sync {{}} +",
                               shell=True)
            cp_sync_times.append(seconds)
            shutil.rmtree(dest)

            shutil.rmtree(data / "calls")
            shutil.copytree(base / "calls.pristine", data / "calls", symlinks=True)
            shutil.rmtree(data / "archive", ignore_errors=True)
            settle(sources)
            seconds, result = timed(job, env=env)
            job_times.append(seconds)
            summary = result.stdout.strip().splitlines()
            line = next(x for x in summary if " archived (" in x)
            archived = int(line.split(" ", 1)[0])
            if archived != pending[0]:
                raise SystemExit(f"the job archived {archived} of {pending[0]} recordings:\n{result.stdout}")
            in_job.append(float(json.loads((data / "archive" / "last-run.json").read_text())["seconds"]))
            print(f"round {round_no}: cp {cp_times[-1]:.2f} s, cp+sync {cp_sync_times[-1]:.2f} s, "
                  f"dimnb archive {seconds:.2f} s (of which the run itself {in_job[-1]:.2f} s)", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    cp, cp_sync, whole, inner = (statistics.median(x) for x in (cp_times, cp_sync_times, job_times, in_job))
    mb = total / 1e6
    print(f"median: cp {mb / cp:.0f} MB/s, cp+sync {mb / cp_sync:.0f} MB/s, "
          f"dimnb archive {mb / whole:.0f} MB/s (the run without process start: {mb / inner:.0f} MB/s)")
    # Ratios per round (each round's commands ran back to back), then the median: steadier on a shared machine.
    vs_sync = statistics.median(s / j for s, j in zip(cp_sync_times, job_times, strict=True))
    vs_cp = statistics.median(c / j for c, j in zip(cp_times, job_times, strict=True))
    print(f"archive/cp+sync throughput: {vs_sync:.2f} (a copy as durable as the job's)")
    print(f"archive/cp throughput: {vs_cp:.2f} (target >= 0.7)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
