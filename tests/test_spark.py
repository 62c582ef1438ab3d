"""dimnb.spark on the demo company's export gives exactly what the workbench gives on the call store.

For several users and filter sets, ``dimnb.spark.calls`` lists the same calls
with the same recording markers as ``wb.calls``, ``dimnb.spark.recordings``
the recordings ``access.can_play`` allows, and the Spark SQL rendering of the
scope (``access_expr.to_spark_sql``) selects what the Column rendering selects.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_fixtures import copy_stores, demo_built, demo_pending, set_recording_states  # noqa: F401
from dimnb import access, access_expr, export_parquet
from dimnb.actions import VIEW_CALLS
from dimnb.ingest import staging
from dimnb.store.stores import Stores
from dimnb.workbench import Workbench
from spark_fixtures import spark  # noqa: F401

USERS = ("maria", "sam", "nina", "olivia")  # Member Groups; Primary Group hearing Own; no playback; Own
FILTER_SETS = (
    {},
    {"direction": "inbound", "outcome": "answered"},
    {"with_recordings": True},
    {"party": "sam"},
    {"group": "Support", "min_duration": 60},
)


@pytest.fixture(scope="module")
def exported(demo_built: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Stores, Path]:  # noqa: F811
    """The demo with half of its recordings archived (available), the rest pending, exported to Parquet."""
    data = copy_stores(demo_built, tmp_path_factory.mktemp("spark") / "data")
    set_recording_states(data, "pending_archive")
    stores = Stores.open(str(data))
    with stores.calls.write() as con:
        con.execute("UPDATE recordings SET state = 'available' WHERE recording_id % 2 = 0")
        staging.refresh_recording_counts(con, "SELECT call_id FROM calls")
    out = data.parent / "export"
    export_parquet.export(stores, out)
    yield stores, out
    stores.close()


@pytest.mark.parametrize("login", USERS)
def test_spark_lists_what_the_workbench_lists(spark, exported, login: str) -> None:  # noqa: F811
    from dimnb import spark as dspark

    stores, out = exported
    wb = Workbench(stores, login)
    for filters in FILTER_SETS:
        expected = {(int(r.call_id), r.recording) for r in wb.calls(**filters).itertuples()}
        got = {(int(r.call_id), r.recording) for r in dspark.calls(spark, out, login, **filters)
               .select("call_id", "recording").collect()}
        assert got == expected, (login, filters)
    assert any(m for _, m in expected) or login == "nina"


@pytest.mark.parametrize("login", USERS)
def test_spark_recordings_are_the_playable_ones(spark, exported, login: str) -> None:  # noqa: F811
    from dimnb import spark as dspark

    stores, out = exported
    actor = access.load_actor(stores.state, login)
    all_ids = [int(r[0]) for r in stores.calls.query("SELECT recording_id FROM recordings")]
    playable = {i for i in all_ids if access.can_play(stores.calls, actor, i) is not None}
    coming = {i for i in all_ids if access.could_play_once_archived(stores.calls, actor, i)}
    got = {(int(r.recording_id), r.state) for r in dspark.recordings(spark, out, login, pending=True)
           .select("recording_id", "state").collect()}
    assert got == {(i, "available") for i in playable} | {(i, "pending_archive") for i in coming}
    assert {int(r.recording_id) for r in dspark.recordings(spark, out, login).collect()} == playable


def test_spark_sql_rendering_selects_what_the_column_rendering_selects(spark, exported) -> None:  # noqa: F811
    from dimnb import spark as dspark

    stores, out = exported
    spark.read.parquet(str(out / "calls")).createOrReplaceTempView("dimnb_calls")
    for login in USERS:
        actor = access.load_actor(stores.state, login)
        condition, args = access_expr.to_spark_sql(access.scope_expr(actor, VIEW_CALLS), {access_expr.CALLS: "c"})
        by_sql = {r[0] for r in spark.sql(f"SELECT c.call_id FROM dimnb_calls c WHERE {condition}", args=args)
                  .collect()}
        by_column = {r.call_id for r in dspark.calls(spark, out, actor).select("call_id").collect()}
        assert by_sql == by_column and by_sql, login


def test_an_unknown_or_inactive_login_gets_an_error_not_calls(spark, exported) -> None:  # noqa: F811
    from dimnb import spark as dspark
    from dimnb.errors import UnknownUser

    _, out = exported
    with pytest.raises(UnknownUser):
        dspark.calls(spark, out, "nobody")
