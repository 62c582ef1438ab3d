"""The Call List and the playable recordings on Apache Spark, over a ``dimnb export parquet`` directory.

    from dimnb import spark as dspark
    session = dspark.local_session()                        # or the cluster's own SparkSession
    frame = dspark.calls(session, "s3a://calls/export", user="maria", direction="inbound", period="last_30_days")

Who may see what is not decided here: the condition is ``access.scope_expr`` /
``access.recording_expr`` (the one definition the dashboards' DuckDB queries
use) rendered to Spark Columns by ``dimnb.access_expr``. The user's grants and
*current* groups are read with ``access.load_actor`` from the directory the
export carries (``directory/*.parquet``), as the state store stood at export
time. On a cluster, pass the login the cluster's own authentication gives
(never a value a notebook user can choose); see docs/scale.md.

The filters are ``wb.calls``'s (``dimnb.filters.Filters``); a party search is
resolved against the exported directory as ``reports.resolve`` does against
the state store.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from dimnb import access, access_expr
from dimnb.actions import PLAY_RECORDING, VIEW_CALLS
from dimnb.errors import InvalidInput, UnknownUser
from dimnb.filters import Filters, Party, number_digits, split_party
from dimnb.sql import quote_identifier

PLAYABLE, PENDING = "playable", "pending archive"
CALL_COLUMNS = [
    "start_time", "direction", "from_party", "to_party", "final_party", "ring_seconds", "talk_seconds",
    "duration_seconds", "outcome", "groups", "segment_count", "recording", "call_id",
    "from_name", "final_name", "from_ext", "final_ext",
]


def local_session(app_name: str = "dimnb", *, cores: int = 2, driver_memory: str = "1g",
                  config: Mapping[str, str] | None = None) -> Any:
    """A Spark session on this machine only: ``local[cores]``, bound to 127.0.0.1, no web UI, UTC."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # else Spark looks up the host's outside address
    builder = SparkSession.builder
    for name, value in (config or {}).items():
        builder = builder.config(name, value)
    return (builder.master(f"local[{cores}]").appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", str(max(2, cores)))
            .config("spark.sql.adaptive.enabled", "true")
            .getOrCreate())


# ---------------------------------------------------------------------------- who is asking


class _ExportedDirectory:
    """The export's directory tables in an in-memory SQLite, shaped like the state store for ``load_actor``."""

    def __init__(self, path: str | Path) -> None:
        self._con = sqlite3.connect(":memory:")
        self._con.row_factory = sqlite3.Row
        for table in ("users", "groups", "memberships", "extensions"):
            data = pq.read_table(_join(path, "directory", f"{table}.parquet")).to_pylist()
            columns = pq.read_schema(_join(path, "directory", f"{table}.parquet")).names
            self._con.execute(f"CREATE TABLE {table} ({', '.join(quote_identifier(c) for c in columns)})")
            self._con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})",
                                  [tuple(row[c] for c in columns) for row in data])

    def connection(self) -> sqlite3.Connection:
        return self._con


def _join(path: str | Path, *parts: str) -> str:
    return "/".join([str(path).rstrip("/"), *parts])


def actor(path: str | Path, login: str, *, at: datetime | None = None) -> access.Actor:
    """The user's grants and groups at ``at`` (default now), from the export's directory (``access.load_actor``)."""
    return access.load_actor(_ExportedDirectory(path), login, at=at)  # type: ignore[arg-type]


def _as_actor(path: str | Path, user: str | access.Actor, at: datetime | None) -> access.Actor:
    if isinstance(user, access.Actor):
        return user
    if not isinstance(user, str) or not user:
        raise UnknownUser("user: give the login the cluster authenticated")
    return actor(path, user, at=at)


# ---------------------------------------------------------------------------- conditions


def scope_column(actor_: access.Actor, action: Any = VIEW_CALLS) -> Any:
    """``access.scope_expr`` as a Spark Column on a calls DataFrame."""
    return access_expr.to_spark_column(access.scope_expr(actor_, action))


def _resolve_party(path: str | Path | None, text: str) -> Party:
    """What a party search means, asked of the exported directory (as ``reports.resolve`` asks the state store)."""
    kind, value = split_party(text)
    if path is None:
        return Party(kind or "text", value)
    directory = _ExportedDirectory(path).connection()
    if kind in (None, "user"):
        row = directory.execute("SELECT login, active FROM users WHERE lower(login) = ?", (value.lower(),)).fetchone()
        if row is not None:
            if not row["active"]:
                raise InvalidInput(f"party: {row['login']} is no longer an active user; search by their extension "
                                   "or number instead", field="party")
            return Party("user", str(row["login"]))
        if kind == "user":
            raise InvalidInput(f"party: there is no user {value!r}", field="party")
    if kind in (None, "extension"):
        known = directory.execute("SELECT count(*) FROM extensions WHERE extension = ?", (value,)).fetchone()[0]
        if known or kind == "extension":
            return Party("extension", value)
    return Party("text", value)


def filter_column(filters: Filters, *, party: Party | None = None, segments: Any = None,
                  now: datetime | None = None) -> tuple[Any, Any]:
    """``Filters.condition`` as a Spark Column on a calls DataFrame, and the segments semi-join an extension needs.

    Returns ``(column, extension_calls)``: ``extension_calls`` is a DataFrame
    of ``call_id`` to keep (a party that is an extension in any segment), or None.
    """
    from pyspark.sql import functions as F

    condition = F.lit(True)
    start, end = filters.bounds(now)
    if start:
        # The partition columns too, so Spark reads only the months it needs.
        condition &= (F.col("year") * 100 + F.col("month")) >= start.year * 100 + start.month
        condition &= F.col("start_time") >= F.lit(start)
    if end:
        condition &= (F.col("year") * 100 + F.col("month")) <= end.year * 100 + end.month
        condition &= F.col("start_time") < F.lit(end)
    if filters.direction:
        condition &= F.col("direction").isin(list(filters.direction))
    if filters.outcome:
        condition &= F.col("outcome").isin(list(filters.outcome))
    if filters.min_duration is not None:
        condition &= F.col("duration_seconds") >= F.lit(filters.min_duration)
    if filters.max_duration is not None:
        condition &= F.col("duration_seconds") <= F.lit(filters.max_duration)
    if filters.group:
        condition &= F.coalesce(F.array_contains("group_tags", F.lit(filters.group)), F.lit(False))
    extension_calls = None
    if filters.party:
        party = party or Party("text", filters.party)
        if party.kind == "user":
            condition &= F.coalesce(F.array_contains("participant_logins", F.lit(party.value)), F.lit(False))
        elif party.kind == "extension":
            value = F.lit(party.value)
            on_call = (F.col("from_ext") == value) | (F.col("to_ext") == value) | (F.col("final_ext") == value)
            if segments is not None:
                extension_calls = (segments.where((F.col("from_ext") == value) | (F.col("to_ext") == value))
                                   .select("call_id").distinct())
                condition &= on_call | F.col("_party_segment").isNotNull()
            else:
                condition &= on_call
        else:
            condition &= _text_column(party.value)
    return condition, extension_calls


def _text_column(text: str) -> Any:
    from pyspark.sql import functions as F

    digits = number_digits(text)
    significant = (digits or "").lstrip("+").lstrip("0")
    if len(significant) >= 3:
        needle, columns = significant, [F.col(c) for c in ("from_party", "to_party", "final_party")]
    else:
        needle = text.lower()
        columns = [F.lower(F.col(c)) for c in ("from_party", "to_party", "final_party", "from_name", "final_name")]
    result = F.lit(False)
    for column in columns:
        result |= F.coalesce(column.contains(needle), F.lit(False))
    return result


# ---------------------------------------------------------------------------- DataFrames


Askers = access.Actor | Mapping[Any, access.Actor]


def _for_each_asker(askers: Askers, key: Any, build: Callable[[access.Actor], Any]) -> Any:
    """One actor's condition, or for many (``{key value: actor}``) a CASE on the row's asker key column."""
    from pyspark.sql import functions as F

    if isinstance(askers, access.Actor):
        return build(askers)
    if key is None:
        raise ValueError("several askers need the column that says whose row it is (key_column)")
    result = None
    for value, actor_ in askers.items():
        branch = key == F.lit(value)
        result = F.when(branch, build(actor_)) if result is None else result.when(branch, build(actor_))
    return F.lit(False) if result is None else result.otherwise(F.lit(False))


def scoped_calls(calls_frame: Any, actor_: Askers, filters: Filters | None = None, *,
                 party: Party | None = None, segments: Any = None, now: datetime | None = None,
                 keep: tuple[str, ...] = (), key_column: str | None = None) -> Any:
    """The calls of ``calls_frame`` the actor may list, filtered, with the Call List's columns.

    ``recording`` is ``playable`` / ``pending archive`` / empty, and follows
    the playback grant (nothing tells a user without it that a recording
    exists); "only calls with recordings" keeps the calls with a recording the
    actor may play now. ``keep`` names extra columns of ``calls_frame`` to carry.

    Many users in one job: pass ``{key: actor}`` and the name of the column of
    ``calls_frame`` holding each row's key (calls joined with the askers);
    each row is then judged by its own asker's condition.
    """
    from pyspark.sql import functions as F

    filters = filters or Filters()
    key = F.col(key_column) if key_column else None
    view = _for_each_asker(actor_, key, lambda a: scope_column(a, VIEW_CALLS))
    play = _for_each_asker(actor_, key, lambda a: scope_column(a, PLAY_RECORDING))
    where = (play & (F.col("recordings_available") > 0)) if filters.with_recordings else view
    condition, extension_calls = filter_column(filters, party=party, segments=segments, now=now)
    frame = calls_frame
    if extension_calls is not None:
        frame = frame.join(extension_calls.withColumnRenamed("call_id", "_party_segment"),
                           F.col("call_id") == F.col("_party_segment"), "left")
    marker = (F.when(~play, F.lit("")).when(F.col("recordings_available") > 0, F.lit(PLAYABLE))
              .when(F.col("recordings_pending") > 0, F.lit(PENDING)).otherwise(F.lit("")))
    groups = F.coalesce(F.array_join(F.array_sort("group_tags"), ", "), F.lit(""))
    return (frame.where(where & condition)
            .select(*[F.col(c) for c in CALL_COLUMNS[:9]], groups.alias("groups"), F.col("segment_count"),
                    marker.alias("recording"), *[F.col(c) for c in CALL_COLUMNS[12:]], *[F.col(c) for c in keep]))


def scoped_recordings(recordings_frame: Any, calls_frame: Any, actor_: Askers, *, pending: bool = False,
                      key_column: str | None = None, join_on: tuple[str, ...] = ("call_id",)) -> Any:
    """The recordings the actor may play (``access.recording_expr``), joined to their calls.

    With ``pending``, also those waiting for the archive job that the actor
    could play once archived (their ``state`` says which). Many users in one
    job as for ``scoped_calls`` (``key_column`` is then a column of ``calls_frame``).
    """
    from pyspark.sql import functions as F

    rec, call = recordings_frame.alias("r"), calls_frame.alias("c")
    columns = {access_expr.RECORDINGS: lambda name: F.col(f"r.{name}"),
               access_expr.CALLS: lambda name: F.col(f"c.{name}")}
    key = F.col(f"c.{key_column}") if key_column else None
    condition = _for_each_asker(
        actor_, key, lambda a: access_expr.to_spark_column(access.recording_expr(a, pending=pending), columns))
    keys = [F.col(f"r.{name}") == F.col(f"c.{name}") for name in join_on]
    extra = [F.col(f"c.{key_column}")] if key_column else []
    return (rec.join(call, keys, "inner").where(condition)
            .select("r.*", F.col("c.start_time").alias("call_start_time"), *extra))


def _read(spark: Any, path: str | Path, table: str) -> Any:
    return spark.read.option("basePath", _join(path, table)).parquet(_join(path, table))


def calls(spark: Any, path: str | Path, user: str | access.Actor, filters: Filters | dict[str, Any] | None = None,
          *, at: datetime | None = None, **values: Any) -> Any:
    """The Call List on Spark: the exported calls the user may list, filtered like ``wb.calls``.

    ``user`` is a login (grants and current groups read from the export's
    directory at ``at``, default now) or an ``access.Actor``. Filters are a
    ``Filters``, a mapping, or keywords (``direction="inbound"``, ...).
    """
    who = _as_actor(path, user, at)
    parsed = Filters.parse(filters, **values)
    party = _resolve_party(path, parsed.party) if parsed.party else None
    segments = _read(spark, path, "segments") if party is not None and party.kind == "extension" else None
    return scoped_calls(_read(spark, path, "calls"), who, parsed, party=party, segments=segments, now=at)


def recordings(spark: Any, path: str | Path, user: str | access.Actor, *, pending: bool = False,
               at: datetime | None = None) -> Any:
    """The exported recordings' metadata the user may play (``pending``: and those they could once archived)."""
    who = _as_actor(path, user, at)
    return scoped_recordings(_read(spark, path, "recordings"), _read(spark, path, "calls"), who, pending=pending)


__all__ = ["local_session", "actor", "calls", "recordings", "scoped_calls", "scoped_recordings", "scope_column",
           "filter_column"]
