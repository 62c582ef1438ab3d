"""The Call Session: one call's facts on its own clock, as one user may see them.

``build_session(calls, actor, call_id)`` answers ``None`` both for a call that
does not exist and for one outside the actor's report scope (never told
apart). Otherwise a ``Session`` carries the call summary, its segments in
order (with the quality of their times), the parties (extensions resolved to
users as the directory stood at the call's start), the conferences with their
joins and leaves, the events worth pointing at (queue waits, holds,
transfers, joins, leaves), and the recordings *this* user may play, aligned on
the call's clock (seconds from the call's start).

Recordings follow ``access.scope_sql(actor, PLAY_RECORDING)`` (playback grant
within the report scope). A recording still waiting for the archive is listed,
flagged, only for a user who could play it once archived. A user who may play
none of a call's recordings gets exactly what a call without recordings gives:
an empty list, no counts, no "why".

``download_name`` is the self-explaining file name a download gets.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dimnb import access, model
from dimnb.actions import PLAY_RECORDING, VIEW_CALLS
from dimnb.datadir import DataDir
from dimnb.store import directory_repo
from dimnb.store.callstore import CallStore
from dimnb.store.statestore import StateStore

PENDING_NOTE = "available after the next archive run"


# ---------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Party:
    """One side of a segment, or a conference member."""

    party: str | None  # number, extension, queue... as the phone system named it
    type: str | None  # external / extension / queue / ivr / conference / ...
    extension: str | None
    name: str | None  # the user's name (directory) if an extension resolved, else the system's display name
    login: str | None  # the user behind the extension at the call's start

    @property
    def label(self) -> str:
        if self.login and self.name:
            return f"{self.name} ({self.extension})" if self.extension else self.name
        if self.name and self.party and self.name != self.party:
            return f"{self.name} ({self.party})"
        return self.name or self.party or "unknown"


@dataclass(frozen=True)
class Segment:
    seq: int
    kind: str  # talk / ringing / queue / ivr / voicemail / hold / conference
    start_seconds: float | None  # on the call's clock
    answer_seconds: float | None
    end_seconds: float | None
    start_time: datetime | None
    answer_time: datetime | None
    end_time: datetime | None
    time_quality: str  # exact / derived / estimated
    source: Party
    target: Party
    answered: bool | None
    reason: str | None  # how the segment began: transfer, divert, route_to, ...

    @property
    def estimated(self) -> bool:
        """True when the times are not the phone system's own (derived from recordings, or estimated)."""
        return self.time_quality != "exact"

    @property
    def duration_seconds(self) -> float | None:
        if self.start_seconds is None or self.end_seconds is None:
            return None
        return self.end_seconds - self.start_seconds

    @property
    def label(self) -> str:
        return f"{self.source.label} → {self.target.label}"


@dataclass(frozen=True)
class Member:
    party: Party
    join_seconds: float | None
    leave_seconds: float | None
    join_time: datetime | None
    leave_time: datetime | None


@dataclass(frozen=True)
class Conference:
    conference_id: int
    room: str | None
    start_seconds: float | None
    end_seconds: float | None
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Event:
    """Something worth a marker on the timeline."""

    at_seconds: float
    kind: str  # queue / hold / transfer / divert / join / leave / voicemail
    text: str
    until_seconds: float | None = None


@dataclass(frozen=True)
class Recording:
    """A recording the viewer may play (``available``) or could play once archived (``pending_archive``)."""

    recording_id: int
    segment_seq: int | None
    conference_id: int | None
    state: str
    offset_seconds: float  # where it starts on the call's clock
    duration_seconds: float
    format: str | None
    size_bytes: int | None
    checksum: str | None
    label: str
    download_name: str

    @property
    def playable(self) -> bool:
        return self.state == model.AVAILABLE

    @property
    def end_seconds(self) -> float:
        return self.offset_seconds + self.duration_seconds

    @property
    def note(self) -> str | None:
        return PENDING_NOTE if self.state == model.PENDING_ARCHIVE else None


@dataclass(frozen=True)
class Summary:
    call_id: int
    system: str
    source_id: str
    start_time: datetime
    answer_time: datetime | None
    end_time: datetime
    timezone: str
    direction: str
    from_party: Party
    to_party: str | None
    final_party: Party
    ring_seconds: float | None
    talk_seconds: float | None
    duration_seconds: float
    outcome: str
    groups: tuple[str, ...]
    segment_count: int

    @property
    def start_local(self) -> str:
        return _local(self.start_time, self.timezone)


@dataclass(frozen=True)
class Session:
    summary: Summary
    segments: tuple[Segment, ...]
    participants: tuple[Party, ...]
    conferences: tuple[Conference, ...]
    events: tuple[Event, ...]
    recordings: tuple[Recording, ...]
    why_play: str | None = None  # "why may I hear this?", only when a recording is listed

    @property
    def call_id(self) -> int:
        return self.summary.call_id

    @property
    def playable(self) -> tuple[Recording, ...]:
        return tuple(r for r in self.recordings if r.playable)

    def recording(self, recording_id: int) -> Recording | None:
        return next((r for r in self.recordings if r.recording_id == recording_id), None)

    def segment(self, seq: int | None) -> Segment | None:
        return next((s for s in self.segments if s.seq == seq), None) if seq is not None else None

    def locate(self, call_seconds: float) -> tuple[Recording, float] | None:
        """The playable recording that covers a moment of the call, and the position in it.

        Where two overlap (a conference recording and a leg's), the one that started later wins:
        it is the more specific.
        """
        covering = [r for r in self.playable if r.offset_seconds <= call_seconds < r.end_seconds]
        if not covering:
            return None
        best = max(covering, key=lambda r: (r.offset_seconds, r.recording_id))
        return best, call_seconds - best.offset_seconds

    def recording_title(self, recording: Recording) -> str:
        """What the player shows while it plays: the call, and which segment (or conference)."""
        return f"Call {self.call_id} · {self.summary.start_local} · {recording.label}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (times ISO-8601 UTC; ``*_seconds`` on the call's clock). No file paths."""
        s = self.summary
        return {
            "call_id": s.call_id,
            "summary": {
                "call_id": s.call_id, "system": s.system, "source_id": s.source_id,
                "start_time": _iso(s.start_time), "start_local": s.start_local, "timezone": s.timezone,
                "answer_time": _iso(s.answer_time), "end_time": _iso(s.end_time),
                "direction": s.direction, "from": _party_dict(s.from_party), "to_party": s.to_party,
                "final": _party_dict(s.final_party),
                "ring_seconds": _round(s.ring_seconds), "talk_seconds": _round(s.talk_seconds),
                "duration_seconds": _round(s.duration_seconds), "outcome": s.outcome,
                "groups": list(s.groups), "segment_count": s.segment_count,
            },
            "segments": [
                {
                    "seq": g.seq, "kind": g.kind, "start_seconds": _round(g.start_seconds),
                    "answer_seconds": _round(g.answer_seconds), "end_seconds": _round(g.end_seconds),
                    "start_time": _iso(g.start_time), "answer_time": _iso(g.answer_time),
                    "end_time": _iso(g.end_time), "time_quality": g.time_quality, "estimated": g.estimated,
                    "from": _party_dict(g.source), "to": _party_dict(g.target), "answered": g.answered,
                    "reason": g.reason, "label": g.label,
                }
                for g in self.segments
            ],
            "participants": [_party_dict(p) for p in self.participants],
            "conferences": [
                {
                    "conference_id": c.conference_id, "room": c.room,
                    "start_seconds": _round(c.start_seconds), "end_seconds": _round(c.end_seconds),
                    "members": [
                        {**_party_dict(m.party), "join_seconds": _round(m.join_seconds),
                         "leave_seconds": _round(m.leave_seconds), "join_time": _iso(m.join_time),
                         "leave_time": _iso(m.leave_time)}
                        for m in c.members
                    ],
                }
                for c in self.conferences
            ],
            "events": [asdict(e) | {"at_seconds": _round(e.at_seconds), "until_seconds": _round(e.until_seconds)}
                       for e in self.events],
            "recordings": [
                {
                    "recording_id": r.recording_id, "segment_seq": r.segment_seq, "conference_id": r.conference_id,
                    "state": r.state, "playable": r.playable, "note": r.note,
                    "offset_seconds": _round(r.offset_seconds), "duration_seconds": _round(r.duration_seconds),
                    "end_seconds": _round(r.end_seconds), "format": r.format, "size_bytes": r.size_bytes,
                    "label": r.label, "download_name": r.download_name,
                }
                for r in self.recordings
            ],
            "why": {"play": self.why_play},
        }

    def to_text(self) -> str:
        """A plain-text rendering (the CLI's ``--format text``)."""
        s = self.summary
        lines = [
            f"Call {s.call_id} ({s.system} {s.source_id})",
            f"  start     {s.start_local}",
            f"  direction {s.direction}, outcome {s.outcome}",
            f"  from      {s.from_party.label}",
            f"  to        {s.to_party or '-'}",
            f"  final     {s.final_party.label}",
            f"  ring {_fmt_s(s.ring_seconds)}, talk {_fmt_s(s.talk_seconds)}, total {_fmt_s(s.duration_seconds)}",
            f"  groups    {', '.join(s.groups) or '-'}",
            "",
            f"Segments ({len(self.segments)}):",
        ]
        for g in self.segments:
            times = f"{_clock(g.start_seconds)}–{_clock(g.end_seconds)}"
            flag = f" [{g.time_quality} times]" if g.estimated else ""
            how = f" ({g.reason})" if g.reason else ""
            lines.append(f"  {g.seq:>2} {g.kind:<10} {times:<13} {g.label}{how}{flag}")
        if self.conferences:
            lines.append("")
            for c in self.conferences:
                lines.append(f"Conference room {c.room or '?'} {_clock(c.start_seconds)}–{_clock(c.end_seconds)}:")
                for m in c.members:
                    lines.append(f"  {m.party.label:<32} joined {_clock(m.join_seconds)}, left {_clock(m.leave_seconds)}")
        if self.events:
            lines.append("")
            lines.append("Events:")
            for e in self.events:
                lines.append(f"  {_clock(e.at_seconds):>7} {e.kind:<9} {e.text}")
        lines.append("")
        lines.append("Participants: " + (", ".join(p.label for p in self.participants) or "-"))
        if self.recordings:
            lines.append("")
            lines.append(f"Recordings you may play ({len(self.recordings)}):")
            for r in self.recordings:
                state = "playable" if r.playable else r.note
                lines.append(
                    f"  #{r.recording_id:<6} {_clock(r.offset_seconds)}–{_clock(r.end_seconds)} {r.label} "
                    f"({state}) → {r.download_name}"
                )
            if self.why_play:
                lines.append(f"  why: {self.why_play}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- building


def build_session(calls: CallStore, actor: access.Actor, call_id: int, *,
                  state: StateStore | None = None) -> Session | None:
    """The session of ``call_id`` as ``actor`` may see it; None if it does not exist *or* is out of scope.

    ``state`` (the state store) supplies users' names for resolved extensions; without it the
    names the phone system recorded are kept.
    """
    if not isinstance(call_id, int) or isinstance(call_id, bool):
        return None
    cur = calls.cursor()
    view = access.scope_sql(actor, VIEW_CALLS)  # on the calls table, alias c
    rows = cur.execute(
        f"""
        SELECT c.call_id, c.system, c.source_id, c.start_time, c.answer_time, c.end_time, c.direction,
               c.from_party, c.from_ext, c.from_name, c.to_party, c.final_party, c.final_ext, c.final_name,
               c.ring_seconds, c.talk_seconds, c.duration_seconds, c.outcome, c.segment_count,
               c.group_tags  -- call_tags' groups, sorted, kept on the call (the scope reads the same column)
        FROM calls c WHERE c.call_id = $call_id AND ({view.sql})
        """,
        {**view.params, "call_id": call_id},
    ).fetchall()
    if not rows:
        return None
    c = rows[0]
    start = c[3]

    seg_rows = cur.execute(
        """
        SELECT s.seq, s.kind, epoch(s.start_time - $start), epoch(s.answer_time - $start),
               epoch(s.end_time - $start), s.start_time, s.answer_time, s.end_time, s.time_quality,
               s.from_party, s.from_type, s.from_ext, s.from_name, s.to_party, s.to_type, s.to_ext, s.to_name,
               s.answered, s.reason,
               epoch(s.derived_start_time - $start), epoch(s.derived_answer_time - $start),
               epoch(s.derived_end_time - $start), s.derived_start_time, s.derived_answer_time, s.derived_end_time,
               s.derived_quality
        FROM segments s WHERE s.call_id = $call_id ORDER BY s.seq
        """,
        {"call_id": call_id, "start": start},
    ).fetchall()
    member_rows = cur.execute(
        """
        SELECT f.conference_id, f.room, epoch(f.start_time - $start), epoch(f.end_time - $start),
               m.party, m.party_type, m.extension, m.display_name, m.login,
               epoch(m.join_time - $start), epoch(m.leave_time - $start), m.join_time, m.leave_time
        FROM conferences f
        LEFT JOIN conference_members m ON m.conference_id = f.conference_id AND m.call_id = $call_id
        WHERE f.call_id = $call_id
        ORDER BY f.conference_id, m.join_time NULLS LAST, m.party
        """,
        {"call_id": call_id, "start": start},
    ).fetchall()

    # Extensions → logins as the directory stood at the call's start; logins → names from the state store.
    extensions = {x for r in seg_rows for x in (r[11], r[15]) if x} | {r[6] for r in member_rows if r[6]}
    extensions |= {x for x in (c[8], c[12]) if x}
    login_of: dict[str, str] = {}
    if extensions:
        login_of = dict(cur.execute(
            """
            SELECT d.extension, min(d.login) FROM dir_extensions d
            WHERE list_contains($exts, d.extension)
              AND (d.valid_from IS NULL OR d.valid_from <= $start) AND (d.valid_to IS NULL OR $start < d.valid_to)
            GROUP BY d.extension
            """,
            {"exts": sorted(extensions), "start": start},
        ).fetchall())
    logins = set(login_of.values()) | {r[8] for r in member_rows if r[8]}
    names = _user_names(state, logins) if state is not None else {}

    def party(number: str | None, kind: str | None, ext: str | None, display: str | None,
              login: str | None = None) -> Party:
        login = login or (login_of.get(ext) if ext else None)
        name = names.get(login) if login else None
        return Party(number, kind, ext, name or display, login)

    segments = tuple(
        Segment(
            seq=int(r[0]), kind=r[1], start_seconds=r[2], answer_seconds=r[3], end_seconds=r[4],
            start_time=r[5], answer_time=r[6], end_time=r[7], time_quality=r[8],
            source=party(r[9], r[10], r[11], r[12]), target=party(r[13], r[14], r[15], r[16]),
            answered=r[17], reason=r[18],
        )
        for r in seg_rows
    )
    conferences = _conferences(member_rows, party)

    summary = Summary(
        call_id=int(c[0]), system=c[1], source_id=c[2], start_time=start, answer_time=c[4], end_time=c[5],
        timezone=_zone_name(actor.timezone), direction=c[6],
        from_party=party(c[7], None, c[8], c[9]), to_party=c[10], final_party=party(c[11], None, c[12], c[13]),
        ring_seconds=c[14], talk_seconds=c[15], duration_seconds=c[16], outcome=c[17],
        groups=tuple(c[19] or ()), segment_count=int(c[18]),
    )
    recordings = _recordings(cur, actor, summary, segments, conferences)
    if _may_see_derived_times(seg_rows, recordings):
        segments = tuple(_with_derived_times(g, r) for g, r in zip(segments, seg_rows))
    why_play = access.why(calls, actor, call_id, PLAY_RECORDING) if recordings else None
    return Session(
        summary=summary,
        segments=segments,
        participants=_participants(segments, conferences),
        conferences=conferences,
        events=_events(segments, conferences),
        recordings=recordings,
        why_play=str(why_play) if why_play else None,
    )


def _may_see_derived_times(seg_rows: list[tuple[Any, ...]], recordings: tuple[Recording, ...]) -> bool:
    """Whether the viewer may see segment times derived from recordings: only when every recording they
    came from is one the viewer may play (or could once archived), as ``access`` decided for
    ``_recordings``. To anyone else they would tell that a recording exists: they get the estimate."""
    derived_from = {int(r[0]) for r in seg_rows if r[25] == "derived"}
    if not derived_from:
        return False
    listed = {r.segment_seq for r in recordings if r.segment_seq is not None}
    return derived_from <= listed


def _with_derived_times(segment: Segment, row: tuple[Any, ...]) -> Segment:
    if row[25] is None:
        return segment
    return replace(segment, start_seconds=row[19], answer_seconds=row[20], end_seconds=row[21],
                   start_time=row[22], answer_time=row[23], end_time=row[24], time_quality=row[25])


def _recordings(cur: Any, actor: access.Actor, summary: Summary, segments: tuple[Segment, ...],
                conferences: tuple[Conference, ...]) -> tuple[Recording, ...]:
    """The call's recordings this actor may play now or once archived; empty for everyone else."""
    play = access.scope_sql(actor, PLAY_RECORDING)  # on the calls table, alias c
    rows = cur.execute(
        f"""
        SELECT r.recording_id, r.segment_seq, r.conference_id, r.state, coalesce(r.offset_seconds, 0),
               coalesce(r.duration_seconds, 0), r.format, r.size_bytes, r.checksum, r.file_name, r.start_time
        FROM recordings r JOIN calls c ON c.call_id = r.call_id
        WHERE r.call_id = $call_id AND c.call_id = $call_id AND r.state IN ('available', 'pending_archive')
          AND ({play.sql})
        ORDER BY coalesce(r.offset_seconds, 0), r.recording_id
        """,
        {**play.params, "call_id": summary.call_id},
    ).fetchall()
    by_seq = {s.seq: s for s in segments}
    rooms = {c.conference_id: c.room for c in conferences}
    out = []
    for r in rows:
        seg = by_seq.get(r[1]) if r[2] is None else None
        if r[2] is not None:
            room = rooms.get(int(r[2]))
            label = f"Conference {room}" if room else "Conference"
            src, dst = summary.from_party.party, f"Conference.{room}" if room else "Conference"
        elif seg is not None:
            label = f"Segment {seg.seq}: {seg.label}"
            src, dst = seg.source.party, _file_party(seg.target)
        else:
            label = "Recording"
            src, dst = summary.from_party.party, summary.to_party
        began = r[10] or summary.start_time
        out.append(Recording(
            recording_id=int(r[0]), segment_seq=r[1], conference_id=r[2], state=r[3], offset_seconds=float(r[4]),
            duration_seconds=float(r[5]), format=r[6], size_bytes=r[7], checksum=r[8], label=label,
            download_name=download_name(began, src, dst, segment_seq=r[1] if r[2] is None else None,
                                        conference=r[2] is not None, extension=_extension(r[6], r[9])),
        ))
    return tuple(out)


def _conferences(rows: list[tuple[Any, ...]], party: Any) -> tuple[Conference, ...]:
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for r in rows:
        grouped.setdefault(int(r[0]), []).append(r)
    out = []
    for conference_id, members in grouped.items():
        first = members[0]
        out.append(Conference(
            conference_id=conference_id, room=first[1], start_seconds=first[2], end_seconds=first[3],
            members=tuple(
                Member(party(m[4], m[5], m[6], m[7], m[8]), m[9], m[10], m[11], m[12])
                for m in members if m[4] is not None or m[6] is not None
            ),
        ))
    return tuple(out)


def _participants(segments: tuple[Segment, ...], conferences: tuple[Conference, ...]) -> tuple[Party, ...]:
    """Every distinct party, people first in order of appearance (queues, IVRs and rooms are not participants)."""
    seen: dict[tuple[str | None, str | None], Party] = {}
    candidates = [p for s in segments for p in (s.source, s.target)]
    candidates += [m.party for c in conferences for m in c.members]
    for p in candidates:
        if p.type in ("queue", "ivr", "conference", "ring_group", "voicemail"):
            continue
        key = (p.login, None) if p.login else (None, p.party or p.name)
        seen.setdefault(key, p)
    return tuple(seen.values())


_ROUTING = {"divert": "diverted", "forward": "forwarded", "route_to": "routed"}


def _events(segments: tuple[Segment, ...], conferences: tuple[Conference, ...]) -> tuple[Event, ...]:
    events: list[Event] = []
    previous: Segment | None = None
    for s in segments:
        at = s.start_seconds
        if at is not None:
            if s.kind == "queue":
                wait = s.duration_seconds
                events.append(Event(at, "queue", f"waits in {s.target.label}" +
                                    (f" for {_fmt_s(wait)}" if wait is not None else ""), s.end_seconds))
            elif s.kind == "hold":
                events.append(Event(at, "hold", f"{s.source.label} on hold", s.end_seconds))
            elif s.kind == "voicemail":
                events.append(Event(at, "voicemail", f"to voicemail of {s.target.label}", s.end_seconds))
            elif s.reason == "transfer":
                whom = f" by {previous.target.label}" if previous is not None else ""
                events.append(Event(at, "transfer", f"transferred{whom} to {s.target.label}"))
            elif s.reason in _ROUTING and previous is not None:
                events.append(Event(at, "divert", f"{_ROUTING[s.reason]} to {s.target.label}"))
        previous = s
    for c in conferences:
        for m in c.members:
            if m.join_seconds is not None:
                events.append(Event(m.join_seconds, "join", f"{m.party.label} joins room {c.room or '?'}"))
            if m.leave_seconds is not None:
                events.append(Event(m.leave_seconds, "leave", f"{m.party.label} leaves room {c.room or '?'}"))
    order = {"leave": 0, "queue": 1, "hold": 1, "voicemail": 1, "transfer": 1, "divert": 1, "join": 2}
    return tuple(sorted(events, key=lambda e: (e.at_seconds, order.get(e.kind, 1))))


def _user_names(state: StateStore, logins: set[str]) -> dict[str, str]:
    return directory_repo.names(state, logins)


# ---------------------------------------------------------------------------------------------- files


_UNSAFE = re.compile(r"[^A-Za-z0-9+._-]+")


def _safe(text: str | None, limit: int = 40) -> str:
    cleaned = _UNSAFE.sub("-", (text or "").strip()).strip("-.")
    return cleaned[:limit].strip("-.") or "unknown"


def download_name(start: datetime, from_party: str | None, to_party: str | None, *, segment_seq: int | None = None,
                  conference: bool = False, extension: str | None = "wav") -> str:
    """A self-explaining file name for a downloaded recording.

    ``2025-01-03T10-15-00Z_0123456789_to_Ext.610_seg2.wav``: when the recording began (UTC), who called
    whom, and which segment (``conf`` for a conference recording). Only ``[A-Za-z0-9+._-]`` survive.
    """
    moment = start.astimezone(timezone.utc) if start.tzinfo else start.replace(tzinfo=timezone.utc)
    parts = [moment.strftime("%Y-%m-%dT%H-%M-%SZ"), _safe(from_party), "to", _safe(to_party)]
    if conference:
        parts.append("conf")
    elif segment_seq is not None:
        parts.append(f"seg{int(segment_seq)}")
    suffix = re.sub(r"[^a-z0-9]", "", (extension or "").lower())[:8] or "bin"
    return "_".join(parts) + "." + suffix


def download_name_for(calls: CallStore, actor: access.Actor, recording_id: int) -> str | None:
    """The download name of a recording the actor may play; None otherwise (for the audio server)."""
    decision = access.can_play(calls, actor, recording_id)
    if decision is None:
        return None
    session = build_session(calls, actor, decision.call_id)
    recording = session.recording(recording_id) if session else None
    return recording.download_name if recording else None


def recording_path(data: DataDir, decision: access.PlayDecision) -> Path:
    """The file behind a play decision: archived copies live under the archive store, the rest where the PBX wrote them."""
    if decision.path_kind == "archive":
        root = data.archive_dir.resolve()
        path = (root / decision.path).resolve()
        if root != path and root not in path.parents:
            raise ValueError(f"archive path escapes the archive store: {decision.path!r}")
        return path
    return Path(decision.path)


# ---------------------------------------------------------------------------------------------- helpers


def _file_party(p: Party) -> str | None:
    if p.type == "extension" and p.extension:
        return f"Ext.{p.extension}"
    return p.party


def _extension(fmt: str | None, file_name: str | None) -> str:
    if fmt:
        return fmt
    return Path(file_name or "").suffix.lstrip(".") or "bin"


def _party_dict(p: Party) -> dict[str, Any]:
    return {"party": p.party, "type": p.type, "extension": p.extension, "name": p.name, "login": p.login,
            "label": p.label}


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)


def _zone_name(name: str | None) -> str:
    try:
        ZoneInfo(name or "UTC")
        return name or "UTC"
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"


def _local(t: datetime, zone: str) -> str:
    return t.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def clock(seconds: float) -> str:
    """Seconds as m:ss (h:mm:ss past an hour), rounded to the second; ``-`` before a negative time."""
    whole = int(round(seconds))
    sign = "-" if whole < 0 else ""
    h, rest = divmod(abs(whole), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}" if h else f"{sign}{m}:{s:02d}"


def _clock(seconds: float | None) -> str:
    """Seconds on the call's clock (``clock``), ``?`` when unknown."""
    return "?" if seconds is None else clock(seconds)


def _fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else _clock(seconds)
