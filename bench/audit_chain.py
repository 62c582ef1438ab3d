"""How fast the audit trail appends and verifies.

    python bench/audit_chain.py [--quick]

Appends events one transaction each (the way the audio handler does, fsync per
commit), then verifies the whole chain. The baseline, measured in the same run,
is bare sha256 over the same canonical JSON: verify's cost over hashing is the
SQLite read and the checks.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dimnb import audit  # noqa: E402
from dimnb.store.stores import Stores  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    appends, bulk = (200, 50_000) if args.quick else (1_000, 500_000)
    with tempfile.TemporaryDirectory() as tmp:
        stores = Stores.open(str(Path(tmp) / "data"), create=True)
        t0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
        start = time.perf_counter()
        for i in range(appends):
            audit.record(stores.state, login="ann", kind="play", recording_id=i, call_id=i, rule="own",
                         client="192.0.2.1", user_agent="Mozilla/5.0", play_id=f"p{i}", at=t0 + timedelta(seconds=i))
        per_append = (time.perf_counter() - start) / appends
        print(f"append: {per_append * 1000:.2f} ms/event ({appends} events, one transaction each)")

        # A big chain, written in one transaction straight through the same hashing, to time verify.
        con = sqlite3.connect(stores.state.path, isolation_level=None)
        last = con.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = last
        rows = []
        for i in range(bulk):
            seq += 1
            fields = {"seq": seq, "ts": audit.format_ts(t0 + timedelta(seconds=seq)), "login": "bob", "kind": "play",
                      "recording_id": seq, "call_id": seq, "rule": "all", "client": "192.0.2.2",
                      "user_agent": "Mozilla/5.0", "play_id": f"q{seq}", "detail": '{"via":"http"}'}
            digest = audit.event_hash(prev, fields)
            rows.append((*fields.values(), prev, digest))
            prev = digest
        con.execute("BEGIN")
        con.executemany(f"INSERT INTO audit_events ({', '.join(audit.COLUMNS)}) VALUES ({', '.join('?' * 13)})", rows)
        con.execute("COMMIT")
        total = appends + bulk

        payloads = [audit.canonical_json({k: r[i] for i, k in enumerate(audit.FIELDS)}) for r in rows]
        start = time.perf_counter()
        h = "0" * 64
        for p in payloads:
            h = hashlib.sha256((h + p).encode()).hexdigest()
        baseline = (time.perf_counter() - start) * total / bulk

        start = time.perf_counter()
        result = audit.verify(stores.state)
        took = time.perf_counter() - start
        assert result.ok and result.events == total, result
        print(f"verify: {total} events in {took:.2f} s ({total / took:,.0f} events/s); "
              f"bare sha256 of the same payloads {baseline:.2f} s; ratio {took / baseline:.1f}x")
        stores.close()
    print(f"metric: verify {total / took:,.0f} events/s (target >= 50,000 events/s)")


if __name__ == "__main__":
    main()
