"""The access rule's expression tree renders to the DuckDB SQL dimnb has always embedded, and to Spark SQL.

The DuckDB text is pinned: the Call List's query plan (bench/scope.py) depends on
one ``list_contains`` per group, and every parameter must travel as a parameter.
"""

from __future__ import annotations

import pytest

from dimnb import access, access_expr, model
from dimnb.actions import PLAY_RECORDING, VIEW_CALLS


def actor(report: str, playback: str, primary: str | None = "Sales", groups: tuple[str, ...] = ("Sales", "Support"),
          login: str = "o'neil") -> access.Actor:
    return access.Actor(login, "A", report, playback, frozenset(), primary, groups)


def test_the_duckdb_rendering_is_the_condition_the_listings_embed() -> None:
    member = access.scope_sql(actor(model.MEMBER_GROUPS, model.OWN), VIEW_CALLS)
    assert member.sql == ("(list_contains(c.participant_logins, $actor_login) OR list_contains(c.group_tags, "
                          "$actor_group_0) OR list_contains(c.group_tags, $actor_group_1))")
    assert member.params == {"actor_login": "o'neil", "actor_group_0": "Sales", "actor_group_1": "Support"}
    play = access.scope_sql(actor(model.MEMBER_GROUPS, model.OWN), PLAY_RECORDING)
    assert play.sql == "(list_contains(c.participant_logins, $actor_login))"
    assert access.scope_sql(actor(model.ALL, model.NONE), PLAY_RECORDING).sql == "FALSE"
    assert access.scope_sql(actor(model.ALL, model.ALL)).sql == "TRUE"
    # Not nested (primary group outside the groups): both scopes, ANDed.
    odd = access.scope_sql(actor(model.PRIMARY_GROUP, model.MEMBER_GROUPS, primary="Gone", groups=("Sales",)),
                           PLAY_RECORDING, calls="x")
    assert odd.sql == ("((list_contains(x.participant_logins, $actor_login) OR list_contains(x.group_tags, "
                       "$actor_primary))) AND ((list_contains(x.participant_logins, $actor_login) OR "
                       "list_contains(x.group_tags, $actor_group_0)))")
    rec = access.recording_condition(actor(model.OWN, model.OWN), pending=True)
    assert rec.sql == ("(r.state IN ('available', 'pending_archive')) AND "
                       "((list_contains(c.participant_logins, $actor_login)))")


def test_the_spark_sql_rendering_binds_every_value_as_a_named_parameter() -> None:
    text, args = access_expr.to_spark_sql(access.recording_expr(actor(model.MEMBER_GROUPS, model.MEMBER_GROUPS)),
                                          {access_expr.CALLS: "c", access_expr.RECORDINGS: "r"})
    assert text == ("(r.state IN ('available') AND (array_contains(c.participant_logins, :actor_login) OR "
                    "array_contains(c.group_tags, :actor_group_0) OR array_contains(c.group_tags, :actor_group_1)))")
    assert args == {"actor_login": "o'neil", "actor_group_0": "Sales", "actor_group_1": "Support"}
    assert "o'neil" not in text and "Sales" not in text


def test_recording_states_are_fixed_words_only() -> None:
    with pytest.raises(ValueError):
        access_expr.OneOf(access_expr.RECORDINGS, "state", ("available') OR ('1",))
