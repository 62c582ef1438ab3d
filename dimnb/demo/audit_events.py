"""A fixed, deterministic audit trail for the demo company, so the audit notebook has something to show.

Demo users play, download and are refused recordings on the working days of
the demo window's last two and a half weeks, always of calls at least a day
old (after the nightly archive run). One manager has an unusual hour (a burst
of plays from another address), and agents try recordings outside their grant.
Every event goes through ``dimnb.audit.record``, with the rule
``access.why`` gives for the user as the directory stood at that moment.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from dimnb import access, audit
from dimnb.actions import PLAY_RECORDING
from dimnb.store.stores import Stores

SEED = 20261120
WORKDAYS = 14  # the last 14 working days before the window's end
NONEXISTENT_RECORDING = 999_999

_BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)


@dataclass(frozen=True)
class Listener:
    login: str
    address: str
    browser: int
    days_share: float  # on what share of working days they listen
    plays: tuple[int, int]  # plays per listening day, inclusive range
    download_share: float = 0.0


LISTENERS = (
    Listener("alex", "192.0.2.10", 0, 0.5, (1, 4), 0.25),
    Listener("paul", "192.0.2.13", 1, 0.8, (2, 5), 0.1),
    Listener("maria", "192.0.2.14", 0, 0.6, (1, 3), 0.1),
    Listener("olivia", "192.0.2.11", 2, 0.5, (1, 2)),
    Listener("sam", "192.0.2.12", 1, 0.3, (1, 2)),
    Listener("ben", "192.0.2.20", 0, 0.3, (1, 2)),
    Listener("noah", "192.0.2.21", 2, 0.3, (1, 2)),
    Listener("samuel", "192.0.2.22", 1, 0.4, (1, 2)),
    Listener("liam", "192.0.2.23", 0, 0.4, (1, 2)),
    Listener("omar", "192.0.2.24", 2, 0.4, (1, 2)),
)
BURST = ("maria", "198.51.100.23", 28)  # login, address, plays within one hour on the second-to-last day
# login, how many refused attempts, of which downloads
DENIED = (("olivia", 3, 1), ("sam", 4, 0), ("nina", 2, 0), ("ben", 1, 0))


@dataclass(order=True)
class _Planned:
    at: datetime
    order: int
    login: str = field(compare=False)
    kind: str = field(compare=False)
    recording_id: int = field(compare=False)
    address: str = field(compare=False)
    browser: str = field(compare=False)
    play_id: str | None = field(compare=False, default=None)
    asked: str | None = field(compare=False, default=None)  # a denied attempt: play or download


class _World:
    """The demo's recordings and who may play which, asked of dimnb.access as of a given day."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        rows = stores.calls.query(
            "SELECT r.recording_id, r.call_id, c.start_time FROM recordings r JOIN calls c USING (call_id) "
            "WHERE r.state <> 'missing' ORDER BY r.recording_id"
        )
        self.recordings = [(int(r[0]), int(r[1]), r[2]) for r in rows]
        self.call_of = {rid: cid for rid, cid, _ in self.recordings}
        self._playable: dict[tuple[str, str], set[int]] = {}

    def actor(self, login: str, at: datetime) -> access.Actor:
        return access.load_actor(self.stores.state, login, at=at)

    def playable_calls(self, login: str, at: datetime) -> set[int]:
        key = (login, at.date().isoformat())
        if key not in self._playable:
            scope = access.scope_sql(self.actor(login, at), PLAY_RECORDING, "c.call_id")
            rows = self.stores.calls.query(f"SELECT c.call_id FROM calls c WHERE {scope.sql}", scope.params)
            self._playable[key] = {int(r[0]) for r in rows}
        return self._playable[key]

    def archived_before(self, at: datetime) -> list[int]:
        """Recordings whose call is at least a day older than ``at`` (the nightly archive has run since)."""
        return [rid for rid, _, start in self.recordings if start <= at - timedelta(days=1)]

    def may_play(self, login: str, at: datetime) -> list[int]:
        calls = self.playable_calls(login, at)
        return [rid for rid in self.archived_before(at) if self.call_of[rid] in calls]

    def may_not_play(self, login: str, at: datetime) -> list[int]:
        calls = self.playable_calls(login, at)
        return [rid for rid in self.archived_before(at) if self.call_of[rid] not in calls]


def _working_days(end: datetime, count: int) -> list[datetime]:
    days, day = [], end - timedelta(days=1)
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return sorted(days)


def _at(day: datetime, rng: random.Random, first_hour: int = 8, last_hour: int = 17) -> datetime:
    return day + timedelta(hours=rng.randint(first_hour, last_hour - 1), minutes=rng.randint(0, 59),
                           seconds=rng.randint(0, 59), milliseconds=rng.randint(0, 999))


def _token(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def plan(stores: Stores, *, seed: int = SEED) -> list[_Planned]:
    """The demo's events in time order (nothing written)."""
    world = _World(stores)
    if not world.recordings:
        return []
    last_call = max(start for _, _, start in world.recordings).astimezone(timezone.utc)
    end = datetime(last_call.year, last_call.month, last_call.day, tzinfo=timezone.utc) + timedelta(days=1)
    days = _working_days(end, WORKDAYS)
    rng = random.Random(seed)
    planned: list[_Planned] = []

    def add(at: datetime, login: str, kind: str, rid: int, address: str, browser: int,
            asked: str | None = None) -> None:
        token = _token(rng) if kind == audit.PLAY or asked == audit.PLAY else None
        planned.append(_Planned(at, len(planned), login, kind, rid, address, _BROWSERS[browser], token, asked))

    for day in days:
        for who in LISTENERS:
            if rng.random() >= who.days_share:
                continue
            for _ in range(rng.randint(*who.plays)):
                at = _at(day, rng)
                choices = world.may_play(who.login, at)
                if not choices:
                    continue
                rid = rng.choice(choices)
                add(at, who.login, audit.PLAY, rid, who.address, who.browser)
                if rng.random() < who.download_share:
                    add(at + timedelta(seconds=rng.randint(30, 600)), who.login, audit.DOWNLOAD, rid,
                        who.address, who.browser)
    login, address, count = BURST
    burst_start = days[-2] + timedelta(hours=14, minutes=2)
    choices = world.may_play(login, burst_start)
    for i in range(count):
        add(burst_start + timedelta(seconds=i * 115 + rng.randint(0, 30)), login, audit.PLAY,
            choices[(i * 7) % len(choices)], address, 2)
    for login, attempts, downloads in DENIED:
        address = next((w.address for w in LISTENERS if w.login == login), "192.0.2.30")
        for i in range(attempts):
            at = _at(rng.choice(days), rng)
            refused = world.may_not_play(login, at)
            rid = rng.choice(refused) if refused else NONEXISTENT_RECORDING
            add(at, login, audit.DENIED, rid, address, 0, audit.DOWNLOAD if i < downloads else audit.PLAY)
    add(_at(days[3], rng), "olivia", audit.DENIED, NONEXISTENT_RECORDING, "192.0.2.11", 2, audit.PLAY)
    return sorted(planned)


def seed_demo_audit(stores: Stores, *, seed: int = SEED) -> int:
    """Append the demo's audit events if the audit trail is still empty; returns how many were appended."""
    if audit.head(stores.state) is not None:
        return 0
    world = _World(stores)
    appended = 0
    for event in plan(stores, seed=seed):
        kwargs: dict[str, Any] = {
            "login": event.login, "client": event.address, "user_agent": event.browser, "at": event.at,
        }
        if event.kind == audit.DENIED:
            written = audit.record(stores.state, kind=audit.DENIED, recording_id=event.recording_id,
                                   play_id=event.play_id, detail={"asked": event.asked, "via": "http"}, **kwargs)
        else:
            call_id = world.call_of[event.recording_id]
            reason = access.why(stores.calls, world.actor(event.login, event.at), call_id, PLAY_RECORDING)
            assert reason is not None, (event.login, call_id)
            detail = {"via": "http", **({"why": reason.detail} if reason.detail else {})}
            written = audit.record(stores.state, kind=event.kind, recording_id=event.recording_id, call_id=call_id,
                                   rule=reason.rule, play_id=event.play_id, detail=detail, **kwargs)
        appended += written is not None
    if appended:
        audit.checkpoint(stores.state)  # sign the seeded head, so cutting the demo trail short is caught
    return appended
