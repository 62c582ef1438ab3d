"""What the audit notebook shows: who listened to what, per user, call and group, refusals and unusual volume.

``load`` reads the audit trail up to a pinned chain head and the call store at
a pinned generation, so a re-run with the same pins (printed by
``provenance``) gives the same tables. All times are UTC.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from dimnb import audit, clock
from dimnb.errors import DimnbError, InvalidInput, NotFound
from dimnb.notebook_runner import PACKAGED_NOTEBOOKS
from dimnb.store import directory_repo
from dimnb.store.callstore import generation_name
from dimnb.store.stores import Stores

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Matplotlib announces its first font-cache build on stderr, which would land in the notebook's output.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

USER_ENV = "DIMNB_USER"
NOTEBOOK = PACKAGED_NOTEBOOKS / "audit.ipynb"
_TS = "%Y-%m-%d %H:%M:%S"
ACTIVE_KINDS = (audit.PLAY, audit.DOWNLOAD)


class PinnedDataGone(DimnbError):
    """A re-run asked for a call-store generation that is no longer kept."""


# ------------------------------------------------------------------------------------------ periods


def _iso(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else "…"


def parse_instant(text: str, *, end: bool) -> datetime:
    """A date (an end date counts whole) or an ISO date-time (UTC unless it names a zone)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
        return day + timedelta(days=1) if end else day
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


@dataclass(frozen=True)
class Period:
    """``start <= ts < end`` in UTC; None is open-ended."""

    text: str
    start: datetime | None
    end: datetime | None

    @classmethod
    def parse(cls, text: str | None, *, now: datetime | None = None) -> "Period":
        """``all``, ``2026-11``, ``2026-11-17``, ``FROM..TO`` (dates, TO inclusive; or date-times, TO
        exclusive; either side may be empty), or ``7d`` / ``12h`` (that long before now, see dimnb.clock)."""
        text = (text or "all").strip()
        try:
            if text.lower() == "all":
                return cls(text, None, None)
            relative = re.fullmatch(r"(\d+)\s*([dh])", text.lower())
            if relative:
                end = (now or clock.now()).astimezone(timezone.utc)
                span = int(relative.group(1)) * (timedelta(days=1) if relative.group(2) == "d" else timedelta(hours=1))
                return cls(text, end - span, end)
            month = re.fullmatch(r"(\d{4})-(\d{2})", text)
            if month:
                year, mon = int(month.group(1)), int(month.group(2))
                start = datetime(year, mon, 1, tzinfo=timezone.utc)
                end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=timezone.utc)
                return cls(text, start, end)
            if ".." in text:
                left, right = text.split("..", 1)
                start = parse_instant(left, end=False) if left.strip() else None
                end = parse_instant(right, end=True) if right.strip() else None
            else:
                start, end = parse_instant(text, end=False), parse_instant(text, end=True)
        except ValueError as exc:
            raise InvalidInput(
                f"period {text!r} is not understood: use all, 2026-11, 2026-11-17, 2026-11-01..2026-11-15, "
                "a date-time range, or 7d / 12h",
                field="period",
            ) from exc
        if start and end and end <= start:
            raise InvalidInput(f"period {text!r} ends before it starts", field="period")
        return cls(text, start, end)

    @property
    def absolute(self) -> str:
        """The same period written so that it never moves (relative periods resolved)."""
        if self.start is None and self.end is None:
            return "all"
        return f"{_iso(self.start) if self.start else ''}..{_iso(self.end) if self.end else ''}"

    def __str__(self) -> str:
        if self.start is None and self.end is None:
            return "all events"
        return f"{_iso(self.start)} .. {_iso(self.end)} (UTC, end exclusive)"


# ------------------------------------------------------------------------------------------ loading


def _open_generation(stores: Stores, number: int | None) -> tuple[int, duckdb.DuckDBPyConnection]:
    """A read-only connection to one call-store generation (the current one when ``number`` is None)."""
    if number is None:
        current = stores.calls.current_generation()
        if current is None:
            raise NotFound("the call store has no generation yet")
        number = current
    path = stores.calls.directory / generation_name(number)
    if not path.exists():
        raise PinnedDataGone(
            f"call-store generation {number} is no longer kept (only the newest few are); "
            "re-run without call_generation to read the current one"
        )
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    return number, con


@dataclass
class AuditReport:
    period: Period
    user: str | None
    group: str | None
    head: audit.ChainHead | None
    pinned: bool
    generation: int
    verification: audit.Verification
    events: pd.DataFrame  # in the period, after the user/group filters
    history: pd.DataFrame  # the same people's events up to the period's end (for baselines)
    names: dict[str, str] = field(default_factory=dict)

    # -------------------------------------------------------------- provenance
    def rerun_command(self) -> str:
        parts = ["dimnb audit report", f"--period '{self.period.absolute}'"]
        if self.user:
            parts.append(f"--user {self.user}")
        if self.group:
            parts.append(f"--group '{self.group}'")
        if self.head:
            parts.append(f"--head {self.head}")
        parts += [f"--generation {self.generation}", "--out report.html"]
        return " ".join(parts)

    def provenance(self) -> str:
        head = (f"events 1..{self.head.seq}, chain head {self.head}" if self.head else "no events yet")
        return "\n".join([
            f"Period:      {self.period}" + (f"  [{self.period.text}]" if self.period.text != "all" else ""),
            f"Listeners:   {self.user or 'everyone'}" + (f", members of {self.group}" if self.group else ""),
            f"Audit trail: {head}{' (pinned)' if self.pinned else ''}",
            f"Integrity:   {self.verification}",
            f"Call store:  generation {self.generation}",
            f"Re-run:      {self.rerun_command()}",
        ])

    # -------------------------------------------------------------- tables
    def summary(self) -> pd.DataFrame:
        e = self.events
        active = e[e["kind"].isin(ACTIVE_KINDS)]
        rows = [
            ("plays", int((e["kind"] == audit.PLAY).sum())),
            ("downloads", int((e["kind"] == audit.DOWNLOAD).sum())),
            ("denied attempts", int((e["kind"] == audit.DENIED).sum())),
            ("listeners", int(active["login"].nunique())),
            ("recordings played or downloaded", int(active["recording_id"].nunique())),
            ("calls", int(active["call_id"].nunique())),
        ]
        return pd.DataFrame(rows, columns=["what", "count"]).set_index("what")

    def per_user(self) -> pd.DataFrame:
        e = self.events
        columns = ["login", "name", "plays", "downloads", "denied", "recordings", "calls", "first", "last"]
        if e.empty:
            return pd.DataFrame(columns=columns).set_index("login")
        active = e[e["kind"].isin(ACTIVE_KINDS)]
        out = pd.DataFrame({"login": sorted(e["login"].dropna().unique())})
        out["name"] = out["login"].map(lambda x: self.names.get(x, ""))
        for kind, column in ((audit.PLAY, "plays"), (audit.DOWNLOAD, "downloads"), (audit.DENIED, "denied")):
            out[column] = out["login"].map(e[e["kind"] == kind].groupby("login").size()).fillna(0).astype(int)
        out["recordings"] = out["login"].map(active.groupby("login")["recording_id"].nunique()).fillna(0).astype(int)
        out["calls"] = out["login"].map(active.groupby("login")["call_id"].nunique()).fillna(0).astype(int)
        out["first"] = out["login"].map(e.groupby("login")["ts"].min()).map(_fmt)
        out["last"] = out["login"].map(e.groupby("login")["ts"].max()).map(_fmt)
        out = out.sort_values(["plays", "downloads", "login"], ascending=[False, False, True], kind="stable")
        return out.set_index("login")

    def per_call(self, top: int | None = 25) -> pd.DataFrame:
        e = self.events[self.events["kind"].isin(ACTIVE_KINDS)]
        columns = ["call_id", "call start", "direction", "call groups", "plays", "downloads", "listeners"]
        if e.empty:
            return pd.DataFrame(columns=columns).set_index("call_id")
        grouped = e.groupby("call_id")
        out = pd.DataFrame({
            "call start": grouped["call_start"].first().map(_fmt),
            "direction": grouped["direction"].first(),
            "call groups": grouped["call_groups"].first(),
            "plays": grouped["kind"].agg(lambda k: int((k == audit.PLAY).sum())),
            "downloads": grouped["kind"].agg(lambda k: int((k == audit.DOWNLOAD).sum())),
            "listeners": grouped["login"].agg(lambda s: ", ".join(sorted(set(s)))),
        })
        out.index = out.index.astype(int)
        out.index.name = "call_id"
        out["total"] = out["plays"] + out["downloads"]
        out = out.reset_index().sort_values(["total", "call_id"], ascending=[False, True], kind="stable")
        out = out.drop(columns="total").set_index("call_id")
        return out.head(top) if top else out

    def per_group(self) -> pd.DataFrame:
        """By the listener's primary group at the time of each event (a later move does not rewrite history)."""
        e = self.events
        columns = ["group", "listeners", "plays", "downloads", "denied", "calls"]
        if e.empty:
            return pd.DataFrame(columns=columns).set_index("group")
        e = e.assign(group=e["primary_group"].fillna("(no group)"))
        grouped = e.groupby("group")
        active = e[e["kind"].isin(ACTIVE_KINDS)]
        out = pd.DataFrame({"listeners": grouped["login"].nunique()})
        for kind, column in ((audit.PLAY, "plays"), (audit.DOWNLOAD, "downloads"), (audit.DENIED, "denied")):
            out[column] = e[e["kind"] == kind].groupby("group").size().reindex(out.index).fillna(0).astype(int)
        out["calls"] = active.groupby("group")["call_id"].nunique().reindex(out.index).fillna(0).astype(int)
        out = out.reset_index().sort_values(["plays", "group"], ascending=[False, True], kind="stable")
        return out.set_index("group")

    def denied(self) -> pd.DataFrame:
        e = self.events[self.events["kind"] == audit.DENIED]
        out = pd.DataFrame({
            "seq": e["seq"].astype(int),
            "time": e["ts"].map(_fmt),
            "login": e["login"],
            "asked": e["asked"],
            "recording_id": e["recording_id"].map(lambda v: "" if pd.isna(v) else str(int(v))),
            "client": e["client"],
        })
        return out.sort_values("seq", kind="stable").set_index("seq")

    def hourly(self) -> pd.DataFrame:
        """Plays and downloads per user per hour (UTC), over the people's history up to the period's end."""
        h = self.history[self.history["kind"].isin(ACTIVE_KINDS)]
        if h.empty:
            return pd.DataFrame(columns=["login", "hour", "plays", "clients"])
        h = h.assign(hour=h["ts"].dt.floor("h"))
        grouped = h.groupby(["login", "hour"])
        out = pd.DataFrame({
            "plays": grouped.size(),
            "clients": grouped["client"].agg(lambda s: ", ".join(sorted(set(s.dropna())))),
        }).reset_index()
        return out.sort_values(["login", "hour"], kind="stable").reset_index(drop=True)

    def unusual(self, factor: float = 3.0, min_plays: int = 10) -> pd.DataFrame:
        """Hours in the period where a user's plays reach ``factor`` × their usual hourly count, and ``min_plays``.

        Usual = the median over the hours in which they listened at all (their
        history up to the period's end), so one busy afternoon does not hide
        itself by raising its own baseline.
        """
        columns = ["login", "hour", "plays", "usual", "ratio", "clients"]
        hourly = self.hourly()
        if hourly.empty:
            return pd.DataFrame(columns=columns)
        usual = hourly.groupby("login")["plays"].median()
        hourly["usual"] = hourly["login"].map(usual)
        hourly["ratio"] = (hourly["plays"] / hourly["usual"]).round(1)
        in_period = pd.Series(True, index=hourly.index)
        if self.period.start is not None:
            in_period &= hourly["hour"] >= pd.Timestamp(self.period.start)
        logins = set(self.events["login"].dropna())
        flagged = hourly[in_period & hourly["login"].isin(logins)
                         & (hourly["plays"] >= min_plays) & (hourly["plays"] >= factor * hourly["usual"])]
        flagged = flagged.assign(hour=flagged["hour"].map(lambda t: t.strftime("%Y-%m-%d %H:00")))
        return flagged[columns].reset_index(drop=True)

    # -------------------------------------------------------------- plots
    def plot_daily(self) -> "Figure":
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 3))
        e = self.events
        if e.empty:
            _empty(ax, "no events in this period")
            return fig
        days = e.assign(day=e["ts"].dt.strftime("%m-%d")).groupby(["day", "kind"]).size().unstack(fill_value=0)
        bottom = None
        for kind, color in ((audit.PLAY, "#4C78A8"), (audit.DOWNLOAD, "#F58518"), (audit.DENIED, "#E45756")):
            if kind in days:
                ax.bar(days.index, days[kind], bottom=bottom, label=kind, color=color)
                bottom = days[kind] if bottom is None else bottom + days[kind]
        ax.set_ylabel("events")
        ax.set_title("Events per day (UTC)")
        ax.tick_params(axis="x", labelrotation=90, labelsize=8)
        ax.legend(loc="upper left", frameon=False)
        fig.tight_layout()
        return fig

    def plot_per_user(self) -> "Figure":
        import matplotlib.pyplot as plt

        table = self.per_user().iloc[::-1]
        fig, ax = plt.subplots(figsize=(9, max(2.0, 0.3 * len(table) + 1)))
        if table.empty:
            _empty(ax, "no events in this period")
            return fig
        ax.barh(table.index, table["plays"], label="plays", color="#4C78A8")
        ax.barh(table.index, table["downloads"], left=table["plays"], label="downloads", color="#F58518")
        ax.barh(table.index, table["denied"], left=table["plays"] + table["downloads"], label="denied",
                color="#E45756")
        ax.set_xlabel("events")
        ax.set_title("Per user")
        ax.legend(loc="lower right", frameon=False)
        fig.tight_layout()
        return fig

    def plot_unusual(self, unusual: pd.DataFrame, factor: float = 3.0, min_plays: int = 10) -> "Figure | None":
        """Each flagged user's plays per active hour, with the line their hour had to cross."""
        import matplotlib.pyplot as plt

        logins = list(dict.fromkeys(unusual["login"]))[:4]
        if not logins:
            return None
        hourly = self.hourly()
        fig, axes = plt.subplots(len(logins), 1, figsize=(9, 2.6 * len(logins)), squeeze=False)
        for ax, login in zip(axes[:, 0], logins):
            mine = hourly[hourly["login"] == login]
            labels = mine["hour"].map(lambda t: t.strftime("%m-%d %H:00"))
            flagged = set(unusual.loc[unusual["login"] == login, "hour"])
            colors = ["#E45756" if t.strftime("%Y-%m-%d %H:00") in flagged else "#4C78A8" for t in mine["hour"]]
            ax.bar(range(len(mine)), mine["plays"], color=colors)
            usual = float(mine["plays"].median())
            ax.axhline(max(min_plays, factor * usual), color="#555555", linestyle="--", linewidth=1)
            ax.set_xticks(range(len(mine)), labels, rotation=90, fontsize=7)
            ax.set_ylabel("plays")
            ax.set_title(f"{login}: plays per active hour (usual {usual:g}; red = unusual)")
        fig.tight_layout()
        return fig


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _fmt(value: Any) -> str:
    return "" if value is None or pd.isna(value) else pd.Timestamp(value).strftime(_TS)


def _memberships(stores: Stores, logins: list[str]) -> dict[str, list[tuple[str, bool, str | None, str | None]]]:
    out: dict[str, list[tuple[str, bool, str | None, str | None]]] = {login: [] for login in logins}
    if not logins:
        return out
    for row in directory_repo.memberships_of(stores.state, logins):
        out[row["login"]].append((row["group_name"], bool(row["is_primary"]), row["valid_from"], row["valid_to"]))
    return out


def _groups_at(memberships: list[tuple[str, bool, str | None, str | None]], ts: str) -> tuple[str | None, str]:
    """The primary group and all groups (comma-joined) at an event's time (second precision, like the directory)."""
    at = ts[:19] + "Z"
    held = [(g, p) for g, p, start, end in memberships if (start is None or start <= at) and (end is None or at < end)]
    primary = next((g for g, p in held if p), None)
    return primary, ",".join(sorted({g for g, _ in held}))


def _call_info(con: duckdb.DuckDBPyConnection, call_ids: list[int]) -> pd.DataFrame:
    columns = ["call_id", "call_start", "direction", "call_groups"]
    if not call_ids:
        return pd.DataFrame(columns=columns)
    rows = con.execute(
        """
        SELECT c.call_id, c.start_time, c.direction,
               coalesce((SELECT string_agg(t.group_name, ', ' ORDER BY t.group_name) FROM call_tags t
                         WHERE t.call_id = c.call_id), '') AS call_groups
        FROM calls c WHERE list_contains($ids, c.call_id) ORDER BY c.call_id
        """,
        {"ids": call_ids},
    ).fetchall()
    frame = pd.DataFrame(rows, columns=columns)
    frame["call_start"] = pd.to_datetime(frame["call_start"], utc=True)
    return frame


def _frame(events: list[audit.AuditEvent]) -> pd.DataFrame:
    columns = list(audit.COLUMNS)
    frame = pd.DataFrame([e.as_dict() for e in events], columns=columns)
    frame["ts_text"] = frame["ts"].astype(str)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    frame["asked"] = [e.details.get("asked", "") for e in events]
    frame["recording_id"] = frame["recording_id"].astype("Int64")
    frame["call_id"] = frame["call_id"].astype("Int64")
    return frame


def load(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    period: str | None = "all",
    user: str | None = None,
    group: str | None = None,
    audit_head: str | None = None,
    call_generation: int | None = None,
    viewer: str | None = None,
    now: datetime | None = None,
) -> AuditReport:
    """Read the audit trail (up to ``audit_head``, "SEQ:HASH") and the call store (``call_generation``).

    In a dashboard kernel (``$DIMNB_USER`` set, or ``viewer`` given) only an
    auditor gets a report; anyone else gets ``NotFound``.
    """
    stores = Stores.open(str(data_dir) if data_dir else None)
    viewer = viewer or os.environ.get(USER_ENV)
    if viewer and not audit.may_view_audit(stores.state, viewer):
        raise NotFound("no such page")
    window = Period.parse(period, now=now)
    pinned = audit_head is not None
    head = audit.ChainHead.parse(audit_head, "audit_head") if pinned else audit.head(stores.state)
    upto = head.seq if head else 0
    verification = audit.verify(stores.state, anchor=head if pinned else None, upto_seq=upto)
    if pinned and verification.ok and verification.head is not None:
        head = verification.head  # the full hash for a prefix given
    everything = audit.read_events(stores.state, end=window.end, upto_seq=upto)
    frame = _frame(everything)
    logins = sorted(set(frame["login"].dropna()))
    names = directory_repo.names(stores.state)
    memberships = _memberships(stores, logins)
    held = [_groups_at(memberships.get(login, []), ts) if isinstance(login, str) else (None, "")
            for login, ts in zip(frame["login"], frame["ts_text"])]
    frame["primary_group"] = [p for p, _ in held]
    frame["groups"] = [g for _, g in held]
    generation, con = _open_generation(stores, call_generation)
    try:
        ids = sorted({int(c) for c in frame["call_id"].dropna()})
        frame = frame.merge(_call_info(con, ids), on="call_id", how="left")
    finally:
        con.close()
    if user:
        frame = frame[frame["login"] == user]
    if group:
        frame = frame[frame["groups"].map(lambda g: group in g.split(","))]
    frame = frame.sort_values("seq", kind="stable").reset_index(drop=True)
    history = frame
    in_period = frame
    if window.start is not None:
        in_period = frame[frame["ts"] >= pd.Timestamp(window.start)].reset_index(drop=True)
    return AuditReport(
        period=window, user=user, group=group, head=head, pinned=pinned, generation=generation,
        verification=verification, events=in_period, history=history, names=names,
    )
