"""What the audit notebook computes: periods, per-user/call/group tables, unusual hours, pinned re-runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import nbformat
import pytest

from dimnb import audit, audit_report
from dimnb.errors import InvalidInput, NotFound
from dimnb.notebook_runner import inject_parameters
from dimnb.store.stores import Stores

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text, start, end",
    [
        ("all", None, None),
        ("2026-11", _utc(2026, 11, 1), _utc(2026, 12, 1)),
        ("2026-12", _utc(2026, 12, 1), _utc(2027, 1, 1)),
        ("2026-11-17", _utc(2026, 11, 17), _utc(2026, 11, 18)),
        ("2026-11-01..2026-11-15", _utc(2026, 11, 1), _utc(2026, 11, 16)),
        ("2026-11-01T08:00:00Z..2026-11-01T09:30:00+01:00", _utc(2026, 11, 1, 8), _utc(2026, 11, 1, 8, 30)),
        ("..2026-11-15", None, _utc(2026, 11, 16)),
        ("2026-11-15..", _utc(2026, 11, 15), None),
        ("7d", _utc(2026, 11, 13), _utc(2026, 11, 20)),
        ("12h", _utc(2026, 11, 19, 12), _utc(2026, 11, 20)),
    ],
)
def test_periods(text: str, start: datetime | None, end: datetime | None) -> None:
    period = audit_report.Period.parse(text, now=_utc(2026, 11, 20))
    assert (period.start, period.end) == (start, end)
    again = audit_report.Period.parse(period.absolute)
    assert (again.start, again.end) == (start, end)


def test_relative_periods_follow_the_fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMNB_NOW", "2026-11-20T00:00:00Z")
    assert audit_report.Period.parse("1d").start == _utc(2026, 11, 19)


@pytest.mark.parametrize("text", ["2026-13", "last week", "2026-11-15..2026-11-01", "2026-11-01..x"])
def test_bad_periods_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        audit_report.Period.parse(text)
    assert caught.value.field == "period"


def _play(stores: Stores, login: str, at: datetime, n: int, recording: int = 1, client: str = "192.0.2.1") -> None:
    for i in range(n):
        audit.record(stores.state, login=login, kind="play", recording_id=recording + i, call_id=recording + i,
                     rule="own", client=client, play_id=f"{login}-{at:%d%H}-{i}", at=at + timedelta(seconds=30 * i))


@pytest.fixture
def trail(stores_with_directory: Stores) -> Stores:
    s = stores_with_directory
    for day in range(5):  # ann: one or two plays in an hour (median 1.5 with the burst)
        _play(s, "ann", T0 + timedelta(days=day, hours=10), 1 + day % 2)
    _play(s, "ann", T0 + timedelta(days=6, hours=14), 15, client="198.51.100.9")  # ...then fifteen
    for day in range(5):  # bob: always a dozen an hour, so a dozen is usual for him
        _play(s, "bob", T0 + timedelta(days=day, hours=9), 12)
    for day in range(3):
        _play(s, "dan", T0 + timedelta(days=day, hours=11), 1, recording=50 + day)
    _play(s, "dan", T0 + timedelta(days=6, hours=11), 6)  # six times his usual, below the floor of 10
    with pytest.raises(NotFound):
        audit.authorize_playback(s, "eve", 5, client="192.0.2.5", at=T0 + timedelta(days=6, hours=12))
    audit.record(s.state, login="cat", kind="download", recording_id=7, call_id=7, rule="member_group",
                 at=T0 + timedelta(days=6, hours=12))
    return s


def test_unusual_hours_are_judged_against_each_users_own_baseline(trail: Stores) -> None:
    report = audit_report.load(trail.data.root)
    unusual = report.unusual(factor=3, min_plays=10)
    assert unusual[["login", "hour", "plays", "usual"]].values.tolist() == [["ann", "2026-11-08 14:00", 15, 1.5]]
    assert unusual.loc[0, "clients"] == "198.51.100.9"
    assert report.unusual(factor=3, min_plays=5)["login"].tolist() == ["ann", "dan"]


def test_tables_per_user_group_and_denied(trail: Stores) -> None:
    report = audit_report.load(trail.data.root)
    users = report.per_user()
    assert users.loc["ann", ["plays", "downloads", "denied"]].tolist() == [22, 0, 0]
    assert users.loc["eve", ["plays", "denied"]].tolist() == [0, 1]
    assert users.index.tolist()[:2] == ["bob", "ann"]
    groups = report.per_group()
    assert groups.loc["Sales", "plays"] == 22 + 60 and groups.loc["Sales", "listeners"] == 2
    assert groups.loc["Billing", ["plays", "denied"]].tolist() == [9, 1]  # dan and eve
    assert groups.loc["Support", "downloads"] == 1
    denied = report.denied()
    assert denied[["login", "asked", "recording_id"]].values.tolist() == [["eve", "play", "5"]]
    summary = report.summary()["count"].to_dict()
    assert summary["plays"] == 22 + 60 + 9 and summary["downloads"] == 1 and summary["denied attempts"] == 1


def test_filters_by_period_user_and_group(trail: Stores) -> None:
    day6 = audit_report.load(trail.data.root, period="2026-11-08")
    assert sorted(day6.events["login"].unique()) == ["ann", "cat", "dan", "eve"]
    # the baseline still looks back before the period
    assert day6.unusual()["login"].tolist() == ["ann"]
    assert audit_report.load(trail.data.root, user="bob").events["login"].unique().tolist() == ["bob"]
    support = audit_report.load(trail.data.root, group="Support")  # bob and cat are members
    assert sorted(support.events["login"].unique()) == ["bob", "cat"]
    empty = audit_report.load(trail.data.root, period="2025-01")
    assert empty.events.empty and empty.per_user().empty and empty.per_call().empty and empty.unusual().empty
    empty.plot_daily(), empty.plot_per_user()


def test_group_is_the_one_held_at_the_time_of_the_event(stores_with_directory: Stores) -> None:
    s = stores_with_directory
    with s.state.transaction() as con:  # ann moves from Sales to Support on the 5th
        con.execute("UPDATE memberships SET valid_to = '2026-11-05T00:00:00Z' WHERE login = 'ann'")
        con.execute("INSERT INTO memberships VALUES ('ann', 'Support', 1, '2026-11-05T00:00:00Z', NULL)")
    _play(s, "ann", T0 + timedelta(days=1), 2)
    _play(s, "ann", T0 + timedelta(days=4), 3)
    groups = audit_report.load(s.data.root).per_group()
    assert groups["plays"].to_dict() == {"Support": 3, "Sales": 2}


def test_a_pinned_rerun_reads_the_same_data(trail: Stores) -> None:
    first = audit_report.load(trail.data.root)
    _play(trail, "bob", T0 + timedelta(days=7, hours=9), 30)
    pinned = audit_report.load(trail.data.root, audit_head=str(first.head), call_generation=first.generation)
    assert pinned.verification.ok and pinned.pinned
    assert pinned.per_user().equals(first.per_user())
    assert pinned.unusual().equals(first.unusual())
    assert f"--head {first.head}" in first.rerun_command()
    assert f"--generation {first.generation}" in first.provenance()
    short = audit_report.load(trail.data.root, audit_head=f"{first.head.seq}:{first.head.hash[:16]}")
    assert short.head == first.head
    assert not audit_report.load(trail.data.root, audit_head=f"{first.head.seq}:{'0' * 64}").verification.ok


def test_a_tampered_trail_is_reported(trail: Stores) -> None:
    import sqlite3

    con = sqlite3.connect(trail.state.path, isolation_level=None)
    con.execute("DROP TRIGGER audit_events_no_update")
    con.execute("UPDATE audit_events SET login = 'bob' WHERE seq = 3")
    report = audit_report.load(trail.data.root)
    assert not report.verification.ok and report.verification.first_bad == 3
    assert "BROKEN at event 3" in report.provenance()


def test_a_generation_no_longer_kept_is_named(trail: Stores) -> None:
    with pytest.raises(audit_report.PinnedDataGone, match="generation 99"):
        audit_report.load(trail.data.root, call_generation=99)


def test_only_auditors_get_the_report_in_a_dashboard(trail: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMNB_USER", "dan")
    with pytest.raises(NotFound):
        audit_report.load(trail.data.root)
    with trail.state.transaction() as con:
        con.execute("UPDATE users SET roles = 'auditor' WHERE login = 'dan'")
    assert audit_report.load(trail.data.root).verification.ok


def test_parameters_are_injected_after_the_parameters_cell() -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# x"),
        nbformat.v4.new_code_cell("period = 'all'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(period)"),
    ])
    inject_parameters(nb, {"period": "7d", "user": "o'neil"})
    inject_parameters(nb, {"period": "2026-11"})  # a second injection replaces the first
    assert [c.metadata.get("tags", []) for c in nb.cells] == [[], ["parameters"], ["injected-parameters"], []]
    namespace: dict = {}
    exec(nb.cells[2].source, namespace)
    assert namespace["period"] == "2026-11" and "user" not in namespace
    with pytest.raises(InvalidInput):
        inject_parameters(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), {"x": 2})
