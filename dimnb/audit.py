"""The playback audit trail: every play start, download and refused attempt, in a tamper-evident chain.

Events live in the state store's ``audit_events`` table (append-only: triggers
refuse UPDATE and DELETE). Each event carries ``hash = sha256(prev_hash +
canonical JSON of the event)``, so changing, removing, reordering or inserting
an event breaks the chain at that point and ``verify`` names it. An attacker
who can rewrite the file *and* recompute every later hash is caught only
against a head recorded elsewhere (``verify(anchor=...)``; every audit report
prints the head it read).

The head is also signed and written outside the data directory every few
events and every hour (``dimnb.audit_checkpoints``), so ``dimnb audit
verify`` catches a truncated or recomputed chain too.

Who calls what:

- every access to audio bytes goes through ONE gate, ``authorize_playback``:
  HTTP GET and HEAD, downloads, and the in-kernel player (``widget_playback``).
  It parses the recording id (ASCII digits only), asks ``access.can_play``,
  appends the event and returns the decision, or appends a *denied* event
  and raises ``NotFound``. A play counts once per (login, recording, play
  token) however many Range requests it takes, and again once the token has
  served a whole file's length (``count_served``) or is ten minutes old;
  every download counts.
- anything else that needs to append an event calls ``record``.
- the dashboard server asks ``may_view_audit`` before showing the audit
  notebook (everyone else gets a 404).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from dimnb import access, audit_checkpoints
from dimnb.actions import VIEW_AUDIT
from dimnb.errors import InvalidInput, NotFound, UnknownUser
from dimnb.store.statestore import StateStore
from dimnb.store.stores import Stores

PLAY: Final = "play"
DOWNLOAD: Final = "download"
DENIED: Final = "denied"
KINDS: Final = (PLAY, DOWNLOAD, DENIED)

GENESIS: Final = "0" * 64
# The fields a hash covers, in the order tables and exports show them.
FIELDS: Final = ("seq", "ts", "login", "kind", "recording_id", "call_id", "rule", "client", "user_agent",
                 "play_id", "detail")
COLUMNS: Final = (*FIELDS, "prev_hash", "hash")

_PLAY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_CLIENT = 128
_MAX_USER_AGENT = 512
WIDGET_CLIENT: Final = "kernel"
WIDGET_USER_AGENT: Final = "dimnb widget (no server)"
# A play token counts as a new play once it has served this long or a whole file's length.
PLAY_TOKEN_SECONDS: Final = 600
_FALSE_FLAGS: Final = frozenset({"", "0", "false", "no", "off"})


# ------------------------------------------------------------------------------------------ events


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    ts: str
    login: str | None
    kind: str
    recording_id: int | None
    call_id: int | None
    rule: str | None
    client: str | None
    user_agent: str | None
    play_id: str | None
    detail: str | None  # canonical JSON object, or None
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "AuditEvent":
        return cls(**{name: row[name] for name in COLUMNS})

    def fields(self) -> dict[str, Any]:
        """What the hash covers."""
        return {name: getattr(self, name) for name in FIELDS}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def details(self) -> dict[str, Any]:
        return json.loads(self.detail) if self.detail else {}


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# canonical_json for an event, made cheap for verify: one encoder, keys inserted already sorted (same text).
_SORTED_FIELDS = tuple(sorted(FIELDS))
_EVENT_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of the event's fields), hex."""
    payload = {name: fields[name] for name in _SORTED_FIELDS}
    return hashlib.sha256((prev_hash + _EVENT_ENCODER.encode(payload)).encode("utf-8")).hexdigest()


def format_ts(at: datetime) -> str:
    """UTC, millisecond precision, sortable as text: ``2026-11-17T14:05:09.123Z``."""
    if at.tzinfo is None:
        raise ValueError("an audit time needs a time zone")
    at = at.astimezone(timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
    return int(value)


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


def record(
    state: StateStore,
    *,
    login: str | None,
    kind: str,
    recording_id: int | None,
    call_id: int | None = None,
    rule: str | None = None,
    client: str | None = None,
    user_agent: str | None = None,
    play_id: str | None = None,
    at: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent | None:
    """Append one event to the chain; returns it, or None when this play token was already counted.

    ``play_id`` makes a play (or a refused play) count once per (login,
    recording, token); downloads ignore it and always count. ``at`` defaults
    to the real current time (never the report clock).
    """
    if kind not in KINDS:
        raise ValueError(f"an audit event kind is one of {', '.join(KINDS)}, not {kind!r}")
    recording_id = _int_or_none(recording_id, "recording_id")
    call_id = _int_or_none(call_id, "call_id")
    if play_id is not None and not _PLAY_ID_RE.match(play_id):
        raise ValueError(f"not a play token: {play_id!r}")
    if kind == DOWNLOAD:
        play_id = None
    event = {"login": login, "kind": kind, "recording_id": recording_id, "call_id": call_id, "rule": rule,
             "client": client, "user_agent": user_agent, "play_id": play_id, "at": at, "detail": detail}
    with state.transaction() as con:
        if play_id is not None:
            counted = con.execute(
                "SELECT 1 FROM audit_events WHERE login IS ? AND recording_id IS ? AND play_id = ? AND kind = ?",
                (login, recording_id, play_id, kind),
            ).fetchone()
            if counted is not None:
                return None
        appended = _append(con, **event)
    _after_append(state, appended)
    return appended


def _append(con: Any, *, login: str | None, kind: str, recording_id: int | None, call_id: int | None,
            rule: str | None, client: str | None, user_agent: str | None, play_id: str | None,
            at: datetime | None, detail: Mapping[str, Any] | None) -> AuditEvent:
    """Append one event inside the caller's transaction."""
    ts = format_ts(at or datetime.now(timezone.utc))
    detail_text = canonical_json(dict(detail)) if detail else None
    last = con.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (int(last["seq"]) + 1, last["hash"]) if last else (1, GENESIS)
    fields = {
        "seq": seq, "ts": ts, "login": login, "kind": kind, "recording_id": recording_id, "call_id": call_id,
        "rule": rule, "client": _clip(client, _MAX_CLIENT), "user_agent": _clip(user_agent, _MAX_USER_AGENT),
        "play_id": play_id, "detail": detail_text,
    }
    digest = event_hash(prev_hash, fields)
    con.execute(
        f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        (*fields.values(), prev_hash, digest),
    )
    return AuditEvent(**fields, prev_hash=prev_hash, hash=digest)


def _after_append(state: StateStore, event: AuditEvent) -> None:
    """Committed: sign the head outside the data directory when a checkpoint is due."""
    audit_checkpoints.maybe_checkpoint(state.path.parent, event.seq, event.hash)


def checkpoint(state: StateStore, *, key_file: Path | None = None,
               checkpoints_file: Path | None = None) -> "audit_checkpoints.Checkpoint | None":
    """Sign the current head now (the hourly timer, ``dimnb audit checkpoint``, the end of a demo seed)."""
    current = head(state)
    if current is None:
        return None
    root = state.path.parent
    last = audit_checkpoints.latest_line(checkpoints_file or audit_checkpoints.checkpoints_path(root))
    if last is not None and last.get("seq") == current.seq and last.get("hash") == current.hash:
        return None  # nothing new since the last checkpoint
    return audit_checkpoints.write_checkpoint(root, current.seq, current.hash, key_file=key_file,
                                              checkpoints_file=checkpoints_file)


def start_hourly_checkpoints(state: StateStore, every_seconds: float = audit_checkpoints.MAX_AGE_SECONDS,
                             ) -> threading.Thread:
    """A daemon thread that signs the head every hour when it moved (a long-running server calls this once)."""
    def loop() -> None:
        while True:
            time.sleep(every_seconds)
            try:
                checkpoint(state)
            except Exception:  # never let the timer die; the next hour tries again
                audit_checkpoints.log.exception("dimnb audit: hourly checkpoint failed")

    thread = threading.Thread(target=loop, name="dimnb-audit-checkpoints", daemon=True)
    thread.start()
    return thread


# ------------------------------------------------------------------------------------------ the playback gate


def parse_recording_id(raw: object) -> int | None:
    """A recording id from a URL or a widget: an int, or ASCII digits only (no ``²``, no ``٤``); else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 < raw < 2**63 else None
    if isinstance(raw, str) and 0 < len(raw) <= 18 and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


def download_flag(raw: object) -> bool:
    """Whether a ``download`` argument asks for a download: any value but absent, empty, 0, false, no or off."""
    if raw is None or isinstance(raw, bool):
        return raw is True
    return str(raw).strip().lower() not in _FALSE_FLAGS


def _play_token(raw: str | None) -> str | None:
    """A token the client sent; one we cannot trust to be a token makes every request count (never fewer)."""
    return raw if isinstance(raw, str) and _PLAY_ID_RE.match(raw) else None


def authorize_playback(
    stores: Stores,
    login: str,
    recording_id: object,
    *,
    download: bool = False,
    play_id: str | None = None,
    client: str | None = None,
    user_agent: str | None = None,
    via: str = "http",
    method: str = "GET",
    audit_grant: bool = True,
    at: datetime | None = None,
) -> access.PlayDecision:
    """THE gate for audio bytes: decide with ``access.can_play``, audit, then return the decision.

    Call it on every request for a recording, whatever the method or path
    (each Range chunk too, so a revoked grant stops the next chunk; HEAD too,
    so it answers exactly as GET). A play is recorded once per ``play_id``
    until that token has served a whole file (see ``count_served``) or is
    ``PLAY_TOKEN_SECONDS`` old, then again; a download every time. A refusal
    is recorded as *denied* with the recording id asked for and no call id,
    then raises ``NotFound`` (a recording one may not play and one that does
    not exist look the same). ``audit_grant=False`` decides and records only a
    refusal (a widget that hands the browser a URL: the server audits the
    bytes). If the event cannot be written, the error propagates: no audit,
    no audio.
    """
    token = None if download else _play_token(play_id)
    asked = parse_recording_id(recording_id)
    decision = None
    if asked is not None:
        try:
            actor = access.load_actor(stores.state, login)
        except UnknownUser:
            actor = None
        if actor is not None:
            decision = access.can_play(stores.calls, actor, asked)
    common = {"login": login, "client": client, "user_agent": user_agent, "play_id": token, "at": at}
    how: dict[str, Any] = {"via": via} if method == "GET" else {"via": via, "method": method}
    if decision is None:
        detail: dict[str, Any] = {"asked": DOWNLOAD if download else PLAY, **how}
        if asked is None:
            detail["asked_id"] = str(recording_id)[:64]
        record(stores.state, kind=DENIED, recording_id=asked, **common, detail=detail)
        raise NotFound("no such recording")
    if not audit_grant:
        return decision
    event = {**common, "kind": DOWNLOAD if download else PLAY, "recording_id": decision.recording_id,
             "call_id": decision.call_id, "rule": decision.reason.rule,
             "detail": {"why": decision.reason.detail, **how} if decision.reason.detail else how}
    if token is None:
        with stores.state.transaction() as con:
            appended = _append(con, **event)
        _after_append(stores.state, appended)
        return decision
    now = (at or datetime.now(timezone.utc)).timestamp()
    appended = None
    with stores.state.transaction() as con:
        key = (login, decision.recording_id, token)
        used = con.execute("SELECT counted_at, bytes_served FROM play_tokens "
                           "WHERE login = ? AND recording_id = ? AND play_id = ?", key).fetchone()
        size = decision.size_bytes or 0
        if used is None or now - used["counted_at"] >= PLAY_TOKEN_SECONDS or \
                (size > 0 and used["bytes_served"] >= size):
            appended = _append(con, **event)
            con.execute("INSERT INTO play_tokens (login, recording_id, play_id, counted_at, bytes_served) "
                        "VALUES (?, ?, ?, ?, 0) ON CONFLICT (login, recording_id, play_id) "
                        "DO UPDATE SET counted_at = excluded.counted_at, bytes_served = 0", (*key, now))
    if appended is not None:
        _after_append(stores.state, appended)
    return decision


def count_served(stores: Stores, login: str, decision: access.PlayDecision, play_id: str | None,
                 nbytes: int) -> None:
    """Add the bytes a play token just served (a token that served a whole file counts as a new play next time)."""
    token = _play_token(play_id)
    if token is None or nbytes <= 0:
        return
    with stores.state.transaction() as con:
        con.execute("UPDATE play_tokens SET bytes_served = bytes_served + ? "
                    "WHERE login = ? AND recording_id = ? AND play_id = ?",
                    (int(nbytes), login, decision.recording_id, token))


def widget_playback(
    stores: Stores, login: str, recording_id: object, *, play_id: str | None = None,
    download: bool = False, audit_grant: bool = True,
) -> access.PlayDecision:
    """The gate as the in-kernel player calls it (its own client name; same rules)."""
    return authorize_playback(
        stores, login, recording_id, download=download, play_id=play_id, client=WIDGET_CLIENT,
        user_agent=WIDGET_USER_AGENT, via="widget", audit_grant=audit_grant,
    )


def may_view_audit(state: StateStore, login: str | None) -> bool:
    """Whether the audit dashboard exists for this user (auditor role, read afresh). The server 404s otherwise."""
    if not login:
        return False
    try:
        actor = access.load_actor(state, login)
    except UnknownUser:
        return False
    return access.allowed(actor, VIEW_AUDIT)


# ------------------------------------------------------------------------------------------ the chain


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str, field: str = "head") -> "ChainHead":
        """``SEQ:HASH`` as printed by ``verify`` and the reports (a hash prefix of 12+ characters will do)."""
        seq, sep, digest = text.strip().partition(":")
        if not sep or not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{12,64}", digest.lower()):
            raise InvalidInput(f"{field} must look like SEQ:HASH (e.g. 412:3fa2b1c09d8e...), not {text!r}", field)
        return cls(int(seq), digest.lower())

    def matches(self, digest: str) -> bool:
        return digest.startswith(self.hash)


def head(state: StateStore) -> ChainHead | None:
    """The last event's seq and hash, or None when nothing was recorded yet."""
    row = state.connection().execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    return ChainHead(int(row["seq"]), row["hash"]) if row else None


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    head: ChainHead | None
    first_bad: int | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if not self.ok:
            return f"audit chain BROKEN at event {self.first_bad}: {self.problem}"
        if self.head is None:
            return "audit chain ok: no events yet"
        return f"audit chain ok: {self.events} events, head {self.head}"


def verify_events(
    events: Iterable[Mapping[str, Any]],
    *,
    anchor: ChainHead | None = None,
    upto_seq: int | None = None,
    seq_of_hash: Callable[[str], int | None] | None = None,
) -> Verification:
    """Walk events in seq order from the first; the first event that breaks the chain is named.

    Catches a changed event (its hash), a removed one (a gap in seq, or a link
    to nothing), events moved or inserted (a link that skips back over them)
    and, given an ``anchor`` recorded earlier, a rewritten or truncated tail.
    ``upto_seq`` stops the walk there (and requires the chain to reach it).
    ``seq_of_hash`` finds an event by its hash to explain a broken link; without
    it every hash seen is kept in memory.
    """
    if anchor is not None and upto_seq is not None and anchor.seq > upto_seq:
        raise ValueError("the anchor lies beyond upto_seq")
    limit = upto_seq
    seen: dict[str, int] = {}

    def seen_before(digest: str, seq: int) -> int | None:
        found = seen.get(digest) if seq_of_hash is None else seq_of_hash(digest)
        return found if found is not None and found < seq else None
    expected_seq, prev_hash, count = 1, GENESIS, 0
    last: ChainHead | None = None
    anchor_hash = ""

    def broken(seq: int, problem: str) -> Verification:
        return Verification(False, count, last, seq, problem)

    for row in events:
        seq = int(row["seq"])
        if limit is not None and seq > limit:
            break
        if seq != expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
            return broken(expected_seq, f"event(s) {missing} missing: {seq} follows {expected_seq - 1} (deleted?)")
        if event_hash(row["prev_hash"], row) != row["hash"]:
            earlier = seen_before(row["prev_hash"], seq)
            if earlier is not None and earlier + 1 < seq and \
                    event_hash(row["prev_hash"], {**dict(row), "seq": earlier + 1}) == row["hash"]:
                # A genuine event pushed down the sequence: what now stands before it was slipped in.
                return broken(earlier + 1, f"events {earlier + 1}..{seq - 1} are not part of the chain: "
                                           f"they were inserted before event {earlier + 1} (now numbered {seq})")
            return broken(seq, "its contents no longer match its hash (modified or moved)")
        if row["prev_hash"] != prev_hash:
            earlier = seen_before(row["prev_hash"], seq)
            if earlier is not None:
                return broken(earlier + 1, f"events {earlier + 1}..{seq - 1} are not part of the chain: "
                                           f"event {seq} links to event {earlier} (inserted or moved)")
            if seq == 1:
                return broken(1, "the first event does not start the chain (events removed before it?)")
            return broken(seq - 1, f"event {seq} no longer links to it (modified, with its hash recomputed)")
        if anchor is not None and seq == anchor.seq:
            anchor_hash = row["hash"]
        if seq_of_hash is None:
            seen[row["hash"]] = seq
        prev_hash, expected_seq, count = row["hash"], seq + 1, count + 1
        last = ChainHead(seq, row["hash"])
    end = last.seq if last else 0
    if anchor is not None:
        if end < anchor.seq:
            return broken(end + 1, f"the chain ends at event {end}, before the anchor {anchor.seq} "
                                   "(events removed from the end?)")
        if not anchor.matches(anchor_hash):
            return broken(anchor.seq, f"its hash differs from the anchor {anchor} (the chain was rewritten)")
    if upto_seq is not None and end < upto_seq:
        return broken(end + 1, f"the chain ends at event {end}, before {upto_seq}")
    return Verification(True, count, last)


def verify(state: StateStore, *, anchor: ChainHead | None = None, upto_seq: int | None = None) -> Verification:
    """Check the chain in the state store from its first event (up to ``upto_seq``); see ``verify_events``."""
    lookup = state.connection()

    def seq_of_hash(digest: str) -> int | None:
        row = lookup.execute("SELECT min(seq) FROM audit_events WHERE hash = ?", (digest,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    return verify_events(_iter_rows(state, upto_seq=upto_seq), anchor=anchor, upto_seq=upto_seq,
                         seq_of_hash=seq_of_hash)


@dataclass(frozen=True)
class SignedVerification:
    """The chain checked link by link (``chain``) and against its signed checkpoints (``checkpoints``)."""

    chain: Verification
    checkpoints: audit_checkpoints.CheckpointCheck
    key_file: Path
    checkpoints_file: Path

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.checkpoints.ok

    def __str__(self) -> str:
        if not self.chain.ok:
            return str(self.chain)
        if not self.checkpoints.ok:
            return f"audit chain BROKEN: {self.checkpoints.problem}"
        if self.checkpoints.latest is None:
            return f"{self.chain}; not yet checkpointed (key {self.key_file}, checkpoints {self.checkpoints_file})"
        return f"{self.chain}; {self.checkpoints}"


def verify_signed(state: StateStore, *, key_file: str | Path | None = None,
                  checkpoints_file: str | Path | None = None, anchor: ChainHead | None = None) -> SignedVerification:
    """``verify``, then check the chain against every signed checkpoint: truncation, recomputed chains, another key.

    Without a key file and without checkpoints the trail was never
    checkpointed (a data directory from before checkpoints): the chain check
    alone decides. Checkpoints without their key are a failure.
    """
    chain = verify(state, anchor=anchor)
    root = state.path.parent
    kpath = audit_checkpoints.key_path(root, key_file)
    cpath = audit_checkpoints.checkpoints_path(root, checkpoints_file)
    records = audit_checkpoints.read_checkpoints(cpath)
    key = audit_checkpoints.read_key(kpath)
    if key is None and not records:
        return SignedVerification(chain, audit_checkpoints.CheckpointCheck(True, 0, None), kpath, cpath)
    con = state.connection()
    hash_at: dict[int, str] = {}
    for record in records or []:
        seq = record.get("seq")
        if isinstance(seq, int) and seq not in hash_at:
            row = con.execute("SELECT hash FROM audit_events WHERE seq = ?", (seq,)).fetchone()
            if row is not None:
                hash_at[seq] = row["hash"]
    last = con.execute("SELECT max(seq) FROM audit_events").fetchone()[0]
    checked = audit_checkpoints.check(records, key, hash_at, int(last or 0))
    return SignedVerification(chain, checked, kpath, cpath)


# ------------------------------------------------------------------------------------------ reading and export


def _iter_rows(
    state: StateStore, *, start: datetime | None = None, end: datetime | None = None, upto_seq: int | None = None,
) -> Iterator[Mapping[str, Any]]:
    clauses, params = ["1 = 1"], []
    if start is not None:
        clauses.append("ts >= ?")
        params.append(format_ts(start))
    if end is not None:
        clauses.append("ts < ?")
        params.append(format_ts(end))
    if upto_seq is not None:
        clauses.append("seq <= ?")
        params.append(upto_seq)
    yield from state.connection().execute(
        f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE {' AND '.join(clauses)} ORDER BY seq", params
    )


def read_events(
    state: StateStore, *, start: datetime | None = None, end: datetime | None = None, upto_seq: int | None = None,
) -> list[AuditEvent]:
    """Events with ``start <= ts < end`` (UTC) and ``seq <= upto_seq``, in chain order."""
    return [AuditEvent.from_row(row) for row in _iter_rows(state, start=start, end=end, upto_seq=upto_seq)]


EXPORT_FORMATS: Final = ("csv", "parquet")


def export(
    state: StateStore, out: str | Path | None, fmt: str = "csv", *, start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """Write events (all columns, hashes included, ``ts`` exactly as chained) to ``out`` (CSV: None = stdout)."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"export format is one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}", field="format")
    rows = _iter_rows(state, start=start, end=end)
    if fmt == "csv":
        if out is None or str(out) == "-":
            return _write_csv(rows, sys.stdout)
        with open(out, "w", newline="", encoding="utf-8") as handle:
            return _write_csv(rows, handle)
    if out is None or str(out) == "-":
        raise InvalidInput("a Parquet export needs --out FILE", field="out")
    return _write_parquet(rows, Path(out))


def _write_csv(rows: Iterable[Mapping[str, Any]], handle: Any) -> int:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
        count += 1
    return count


def _write_parquet(rows: Iterable[Mapping[str, Any]], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("seq", pa.int64()), ("ts", pa.string()), ("login", pa.string()), ("kind", pa.string()),
        ("recording_id", pa.int64()), ("call_id", pa.int64()), ("rule", pa.string()), ("client", pa.string()),
        ("user_agent", pa.string()), ("play_id", pa.string()), ("detail", pa.string()),
        ("prev_hash", pa.string()), ("hash", pa.string()),
    ])
    columns: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for row in rows:
        for c in COLUMNS:
            columns[c].append(row[c])
    pq.write_table(pa.table(columns, schema=schema), path)
    return len(columns["seq"])
