"""dimnb.access equals the plain-Python reference model (tests/access_reference.py) on random worlds.

Each world is built in a real data directory through the production code
(tests/access_worlds.py explains how), then every user's listing (the scope
condition inside reports.list_calls / count_calls), every can_play,
could_play_once_archived and why is compared with the model.
bench/access_fuzz.py runs the same comparison on 1,000+ worlds.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings

import access_worlds
from access_reference import World

WORLDS = int(os.environ.get("DIMNB_ACCESS_WORLDS", "200"))


@settings(max_examples=WORLDS, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=access_worlds.worlds())
def test_access_rule_equals_the_reference_model(world: World, tmp_path_factory) -> None:
    data_dir = tmp_path_factory.mktemp("world")
    diffs = access_worlds.differences(world, data_dir)
    assert diffs == [], "\n".join(diffs)
