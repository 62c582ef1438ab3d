"""How fast the Call List's first page comes back on a big call store, next to bare DuckDB running the same SQL.

    python bench/reports.py            # 1,000,000 demo calls (built once into .bench/, a few minutes the first time)
    python bench/reports.py --quick    # 50,000 calls, under a minute

The store is the demo company at scale: ``dimnb.demo.generate`` without
audio, then the production directory import and ``load_3cx`` over the
generated folder. Its recordings have no files, so, to give the "only calls
with recordings" filter something to find, they are all marked ``available``
in ONE write generation after the load (as if the archive job had run once).

For each of five typical filter sets, as Maria (report scope and playback
Member Groups), it measures the median time of ``reports.list_calls`` for
page 1 with its total (what the Call List shows first), and the median time of
a fresh bare DuckDB connection to the same generation file running exactly the
statements ``list_calls`` ran (taken from ``reports.first_page_statements``).
Last line: ``metric: value (target op value)``.
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

from dimnb import access, clock, reports  # noqa: E402
from dimnb.filters import Filters  # noqa: E402
from dimnb.store.stores import Stores  # noqa: E402

TARGET_MS = 50.0
LOGIN = "maria"


def build_store(calls: int) -> Path:
    """The demo company at ``calls`` calls, loaded through the production loader; cached under .bench/."""
    from dimnb.demo.generate import generate
    from dimnb.directory import import_directory
    from dimnb.ingest import staging
    from dimnb.ingest.loader import load_3cx, sync_directory

    data_dir = ROOT / ".bench" / f"reports-{calls}"
    done = data_dir / ".complete"
    if done.exists():
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
    load_3cx(stores, [pbx], progress=True)
    with stores.calls.write() as con:  # one generation: every recording available, counters refreshed
        con.execute("UPDATE recordings SET state = 'available', archive_path = NULL WHERE state <> 'available'")
        staging.refresh_recording_counts(con, "SELECT call_id FROM calls")
    stores.close()
    done.write_text("ok\n")
    print(f"built {data_dir} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return data_dir


if __name__ == "__main__" and sys.argv[1:2] == ["--build-only"]:
    build_store(int(sys.argv[2]))
    sys.exit(0)
