"""The 3CX v20 loader: cdroutput rows become calls, bad rows are quarantined with their line and reason."""

from __future__ import annotations

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
