"""The access rule on Spark equals the reference model on random worlds (tests/access_spark.py explains how).

At least 100 worlds per run (``$DIMNB_SPARK_WORLDS``), batched into a few
Spark jobs; bench/access_fuzz.py --engine spark runs 1,000.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

import access_spark
import access_worlds
from spark_fixtures import spark  # noqa: F401  (the session fixture)

WORLDS = int(os.environ.get("DIMNB_SPARK_WORLDS", "100"))
BATCH = 50


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a JVM start and 100 worlds: minutes on a busy 2-core machine
def test_spark_scopes_equal_the_reference_model(spark, tmp_path) -> None:  # noqa: F811
    run_seed = int(os.environ.get("DIMNB_SPARK_SEED", random.randrange(2**32)))
    cases: list[access_spark.Case] = []

    @seed(run_seed)
    @settings(max_examples=WORLDS, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(world=access_worlds.worlds())
    def collect(world) -> None:  # type: ignore[no-untyped-def]
        cases.append(access_spark.prepare(len(cases), world, tmp_path))

    collect()
    assert len(cases) >= min(WORLDS, 100), f"hypothesis produced only {len(cases)} worlds"
    diffs: list[str] = []
    for first in range(0, len(cases), BATCH):
        diffs += access_spark.differences(spark, cases[first:first + BATCH], tmp_path)
    assert diffs == [], f"seed {run_seed} (DIMNB_SPARK_SEED={run_seed} to repeat):\n" + "\n".join(diffs[:30])
