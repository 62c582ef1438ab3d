"""Crash safety of the archive job: real `python -m dimnb archive` processes killed with SIGKILL, real WAV files.

The harness (kills at named steps and at random moments, the invariant check)
lives in bench/archive_crash.py, which runs the long campaign (50+ kills).
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("archive_crash", ROOT / "bench" / "archive_crash.py")
crash = importlib.util.module_from_spec(_spec)
sys.modules["archive_crash"] = crash
_spec.loader.exec_module(crash)


@pytest.fixture
def world(tmp_path: Path):
    return crash.build_world(tmp_path, calls=60, seed=5, remove=2)


def test_the_checker_sees_a_broken_archive(world) -> None:
    # The invariant check must be able to fail: a half-written file under a final name, a bad publish.
    assert crash.check(world) == []
    assert crash.run_to_end(world).returncode == 0
    assert crash.check(world) == [] and crash.check_finished(world) == []
    copy = next(p for p in (world.data / "archive").rglob("*.wav"))
    copy.write_bytes(copy.read_bytes()[: copy.stat().st_size // 2])
    problems = crash.check(world)
    assert any("does not verify" in p for p in problems)
    stray = world.data / "archive" / ".last-run.json.4242.tmp"  # a summary a killed run was writing
    stray.write_text("{")
    assert crash.check(world) == problems  # a run just killed may leave it ...
    assert any("stray temp file" in p for p in crash.check_finished(world))  # ... a complete run may not


@pytest.mark.parametrize("step", crash.STEPS)
def test_a_kill_at_each_step_leaves_a_consistent_store_and_the_next_run_finishes(world, step: str) -> None:
    assert crash.kill_at_step(world, step, 2)
    incoming = list((world.data / "archive" / ".incoming").iterdir())
    in_place = [p for p in (world.data / "archive").rglob("*.wav") if ".incoming" not in p.parts]
    if step in ("copy", "fsynced"):  # killed with a copy that no final name shows yet
        assert incoming
    if step == "copy":
        assert any(p.stat().st_size < 200_000 for p in incoming)  # really mid-copy (64 KiB chunks)
    if step in ("renamed", "publish"):
        assert in_place
    assert crash.check(world) == []
    result = crash.run_to_end(world)
    assert result.returncode == 0, result.stdout + result.stderr
    if step in ("renamed", "publish"):  # copies were in place but not published: found, verified, published
        assert " 0 already archived" not in result.stdout
    assert crash.check(world) == [] and crash.check_finished(world) == []


def test_twelve_kills_at_steps_and_random_moments_never_break_the_archive(world) -> None:
    result = crash.campaign(world, 12, random.Random(11))
    assert result.violations == []
    assert result.kills == 12 and set(result.by_kind) >= set(crash.STEPS)
    final = crash.run_to_end(world)
    assert final.returncode == 0, final.stdout + final.stderr
    assert crash.check(world) == [] and crash.check_finished(world) == []
