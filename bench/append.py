"""What appending 10k calls to a big call store costs, next to bare DuckDB appending the same rows into one table.

    python bench/append.py                        # a store of 1,000,000 demo calls (built once into .bench/)
    python bench/append.py --quick                # 100,000 calls, under a minute once the store is built
    python bench/append.py --calls 10000000       # full size (reuses .bench/reports-10000000 when present)

The store is bench/reports.py's demo company (``build_store``, cached under
``.bench/reports-N`` and brought to this dimnb's schema through the usual
migration). The bench appends to a *clone* of it: a hard link to the
current generation's base (generations never write their base) and a copy
of its delta and of the state store, so the cached store stays as built.

Each round appends a fresh demo day of ``--batch`` calls (``dimnb.demo.generate``,
3CX v20 ``cdroutput.csv`` + ``cdrrecordings.csv``, later than everything in
the store) through the real loader (``load_3cx``), timed until it is
published. *Cached*: the store's files are in the page cache. *Cold*: before
the load, the page cache of the store's files (and of the batch) is dropped
with ``posix_fadvise(DONTNEED)`` after an ``fsync`` (only those files: a
global ``drop_caches`` would disturb whoever else shares the machine). Then
the same batch is loaded again: it must publish nothing.

Baseline, in the same run: a bare DuckDB file holding a table of N rows (the
batch's CDRs repeated) to which the same batch's ``cdroutput.csv`` is
appended with ``INSERT ... FROM read_csv`` and a checkpoint.
Last line: ``metric: append 10k into N: X s (target <= 1 s)``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import duckdb  # noqa: E402

from dimnb.store import callstore  # noqa: E402
from dimnb.store.callstore import wal_path  # noqa: E402
from dimnb.store.callstore import CallStore  # noqa: E402
from dimnb.store.stores import Stores  # noqa: E402

TARGET_CACHED_S = 1.0
TARGET_COLD_S = 2.0


def clone_store(data_dir: Path, scratch: Path) -> Path:
    """A writable clone of ``data_dir`` sharing its call-store base by hard link."""
    if scratch.exists():
        shutil.rmtree(scratch)
    stores = Stores.open(str(data_dir))  # migrates a store cached by an older dimnb
    name = stores.calls.current_name()
    assert name is not None
    source = stores.calls.directory / name
    stores.close()
    (scratch / "calls").mkdir(parents=True)
    os.link(source, scratch / "calls" / name)
    if wal_path(source).exists():
        shutil.copyfile(wal_path(source), wal_path(scratch / "calls" / name))
    os.symlink(name, scratch / "calls" / "CURRENT")
    # the writers' private twin of the base, as a store that has been appended to before has it
    CallStore(scratch / "calls")._twin(scratch / "calls" / name)
    with sqlite3.connect(data_dir / "state.sqlite") as src, sqlite3.connect(scratch / "state.sqlite") as dst:
        src.backup(dst)
    return scratch


def drop_cache(paths: list[Path]) -> None:
    """Cold runs: these files out of the page cache (bench/archive.py's eviction)."""
    from archive import evict

    evict([path for path in paths if path.is_file()])


def store_files(data_dir: Path) -> list[Path]:
    calls = data_dir / "calls"
    return [calls / n for n in os.listdir(calls) if n.startswith("calls-")] + [data_dir / "state.sqlite"]


def make_batches(out: Path, rounds: int, batch: int, after: date) -> list[Path]:
    from dimnb.demo.generate import generate

    folders = []
    for r in range(rounds):
        folder = out / f"batch-{r}"
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            generate(folder, calls=batch, seed=1000 + r, end=after + timedelta(days=r + 1), days=1, audio=False)
            (folder / ".complete").write_text("ok\n")
        folders.append(folder)
    return folders


def timed_load(data_dir: Path, folder: Path) -> tuple[float, int, int | None, int | None]:
    from dimnb.ingest.threecx import load_3cx

    stores = Stores.open(str(data_dir))
    before = stores.calls.current_generation()
    t0 = time.perf_counter()
    summary = load_3cx(stores, [folder])
    elapsed = time.perf_counter() - t0
    failed = [r for r in summary.results if r.status == "failed"]
    if failed:
        raise SystemExit(f"load failed: {failed[0].message}")
    after = stores.calls.current_generation()
    stores.close()
    return elapsed, summary.total("calls_added"), before, after


def baseline(scratch: Path, rows: int, folders: list[Path], cold: bool) -> list[float]:
    """Bare DuckDB: the batch's CDR rows appended into one table of ``rows`` rows, checkpointed."""
    path = scratch / "bare.duckdb"
    for p in (path, wal_path(path)):
        if p.exists():
            p.unlink()
    first = str(folders[0] / "cdroutput.csv")
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE cdr AS FROM read_csv($f) LIMIT 0", {"f": first})
    per = con.execute("SELECT count(*) FROM read_csv($f)", {"f": first}).fetchone()[0]
    con.execute("INSERT INTO cdr SELECT c.* FROM read_csv($f) c, range($n)", {"f": first, "n": max(1, rows // per)})
    con.close()
    times = []
    for folder in folders:
        csv = folder / "cdroutput.csv"
        if cold:
            drop_cache([path, csv])
        t0 = time.perf_counter()
        con = duckdb.connect(str(path))
        con.execute("INSERT INTO cdr FROM read_csv($f)", {"f": str(csv)})
        con.execute("CHECKPOINT")
        con.close()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a store of 100,000 calls")
    parser.add_argument("--calls", type=int, help="calls in the store (default 1,000,000; full size 10,000,000)")
    parser.add_argument("--batch", type=int, default=10_000, help="calls per append (default 10,000)")
    parser.add_argument("--rounds", type=int, default=3, help="appends of each kind, cached and cold (default 3)")
    args = parser.parse_args()
    calls = args.calls or (100_000 if args.quick else 1_000_000)

    from reports import build_store  # bench/reports.py: the demo company at scale, cached

    data_dir = build_store(calls)
    work = ROOT / ".bench" / f"append-{calls}"
    work.mkdir(parents=True, exist_ok=True)
    scratch = clone_store(data_dir, work / "data")
    stores = Stores.open(str(scratch))
    end = stores.calls.query("SELECT max(start_time) FROM calls")[0][0]
    stored = stores.calls.query("SELECT count(*) FROM calls")[0][0]
    base = (stores.calls.directory / stores.calls.current_name()).stat().st_size
    stores.close()
    mode = "delta (WAL beside a shared base)" if base >= callstore._delta_above_bytes() else "whole copy (small base)"
    print(f"store: {stored:,} calls, base {base / 2**20:.0f} MiB: appends publish by {mode}")
    folders = make_batches(work, 2 * args.rounds, args.batch, end.date())

    import pandas  # noqa: F401  the loader's lazy imports: a running loader (dimnb listen) has them already
    import dimnb.ingest.threecx_recordings  # noqa: F401

    results: dict[str, list[float]] = {"cached": [], "cold": []}
    for i, folder in enumerate(folders):
        kind = "cached" if i % 2 == 0 else "cold"
        if kind == "cold":
            drop_cache(store_files(scratch) + [folder / "cdroutput.csv", folder / "cdrrecordings.csv"])
        elapsed, added, before, after = timed_load(scratch, folder)
        if added != args.batch or after == before:
            raise SystemExit(f"append {i}: {added} calls added, generation {before} -> {after}")
        results[kind].append(elapsed)
        print(f"append {i + 1} ({kind}): {added:,} calls in {elapsed:.2f} s (generation {before} -> {after})")
    again, added, before, after = timed_load(scratch, folders[0])
    reload_ok = added == 0 and after == before
    print(f"re-load of a loaded batch: {again:.2f} s, {added} calls added, generation {before} -> {after}"
          f" ({'published nothing' if reload_ok else 'PUBLISHED A GENERATION'})")

    bare_cached = baseline(work, stored, folders[: args.rounds], cold=False)
    bare_cold = baseline(work, stored, folders[: args.rounds], cold=True)
    cached, cold = statistics.median(results["cached"]), statistics.median(results["cold"])
    b_cached, b_cold = statistics.median(bare_cached), statistics.median(bare_cold)
    disk = sum(p.stat().st_size for p in store_files(scratch) if p.name.endswith(".wal"))
    twins = sum((scratch / "calls" / n).stat().st_size for n in os.listdir(scratch / "calls")
                if n.startswith(callstore.TWIN_PREFIX))
    print(f"store: {stored:,} calls; batch: {args.batch:,} calls; {args.rounds} appends each; medians")
    print(f"{'':8} {'dimnb':>8} {'bare':>8} {'ratio':>6}")
    print(f"{'cached':8} {cached:7.2f}s {b_cached:7.2f}s {cached / b_cached:5.1f}x")
    print(f"{'cold':8} {cold:7.2f}s {b_cold:7.2f}s {cold / b_cold:5.1f}x")
    print(f"on disk after {len(folders)} appends: deltas of the kept generations {disk / 2**20:.1f} MiB, "
          f"the writers' twin of the base {twins / 2**20:.0f} MiB (one per base, not per append)")
    if not reload_ok:
        raise SystemExit("a re-load published a generation")
    print(f"cold: {cold:.2f} s (target <= {TARGET_COLD_S:.0f} s)")
    print(f"metric: append {args.batch // 1000}k into {stored:,}: {cached:.2f} s (target <= {TARGET_CACHED_S:.0f} s)")


if __name__ == "__main__":
    main()
