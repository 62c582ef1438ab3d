"""The company directory: users, groups, extensions and memberships, each with effective dates.

``import_directory`` takes a JSON or CSV file (format: docs/directory.md,
example: data/directory.example.json), checks every rule, and replaces the
directory in the state store in one transaction. Password hashes, saved
filters and the audit log are kept; users missing from the file are
deactivated, never deleted, so their history stays explainable.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dimnb import model
from dimnb.errors import DirectoryError, UnknownUser
from dimnb.passwords import check_password_rule, hash_password
from dimnb.store import directory_repo
from dimnb.store.statestore import StateStore

_LOGIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_EXTENSION_RE = re.compile(r"^[0-9A-Za-z*#+]{1,32}$")


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC; None is open-ended. Stored as ISO-8601 text ending in Z."""

    start: str | None = None
    end: str | None = None

    def overlaps(self, other: "Period") -> bool:
        return (self.end is None or other.start is None or other.start < self.end) and (
            other.end is None or self.start is None or self.start < other.end
        )

    def describe(self) -> str:
        return f"{self.start or 'the beginning'} to {self.end or 'now'}"


@dataclass(frozen=True)
class Extension:
    extension: str
    period: Period


@dataclass(frozen=True)
class Membership:
    group: str
    primary: bool
    period: Period


@dataclass
class User:
    login: str
    name: str
    email: str | None = None
    report_scope: str = model.OWN
    playback: str = model.NONE
    roles: tuple[str, ...] = ()
    timezone: str | None = None
    active: bool = True
    extensions: list[Extension] = field(default_factory=list)
    memberships: list[Membership] = field(default_factory=list)


@dataclass
class Directory:
    groups: dict[str, str] = field(default_factory=dict)  # name -> description
    users: dict[str, User] = field(default_factory=dict)


@dataclass
class ImportSummary:
    users: int
    groups: int
    extensions: int
    memberships: int
    deactivated: list[str]
    warnings: list[str]

    def lines(self) -> list[str]:
        out = [
            f"users: {self.users}, groups: {self.groups}, extensions: {self.extensions}, memberships: {self.memberships}"
        ]
        if self.deactivated:
            out.append("deactivated (not in the file): " + ", ".join(self.deactivated))
        out.extend(f"warning: {w}" for w in self.warnings)
        return out


# ---------------------------------------------------------------------------- parsing


def parse_instant(value: Any, *, where: str) -> str | None:
    """A date or date-time (naive means UTC) as canonical ISO text, or None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=timezone.utc)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise DirectoryError(f"{where}: {text!r} is not a date (YYYY-MM-DD) or date-time (ISO 8601)") from None
    return format_instant(moment)


def format_instant(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _period(entry: dict[str, Any], where: str) -> Period:
    start = parse_instant(entry.get("from"), where=f"{where} 'from'")
    end = parse_instant(entry.get("to"), where=f"{where} 'to'")
    if start and end and not start < end:
        raise DirectoryError(f"{where}: 'from' ({start}) must be before 'to' ({end})")
    return Period(start, end)


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("", "0", "false", "no", "n", "f"):
        return False
    if text in ("1", "true", "yes", "y", "t"):
        return True
    raise DirectoryError(f"{where}: {value!r} is not yes/no")


def _user_from_mapping(raw: dict[str, Any], where: str) -> User:
    login = str(raw.get("login") or "").strip()
    if not _LOGIN_RE.match(login):
        raise DirectoryError(f"{where}: login {login!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
    name = str(raw.get("name") or "").strip()
    if not name:
        raise DirectoryError(f"{where} ({login}): a user needs a name")
    report_scope = str(raw.get("report_scope") or model.OWN).strip()
    if report_scope not in model.REPORT_SCOPES:
        raise DirectoryError(
            f"{where} ({login}): report_scope {report_scope!r} must be one of {', '.join(model.REPORT_SCOPES)}"
        )
    playback = str(raw.get("playback") or model.NONE).strip()
    if playback not in model.PLAYBACK_GRANTS:
        raise DirectoryError(
            f"{where} ({login}): playback {playback!r} must be one of {', '.join(model.PLAYBACK_GRANTS)}"
        )
    roles_raw = raw.get("roles") or []
    roles = tuple(sorted({r.strip() for r in (roles_raw.split(",") if isinstance(roles_raw, str) else roles_raw) if r.strip()}))
    unknown = [r for r in roles if r not in model.ROLES]
    if unknown:
        raise DirectoryError(f"{where} ({login}): unknown role(s) {', '.join(unknown)}; known: {', '.join(model.ROLES)}")
    tz = (raw.get("timezone") or None) and str(raw["timezone"]).strip()
    if tz:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise DirectoryError(f"{where} ({login}): unknown timezone {tz!r}") from None
    return User(
        login=login,
        name=name,
        email=(str(raw["email"]).strip() or None) if raw.get("email") else None,
        report_scope=report_scope,
        playback=playback,
        roles=roles,
        timezone=tz or None,
        active=_bool(raw.get("active", True), f"{where} ({login}) 'active'"),
    )


def _extension(raw: dict[str, Any], where: str) -> Extension:
    ext = str(raw.get("extension") or "").strip()
    if not _EXTENSION_RE.match(ext):
        raise DirectoryError(f"{where}: extension {ext!r} is not a valid extension number")
    return Extension(ext, _period(raw, where))


def _membership(raw: dict[str, Any], where: str) -> Membership:
    group = str(raw.get("group") or "").strip()
    if not group:
        raise DirectoryError(f"{where}: a membership needs a group")
    return Membership(group, _bool(raw.get("primary", False), f"{where} 'primary'"), _period(raw, where))


def parse_json(text: str, source: str = "directory") -> Directory:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DirectoryError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("users"), list):
        raise DirectoryError(f"{source}: expected an object with a 'users' list (and a 'groups' list)")
    directory = Directory()
    for i, group in enumerate(raw.get("groups") or []):
        name = str((group or {}).get("name") or "").strip() if isinstance(group, dict) else ""
        if not name:
            raise DirectoryError(f"{source}: groups[{i}] needs a name")
        if name in directory.groups:
            raise DirectoryError(f"{source}: group {name!r} is listed twice")
        directory.groups[name] = str(group.get("description") or "")
    for i, entry in enumerate(raw["users"]):
        where = f"{source}: users[{i}]"
        if not isinstance(entry, dict):
            raise DirectoryError(f"{where}: expected an object")
        user = _user_from_mapping(entry, where)
        if user.login in directory.users:
            raise DirectoryError(f"{where}: login {user.login!r} is listed twice")
        for j, ext in enumerate(entry.get("extensions") or []):
            user.extensions.append(_extension(ext if isinstance(ext, dict) else {"extension": ext}, f"{where}.extensions[{j}]"))
        for j, member in enumerate(entry.get("groups") or []):
            user.memberships.append(_membership(member if isinstance(member, dict) else {"group": member}, f"{where}.groups[{j}]"))
        directory.users[user.login] = user
    return directory


CSV_COLUMNS = (
    "login", "name", "email", "report_scope", "playback", "roles", "timezone",
    "extension", "group", "primary", "from", "to",
)


def parse_csv(text: str, source: str = "directory") -> Directory:
    """One row per fact: a user row (login, name, scopes...), an extension row (login, extension, from, to),
    a membership row (login, group, primary, from, to) or a group row (group, name as its description)."""
    reader = csv.DictReader(text.lstrip("\ufeff").splitlines())
    missing = [c for c in ("login", "name", "extension", "group") if c not in (reader.fieldnames or [])]
    if missing:
        raise DirectoryError(f"{source}: CSV header lacks column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}")
    directory = Directory()
    pending: list[tuple[int, dict[str, str]]] = []
    for line, row in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k}
        where = f"{source} line {line}"
        if not row.get("login"):
            if row.get("group"):
                directory.groups[row["group"]] = row.get("name", "")
                continue
            if any(row.values()):
                raise DirectoryError(f"{where}: a row needs a login (or only a group, to declare a group)")
            continue
        if not row.get("extension") and not row.get("group"):
            user = _user_from_mapping(row, where)
            if user.login in directory.users:
                raise DirectoryError(f"{where}: login {user.login!r} has two user rows")
            directory.users[user.login] = user
        else:
            pending.append((line, row))
    for line, row in pending:
        where = f"{source} line {line}"
        user = directory.users.get(row["login"])
        if user is None:
            raise DirectoryError(f"{where}: login {row['login']!r} has no user row")
        if row.get("extension"):
            user.extensions.append(_extension(row, where))
        if row.get("group"):
            directory.groups.setdefault(row["group"], "")
            user.memberships.append(_membership(row, where))
    return directory


def read_directory_file(path: Path) -> Directory:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DirectoryError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise DirectoryError(f"{path}: not UTF-8 text") from None
    if Path(path).suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return parse_json(text, str(path))
    return parse_csv(text, str(path))


# ---------------------------------------------------------------------------- rules


def validate(directory: Directory) -> list[str]:
    """Raise DirectoryError on a broken rule; return warnings for what is odd but allowed."""
    warnings: list[str] = []
    owners: dict[str, list[tuple[str, Period]]] = defaultdict(list)
    for user in directory.users.values():
        for ext in user.extensions:
            for other_login, other in owners[ext.extension]:
                if other.overlaps(ext.period):
                    raise DirectoryError(
                        f"extension {ext.extension} belongs to both {other_login} ({other.describe()}) "
                        f"and {user.login} ({ext.period.describe()}) at the same time"
                    )
            owners[ext.extension].append((user.login, ext.period))
        primaries = [m for m in user.memberships if m.primary]
        for m in user.memberships:
            if m.group not in directory.groups:
                raise DirectoryError(f"{user.login}: member of unknown group {m.group!r} (declare it in 'groups')")
        for i, a in enumerate(primaries):
            for b in primaries[i + 1 :]:
                if a.period.overlaps(b.period):
                    raise DirectoryError(
                        f"{user.login}: two primary groups at once: {a.group} ({a.period.describe()}) "
                        f"and {b.group} ({b.period.describe()})"
                    )
        if not primaries:
            raise DirectoryError(f"{user.login}: needs a primary group (a membership with \"primary\": true)")
        if user.playback != model.NONE and not user.extensions:
            warnings.append(f"{user.login} may play recordings but has no extension, so has no own calls")
    return warnings


# ---------------------------------------------------------------------------- storing


def import_directory(state: StateStore, path: Path) -> ImportSummary:
    """Validate ``path`` and make it the directory, atomically. Raises DirectoryError with the first problem."""
    raw = Path(path).read_bytes()
    directory = read_directory_file(path)
    warnings = validate(directory)
    with state.transaction() as con:
        present = directory_repo.logins(con)
        directory_repo.replace_groups(con, directory.groups)
        for user in directory.users.values():
            directory_repo.upsert(con, login=user.login, name=user.name, email=user.email,
                                  report_scope=user.report_scope, playback=user.playback, roles=",".join(user.roles),
                                  timezone=user.timezone, active=user.active)
        directory_repo.replace_assignments(
            con,
            extensions=[(e.extension, u.login, e.period.start, e.period.end)
                        for u in directory.users.values() for e in u.extensions],
            memberships=[(u.login, m.group, int(m.primary), m.period.start, m.period.end)
                         for u in directory.users.values() for m in u.memberships],
        )
        gone = sorted(present - set(directory.users))
        directory_repo.deactivate(con, gone)
        summary = ImportSummary(
            users=len(directory.users),
            groups=len(directory.groups),
            extensions=sum(len(u.extensions) for u in directory.users.values()),
            memberships=sum(len(u.memberships) for u in directory.users.values()),
            deactivated=gone,
            warnings=warnings,
        )
        directory_repo.record_import(con, str(path), hashlib.sha256(raw).hexdigest(), "; ".join(summary.lines()))
    return summary


def set_password(state: StateStore, login: str, password: str) -> None:
    try:
        check_password_rule(password)
    except ValueError as exc:
        raise DirectoryError(str(exc)) from exc
    if not directory_repo.set_password_hash(state, login, hash_password(password)):
        raise UnknownUser(f"no user with login {login!r}")


def set_grants(state: StateStore, login: str, *, playback: str | None = None, report_scope: str | None = None) -> None:
    if playback is not None and playback not in model.PLAYBACK_GRANTS:
        raise DirectoryError(f"playback must be one of {', '.join(model.PLAYBACK_GRANTS)}")
    if report_scope is not None and report_scope not in model.REPORT_SCOPES:
        raise DirectoryError(f"report scope must be one of {', '.join(model.REPORT_SCOPES)}")
    if not directory_repo.set_grants(state, login, playback=playback, report_scope=report_scope):
        raise UnknownUser(f"no user with login {login!r}")


def extension_history(state: StateStore) -> list[tuple[str, str, str | None, str | None]]:
    """(extension, login, valid_from, valid_to) for every assignment ever made."""
    return [tuple(r) for r in directory_repo.extension_history(state)]


def primary_group_history(state: StateStore) -> list[tuple[str, str, str | None, str | None]]:
    """(login, group, valid_from, valid_to) for every primary membership ever held."""
    return [tuple(r) for r in directory_repo.primary_group_history(state)]
