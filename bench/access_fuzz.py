"""The access rule against its reference model on many random worlds; counts the differences (must be 0).

Same worlds and comparison as tests/test_access_model.py (tests/access_worlds.py:
each world built in a real data directory, every user's listing, can_play,
could_play_once_archived and why compared with tests/access_reference.py),
but many more of them, and differences are counted instead of stopping at
the first.

    PYTHONPATH=. python bench/access_fuzz.py              # 1,000 worlds (~4 minutes)
    PYTHONPATH=. python bench/access_fuzz.py --quick      # 150 worlds
    PYTHONPATH=. python bench/access_fuzz.py --worlds 5000 --seed 7
    PYTHONPATH=. python bench/access_fuzz.py --engine spark   # the same worlds through Parquet + Spark local[2]

``--engine spark`` (tests/access_spark.py): each world is exported with
``dimnb export parquet`` and every user's listing, markers, playable and
pending recordings come from ``dimnb.spark`` (the scope rendered from the same
``access.scope_expr``), in batches of worlds per Spark job. ``why`` has no
Spark form and is not compared there.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from tqdm import tqdm  # noqa: E402

import access_worlds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="150 worlds instead of 1,000")
    parser.add_argument("--worlds", type=int, help="number of worlds (overrides --quick)")
    parser.add_argument("--seed", type=int, default=20261120, help="hypothesis seed (same seed, same worlds)")
    parser.add_argument("--show", type=int, default=10, help="print up to this many differences")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                        help="where the scoped queries run (spark: exported Parquet on Spark local[2])")
    parser.add_argument("--batch", type=int, default=100, help="worlds per Spark job (--engine spark)")
    args = parser.parse_args()
    target = args.worlds or (150 if args.quick else 1000)
    if args.engine == "spark":
        return spark_main(args, target)

    counts = {"worlds": 0, "mismatches": 0, "worlds_with_mismatches": 0, "calls": 0, "recordings": 0, "users": 0}
    shown: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="dimnb-access-fuzz-"))
    bar = tqdm(total=target, desc="worlds", unit="world", file=sys.stderr)

    @seed(args.seed)
    @settings(max_examples=target, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(world=access_worlds.worlds())
    def one(world) -> None:
        data_dir = work / f"world-{counts['worlds']}"
        diffs = access_worlds.differences(world, data_dir)
        counts["worlds"] += 1
        counts["calls"] += len(world.calls)
        counts["recordings"] += sum(len(c.recordings) for c in world.calls)
        counts["users"] += len(world.directory.users)
        if diffs:
            counts["mismatches"] += len(diffs)
            counts["worlds_with_mismatches"] += 1
            shown.extend(f"world {counts['worlds']}: {d}" for d in diffs[: max(0, args.show - len(shown))])
        bar.update(1)

    started = time.perf_counter()
    try:
        one()
    finally:
        bar.close()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    for line in shown:
        print(line)
    print(f"{counts['worlds']} worlds ({counts['users']} users, {counts['calls']} calls, "
          f"{counts['recordings']} recordings) in {elapsed:.0f} s, seed {args.seed}; "
          f"worlds with differences: {counts['worlds_with_mismatches']}")
    if counts["worlds"] < target:
        print(f"warning: hypothesis produced only {counts['worlds']} of {target} worlds")
    print(f"mismatches: {counts['mismatches']} (target == 0)")


def spark_main(args: argparse.Namespace, target: int) -> None:
    import access_spark  # tests/access_spark.py
    from dimnb.spark import local_session

    work = Path(tempfile.mkdtemp(prefix="dimnb-access-fuzz-spark-"))
    counts = {"worlds": 0, "mismatches": 0, "calls": 0, "recordings": 0, "users": 0}
    shown: list[str] = []
    started = time.perf_counter()
    session = local_session("dimnb-access-fuzz", config=access_spark.SMALL_DATA_CONFIG)
    session.sparkContext.setLogLevel("ERROR")
    spark_start = time.perf_counter() - started
    bar = tqdm(total=target, desc="worlds", unit="world", file=sys.stderr)
    batch: list = []

    def run_batch() -> None:
        diffs = access_spark.differences(session, batch, work)
        counts["mismatches"] += len(diffs)
        shown.extend(diffs[: max(0, args.show - len(shown))])
        for case in batch:
            shutil.rmtree(work / f"world-{case.number}", ignore_errors=True)
        batch.clear()

    @seed(args.seed)
    @settings(max_examples=target, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(world=access_worlds.worlds())
    def one(world) -> None:
        batch.append(access_spark.prepare(counts["worlds"], world, work))
        counts["worlds"] += 1
        counts["calls"] += len(world.calls)
        counts["recordings"] += sum(len(c.recordings) for c in world.calls)
        counts["users"] += len(world.directory.users)
        if len(batch) >= args.batch:
            run_batch()
        bar.update(1)

    try:
        one()
        if batch:
            run_batch()
    finally:
        bar.close()
        session.stop()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    for line in shown:
        print(line)
    print(f"engine spark (local[2], session start {spark_start:.0f} s): {counts['worlds']} worlds "
          f"({counts['users']} users, {counts['calls']} calls, {counts['recordings']} recordings) "
          f"in {elapsed:.0f} s, seed {args.seed}")
    if counts["worlds"] < target:
        print(f"warning: hypothesis produced only {counts['worlds']} of {target} worlds")
    print(f"mismatches: {counts['mismatches']} (target == 0)")


if __name__ == "__main__":
    main()
