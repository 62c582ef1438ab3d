"""The demo company's phone data, written in 3CX v20's own formats.

``generate(out_dir)`` writes, deterministically for given arguments:

- ``cdroutput.csv``      the ``cdroutput`` table, one row per CDR (segment), ordered by start
- ``cdrrecordings.csv``  which CDR each recording belongs to, with its 3CX-style relative path
- ``Recordings/…``       8 kHz mono WAVs whose tone code (``tonecode``) names call, segment and second
- ``directory.json``     the company directory (users, extensions, groups, with history)
- ``manifest.json``      arguments, counts and the demo logins

Calls are spread over the ``days`` days before ``end`` (exclusive), in business
hours, Europe/London time. Everything is drawn from one ``numpy`` generator in a
fixed order and vectorised, so a million calls take seconds, not minutes.

It streams: after drawing every call's start time it generates and writes
blocks of at most ``BLOCK_CALLS`` calls (whole nights apart, so no call of
one block overlaps the next and the CSVs stay ordered by start), so memory
stays bounded (10 million calls in under 2 GiB). A dataset of one block (up
to ``BLOCK_CALLS`` calls) is byte for byte what the generator wrote before
it streamed.

Chaining rules the 3CX loader relies on (and the tests check):

- All CDRs of a call share ``call_history_id`` and form one chain: each
  non-last CDR ends ``continued_in`` the next, which starts when it ends;
  the first is ``call_init``.
- A conference leg is its own one-CDR call whose destination is room 900;
  all legs of one conference share ``main_call_history_id`` = the first
  (earliest) leg's ``call_history_id``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from dimnb.demo import tonecode

CDR_COLUMNS = (
    "cdr_id,call_history_id,source_participant_id,source_entity_type,source_dn_number,source_dn_type,"
    "source_dn_name,source_participant_name,source_participant_phone_number,source_participant_trunk_did,"
    "source_participant_is_incoming,source_participant_is_already_connected,source_participant_group_name,"
    "source_participant_billing_suffix,destination_participant_id,destination_entity_type,destination_dn_number,"
    "destination_dn_type,destination_dn_name,destination_participant_name,destination_participant_phone_number,"
    "destination_participant_trunk_did,destination_participant_is_incoming,"
    "destination_participant_is_already_connected,destination_participant_group_name,"
    "destination_participant_billing_suffix,base_cdr_id,originating_cdr_id,creation_method,"
    "creation_forward_reason,termination_reason,terminated_by_participant_id,continued_in_cdr_id,cdr_started_at,"
    "cdr_ended_at,cdr_answered_at,termination_reason_details,processed,migrated,main_call_history_id,"
    "source_presentation,offload_id"
).split(",")
RECORDING_COLUMNS = ["cdr_id", "cdr_participant_id", "recording_url"]

SAMPLE_RATE = 8000
TIMEZONE = "Europe/London"
TRUNK_DN, TRUNK_NAME, MAIN_DID = "10000", "Demo SIP Trunk", "+442079460000"
IVR_DN, IVR_NAME = "700", "Main menu"
QUEUES = (("800", "Sales queue", "Sales"), ("801", "Support queue", "Support"))
CONFERENCE_DN, CONFERENCE_NAME = "900", "Conference 900"
DEPARTMENT = "__DEFAULT__"  # 3CX's department of every participant in a single-department system

# ---------------------------------------------------------------------------- the company

GROUPS = (
    ("Sales", "New business: inbound sales line (queue 800) and outbound prospecting"),
    ("Support", "Customer support: inbound support line (queue 801)"),
    ("Billing", "Invoices, payments and refunds; takes transfers from the front line"),
    ("Retention", "Customers who want to leave; outbound win-back calls"),
    ("Operations", "Logistics and facilities; mostly internal calls"),
    ("Management", "Directors and managers"),
    ("Compliance", "Call-recording audits"),
)


@dataclass
class Person:
    login: str
    name: str
    ext: str
    group: str
    report_scope: str = "own"
    playback: str = "own"
    roles: tuple[str, ...] = ()
    extra_groups: tuple[str, ...] = ()
    timezone: str = TIMEZONE
    description: str = ""
    # (when, new primary group); filled in from the window in _company()
    moves: list[tuple[datetime, str]] = field(default_factory=list)
    active_from: datetime | None = None
    active_to: datetime | None = None


PERSONAS = {
    "olivia": "Sales agent: lists and plays only her own calls",
    "sam": "Sales team lead: lists every call tagged Sales, may play only his own",
    "paul": "Support team lead: lists and plays every call tagged Support",
    "maria": "Manager (primary group Management, also in Sales and Support): lists and plays those groups' calls",
    "alex": "Director and administrator: lists and plays every call",
    "nina": "Billing team lead: lists Billing's calls, may play none",
    "audrey": "Auditor: lists every call, plays none, runs the audit notebooks",
}


def _staff() -> list[Person]:
    p = Person
    people = [
        p("alex", "Alex Morgan", "100", "Management", "all", "all", ("admin",)),
        p("olivia", "Olivia Stone", "101", "Sales"),
        p("sam", "Sam Patel", "102", "Sales", "primary_group", "own", extra_groups=("Retention",)),
        p("paul", "Paul Okafor", "103", "Support", "primary_group", "primary_group"),
        p("maria", "Maria Keller", "104", "Management", "member_groups", "member_groups",
          extra_groups=("Sales", "Support")),
        p("nina", "Nina Rossi", "105", "Billing", "primary_group", "none"),
        p("audrey", "Audrey Fischer", "106", "Compliance", "all", "none", ("auditor",)),
        p("felix", "Felix Andersson", "107", "Compliance", playback="none"),
        p("hugo", "Hugo Brandt", "170", "Management", playback="none"),
    ]
    sales = ["ben Ben Carter", "chloe Chloe Dubois", "daniel Daniel Reyes", "liam Liam Walsh", "emma Emma Novak",
             "jack Jack Turner", "isla Isla Murray", "noah Noah Brooks", "ruby Ruby Chen", "leo Leo Grant"]
    support = ["hannah Hannah Scott", "james James Kim", "lucy Lucy Evans", "mohammed Mohammed Ali",
               "grace Grace Lindqvist", "ethan Ethan Clarke", "sophie Sophie Martin", "tom Tom Baker",
               "amelia Amelia Wright", "oscar Oscar Nilsen", "freya Freya Hughes", "samuel Samuel Adeyemi"]
    billing = ["omar Omar Haddad", "priya Priya Shah", "victor Victor Lane", "ella Ella Moreau"]
    retention = ["mia Mia Jensen", "ryan Ryan Doyle", "tara Tara Quinn", "kai Kai Larsen", "lena Lena Vogel"]
    operations = ["george George Hall", "ivy Ivy Sutton", "max Max Weber", "rosa Rosa Lopez"]
    for first_ext, group, names, playback in ((110, "Sales", sales, "own"), (120, "Support", support, "own"),
                                              (140, "Billing", billing, "own"), (150, "Retention", retention, "own"),
                                              (160, "Operations", operations, "none")):
        for i, entry in enumerate(names):
            login, name = entry.split(" ", 1)
            people.append(p(login, name, str(first_ext + i), group, playback=playback))
    people.append(p("zoe", "Zoe Harper", "127", "Support"))  # takes over tom's extension
    extras = {"ben": ("Retention",), "chloe": ("Retention",), "hannah": ("Billing",), "george": ("Support",),
              "priya": ("Retention",), "lucy": ("Billing",)}
    by_login = {x.login: x for x in people}
    for login, groups in extras.items():
        by_login[login].extra_groups = groups
    for login in ("noah", "ruby"):
        by_login[login].timezone = "America/New_York"
    for login, text in PERSONAS.items():
        by_login[login].description = text
    return people


@dataclass
class Company:
    people: list[Person]
    window_start: datetime
    window_end: datetime
    epoch: datetime  # when the long-standing extensions were assigned
    boundaries: list[datetime]  # instants at which the directory changes inside the window

    def primary_at(self, person: Person, t: datetime) -> str:
        group = person.group
        for when, new in person.moves:
            if t >= when:
                group = new
        return group

    def active_at(self, person: Person, t: datetime) -> bool:
        return (person.active_from is None or t >= person.active_from) and (
            person.active_to is None or t < person.active_to
        )


def _company(end: date, days: int) -> Company:
    people = _staff()
    by_login = {x.login: x for x in people}
    w0 = datetime.combine(end - timedelta(days=days), time(), UTC)
    w1 = datetime.combine(end, time(), UTC)
    mid = w0 + timedelta(days=days // 2)
    by_login["liam"].moves.append((mid, "Retention"))
    by_login["grace"].moves.append((mid, "Sales"))
    by_login["omar"].moves.append((w0 + timedelta(days=(2 * days) // 3), "Support"))
    leave = w0 + timedelta(days=(2 * days) // 5)
    by_login["tom"].active_to = leave
    by_login["zoe"].active_from = leave + timedelta(days=2)
    epoch = datetime(w0.year - 1, 1, 1, tzinfo=UTC)
    bounds = sorted({w for x in people for w, _ in x.moves} | {leave, leave + timedelta(days=2)})
    return Company(people, w0, w1, epoch, bounds)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def directory_json(company: Company) -> dict:
    users = []
    for x in company.people:
        start = x.active_from
        groups: list[dict] = []
        primary, since = x.group, start
        for when, new in x.moves:
            groups.append({"group": primary, "primary": True, "from": _iso(since), "to": _iso(when)})
            primary, since = new, when
        groups.append({"group": primary, "primary": True, "from": _iso(since), "to": _iso(x.active_to)})
        groups += [{"group": g, "primary": False} for g in x.extra_groups]
        users.append({
            "login": x.login,
            "name": x.name,
            "email": f"{x.login}@demo-company.example",
            "report_scope": x.report_scope,
            "playback": x.playback,
            "roles": list(x.roles),
            "timezone": x.timezone,
            "extensions": [{"extension": x.ext, "from": _iso(start or company.epoch), "to": _iso(x.active_to)}],
            "groups": groups,
        })
    return {"groups": [{"name": n, "description": d} for n, d in GROUPS], "users": users}


# ---------------------------------------------------------------------------- vectorised text formatting

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_FILETIME_OFFSET_US = 11_644_473_600 * 1_000_000  # 1601-01-01 -> 1970-01-01
_UUID_TS_COLUMNS = (9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 24, 25, 26, 27)


def format_uuids(ts_us: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """3CX ids: 4 zero bytes, 8 bytes of Windows FILETIME (100 ns ticks since 1601), a 4-byte counter."""
    n = len(ts_us)
    out = np.full((n, 36), ord("0"), dtype=np.uint8)
    out[:, [8, 13, 18, 23]] = ord("-")
    ticks = (np.asarray(ts_us, dtype=np.int64) + _FILETIME_OFFSET_US).astype(np.uint64) * np.uint64(10)
    for i, col in enumerate(_UUID_TS_COLUMNS):
        out[:, col] = _HEX[((ticks >> np.uint64(60 - 4 * i)) & np.uint64(15)).astype(np.intp)]
    c = np.asarray(counter, dtype=np.uint32)
    for i in range(8):
        out[:, 28 + i] = _HEX[((c >> np.uint32(28 - 4 * i)) & np.uint32(15)).astype(np.intp)]
    return out.view("S36").ravel()


def _put_digits(out: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    v = values.copy()
    for i in range(width - 1, -1, -1):
        out[:, col + i] = 48 + (v % 10)
        v //= 10


def _civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (H. Hinnant's algorithm)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return y, m, d


def format_timestamps(ts_us: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS.ffffff+00`` for µs since the Unix epoch (UTC)."""
    ts = np.asarray(ts_us, dtype=np.int64)
    secs, micros = np.divmod(ts, 1_000_000)
    days, sod = np.divmod(secs, 86400)
    y, m, d = _civil(days)
    out = np.empty((len(ts), 29), dtype=np.uint8)
    out[:, [4, 7]] = ord("-")
    out[:, 10] = ord(" ")
    out[:, [13, 16]] = ord(":")
    out[:, 19] = ord(".")
    out[:, 26] = ord("+")
    out[:, 27:29] = ord("0")
    for col, values, width in ((0, y, 4), (5, m, 2), (8, d, 2), (11, sod // 3600, 2), (14, sod // 60 % 60, 2),
                               (17, sod % 60, 2), (20, micros, 6)):
        _put_digits(out, col, values, width)
    return out.view("S29").ravel()


def _to_us(t: datetime) -> int:
    return int((t - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


def _text(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(values, type=pa.binary(), mask=mask).cast(pa.string())


# ---------------------------------------------------------------------------- parties

ENTITY = np.array([b"extension", b"external_line", b"queue", b"ivr", b"voicemail", b"conference"])
E_EXTENSION, E_EXTERNAL, E_QUEUE, E_IVR, E_VOICEMAIL, E_CONFERENCE = range(6)
DN_TYPE_OF_ENTITY = np.array([b"extension", b"provider", b"queue", b"ivr", b"extension", b"conference"])

FIRST_NAMES = ["John", "Mary", "Ahmed", "Laura", "Peter", "Fatima", "Karen", "David", "Ana", "Kwame", "Rachel",
               "Tomasz", "Helen", "Marco", "Julia", "Sean", "Aisha", "Robert", "Ingrid", "Luis"]
LAST_NAMES = ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Khan", "Murphy", "Schmidt", "Garcia", "Mensah",
              "Kowalski", "O'Neill", "Rossi", "Silva", "Yamada", "Berg", "Hughes", "Price", "Ward", "Fox"]


@dataclass
class Parties:
    entity: np.ndarray  # int8 codes into ENTITY
    dn: np.ndarray  # S
    dn_name: np.ndarray
    name: np.ndarray
    phone: np.ndarray
    user_base: int
    voicemail_base: int
    customer_base: int
    ivr: int
    queues: tuple[int, int]
    conference: int


def _parties(people: Sequence[Person], rng: np.random.Generator) -> Parties:
    entity: list[int] = []
    dn: list[str] = []
    dn_name: list[str] = []
    name: list[str] = []
    phone: list[str] = []

    def add(e: int, number: str, dname: str, pname: str, ph: str) -> int:
        entity.append(e)
        dn.append(number)
        dn_name.append(dname)
        name.append(pname)
        phone.append(ph)
        return len(entity) - 1

    ivr = add(E_IVR, IVR_DN, IVR_NAME, IVR_NAME, IVR_DN)
    sales_queue, support_queue = (add(E_QUEUE, q, qn, qn, q) for q, qn, _ in QUEUES)
    conference = add(E_CONFERENCE, CONFERENCE_DN, CONFERENCE_NAME, CONFERENCE_NAME, CONFERENCE_DN)
    user_base = len(entity)
    for x in people:
        add(E_EXTENSION, x.ext, x.name, x.name, x.ext)
    voicemail_base = len(entity)
    for x in people:
        add(E_VOICEMAIL, x.ext, x.name, x.name, x.ext)
    customer_base = len(entity)
    # Fictional numbers only: Ofcom's drama range 020 7946 0xxx and the US 202-555-01xx range.
    numbers = [f"+442079460{i:03d}" for i in range(100, 1000)] + [f"+12025550{i:03d}" for i in range(100, 200)]
    order = rng.permutation(len(numbers))  # frequent callers spread over the range
    named = rng.random(len(numbers)) < 0.5
    firsts = rng.integers(0, len(FIRST_NAMES), len(numbers))
    lasts = rng.integers(0, len(LAST_NAMES), len(numbers))
    for k, i in enumerate(order):
        number = numbers[i]
        pname = f"{FIRST_NAMES[firsts[k]]} {LAST_NAMES[lasts[k]]}" if named[k] else number
        add(E_EXTERNAL, TRUNK_DN, TRUNK_NAME, pname, number)

    def arr(values: list[str]) -> np.ndarray:
        return np.array([v.encode() for v in values])

    return Parties(np.array(entity, dtype=np.int8), arr(dn), arr(dn_name), arr(name), arr(phone),
                   user_base, voicemail_base, customer_base, ivr, (sales_queue, support_queue), conference)


# ---------------------------------------------------------------------------- calls

K_INBOUND, K_OUTBOUND, K_INTERNAL, K_CONFERENCE = range(4)
O_ANSWERED, O_MISSED, O_ABANDONED, O_VOICEMAIL, O_FAILED = range(5)
OUTCOMES = ("answered", "missed", "abandoned", "voicemail", "failed")
R_IVR, R_QUEUE, R_AGENT, R_TRANSFER, R_VOICEMAIL, R_OUT, R_INTERNAL, R_CONFERENCE = range(8)

CREATION = np.array([b"call_init", b"divert", b"route_to", b"transfer", b"join"])
C_INIT, C_DIVERT, C_ROUTE, C_TRANSFER = range(4)
FORWARD = np.array([b"none", b"polling", b"no_answer"])
TERMINATION = np.array([b"continued_in", b"src_participant_terminated", b"dst_participant_terminated",
                        b"cancelled", b"rejected", b"redirected"])
T_CONTINUED, T_SRC, T_DST, T_CANCELLED, T_REJECTED = range(5)
DETAILS = np.array([b"", b"terminated_by_originator", b"no_route", b"busy"])
D_NONE, D_ORIGINATOR, D_NO_ROUTE, D_BUSY = range(4)
TF = np.array([b"f", b"t"])

US = 1_000_000


def _pool_weight(pool: str, x: Person, primary: str) -> float:
    lead = x.login in ("sam", "paul", "nina")
    if pool in ("q800", "q801"):
        if primary != ("Sales" if pool == "q800" else "Support"):
            return 0.0
        return {"olivia": 3.0, "sam": 1.5, "paul": 1.5}.get(x.login, 1.0)
    if pool == "transfer":
        if x.login == "nina":
            return 2.5
        if lead:
            return 2.0
        return 1.0 if primary in ("Sales", "Support", "Billing", "Retention") else 0.0
    if pool == "out":
        special = {"olivia": 4.0, "nina": 2.0, "alex": 0.6, "audrey": 0.3}
        return special.get(x.login, {"Sales": 2.0, "Retention": 2.0, "Billing": 1.5, "Support": 0.7,
                                     "Management": 0.4, "Operations": 0.3, "Compliance": 0.2}[primary])
    if pool == "internal":
        return 0.5 if primary == "Compliance" else 1.0
    if pool == "conference":
        if primary == "Management":
            return 3.0
        return 2.0 if lead else 0.5
    raise ValueError(pool)


POOLS = ("q800", "q801", "transfer", "out", "internal", "conference")


def _pool_weights(company: Company) -> np.ndarray:
    """weights[period, pool, user]; period p covers [boundaries[p-1], boundaries[p])."""
    instants = [company.window_start - timedelta(days=1), *company.boundaries]
    w = np.zeros((len(instants), len(POOLS), len(company.people)))
    for p, t in enumerate(instants):
        for u, x in enumerate(company.people):
            if company.active_at(x, t):
                primary = company.primary_at(x, t)
                for k, pool in enumerate(POOLS):
                    w[p, k, u] = _pool_weight(pool, x, primary)
    return w


def _pick(weights: np.ndarray, period: np.ndarray, pool: str, u: np.ndarray,
          exclude: np.ndarray | None = None) -> np.ndarray:
    """A weighted user per row (by its period), never ``exclude`` of that row."""
    k = POOLS.index(pool)
    out = np.empty(len(period), dtype=np.int32)
    for p in np.unique(period):
        rows = np.flatnonzero(period == p)
        w = weights[p, k]
        if exclude is None:
            cum = np.cumsum(w)
            out[rows] = np.searchsorted(cum, u[rows] * cum[-1], side="right")
            continue
        for x in np.unique(exclude[rows]):
            sub = rows[exclude[rows] == x]
            wx = w.copy()
            if x >= 0:
                wx[x] = 0.0
            cum = np.cumsum(wx)
            out[sub] = np.searchsorted(cum, u[sub] * cum[-1], side="right")
    return np.minimum(out, weights.shape[2] - 1)


@dataclass
class Calls:
    """One row per call the user sees (a conference is one call), sorted by start."""

    start: np.ndarray  # µs UTC
    kind: np.ndarray
    outcome: np.ndarray
    transfers: np.ndarray
    queue: np.ndarray
    customer: np.ndarray  # party index
    agents: np.ndarray  # (n, 3) user indices: first agent / caller, 2nd, 3rd (transfer targets, callee)
    recorded: np.ndarray


def _start_times(rng: np.random.Generator, n: int, end: date, days: int) -> np.ndarray:
    first = end - timedelta(days=days)
    dates = pd.date_range(first, periods=days, freq="D")
    day_w = np.where(dates.day_of_week < 5, 1.0, np.where(dates.day_of_week == 5, 0.12, 0.05))
    day = rng.choice(days, size=n, p=day_w / day_w.sum())
    morning = rng.random(n) < 0.5
    hours = np.where(morning, rng.normal(10.5, 1.3, n), rng.normal(14.5, 1.5, n))
    seconds = np.clip(hours, 7.5, 19.0) * 3600
    local_us = (dates.values.astype("datetime64[us]").astype(np.int64)[day] + (seconds * US).astype(np.int64)
                + rng.integers(0, US, n))
    local = pd.DatetimeIndex(local_us.astype("datetime64[us]"))
    utc = local.tz_localize(TIMEZONE, ambiguous=np.zeros(n, dtype=bool), nonexistent="shift_forward")
    return np.sort(utc.tz_convert("UTC").tz_localize(None).values.astype("datetime64[us]").astype(np.int64))


def _calls(rng: np.random.Generator, start: np.ndarray, company: Company, parties: Parties, weights: np.ndarray,
           *, personas: bool) -> tuple[Calls, np.ndarray]:
    """The calls starting at ``start`` (sorted); with ``personas``, every persona gets a few calls of its own."""
    n = len(start)
    kind = rng.choice(4, size=n, p=[0.58, 0.27, 0.12, 0.03]).astype(np.int8)
    u_out = rng.random(n)
    outcome = np.full(n, O_ANSWERED, dtype=np.int8)
    inbound, outbound, internal = kind == K_INBOUND, kind == K_OUTBOUND, kind == K_INTERNAL
    outcome[inbound] = np.select(
        [u_out[inbound] < 0.75, u_out[inbound] < 0.85, u_out[inbound] < 0.92], [O_ANSWERED, O_ABANDONED, O_MISSED],
        O_VOICEMAIL)
    outcome[outbound] = np.select([u_out[outbound] < 0.72, u_out[outbound] < 0.92], [O_ANSWERED, O_MISSED], O_FAILED)
    outcome[internal] = np.where(u_out[internal] < 0.8, O_ANSWERED, O_MISSED)
    u_x = rng.random(n)
    transfers = np.where(inbound & (outcome == O_ANSWERED), (u_x < 0.15).astype(np.int8) + (u_x < 0.03), 0)
    queue = (rng.random(n) < 0.55).astype(np.int8)  # 0 = Sales 800, 1 = Support 801
    n_customers = len(parties.entity) - parties.customer_base
    customer = parties.customer_base + (n_customers * rng.random(n) ** 2.5).astype(np.int32)

    period = np.searchsorted(np.array([_to_us(b) for b in company.boundaries]), start, side="right")
    u_a = rng.random((n, 3))
    agents = np.full((n, 3), -1, dtype=np.int32)
    first_pool = np.where(inbound, np.where(queue == 0, 0, 1), np.where(outbound, 3, 4))
    for k, pool in enumerate(POOLS[:5]):
        rows = np.flatnonzero((first_pool == k) & (kind != K_CONFERENCE))
        if k == 2 or len(rows) == 0:
            continue
        agents[rows, 0] = _pick(weights, period[rows], pool, u_a[rows, 0])
    rows = np.flatnonzero(transfers >= 1)
    agents[rows, 1] = _pick(weights, period[rows], "transfer", u_a[rows, 1], exclude=agents[rows, 0])
    rows = np.flatnonzero(transfers >= 2)
    agents[rows, 2] = _pick(weights, period[rows], "transfer", u_a[rows, 2], exclude=agents[rows, 1])
    rows = np.flatnonzero(internal)
    agents[rows, 1] = _pick(weights, period[rows], "internal", u_a[rows, 1], exclude=agents[rows, 0])

    # Every persona makes a few answered internal calls, so each demo login has calls of its own.
    logins = [x.login for x in company.people]
    internal_rows = np.flatnonzero(internal)
    for j, login in enumerate(PERSONAS if personas else ()):
        u = logins.index(login)
        for row in internal_rows[j :: len(PERSONAS)][:3]:
            if company.active_at(company.people[u], datetime.fromtimestamp(start[row] / US, UTC)):
                agents[row, 0] = u
                if agents[row, 1] == u:
                    agents[row, 1] = logins.index("paul" if login != "paul" else "sam")
                outcome[row] = O_ANSWERED

    has_talk = outcome == O_ANSWERED
    recorded = np.where(kind == K_CONFERENCE, rng.random(n) < 0.5, has_talk & (rng.random(n) < 0.4))
    return Calls(start, kind, outcome, transfers.astype(np.int8), queue, customer, agents, recorded), period


@dataclass
class Chains:
    """One row per 3CX call flow (call_history_id): the ordinary calls plus one per conference leg."""

    call: np.ndarray  # index into Calls
    start: np.ndarray
    main: np.ndarray  # chain index whose call_history_id is main_call_history_id
    leg_source: np.ndarray  # conference legs: source party; -1 otherwise
    leg_end: np.ndarray  # conference legs: leave time


def _conference_legs(rng: np.random.Generator, calls: Calls, period: np.ndarray, weights: np.ndarray,
                     parties: Parties) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(call, join, leave, source party) per leg, legs of a conference contiguous, first leg first."""
    conf = np.flatnonzero(calls.kind == K_CONFERENCE)
    m = len(conf)
    legs = rng.integers(3, 7, m)
    duration = (rng.uniform(60, 300, m) * US).astype(np.int64)
    n_users = weights.shape[2]
    keys = -np.log(rng.random((m, n_users)))
    w = weights[period[conf], POOLS.index("conference")]
    with np.errstate(divide="ignore"):
        keys = np.where(w > 0, keys / w, np.inf)
    chosen = np.argsort(keys, axis=1, kind="stable")[:, :6]
    external = rng.random(m) < 0.3
    total = int(legs.sum())
    call = np.repeat(conf, legs)
    first = np.repeat(np.cumsum(legs) - legs, legs)
    pos = np.arange(total) - first
    d = np.repeat(duration, legs)
    u_join, u_leave, kind_join, kind_leave = rng.random(total), rng.random(total), rng.random(total), rng.random(total)
    join = np.where(kind_join < 0.25, 0.2 + 0.4 * u_join, 0.1 * u_join) * d  # some join late
    leave = np.where(kind_leave < 0.25, 0.5 + 0.3 * u_leave, 1.0 - 0.05 * u_leave) * d  # some leave early
    join = np.where(pos == 0, 0, np.maximum(join, 1_000)).astype(np.int64)  # the organiser is strictly first
    leave = leave.astype(np.int64)
    leave[np.cumsum(legs) - 1] = duration  # the last to join stays to the end: the room's last leave
    leave = np.maximum(leave, join + 5 * US)
    starts = np.repeat(calls.start[conf], legs)
    source = parties.user_base + chosen[np.repeat(np.arange(m), legs), np.minimum(pos, 5)]
    ext_leg = np.repeat(external, legs) & (pos == np.repeat(legs, legs) - 1)
    source = np.where(ext_leg, np.repeat(calls.customer[conf], legs), source)
    return call, starts + join, starts + leave, source.astype(np.int32)


def _chains(rng: np.random.Generator, calls: Calls, period: np.ndarray, weights: np.ndarray,
            parties: Parties) -> Chains:
    plain = np.flatnonzero(calls.kind != K_CONFERENCE)
    leg_call, leg_join, leg_leave, leg_source = _conference_legs(rng, calls, period, weights, parties)
    call = np.concatenate([plain, leg_call])
    start = np.concatenate([calls.start[plain], leg_join])
    source = np.concatenate([np.full(len(plain), -1, np.int32), leg_source])
    leave = np.concatenate([np.zeros(len(plain), np.int64), leg_leave])
    is_leg = np.concatenate([np.zeros(len(plain), bool), np.ones(len(leg_call), bool)])
    order = np.lexsort((np.arange(len(call)), start))
    call, start, source, leave, is_leg = call[order], start[order], source[order], leave[order], is_leg[order]
    # main chain of each call = its earliest chain (legs sort by join; the organiser joins first)
    first_of_call = np.full(len(calls.start), len(call), dtype=np.int64)
    np.minimum.at(first_of_call, call, np.arange(len(call)))
    return Chains(call, start, first_of_call[call], np.where(is_leg, source, -1), leave)


@dataclass
class Cdrs:
    """One row per CDR, grouped by chain (chain-major, position-minor)."""

    chain: np.ndarray
    pos: np.ndarray
    last: np.ndarray
    role: np.ndarray
    start: np.ndarray
    end: np.ndarray
    answered: np.ndarray  # µs, or -1
    src: np.ndarray  # party
    dst: np.ndarray
    agent: np.ndarray  # user index of the extension in this segment (for recordings), -1 if none
    creation: np.ndarray
    forward: np.ndarray
    termination: np.ndarray
    details: np.ndarray
    order: np.ndarray = field(default_factory=lambda: np.empty(0))  # CSV row order (by start)
    rank: np.ndarray = field(default_factory=lambda: np.empty(0))  # row of each CDR in the CSV


def _cdrs(rng: np.random.Generator, calls: Calls, chains: Chains, parties: Parties) -> Cdrs:
    c = chains.call
    kind, outcome, transfers = calls.kind[c], calls.outcome[c], calls.transfers[c]
    count = np.select(
        [kind != K_INBOUND, outcome == O_ANSWERED, outcome == O_ABANDONED, outcome == O_MISSED],
        [1, 3 + transfers, 2, 3], 4).astype(np.int64)
    total = int(count.sum())
    chain = np.repeat(np.arange(len(c)), count)
    first = np.repeat(np.cumsum(count) - count, count)
    pos = (np.arange(total) - first).astype(np.int8)
    last = pos == np.repeat(count, count) - 1
    k, o, call = kind[chain], outcome[chain], c[chain]
    role = np.select(
        [k == K_CONFERENCE, k == K_OUTBOUND, k == K_INTERNAL, pos == 0, pos == 1, pos == 2, o == O_VOICEMAIL],
        [R_CONFERENCE, R_OUT, R_INTERNAL, R_IVR, R_QUEUE, R_AGENT, R_VOICEMAIL], R_TRANSFER).astype(np.int8)
    answered = np.isin(role, [R_IVR, R_VOICEMAIL, R_TRANSFER, R_CONFERENCE]) | (
        np.isin(role, [R_AGENT, R_OUT, R_INTERNAL]) & (o == O_ANSWERED))

    u1, u2 = rng.random(total), rng.random(total)
    z = rng.standard_normal(total)
    talk = np.clip(np.exp(np.log(35.0) + 0.75 * z), 4.0, 360.0)
    # seconds from start to answer (or to the end when unanswered; a queue CDR is all waiting)
    ring = np.select(
        [role == R_QUEUE, role == R_AGENT, role == R_TRANSFER, role == R_OUT, role == R_INTERNAL],
        [5 + 115 * u2,
         np.select([o == O_ANSWERED, o == O_MISSED], [3 + 17 * u1, 10 + 20 * u1], 15 + 10 * u1),
         2 + 8 * u1,
         np.select([o == O_ANSWERED, o == O_MISSED], [3 + 22 * u1, 10 + 30 * u1], 0.2 + 2.8 * u1),
         np.where(o == O_ANSWERED, 2 + 13 * u1, 8 + 22 * u1)], 0.0)
    talk = np.select([role == R_IVR, role == R_VOICEMAIL, answered], [5 + 15 * u2, 10 + 50 * u2, talk], 0.0)
    ring_us = (ring * US).astype(np.int64)
    dur_us = ring_us + (talk * US).astype(np.int64)
    cum = np.cumsum(dur_us)
    offset = cum - dur_us - (cum[first] - dur_us[first]) if total else cum
    start = chains.start[chain] + offset
    end = start + dur_us
    is_conf = role == R_CONFERENCE
    end = np.where(is_conf, chains.leg_end[chain], end)
    answer = np.where(answered, start + ring_us, -1)

    agents = calls.agents[call]
    agent = np.select(
        [np.isin(role, [R_AGENT, R_OUT, R_INTERNAL, R_VOICEMAIL]), (role == R_TRANSFER) & (pos == 3),
         role == R_TRANSFER],
        [agents[:, 0], agents[:, 1], agents[:, 2]], -1).astype(np.int32)
    customer = calls.customer[call]
    src = np.select([is_conf, np.isin(role, [R_OUT, R_INTERNAL])],
                    [chains.leg_source[chain], parties.user_base + agents[:, 0]], customer).astype(np.int32)
    queue_party = np.array(parties.queues, dtype=np.int32)[calls.queue[call]]
    dst = np.select(
        [role == R_IVR, role == R_QUEUE, np.isin(role, [R_AGENT, R_TRANSFER]), role == R_VOICEMAIL, role == R_OUT,
         role == R_INTERNAL],
        [parties.ivr, queue_party, parties.user_base + agent, parties.voicemail_base + agent, customer,
         parties.user_base + agents[:, 1]], parties.conference).astype(np.int32)
    agent = np.where(is_conf & (parties.entity[src] == E_EXTENSION), src - parties.user_base, agent)

    creation = np.select([pos == 0, role == R_AGENT, role == R_TRANSFER], [C_INIT, C_ROUTE, C_TRANSFER],
                         C_DIVERT).astype(np.int8)
    forward = np.select([role == R_AGENT, role == R_VOICEMAIL], [1, 2], 0).astype(np.int8)
    hang = np.where(u2 < 0.5, T_SRC, T_DST)
    termination = np.select(
        [~last, is_conf | (role == R_QUEUE) | (role == R_VOICEMAIL), o == O_FAILED, ~answered],
        [T_CONTINUED, T_SRC, T_REJECTED, T_CANCELLED], hang).astype(np.int8)
    details = np.select(
        [termination == T_REJECTED, (termination == T_CANCELLED) | (last & (role == R_QUEUE))],
        [np.where(u1 < 0.4, D_NO_ROUTE, D_BUSY), D_ORIGINATOR], D_NONE).astype(np.int8)
    cdrs = Cdrs(chain, pos, last, role, start, end, answer, src, dst, agent, creation, forward, termination, details)
    cdrs.order = np.lexsort((pos, chain, start))
    cdrs.rank = np.empty(total, dtype=np.int64)
    cdrs.rank[cdrs.order] = np.arange(total)
    return cdrs


# ---------------------------------------------------------------------------- ids and CSV

ID_BASE = 0x0C00  # the call manager's counters start small after a restart


@dataclass
class Ids:
    chain: np.ndarray  # S36 per chain
    cdr: np.ndarray  # S36 per CDR (grouped order)
    src_pid: np.ndarray
    dst_pid: np.ndarray


def _ids(chains: Chains, cdrs: Cdrs, base: int = ID_BASE) -> Ids:
    """Ids with counters from ``base`` on; the block uses ``id_count`` of them."""
    n_chain, n_cdr = len(chains.start), len(cdrs.start)
    # Disjoint counter ranges keep every id unique across kinds, not just within a column.
    chain_ids = format_uuids(chains.start, base + np.arange(n_chain))
    cdr_ids = format_uuids(cdrs.start, base + n_chain + cdrs.rank)
    # The source participant stays the same along a chain; each CDR gets a new destination participant.
    src_pid = format_uuids(chains.start[cdrs.chain], base + n_chain + n_cdr + cdrs.chain)
    dst_pid = format_uuids(cdrs.start, base + 2 * n_chain + n_cdr + cdrs.rank)
    return Ids(chain_ids, cdr_ids, src_pid, dst_pid)


def id_count(chains: Chains, cdrs: Cdrs) -> int:
    return 2 * len(chains.start) + 2 * len(cdrs.start)


def _cdr_table(rows: np.ndarray, cdrs: Cdrs, chains: Chains, ids: Ids, parties: Parties) -> pa.Table:
    n = len(rows)
    null = pa.nulls(n, pa.string())
    src, dst = cdrs.src[rows], cdrs.dst[rows]
    pos, chain = cdrs.pos[rows], cdrs.chain[rows]
    src_external = parties.entity[src] == E_EXTERNAL
    prev = np.maximum(rows - 1, 0)
    nxt = np.minimum(rows + 1, len(cdrs.start) - 1)
    first = rows - pos
    # route_to from a queue starts a new routing branch: its origin is the queue CDR, else the call's first CDR
    origin = np.where(cdrs.role[rows] == R_AGENT, prev, first)
    term = cdrs.termination[rows]
    by_src = np.isin(term, [T_SRC, T_CANCELLED])
    by_dst = np.isin(term, [T_DST, T_REJECTED])
    answered = cdrs.answered[rows]
    columns: dict[str, pa.Array] = {
        "cdr_id": _text(ids.cdr[rows]),
        "call_history_id": _text(ids.chain[chain]),
        "source_participant_id": _text(ids.src_pid[rows]),
        "destination_participant_id": _text(ids.dst_pid[rows]),
    }
    for side, party in (("source", src), ("destination", dst)):
        columns[f"{side}_entity_type"] = _text(ENTITY[parties.entity[party]])
        columns[f"{side}_dn_number"] = _text(parties.dn[party])
        columns[f"{side}_dn_type"] = _text(DN_TYPE_OF_ENTITY[parties.entity[party]])
        columns[f"{side}_dn_name"] = _text(parties.dn_name[party])
        columns[f"{side}_participant_name"] = _text(parties.name[party])
        columns[f"{side}_participant_phone_number"] = _text(parties.phone[party])
        if side == "source":
            columns["source_participant_trunk_did"] = _text(np.full(n, MAIN_DID.encode()), ~src_external)
            columns["source_participant_is_incoming"] = _text(TF[np.ones(n, dtype=np.intp)])
            columns["source_participant_is_already_connected"] = _text(TF[(pos > 0).astype(np.intp)])
        else:
            columns["destination_participant_trunk_did"] = null
            columns["destination_participant_is_incoming"] = _text(TF[np.zeros(n, dtype=np.intp)])
            columns["destination_participant_is_already_connected"] = _text(TF[np.zeros(n, dtype=np.intp)])
        columns[f"{side}_participant_group_name"] = _text(np.full(n, DEPARTMENT.encode()))
        columns[f"{side}_participant_billing_suffix"] = null
    terminated_by = np.where(by_src, ids.src_pid[rows], ids.dst_pid[rows])
    columns |= {
        "base_cdr_id": _text(ids.cdr[prev], pos == 0),
        "originating_cdr_id": _text(ids.cdr[origin], pos == 0),
        "creation_method": _text(CREATION[cdrs.creation[rows]]),
        "creation_forward_reason": _text(FORWARD[cdrs.forward[rows]]),
        "termination_reason": _text(TERMINATION[term]),
        "terminated_by_participant_id": _text(terminated_by, ~(by_src | by_dst)),
        "continued_in_cdr_id": _text(ids.cdr[nxt], cdrs.last[rows]),
        "cdr_started_at": _text(format_timestamps(cdrs.start[rows])),
        "cdr_ended_at": _text(format_timestamps(cdrs.end[rows])),
        "cdr_answered_at": _text(format_timestamps(np.maximum(answered, 0)), answered < 0),
        "termination_reason_details": _text(DETAILS[cdrs.details[rows]], cdrs.details[rows] == D_NONE),
        "processed": _text(TF[np.ones(n, dtype=np.intp)]),
        "migrated": _text(TF[np.zeros(n, dtype=np.intp)]),
        "main_call_history_id": _text(ids.chain[chains.main[chain]]),
        "source_presentation": _text(parties.phone[src]),
        "offload_id": null,
    }
    return pa.table({name: columns[name] for name in CDR_COLUMNS})


@contextmanager
def _csv_writer(path: Path, header: Sequence[str]) -> Iterator[pacsv.CSVWriter]:
    """A CSV file with ``header``, written table by table (all-text columns, no quoting)."""
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    schema = pa.schema([(h, pa.string()) for h in header])
    with open(path, "wb") as f:
        f.write((",".join(header) + "\n").encode())
        with pacsv.CSVWriter(f, schema, write_options=options) as writer:
            yield writer


# ---------------------------------------------------------------------------- recordings


@dataclass
class Recording:
    cdr: int  # CDR row (grouped order)
    participant_id: str
    url: str
    start_us: int
    end_us: int
    tag: int
    call_history_id: str
    missing: bool


def _recordings(rng: np.random.Generator, calls: Calls, chains: Chains, cdrs: Cdrs, ids: Ids,
                parties: Parties, people: Sequence[Person], first_number: int = 1) -> list[Recording]:
    calls_of = chains.call[cdrs.chain]
    recorded = calls.recorded[calls_of]
    talk = np.isin(cdrs.role, [R_AGENT, R_TRANSFER, R_OUT, R_INTERNAL]) & (cdrs.answered >= 0) & recorded
    conf_first = (cdrs.role == R_CONFERENCE) & recorded & (chains.main[cdrs.chain] == cdrs.chain)
    rows = np.flatnonzero(talk | conf_first)
    # a conference recording runs from the first join to the last leave of all its legs
    conf_end = np.zeros(len(calls.start), dtype=np.int64)
    legs = cdrs.role == R_CONFERENCE
    np.maximum.at(conf_end, calls_of[legs], cdrs.end[legs])
    start = cdrs.answered[rows]
    end = np.where(cdrs.role[rows] == R_CONFERENCE, conf_end[calls_of[rows]], cdrs.end[rows])
    order = np.lexsort((cdrs.rank[rows], start))
    rows, start, end = rows[order], start[order], end[order]
    stamps = format_timestamps(start)
    missing = np.zeros(len(rows), dtype=bool)
    missing[rng.choice(len(rows), size=int(round(0.03 * len(rows))), replace=False)] = True
    out = []
    for i, (row, s, e) in enumerate(zip(rows.tolist(), start.tolist(), end.tolist(), strict=True)):
        n = first_number + i  # 3CX's counter in the file name runs on over the whole dataset
        role = int(cdrs.role[row])
        src, dst = int(cdrs.src[row]), int(cdrs.dst[row])
        if role == R_CONFERENCE:
            folder, display, a, b = CONFERENCE_DN, CONFERENCE_NAME, parties.phone[src].decode(), CONFERENCE_DN
            pid, tag = ids.src_pid[row], 0
        else:
            folder = people[int(cdrs.agent[row])].ext
            display, a, b = parties.name[src].decode(), parties.phone[src].decode(), parties.phone[dst].decode()
            agent_is_source = role in (R_OUT, R_INTERNAL)
            pid, tag = (ids.src_pid if agent_is_source else ids.dst_pid)[row], min(int(cdrs.pos[row]) + 1, 7)
        t = stamps[i].decode()
        stamp = t[0:4] + t[5:7] + t[8:10] + t[11:13] + t[14:16] + t[17:19]
        url = f"{folder}/[{display}]_{a}-{b}_{stamp}({n}).wav"
        chid = ids.chain[cdrs.chain[row]].decode()
        out.append(Recording(row, pid.decode(), url, s, e, tag, chid, bool(missing[i])))
    return out


def _write_audio(root: Path, recordings: Sequence[Recording]) -> int:
    import soundfile as sf

    written = 0
    for r in recordings:
        if r.missing:
            continue
        path = root / r.url
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = tonecode.synthesize(tonecode.call_code(r.call_history_id), r.tag, (r.end_us - r.start_us) / US)
        sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        mtime_ns = r.end_us * 1000
        os.utime(path, ns=(mtime_ns, mtime_ns))
        written += 1
    return written


# ---------------------------------------------------------------------------- entry point


BLOCK_CALLS = 500_000  # calls generated and written at a time (whole days; one busier day is one block)
NIGHT_US = 4 * 3600 * US  # a gap between two call starts this long is a night: no call flow lasts that long
CSV_CHUNK = 250_000  # CDR rows formatted at a time


def _blocks(start: np.ndarray, limit: int) -> list[slice]:
    """Cut the sorted call starts into runs of at most ``limit`` calls at night gaps (a single day may exceed it)."""
    n = len(start)
    nights = (np.flatnonzero(np.diff(start) > NIGHT_US) + 1).tolist()
    cuts = [0]
    previous = 0
    for boundary in [*nights, n]:
        if boundary - cuts[-1] > limit and previous > cuts[-1]:
            cuts.append(previous)
        previous = boundary
    cuts.append(n)
    return [slice(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


@dataclass
class _Tally:
    """What the manifest counts, added up block by block."""

    call_flows: int = 0
    cdrs: int = 0
    recordings: int = 0
    written: int = 0
    missing: int = 0
    calls_with_recordings: int = 0
    conference_legs: int = 0
    transfers: int = 0
    kinds: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.int64))
    outcomes: np.ndarray = field(default_factory=lambda: np.zeros(len(OUTCOMES), dtype=np.int64))


def generate(out_dir: Path, *, calls: int = 500, seed: int = 7, end: date = date(2026, 11, 20), days: int = 30,
             audio: bool = True, progress: bool = False, block_calls: int = BLOCK_CALLS) -> dict:
    """Write the demo dataset into ``out_dir`` and return its manifest (see the module docstring)."""
    if calls < 1 or days < 1:
        raise ValueError("calls and days must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    company = _company(end, days)
    parties = _parties(company.people, rng)
    weights = _pool_weights(company)
    starts = _start_times(rng, calls, end, days)
    blocks = _blocks(starts, block_calls)
    tally = _Tally()
    id_base = ID_BASE
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=calls, desc="demo calls", unit="call", unit_scale=True)
    with (_csv_writer(out_dir / "cdroutput.csv", CDR_COLUMNS) as cdr_csv,
          _csv_writer(out_dir / "cdrrecordings.csv", RECORDING_COLUMNS) as recording_csv):
        for number, block in enumerate(blocks):
            call_table, period = _calls(rng, starts[block], company, parties, weights, personas=number == 0)
            chains = _chains(rng, call_table, period, weights, parties)
            cdrs = _cdrs(rng, call_table, chains, parties)
            ids = _ids(chains, cdrs, id_base)
            id_base += id_count(chains, cdrs)
            recordings = _recordings(rng, call_table, chains, cdrs, ids, parties, company.people,
                                     first_number=tally.recordings + 1)
            for i in range(0, len(cdrs.order), CSV_CHUNK):
                cdr_csv.write_table(_cdr_table(cdrs.order[i : i + CSV_CHUNK], cdrs, chains, ids, parties))
            recording_csv.write_table(pa.table({
                "cdr_id": pa.array([ids.cdr[r.cdr].decode() for r in recordings], pa.string()),
                "cdr_participant_id": pa.array([r.participant_id for r in recordings], pa.string()),
                "recording_url": pa.array([r.url for r in recordings], pa.string()),
            }))
            if audio:
                tally.written += _write_audio(out_dir / "Recordings", recordings)
            tally.call_flows += len(chains.start)
            tally.cdrs += len(cdrs.start)
            tally.recordings += len(recordings)
            tally.missing += sum(r.missing for r in recordings)
            tally.calls_with_recordings += len({int(chains.call[cdrs.chain[r.cdr]]) for r in recordings})
            tally.conference_legs += int((cdrs.role == R_CONFERENCE).sum())
            tally.transfers += int(call_table.transfers.sum())
            tally.kinds += np.bincount(call_table.kind, minlength=4)
            tally.outcomes += np.bincount(call_table.outcome, minlength=len(OUTCOMES))
            if bar is not None:
                bar.update(block.stop - block.start)
            del call_table, period, chains, cdrs, ids, recordings
    if bar is not None:
        bar.close()
    (out_dir / "directory.json").write_text(json.dumps(directory_json(company), indent=1) + "\n")

    kinds = tally.kinds
    manifest = {
        "generator": "dimnb.demo.generate",
        "format": "3cx-v20",
        "arguments": {"calls": calls, "seed": seed, "end": end.isoformat(), "days": days, "audio": audio},
        "seed": seed,
        "window": {"start": _iso(company.window_start), "end": _iso(company.window_end), "timezone": TIMEZONE},
        "counts": {
            "calls": calls,
            "call_flows": tally.call_flows,
            "cdrs": tally.cdrs,
            "recordings": tally.recordings,
            "recordings_files_written": tally.written,
            "recordings_files_missing": tally.missing,
            "calls_with_recordings": tally.calls_with_recordings,
            "conferences": int(kinds[K_CONFERENCE]),
            "conference_legs": tally.conference_legs,
            "direction": {"inbound": int(kinds[K_INBOUND]), "outbound": int(kinds[K_OUTBOUND]),
                          "internal": int(kinds[K_INTERNAL]), "conference": int(kinds[K_CONFERENCE])},
            "outcome": {name: int(tally.outcomes[i]) for i, name in enumerate(OUTCOMES)},
            "transfers": tally.transfers,
            "users": len(company.people),
        },
        "files": {"cdroutput": "cdroutput.csv", "cdrrecordings": "cdrrecordings.csv",
                  "recordings_dir": "Recordings", "directory": "directory.json"},
        "tonecode": {"sample_rate": SAMPLE_RATE, "segment_tag": "1-based position of the recorded CDR in its "
                     "call_history_id chain (max 7); 0 for a conference", "call_code": "tonecode.call_code("
                     "call_history_id of the recording's CDR)"},
        "demo_logins": [
            {"login": x.login, "name": x.name, "report_scope": x.report_scope, "playback": x.playback,
             "roles": list(x.roles), "description": PERSONAS[x.login]}
            for x in company.people if x.login in PERSONAS
        ],
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest
