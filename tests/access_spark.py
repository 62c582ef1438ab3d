"""The random access worlds through Spark: exported to Parquet, scoped by dimnb.spark, compared with the model.

Each world is built in a real data directory (tests/access_worlds.py), then
exported with ``dimnb export parquet`` into ``work/world-N``. The actor of
every active user comes from the export's directory (``dimnb.spark.actor``).
A batch's exported files are put together into one Parquet file per table
with a ``world`` column; each call row is paired with every user of its world
and judged by that user's own condition (``dimnb.spark.scoped_calls`` /
``scoped_recordings`` with ``key_column``): one Spark job per batch instead of
one per world and user.

Compared with tests/access_reference.py: each user's listing (with and
without "only calls with recordings"), the recording marker and group column
of each listed call, the recordings they may play, and those they could play
once archived. (``why`` explains a call on one machine; it has no Spark form.)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import access_reference as ref
import access_worlds
from dimnb import export_parquet
from dimnb import spark as dspark
from dimnb.access import Actor
from dimnb.errors import UnknownUser
from dimnb.filters import Filters


# Worlds are tiny: Spark's code generation costs more than it saves on them (measured: 55 s instead of 93 s
# for a batch of 20 worlds on a loaded 2-core machine).
SMALL_DATA_CONFIG = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


@dataclass
class Case:
    """One world, exported, with what the model expects for each active user."""

    number: int
    world: ref.World
    call_key: dict[int, str] = field(default_factory=dict)  # call_id -> world key
    rec_path: dict[int, str] = field(default_factory=dict)  # recording_id -> world path
    actors: dict[str, Actor] = field(default_factory=dict)
    diffs: list[str] = field(default_factory=list)  # found before Spark (the export's directory)


def prepare(number: int, world: ref.World, work: Path) -> Case:
    """Build the world, export it to ``work/world-N`` and read each user's actor from the export."""
    case = Case(number, world)
    data_dir = work / f"data-{number}"
    out = work / f"world-{number}"
    stores = access_worlds.build(world, data_dir)
    try:
        cur = stores.calls.cursor()
        case.call_key = {int(i): k for k, i in cur.execute("SELECT source_id, call_id FROM calls").fetchall()}
        case.rec_path = {int(i): p for p, i in cur.execute("SELECT source_path, recording_id FROM recordings").fetchall()}
        export_parquet.export(stores, out)
    finally:
        stores.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    for user in [u.login for u in world.directory.users] + [access_worlds.GHOST]:
        who = ref.asker(world, user)
        try:
            actor = dspark.actor(out, user, at=world.now)
        except UnknownUser:
            if who is not None:
                case.diffs.append(f"world {number} {user}: the export's directory says unknown/inactive")
            continue
        if who is None:
            case.diffs.append(f"world {number} {user}: the export's directory has an active user, the model not")
        elif (actor.primary_group, set(actor.groups)) != (who.primary_group, set(who.groups)):
            case.diffs.append(f"world {number} {user}: groups {actor.primary_group!r}/{sorted(actor.groups)}, "
                              f"model {who.primary_group!r}/{sorted(who.groups)}")
        else:
            case.actors[user] = actor
    return case


def _combined(cases: list[Case], work: Path, table: str) -> str:
    """The batch's exported ``table`` files as ONE Parquet file with a ``world`` column (Spark lists one file,
    not hundreds of tiny ones); the rows and their schema are the export's own."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for case in cases:
        for path in sorted((work / f"world-{case.number}" / table).glob("year=*/month=*/data.parquet")):
            part = pq.read_table(path)
            parts.append(part.append_column("world", pa.array([case.number] * part.num_rows, pa.int32())))
    target = work / f"batch-{cases[0].number}-{table}.parquet"
    pq.write_table(pa.concat_tables(parts), target)
    return str(target)


def spark_answers(spark, cases: list[Case], work: Path) -> set[tuple]:  # type: ignore[no-untyped-def]
    """Every (world, login, what, id, marker, groups) row Spark gives for the batch, from one job.

    Each call row is paired with every user of its world (a join on the world
    number) and judged by that user's own condition (``key_column``).
    """
    from pyspark.sql import functions as F

    cases = [c for c in cases if c.call_key and c.actors]  # nobody, or nothing, to ask about: no rows either way
    if not cases:
        return set()
    askers = {f"{c.number}/{login}": actor for c in cases for login, actor in c.actors.items()}
    asker_rows = [(c.number, login, f"{c.number}/{login}") for c in cases for login in c.actors]
    who = spark.createDataFrame(asker_rows, "world int, login string, asker string")
    calls = spark.read.parquet(_combined(cases, work, "calls")).join(who, "world")
    parts = []
    for with_recordings in (False, True):
        listed = dspark.scoped_calls(calls, askers, Filters(with_recordings=with_recordings),
                                     keep=("world", "login"), key_column="asker")
        parts.append(listed.select("world", "login", F.lit(f"list{int(with_recordings)}").alias("what"),
                                   F.col("call_id").alias("id"), F.col("recording").alias("marker"), "groups"))
    if any(c.rec_path for c in cases):
        recordings = spark.read.parquet(_combined([c for c in cases if c.rec_path], work, "recordings"))
        playable = dspark.scoped_recordings(recordings, calls, askers, pending=True, key_column="asker",
                                            join_on=("world", "call_id"))
        parts.append(playable.select(F.col("r.world").alias("world"),
                                     F.split(F.col("asker"), "/").getItem(1).alias("login"),
                                     F.concat(F.lit("play-"), F.col("state")).alias("what"),
                                     F.col("recording_id").alias("id"), F.lit("").alias("marker"),
                                     F.lit("").alias("groups")))
    union = parts[0]
    for part in parts[1:]:
        union = union.unionAll(part)
    return {tuple(r) for r in union.collect()}


def expected(case: Case) -> set[tuple]:
    """The same rows, from the reference model."""
    world, rows = case.world, set()
    id_of_call = {k: i for i, k in case.call_key.items()}
    id_of_rec = {p: i for i, p in case.rec_path.items()}
    for login in case.actors:
        who = ref.asker(world, login)
        for with_recordings in (False, True):
            for key in ref.listing(world, who, with_recordings=with_recordings):
                call = world.call(key)
                rows.add((case.number, login, f"list{int(with_recordings)}", id_of_call[key],
                          ref.marker(world, who, call), ", ".join(sorted(ref.tags(world, call)))))
        for call in world.calls:
            for rec in call.recordings:
                if ref.can_play(world, who, call, rec):
                    rows.add((case.number, login, "play-available", id_of_rec[rec.path], "", ""))
                if ref.could_play_once_archived(world, who, call, rec):
                    rows.add((case.number, login, "play-pending_archive", id_of_rec[rec.path], "", ""))
    return rows


def differences(spark, cases: list[Case], work: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """Every difference between Spark's answers and the model for a batch of prepared worlds."""
    diffs = [d for c in cases for d in c.diffs]
    got = spark_answers(spark, cases, work)
    want = set().union(*(expected(c) for c in cases)) if cases else set()
    names = {c.number: c for c in cases}

    def show(row: tuple) -> str:
        case = names[row[0]]
        name = case.call_key.get(row[3]) if row[2].startswith("list") else case.rec_path.get(row[3])
        return f"world {row[0]} {row[1]} {row[2]} {name} marker={row[4]!r} groups={row[5]!r}"

    diffs += [f"Spark only: {show(r)}" for r in sorted(got - want)]
    diffs += [f"model only: {show(r)}" for r in sorted(want - got)]
    return diffs
