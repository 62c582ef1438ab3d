"""Nothing a user who may not play a call's recordings sees tells whether it has any (issue 13, "the leak").

3CX legacy transfers: the CDR does not say when the transfer happened, the
recordings do. Those derived times are shown only to users who may play the
recordings; everyone else gets the CDR's estimate. The property: two worlds
loaded through the real 3CX loader from the same CDR file, one with the
transferred call's recordings in the recordings folder and one without, look
identical to every non-player (session dict and text, ``dimnb session`` text
and JSON, the SessionView's widget state, Call List rows in every sort order,
counts, the "only calls with recordings" filter), while a player of the
recorded world does see the derived times.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import soundfile
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dimnb import access, reports, sessions
from dimnb.cli import main
from dimnb.directory import import_directory
from dimnb.filters import Filters
from dimnb.ingest.loader import load_3cx
from dimnb.store.stores import Stores
from dimnb.widgets import SessionView
from dimnb.workbench import Workbench

T0 = datetime(2026, 3, 23, 9, 0, tzinfo=timezone.utc)
USERS = {"101": ("ann", "Ann Agent"), "102": ("bob", "Bob Lead"), "104": ("cat", "Cat Support")}
NON_PLAYERS = ("nina", "sam", "audrey")  # may list Sales' calls (or all), may not play them
DIRECTORY = {
    "groups": [{"name": "Sales"}, {"name": "Billing"}],
    "users": [
        *({"login": login, "name": name, "report_scope": "own", "playback": "own",
           "extensions": [{"extension": ext}], "groups": [{"group": "Sales", "primary": True}]}
          for ext, (login, name) in USERS.items()),
        {"login": "nina", "name": "Nina Billing", "report_scope": "primary_group", "playback": "none",
         "groups": [{"group": "Sales", "primary": True}]},
        {"login": "sam", "name": "Sam Sales", "report_scope": "primary_group", "playback": "own",
         "extensions": [{"extension": "103"}], "groups": [{"group": "Sales", "primary": True}]},
        {"login": "audrey", "name": "Audrey Auditor", "report_scope": "all", "playback": "none",
         "roles": ["auditor"], "groups": [{"group": "Billing", "primary": True}]},
    ],
}
FMT = "%Y/%m/%d %H:%M:%S"


@dataclass(frozen=True)
class Recorded:
    seq: int  # which segment (chain position after the caller)
    start: int  # seconds after the call's start (3CX names files to the second)
    seconds: int


@dataclass(frozen=True)
class Transfer:
    agents: tuple[str, ...]  # extensions in chain order
    ring: int
    talk: int
    recordings: tuple[Recorded, ...]


@st.composite
def transfers(draw: st.DrawFn) -> Transfer:
    agents = tuple(draw(st.permutations(sorted(USERS)))[: draw(st.integers(2, 3))])
    ring = draw(st.integers(0, 20))
    talk = draw(st.integers(30, 240))
    seqs = draw(st.lists(st.integers(1, len(agents)), min_size=1, max_size=len(agents), unique=True))
    share = talk // len(agents)
    recordings = []
    for seq in sorted(seqs):
        # Near where the segment ran: the matching takes the closest segment of the recording's extension.
        start = ring + share * (seq - 1) + draw(st.integers(0, max(0, share // 3)))
        recordings.append(Recorded(seq, start, draw(st.integers(3, max(3, share - share // 3)))))
    return Transfer(agents, ring, talk, tuple(recordings))


def _row(n: int, start: datetime, caller: str, agents: tuple[str, ...], ring: int, talk: int) -> str:
    answered, end = start + timedelta(seconds=ring), start + timedelta(seconds=ring + talk)
    chain = [caller, *(f"Ext.{a}" for a in agents)]
    fields = [
        f"Call {n}", f"0000019A00{n:06d}_{n}", "", start.strftime(FMT), answered.strftime(FMT), end.strftime(FMT),
        "TerminatedBySrc", caller, chain[1], "10000", agents[0], agents[0],
        "ReplacedDst" if len(agents) > 1 else "", chain[-1] if len(agents) > 1 else "",
        agents[-1] if len(agents) > 1 else "", "", "", "", "", '"Chain: ' + ",".join(chain) + ',"',
        "Line", "Extension", "Extension", "", USERS[agents[0]][1], USERS[agents[-1]][1], "",
    ]
    return ",".join(fields)


def _tone(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(8000 * seconds)) / 8000
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype("float32"), 8000, subtype="PCM_16")


def _recording(root: Path, ext: str, caller: str, at: datetime, seconds: int, n: int) -> None:
    name = USERS[ext][1]
    _tone(root / ext / f"[{name}]_{caller}-{ext}_{at.strftime('%Y%m%d%H%M%S')}({n}).wav", seconds)


def _world(folder: Path, call: Transfer, *, recorded: bool) -> Stores:
    """The same CDR file; the transferred call's recordings only when ``recorded``. Other calls, one of them
    recorded in both worlds, make the Call List's sort orders and counts worth comparing."""
    folder.mkdir(parents=True)
    stores = Stores.open(str(folder / "data"), create=True)
    directory = folder / "directory.json"
    directory.write_text(json.dumps(DIRECTORY))
    import_directory(stores.state, directory)
    caller = "+442079460123"
    start = T0 + timedelta(minutes=30)
    rows = [
        _row(1, T0, "+442079460777", ("101",), 5, 90),
        _row(2, T0 + timedelta(minutes=10), "+442079460888", ("102", "104"), 12, 200),
        _row(3, start, caller, call.agents, call.ring, call.talk),
        _row(4, T0 + timedelta(minutes=50), "+442079460999", ("104",), 2, 40),
    ]
    cdr = folder / "cdr.csv"
    cdr.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    rec = folder / "Recordings"
    _recording(rec, "101", "+442079460777", T0 + timedelta(seconds=5), 4, 1)  # call 1, in both worlds
    if recorded:
        for i, r in enumerate(call.recordings):
            _recording(rec, call.agents[r.seq - 1], caller, start + timedelta(seconds=r.start), r.seconds, 10 + i)
    summary = load_3cx(stores, [cdr])
    assert summary.total("calls_added") == 4 and summary.total("quarantined") == 0, summary.lines()
    return stores


def _cli(stores: Stores, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--data", str(stores.data.root)], catch_exceptions=False)
    return f"{result.exit_code}\n{result.output}"


def _seen_by(stores: Stores, login: str, call_id: int) -> dict[str, object]:
    """Everything ``login`` can learn about the calls, as comparable values."""
    actor = access.load_actor(stores.state, login)
    seen: dict[str, object] = {}
    session = sessions.build_session(stores.calls, actor, call_id, state=stores.state)
    seen["session"] = session.to_dict() if session else None
    seen["text"] = session.to_text() if session else None
    seen["cli text"] = _cli(stores, "session", str(call_id), "--as", login)
    seen["cli json"] = _cli(stores, "session", str(call_id), "--as", login, "--format", "json")
    view = SessionView(Workbench(stores, login))
    view.show(call_id)
    seen["widget"] = {name: getattr(view, name) for name in ("session", "peaks", "message", "selected")}
    for with_recordings in (False, True):
        filters = Filters(with_recordings=with_recordings)
        seen[f"count {with_recordings}"] = reports.count_calls(stores.calls, actor, filters, state=stores.state)
        page = reports.list_calls(stores.calls, actor, filters, state=stores.state, page_size=100)
        seen[f"rows {with_recordings}"] = (page.total, page.rows.astype(str).to_dict("records"))
    for column in reports.COLUMNS:  # every sort order (ties are broken the same way, or not at all)
        for descending in (False, True) if column == "recording" else (False,):
            page = reports.list_calls(stores.calls, actor, Filters(), state=stores.state, sort=column,
                                      descending=descending, page_size=100, with_total=False)
            seen[f"order {column} {descending}"] = page.call_ids
    return seen


def _recorded_call_id(stores: Stores) -> int:
    return stores.calls.query("SELECT call_id FROM calls WHERE source_id = '0000019A00000003_3'")[0][0]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=transfers())
def test_a_non_player_cannot_tell_that_a_transferred_call_has_recordings(call: Transfer) -> None:
    folder = Path(tempfile.mkdtemp(prefix="dimnb-hints-"))
    try:
        with_recordings = _world(folder / "recorded", call, recorded=True)
        without = _world(folder / "plain", call, recorded=False)
        call_id = _recorded_call_id(with_recordings)
        assert call_id == _recorded_call_id(without)
        linked = with_recordings.calls.query("SELECT count(*) FROM recordings WHERE call_id = $c", {"c": call_id})
        assert linked == [(len(call.recordings),)]

        # The test can fail: a player does see the recordings' times in the recorded world.
        player = USERS[call.agents[call.recordings[0].seq - 1]][0]
        seen = sessions.build_session(with_recordings.calls, access.load_actor(with_recordings.state, player),
                                      call_id, state=with_recordings.state)
        assert seen is not None and seen.recordings
        assert "derived" in {g.time_quality for g in seen.segments}

        for login in NON_PLAYERS:
            recorded_view, plain_view = _seen_by(with_recordings, login, call_id), _seen_by(without, login, call_id)
            assert recorded_view["session"] is not None, login  # they may list it: the question is fair
            for key in recorded_view:
                assert recorded_view[key] == plain_view[key], (login, key)
            assert "derived" not in str(recorded_view["text"])
        for stores in (with_recordings, without):
            stores.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
