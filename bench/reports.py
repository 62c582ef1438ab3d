"""How fast the Call List's first page comes back on a big call store, next to bare DuckDB running the same SQL.

    python bench/reports.py                    # 1,000,000 demo calls (built once into .bench/, minutes the first time)
    python bench/reports.py --quick            # 50,000 calls, under a minute
    python bench/reports.py --calls 10000000   # 10M (the build takes ~10 minutes and ~15 GB of disk)
    python bench/reports.py --data DIR         # a demo data directory built before (by this bench or another)

The store is the demo company at scale: ``dimnb.demo.generate`` without
audio, then the production directory import and ``load_3cx`` over the
generated folder. Its recordings have no files, so, to give the "only calls
with recordings" filter something to find, they are all marked ``available``
in ONE write generation after the load (as if the archive job had run once).

For each of five typical filter sets, as Maria (report scope and playback
Member Groups), it measures the median time of what the Call List shows
first: ``reports.list_call_rows`` for page 1 plus its total as the page shows
it (``reports.count_calls_upto``: exact up to 10,000 matches, else "more than
10,000 calls"), and the median time of a fresh bare DuckDB connection to the
same generation file running exactly those statements (``reports.statements``,
``reports.count_upto_statement``). The exact count (what the page showed
before the cap) is timed beside it for reference. The build stops on a load
that failed or quarantined anything. Last line: ``metric: value (target op value)``.

``--other-reports`` (dimnb.report_queries) measures, as Maria, each of the
other reports (agents, groups, missed, activity by day and by hour) over the
whole store, next to a bare DuckDB connection running the same statement
(``report_queries.statement``); and the Call List exports of all of Maria's
calls to CSV and XLSX (dimnb.exports) next to a bare ``COPY`` of the same rows
and columns to CSV. Last line then: the slower of the two export ratios
(target <= 1.5).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from dimnb import access, reports  # noqa: E402
from dimnb.filters import Filters  # noqa: E402
from dimnb.store.stores import Stores  # noqa: E402

TARGET_MS = 50.0
REPORT_TARGET_MS = 300.0
EXPORT_TARGET_RATIO = 1.5
LOGIN = "maria"


def _migrate(data_dir: Path) -> None:
    """A store cached by an older dimnb: bring it to this call-store schema (one write generation)."""
    from dimnb.store import callschema

    stores = Stores.open(str(data_dir))
    if callschema.schema_version(stores.calls.cursor()) < callschema.SCHEMA_VERSION:
        with stores.calls.write():
            pass
    stores.close()


def build_store(calls: int) -> Path:
    """The demo company at ``calls`` calls, loaded through the production loader; cached under .bench/."""
    from dimnb.demo.generate import generate
    from dimnb.directory import import_directory
    from dimnb.ingest import staging
    from dimnb.ingest.loader import sync_directory
    from dimnb.ingest.threecx import load_3cx

    data_dir = ROOT / ".bench" / f"reports-{calls}"
    done = data_dir / ".complete"
    if done.exists():
        _migrate(data_dir)
        return data_dir
    if data_dir.exists():
        shutil.rmtree(data_dir)
    t0 = time.perf_counter()
    pbx = data_dir / "pbx"
    generate(pbx, calls=calls, audio=False, progress=True)
    stores = Stores.open(str(data_dir), create=True)
    import_directory(stores.state, pbx / "directory.json")
    with stores.calls.write() as con:
        sync_directory(con, stores)
    check_load(load_3cx(stores, [pbx], progress=True))
    with stores.calls.write() as con:  # one generation: every recording available, counters refreshed
        con.execute("UPDATE recordings SET state = 'available', archive_path = NULL WHERE state <> 'available'")
        staging.refresh_recording_counts(con, "SELECT call_id FROM calls")
    stores.close()
    done.write_text("ok\n")
    print(f"built {data_dir} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return data_dir


def check_load(summary: Any) -> None:
    """Stop the bench on a load that failed or quarantined rows: a store missing calls measures nothing."""
    print(summary.lines()[-1], file=sys.stderr)
    if summary.failed or summary.total("quarantined") or not summary.total("calls_added"):
        raise SystemExit("the load of the bench store did not load everything:\n" + "\n".join(summary.lines()))


FILTER_SETS: dict[str, dict[str, Any]] = {
    "last 7 days": {"period": "last_7_days"},
    "inbound answered": {"direction": "inbound", "outcome": "answered"},
    "party substring": {"party": "7946 05"},
    "group + min duration": {"group": "Support", "min_duration": 180},
    "with recordings": {"with_recordings": True},
}


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench(data_dir: Path, rounds: int) -> list[dict[str, Any]]:
    stores = Stores.open(str(data_dir))
    end = stores.calls.query("SELECT max(start_time) FROM calls")[0][0]
    now = (end + timedelta(hours=6)).astimezone(end.tzinfo)  # "today" is the data's last day
    path = stores.calls.directory / stores.calls.current_name()
    bare = duckdb.connect(str(path), read_only=True)
    bare.execute("SET TimeZone = 'UTC'")
    results = []
    for label, values in FILTER_SETS.items():
        filters = Filters.parse({**values, "timezone": "Europe/London"})
        rows_t, total_t, exact_t, bare_rows_t, bare_total_t = [], [], [], [], []
        for i in range(rounds + 2):  # two warm-up rounds
            t0 = time.perf_counter()
            actor = access.load_actor(stores.state, LOGIN)  # a widget re-reads the grants on every query
            resolved = reports.resolve(stores.calls, filters, state=stores.state)
            page = reports.list_call_rows(stores.calls, actor, resolved, page_size=50, with_total=False, now=now)
            t1 = time.perf_counter()
            shown = reports.count_calls_upto(stores.calls, actor, resolved, now=now)
            t2 = time.perf_counter()
            exact = reports.count_calls(stores.calls, actor, resolved, now=now)
            t3 = time.perf_counter()
            built = reports.statements(actor, resolved, page_size=50, now=now)
            count = reports.count_upto_statement(actor, resolved, now=now)
            t4 = time.perf_counter()
            bare_rows = bare.execute(built.page.sql, built.page.params).fetchall()
            t5 = time.perf_counter()
            bare_total = bare.execute(count.sql, count.params).fetchone()[0]
            t6 = time.perf_counter()
            assert len(bare_rows) == len(page.rows) and min(bare_total, shown.count) == shown.count, label
            assert shown.capped == (exact > shown.count) and (shown.capped or shown.count == exact), label
            if i >= 2:
                rows_t.append(t1 - t0)
                total_t.append(t2 - t1)
                exact_t.append(t3 - t2)
                bare_rows_t.append(t5 - t4)
                bare_total_t.append(t6 - t5)
        both = [a + b for a, b in zip(rows_t, total_t)]
        bare_both = [a + b for a, b in zip(bare_rows_t, bare_total_t)]
        results.append({"label": label, "total": exact, "shown": shown.label, "rows_ms": median_ms(rows_t),
                        "total_ms": median_ms(total_t), "exact_ms": median_ms(exact_t), "page_ms": median_ms(both),
                        "bare_rows_ms": median_ms(bare_rows_t), "bare_page_ms": median_ms(bare_both)})
    bare.close()
    stores.close()
    return results


# ---------------------------------------------------------------------------- the other reports and the exports


REPORT_RUNS: dict[str, dict[str, Any]] = {
    "agents": {}, "groups": {}, "missed": {}, "activity (days)": {"by": "day"}, "activity (hours)": {"by": "hour"},
}


def bench_other_reports(data_dir: Path, rounds: int) -> list[dict[str, Any]]:
    """Each report as Maria over the whole store: ``report_queries.report`` vs the same statement on bare DuckDB."""
    from dimnb import report_queries

    stores = Stores.open(str(data_dir))
    bare = duckdb.connect(str(stores.calls.directory / stores.calls.current_name()), read_only=True)
    results = []
    for label, extra in REPORT_RUNS.items():
        name = label.split(" ")[0]
        opts = report_queries.options(Filters(timezone="Europe/London"), **extra)
        times, bare_times = [], []
        for i in range(rounds + 1):  # one warm-up round
            t0 = time.perf_counter()
            actor = access.load_actor(stores.state, LOGIN)
            frame = report_queries.report(stores, actor, name, opts)
            t1 = time.perf_counter()
            resolved = reports.resolve(stores.calls, opts.filters, state=stores.state)
            built = report_queries.statement(stores.calls, actor, name, resolved, opts, state=stores.state)
            t2 = time.perf_counter()
            rows = bare.execute(built.sql, built.params).df()  # a DataFrame, as wb.report returns
            t3 = time.perf_counter()
            assert len(rows) == len(frame), label
            if i >= 1:
                times.append(t1 - t0)
                bare_times.append(t3 - t2)
        results.append({"label": label, "rows": len(frame), "ms": median_ms(times), "bare_ms": median_ms(bare_times)})
    bare.close()
    stores.close()
    return results


def bench_exports(data_dir: Path) -> list[dict[str, Any]]:
    """Maria's whole Call List to CSV and to XLSX (best of two) vs a bare COPY of the same rows and columns."""
    import tempfile

    from dimnb import exports
    from dimnb.actions import VIEW_CALLS
    from dimnb.workbench import Workbench

    stores = Stores.open(str(data_dir))
    wb = Workbench(stores, LOGIN)
    actor = wb.actor
    scope = access.scope_sql(actor, VIEW_CALLS)
    columns = ", ".join(f"c.{c}" if c not in ("groups", "recording") else
                        ("array_to_string(c.group_tags, ', ')" if c == "groups" else "c.recordings_available")
                        for c in reports.COLUMNS)
    bare = duckdb.connect(str(stores.calls.directory / stores.calls.current_name()), read_only=True)
    out = []
    with tempfile.TemporaryDirectory(prefix="dimnb-bench-export-", dir=data_dir.parent) as scratch:
        def best(run: Any) -> tuple[float, int]:
            samples = []
            for _ in range(2):
                t0 = time.perf_counter()
                rows = run()
                samples.append(time.perf_counter() - t0)
            return min(samples), rows

        bare_s, bare_rows = best(lambda: bare.execute(
            f"COPY (SELECT {columns} FROM calls c WHERE {scope.sql} ORDER BY c.start_time DESC, c.call_id DESC) "
            f"TO '{scratch}/bare.csv' (HEADER)", scope.params).fetchone()[0])
        all_s, all_rows = best(lambda: bare.execute(f"COPY calls TO '{scratch}/all.csv' (HEADER)").fetchone()[0])
        csv_s, csv_rows = best(lambda: wb.export_csv(Path(scratch) / "calls.csv", timezone="Europe/London"))
        assert bare_rows == csv_rows
        out = [{"label": "bare COPY, same rows", "rows": bare_rows, "s": bare_s,
                "mb": (Path(scratch) / "bare.csv").stat().st_size / 1e6},
               {"label": "bare COPY, all calls", "rows": all_rows, "s": all_s, "mb": None},
               {"label": "export CSV", "rows": csv_rows, "s": csv_s,
                "mb": (Path(scratch) / "calls.csv").stat().st_size / 1e6}]
        if bare_rows + 1 <= exports.XLSX_MAX_ROWS:  # past Excel's sheet limit the export refuses, as it should
            xlsx_s, xlsx_rows = best(lambda: wb.export_xlsx(Path(scratch) / "calls.xlsx", timezone="Europe/London"))
            assert xlsx_rows == bare_rows
            out.append({"label": "export XLSX", "rows": xlsx_rows, "s": xlsx_s,
                        "mb": (Path(scratch) / "calls.xlsx").stat().st_size / 1e6})
        else:
            print(f"export XLSX: not measured, {bare_rows:,} rows are more than an XLSX sheet holds", file=sys.stderr)
    bare.close()
    stores.close()
    return out


def other_reports_main(data_dir: Path, calls: int, rounds: int) -> None:
    results = bench_other_reports(data_dir, rounds)
    print(f"calls in store: {calls:,}; as {LOGIN} (Member Groups), whole store; {rounds} timed runs each")
    print(f"{'report':<18} {'rows':>7} {'dimnb':>9} {'bare':>9} {'ratio':>6}")
    for r in results:
        print(f"{r['label']:<18} {r['rows']:>7,} {r['ms']:>7.1f}ms {r['bare_ms']:>7.1f}ms {r['ms'] / r['bare_ms']:>5.2f}x")
    print(f"worst report median: {max(r['ms'] for r in results):.1f} ms (target <= {REPORT_TARGET_MS:.0f})")
    exported = bench_exports(data_dir)
    base = exported[0]["s"]
    for r in exported:
        size = f"{r['mb']:.0f} MB" if r["mb"] is not None else ""
        print(f"{r['label']:<22} {r['rows']:>9,} rows {r['s']:>6.2f}s {size:>7}   {r['s'] / base:>4.2f}x same-rows COPY")
    worst = max(r["s"] / base for r in exported[2:])
    measured = " and ".join(r["label"].removeprefix("export ") for r in exported[2:])
    print(f"export_ratio_to_bare_copy (worst of {measured}): {worst:.2f} (target <= {EXPORT_TARGET_RATIO})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 calls")
    parser.add_argument("--calls", type=int, help="override the number of calls")
    parser.add_argument("--rounds", type=int, help="timed runs per filter set (default 15, --quick 7)")
    parser.add_argument("--data", type=Path, help="measure this (demo company) data directory instead of building one")
    parser.add_argument("--other-reports", action="store_true",
                        help="the Agent/Group/Missed/Activity reports and the CSV/XLSX exports instead")
    args = parser.parse_args()
    rounds = args.rounds or (7 if args.quick else 15)
    if args.data:
        data_dir = args.data
        calls = Stores.open(str(data_dir)).calls.query("SELECT count(*) FROM calls")[0][0]
    else:
        calls = args.calls or (50_000 if args.quick else 1_000_000)
        data_dir = build_store(calls)
    if args.other_reports:
        other_reports_main(data_dir, calls, rounds)
        return
    results = bench(data_dir, rounds)
    print(f"calls in store: {calls:,}; as {LOGIN} (Member Groups); {rounds} timed runs each")
    print(f"{'filter set':<22} {'matches':>10} {'shown':>22} {'rows':>8} {'+shown':>8} {'= page':>8}   "
          f"{'bare page':>9} {'ratio':>6}   {'exact count':>11}")
    for r in results:
        print(f"{r['label']:<22} {r['total']:>10,} {r['shown']:>22} {r['rows_ms']:>6.1f}ms {r['total_ms']:>6.1f}ms "
              f"{r['page_ms']:>6.1f}ms   {r['bare_page_ms']:>7.1f}ms {r['page_ms'] / r['bare_page_ms']:>5.2f}x   "
              f"{r['exact_ms']:>9.1f}ms")
    print("rows: page 1 (50 rows) as the table shows it first, with the grants read and the party resolved; "
          f"+shown: the total as the page shows it (exact up to {reports.TOTAL_CAP:,}); bare: a plain DuckDB "
          "connection running the same SQL; exact count: counting every match (not shown past the cap)")
    worst_rows = max(r["rows_ms"] for r in results)
    worst = max(r["page_ms"] for r in results)
    worst_exact = max(r["exact_ms"] for r in results)
    print(f"worst median, rows only: {worst_rows:.1f} ms; worst exact count: {worst_exact:.1f} ms")
    print(f"call_list_first_page_median_ms (rows + shown total, worst of five): {worst:.1f} "
          f"(target <= {TARGET_MS:.0f})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--build-only"]:
        build_store(int(sys.argv[2]))
    else:
        main()
