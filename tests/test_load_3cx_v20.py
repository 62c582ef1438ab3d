"""The 3CX v20 loader: cdroutput rows become calls, bad rows are quarantined with their line and reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dimnb.demo.generate import generate
from dimnb.ingest.loader import load_3cx
from dimnb.store.stores import Stores


def _export(tmp_path: Path, calls: int = 40) -> tuple[Path, list[str]]:
    pbx = tmp_path / "pbx"
    generate(pbx, calls=calls, seed=3, audio=False)
    lines = (pbx / "cdroutput.csv").read_text().splitlines()
    return pbx, lines


def test_the_demo_export_loads_whole(stores: Stores, tmp_path: Path) -> None:
    pbx, lines = _export(tmp_path)
    summary = load_3cx(stores, [pbx / "cdroutput.csv"])
    assert summary.total("calls_added") == 40 and summary.total("quarantined") == 0
    assert stores.calls.query("SELECT count(*) FROM segments") == [(len(lines) - 1,)]
    again = load_3cx(stores, [pbx / "cdroutput.csv"])
    assert [r.status for r in again.results] == ["skipped"]


def test_a_bad_cdr_quarantines_its_whole_call_with_lines_and_reasons(stores: Stores, tmp_path: Path) -> None:
    pbx, lines = _export(tmp_path)
    header = lines[0].split(",")
    started, key = header.index("cdr_started_at"), header.index("call_history_id")
    # break the first CDR of a call that has several, and repeat another row verbatim
    counts: dict[str, int] = {}
    for line in lines[1:]:
        counts[line.split(",")[key]] = counts.get(line.split(",")[key], 0) + 1
    victim = next(i for i, line in enumerate(lines[1:], start=1) if counts[line.split(",")[key]] >= 3)
    fields = lines[victim].split(",")
    fields[started] = "not a time"
    lines[victim] = ",".join(fields)
    lines.append(lines[-1])  # a re-sent row
    path = tmp_path / "cdroutput.csv"
    path.write_text("\n".join(lines) + "\n")
    summary = load_3cx(stores, [path])
    call = fields[key]
    siblings = [i + 1 for i, line in enumerate(lines) if i and line.split(",")[key] == call and i != victim]
    rows = stores.calls.query("SELECT line, reason, raw FROM quarantine ORDER BY line")
    assert rows[0][0] == victim + 1 and rows[0][1] == "cdr_started_at 'not a time' is not a time"
    assert "not a time" in rows[0][2]  # the file's own line
    assert [r[0] for r in rows[1:]] == siblings
    assert all("another CDR of this call" in r[1] for r in rows[1:])
    assert summary.total("calls_added") == 39
    assert stores.calls.query("SELECT count(*) FROM calls WHERE source_id = $k", {"k": call}) == [(0,)]
    # the repeated row did not make a second segment
    assert stores.calls.query("SELECT count(*) FROM segments")[0][0] == len(lines) - 2 - 1 - len(siblings)


FIXTURES = Path(__file__).parent / "fixtures" / "3cx" / "v20"


def test_times_with_a_space_before_the_offset_load_and_rows_are_counted_apart_from_calls(stores: Stores) -> None:
    # What database tools export: `2026-03-23 13:14:30.828 +0100`. Seven CDRs make three calls.
    summary = load_3cx(stores, [FIXTURES / "cdroutput-dbtool.csv"])
    assert summary.total("quarantined") == 0, summary.lines()
    assert summary.lines()[0].endswith("(3cx-v20-cdroutput): 7 rows: 3 calls loaded, 0 duplicates skipped, 0 quarantined")
    starts = stores.calls.query("SELECT strftime(start_time AT TIME ZONE 'UTC', '%H:%M:%S.%g'), direction, outcome "
                                "FROM calls ORDER BY start_time")
    assert starts == [("12:14:30.828", "inbound", "answered"), ("13:00:00.000", "internal", "answered"),
                      ("14:00:00.000", "inbound", "voicemail")]
    kinds = stores.calls.query("SELECT list(kind ORDER BY seq) FROM segments GROUP BY call_id ORDER BY call_id")
    assert kinds == [(["ivr", "queue", "talk"],), (["talk", "talk"],), (["ringing", "voicemail"],)]
    # a re-sent CDR is a duplicate row, not a second segment
    lines = (FIXTURES / "cdroutput-dbtool.csv").read_text(encoding="utf-8").splitlines()
    again = stores.data.root.parent / "again.csv"
    again.write_text("\n".join([lines[0], lines[1], lines[1]]) + "\n", encoding="utf-8")
    other = Stores.open(str(stores.data.root.parent / "other"), create=True)
    assert load_3cx(other, [again]).lines()[0].endswith(": 2 rows: 1 calls loaded, 1 duplicates skipped, 0 quarantined")


def test_a_text_table_printed_by_psql_is_refused_with_how_to_export_csv(stores: Stores) -> None:
    summary = load_3cx(stores, [FIXTURES / "cdroutput-psql.txt"])
    (result,) = summary.results
    assert result.status == "failed" and summary.total("quarantined") == 0
    assert "'|'-separated" in result.message and "psql or DBeaver" in result.message
    assert "\\copy (SELECT * FROM cdroutput) TO 'cdroutput.csv' WITH CSV HEADER" in result.message
    assert "Expected Number of Columns" not in result.message


def test_a_load_that_runs_out_of_memory_fails_loudly_and_publishes_nothing(stores: Stores, tmp_path: Path) -> None:
    pbx, _lines = _export(tmp_path, calls=300)
    before = stores.calls.current_generation()
    env = {**os.environ, "DIMNB_WRITER_MEMORY": "4MB"}
    cli = subprocess.run([sys.executable, "-m", "dimnb", "load", "3cx", str(pbx), "--data", str(stores.data.root),
                          "--no-progress"], env=env, capture_output=True, text=True)
    assert cli.returncode != 0
    assert "ran out of memory" in cli.stderr and "DIMNB_WRITER_MEMORY" in cli.stderr, cli.stderr
    # Not "every recording quarantined": nothing of the load was published.
    assert stores.calls.current_generation() == before
    assert stores.calls.query("SELECT count(*) FROM quarantine") == [(0,)]
    assert stores.calls.query("SELECT count(*) FROM calls") == [(0,)]
