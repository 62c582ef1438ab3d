"""FreeSWITCH parties as real deployments have them: long user numbers, and the A-leg's caller of a bridged call.

The fixtures under tests/fixtures/freeswitch/ were written for these tests
(invented numbers and names). Who took part is checked through the store's
``participants`` view and ``access.why``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dimnb import access
from dimnb.actions import VIEW_CALLS
from dimnb.errors import InvalidInput
from dimnb.ingest import freeswitch
from dimnb.ingest.freeswitch import load_freeswitch
from dimnb.store.stores import Stores
from directory_fixtures import give_extensions

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "freeswitch"
EXPECTED_DIRECTIONS = [("30150101", "internal"), ("5550131", "inbound"), ("30150102", "outbound"), ("101", "internal")]


def directions(stores: Stores) -> list[tuple[str, str]]:
    return stores.calls.query("SELECT from_party, direction FROM calls ORDER BY start_time")


def test_a_directory_user_is_an_extension_whatever_its_length(stores: Stores, tmp_path: Path) -> None:
    give_extensions(stores, tmp_path, {"kim": "30150101", "lea": "30150102", "ann": "101"})
    summary = load_freeswitch(stores, [FIXTURES / "long-extensions.csv"], timezone="UTC")
    assert directions(stores) == EXPECTED_DIRECTIONS
    assert any("extensions decided by the directory: 3 numbers; by their form (up to 6 digits, or a name): 0" in n for n in summary.notes), summary.notes
    kim = access.load_actor(stores.state, "kim")
    first = stores.calls.query("SELECT call_id FROM calls ORDER BY start_time LIMIT 1")[0][0]
    assert str(access.why(stores.calls, kim, first, VIEW_CALLS)) == \
        "Own Calls: you took part in this call (extension 30150101)"
    # the carrier's 7-digit number stays external
    assert stores.calls.query("SELECT DISTINCT from_type FROM segments WHERE from_party = '5550131'") == [("external",)]


@pytest.mark.parametrize("spec", ["30150100-30150199", r"3015\d{4}", "30150101,30150102"])
def test_extensions_named_on_the_command_line(stores: Stores, spec: str) -> None:
    summary = load_freeswitch(stores, [FIXTURES / "long-extensions.csv"], timezone="UTC", extensions=spec)
    assert directions(stores) == EXPECTED_DIRECTIONS
    assert any(f"by the directory: 0 numbers; by --extensions {spec}: 2; by their form (up to 6 digits, or a name): 1" in n for n in summary.notes), summary.notes


def test_bad_extension_patterns_are_refused() -> None:
    with pytest.raises(InvalidInput, match="ends before it starts"):
        freeswitch.parse_extensions("1999-1000")
    with pytest.raises(InvalidInput, match="neither ranges"):
        freeswitch.parse_extensions("30(15")
    assert freeswitch.parse_extensions("  ") is None


def test_the_a_leg_caller_takes_part_in_a_bridged_call(stores: Stores, tmp_path: Path) -> None:
    load_freeswitch(stores, [FIXTURES / "chained-a-leg.csv"], timezone="UTC")
    give_extensions(stores, tmp_path, {"kilo": "1001", "mia": "1002"})
    call_id = stores.calls.query("SELECT call_id FROM calls")[0][0]
    assert set(stores.calls.query("SELECT DISTINCT number, login FROM participants WHERE call_id = $c",
                                  {"c": call_id})) == {("1001", "kilo"), ("1002", "mia")}
    kilo = access.load_actor(stores.state, "kilo")
    assert str(access.why(stores.calls, kilo, call_id, VIEW_CALLS)) == \
        "Own Calls: you took part in this call (extension 1001)"
    # the number the callee was shown is not made a party
    assert stores.calls.query("SELECT count(*) FROM participants WHERE number = '5550100'") == [(0,)]


def test_the_command_line_takes_extensions(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = [sys.executable, "-m", "dimnb"]
    subprocess.run([*run, "init", "--data", str(data)], check=True, capture_output=True)
    done = subprocess.run([*run, "load", "freeswitch", str(FIXTURES / "long-extensions.csv"), "--data", str(data),
                           "--timezone", "UTC", "--extensions", "30150100-30150199"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "by --extensions 30150100-30150199: 2" in done.stdout
