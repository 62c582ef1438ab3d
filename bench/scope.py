"""How much the access rule costs a Call List page, measured against the same query without it.

Builds (once, cached under ``.bench/scope/``) a data directory through the real
code paths: the demo generator writes a 3CX v20 export and directory.json,
``import_directory`` loads the directory, ``load_3cx`` loads the calls. The demo
recordings have no audio files here (``audio=False``), and the archive job is
not part of this bench, so recordings are marked ``available`` directly in one
write generation (``UPDATE recordings SET state = 'available'`` +
``staging.refresh_recording_counts``).

Then it times, in the same run, the first page (100 rows, newest first) of the
Call List with "only calls with recordings" over a 30-day window:

- scoped: ``reports.list_calls`` as a Member Groups user (report scope and
  playback grant both Member Groups: maria, primary group Management, also in
  Sales and Support);
- baseline: the same query with the scope condition replaced by TRUE (an
  All Calls user, whose scope is TRUE).

Prints both medians and their ratio; the last line is the ratio against its target.

    PYTHONPATH=. python bench/scope.py            # 1,000,000 calls
    PYTHONPATH=. python bench/scope.py --quick    # 100,000 calls
    PYTHONPATH=. python bench/scope.py --calls 10000000
    PYTHONPATH=. python bench/scope.py --data DIR # a demo data directory built before (e.g. by bench/reports.py)
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dimnb import access, model, reports  # noqa: E402
from dimnb.filters import Filters  # noqa: E402
from dimnb.store import callschema  # noqa: E402
from dimnb.store.stores import Stores  # noqa: E402

CACHE = ROOT / ".bench" / "scope"
SCOPED_LOGIN = "maria"  # Member Groups for both report scope and playback in the demo company
BASELINE_LOGIN = "alex"  # All Calls: scope condition TRUE
PAGE_SIZE = 100
TARGET_RATIO = 1.5
TARGET_MS = 50.0


def _digest(*files: str) -> str:
    digest = hashlib.sha256()
    for rel in files:
        digest.update((ROOT / rel).read_bytes())
    return digest.hexdigest()[:12]


def _load_version() -> str:
    """Regenerate and reload the cached dataset when the code that produces the calls changes."""
    return _digest("dimnb/demo/generate.py", "dimnb/ingest/threecx_v20.py", "dimnb/ingest/staging.py")


def _derive_version() -> str:
    """Re-derive the access tables of the cached dataset when the schema or the derivation changes."""
    return f"{callschema.SCHEMA_VERSION}-" + _digest("dimnb/ingest/tagging.py", "dimnb/store/callschema.py")


def build(calls: int) -> Path:
    """The cached data directory for ``calls`` demo calls (built on first use)."""
    from dimnb.demo.generate import generate
    from dimnb.directory import import_directory
    from dimnb.ingest import staging, tagging
    from dimnb.ingest.loader import sync_directory
    from dimnb.ingest.threecx import load_3cx

    base = CACHE / f"calls-{calls}"
    data = base / "data"
    loaded, derived = base / "loaded", base / "derived"
    if not (loaded.exists() and loaded.read_text().strip() == _load_version()):
        if base.exists():
            shutil.rmtree(base)
        pbx = base / "pbx"
        t0 = time.perf_counter()
        generate(pbx, calls=calls, audio=False, progress=True)
        print(f"generated {calls:,} calls in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        stores = Stores.open(str(data), create=True)
        import_directory(stores.state, pbx / "directory.json")
        with stores.calls.write() as con:
            sync_directory(con, stores)
        t0 = time.perf_counter()
        summary = load_3cx(stores, [pbx], progress=True)
        print(summary.lines()[-1], f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        if summary.failed or summary.total("quarantined") or not summary.total("calls_added"):
            raise SystemExit("the load of the bench store did not load everything:\n" + "\n".join(summary.lines()))
        # No audio files and no archive job here: make every recording available directly.
        with stores.calls.write() as con:
            con.execute("UPDATE recordings SET state = 'available', state_changed_at = now()")
            staging.refresh_recording_counts(con, "SELECT call_id FROM calls")
        stores.close()
        loaded.write_text(_load_version() + "\n")
        derived.write_text(_derive_version() + "\n")
    elif not (derived.exists() and derived.read_text().strip() == _derive_version()):
        stores = Stores.open(str(data))
        t0 = time.perf_counter()
        with stores.calls.write() as con:
            tagging.refresh(con, stores.state)
        print(f"access tables re-derived in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        stores.close()
        derived.write_text(_derive_version() + "\n")
    return data


def _time(fn, repeat: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 calls instead of 1,000,000")
    parser.add_argument("--calls", type=int, help="number of demo calls (overrides --quick)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--data", type=Path, help="measure this demo company data directory instead of building one")
    args = parser.parse_args()
    calls = args.calls or (100_000 if args.quick else 1_000_000)
    data = args.data or build(calls)
    stores = Stores.open(str(data))
    scoped = access.load_actor(stores.state, SCOPED_LOGIN)
    assert scoped.report_scope == model.MEMBER_GROUPS and scoped.playback == model.MEMBER_GROUPS, scoped
    baseline = access.load_actor(stores.state, BASELINE_LOGIN)
    assert baseline.report_scope == model.ALL and baseline.playback == model.ALL, baseline
    last = stores.calls.query("SELECT max(start_time) FROM calls")[0][0]
    filters = Filters.parse({"start": last - timedelta(days=30), "end": last + timedelta(seconds=1),
                             "with_recordings": True})

    def page(actor: access.Actor):
        return reports.list_calls(stores.calls, actor, filters, page_size=PAGE_SIZE, with_total=False)

    rows_scoped, rows_base = len(page(scoped).rows), len(page(baseline).rows)
    in_scope = reports.count_calls(stores.calls, scoped, filters)
    in_window = reports.count_calls(stores.calls, baseline, filters)
    # Interleave the two so that machine noise hits both alike.
    t_scoped: list[float] = []
    t_base: list[float] = []
    for _ in range(args.repeat):
        t_scoped += _time(lambda: page(scoped), 1)
        t_base += _time(lambda: page(baseline), 1)
    m_scoped, m_base = statistics.median(t_scoped), statistics.median(t_base)
    # For information: the total the list shows above the page (counted up to reports.TOTAL_CAP).
    c_scoped = statistics.median(_time(lambda: reports.count_calls_upto(stores.calls, scoped, filters), 10))
    c_base = statistics.median(_time(lambda: reports.count_calls_upto(stores.calls, baseline, filters), 10))
    ratio = m_scoped / m_base
    total = stores.calls.query("SELECT count(*) FROM calls")[0][0]
    print(f"calls in store: {total:,}; with playable recordings in the window: {in_window:,} "
          f"(in {SCOPED_LOGIN}'s Member Groups scope: {in_scope:,})")
    print(f"first page ({PAGE_SIZE} rows, newest first, only calls with recordings, 30 days), {args.repeat} runs each:")
    print(f"  scoped   ({SCOPED_LOGIN}, member_groups): median {m_scoped:.1f} ms ({rows_scoped} rows)")
    print(f"  baseline ({BASELINE_LOGIN}, no scope):      median {m_base:.1f} ms ({rows_base} rows)")
    print(f"  (the total above the list, counted up to {reports.TOTAL_CAP:,}: scoped {c_scoped:.1f} ms, "
          f"baseline {c_base:.1f} ms)")
    print(f"scoped median: {m_scoped:.1f} ms (target <= {TARGET_MS:.0f} ms)")
    print(f"scope ratio: {ratio:.2f} (target <= {TARGET_RATIO})")


if __name__ == "__main__":
    main()
