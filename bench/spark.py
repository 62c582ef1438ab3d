"""A scoped Call List query on Spark local[2] over the Parquet export, next to DuckDB over the same Parquet
and next to dimnb's own call store: the numbers that tell an administrator when to move.

    python bench/spark.py                 # 10,000,000 calls (the store is built once into .bench/: long)
    python bench/spark.py --calls 1000000
    python bench/spark.py --quick         # 20,000 calls, under a minute once Spark has started

The store is bench/reports.py's (the demo company at scale, loaded by the
production loader, cached under .bench/reports-N); it is exported once with
``dimnb export parquet`` into .bench/spark-N (a re-run only checks that no
period changed). The query: Maria (report scope and playback Member Groups),
inbound calls of the last 30 days of data, newest first, the first 50 rows
plus the total, as the Call List shows them:

- store: ``reports.list_calls`` on the DuckDB call store;
- duckdb-parquet: the very same statements (``reports.statements``) on DuckDB
  with ``calls`` a view over the exported Parquet (Hive partitions);
- spark: ``dimnb.spark.calls`` (the same scope, rendered from
  ``access.scope_expr``), sorted and limited, plus its count, on local[2].

All three must return the same page and total (checked). Medians after one
warm-up run; Spark's session start is reported separately. Last line:
``metric: value (target op value)``; there is no absolute target on one
machine, the ratios are the point.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import duckdb  # noqa: E402

from dimnb import access, export_parquet, reports  # noqa: E402
from dimnb.filters import Filters  # noqa: E402
from dimnb.store.stores import Stores  # noqa: E402

LOGIN = "maria"
PAGE_SIZE = 50


def timed(run, rounds: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    result = run()  # warm-up
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 calls")
    parser.add_argument("--calls", type=int, help="calls in the store (default 10,000,000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per engine")
    args = parser.parse_args()
    calls = args.calls or (20_000 if args.quick else 10_000_000)

    from reports import build_store  # bench/reports.py: the cached demo store at scale

    data_dir = build_store(calls)
    stores = Stores.open(str(data_dir))
    out = ROOT / ".bench" / f"spark-{calls}"
    started = time.perf_counter()
    summary = export_parquet.export(stores, out, progress=True)
    export_s = time.perf_counter() - started
    print(f"calls: {calls:,}; export: {len(summary.written)} periods written, {summary.unchanged} unchanged "
          f"in {export_s:.1f} s ({out})")

    actor = access.load_actor(stores.state, LOGIN)
    end = stores.calls.query("SELECT max(start_time) FROM calls")[0][0] + timedelta(seconds=1)
    filters = Filters.parse(direction="inbound", start=end - timedelta(days=30), end=end)
    resolved = reports.resolve(stores.calls, filters, state=stores.state)

    def store_query():  # type: ignore[no-untyped-def]
        page = reports.list_calls(stores.calls, actor, resolved, page_size=PAGE_SIZE)
        return page.call_ids, page.total

    statements = reports.statements(actor, resolved, page_size=PAGE_SIZE)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.read_parquet(str(out / "calls" / "*" / "*" / "*.parquet"), hive_partitioning=True).create_view("calls")
    con.read_parquet(str(out / "segments" / "*" / "*" / "*.parquet"), hive_partitioning=True).create_view("segments")

    def parquet_query():  # type: ignore[no-untyped-def]
        rows = con.execute(statements.page.sql, statements.page.params).fetchall()
        total = con.execute(statements.count.sql, statements.count.params).fetchone()[0]
        return [int(r[12]) for r in rows], int(total)

    rounds = args.rounds
    store_ms, store_answer = timed(store_query, rounds)
    parquet_ms, parquet_answer = timed(parquet_query, rounds)

    from pyspark.sql import functions as F

    from dimnb import spark as dspark

    started = time.perf_counter()
    session = dspark.local_session("dimnb-bench")
    session.sparkContext.setLogLevel("ERROR")
    start_s = time.perf_counter() - started

    def spark_query():  # type: ignore[no-untyped-def]
        frame = dspark.calls(session, out, actor, filters)
        page = frame.orderBy(F.col("start_time").desc(), F.col("call_id").desc()).limit(PAGE_SIZE).collect()
        return [int(r.call_id) for r in page], frame.count()

    try:
        spark_ms, spark_answer = timed(spark_query, max(2, rounds // 2))
    finally:
        session.stop()

    same = store_answer == parquet_answer == spark_answer
    print(f"query: as {LOGIN} (Member Groups), inbound, last 30 days, first {PAGE_SIZE} rows + total "
          f"({store_answer[1]:,} calls); same answer on all three: {same}")
    print(f"store (DuckDB call store):        {store_ms:9.1f} ms")
    print(f"duckdb-parquet (same SQL):        {parquet_ms:9.1f} ms   {parquet_ms / store_ms:6.1f}x store")
    print(f"spark local[2] (dimnb.spark):     {spark_ms:9.1f} ms   {spark_ms / store_ms:6.1f}x store, "
          f"{spark_ms / parquet_ms:.1f}x duckdb-parquet (session start {start_s:.0f} s, not included)")
    if not same:
        print("ERROR: the engines disagree", file=sys.stderr)
        raise SystemExit(1)
    # No absolute target on one machine: the ratio is the information.
    print(f"metric: spark/store {spark_ms / store_ms:.1f}x (target > 0x)")


if __name__ == "__main__":
    main()
