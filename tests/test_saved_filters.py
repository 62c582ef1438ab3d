"""Saved filters: save, list, run, rename, share, delete; and the ones that no longer make sense.

The directory changes here go through the production path (a directory file
imported with ``import_directory``, the call store re-derived), on a copy of
the demo data directory per test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from demo_fixtures import copy_stores, demo_built  # noqa: F401  (fixture)
from dimnb import saved_filters
from dimnb.errors import InvalidInput, NotFound
from dimnb.filters import Filters
from dimnb.store.stores import Stores
from dimnb.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]


def copy_demo(demo: Path, tmp_path: Path) -> Path:
    """A private copy of the demo data directory (stores only), with its directory file beside it."""
    target = copy_stores(demo, tmp_path / "data")
    shutil.copy(demo / "pbx" / "directory.json", tmp_path / "directory.json")
    return target


def drop_from_directory(data: Path, *, users: set[str] = frozenset(), groups: set[str] = frozenset()) -> None:
    """Import the directory without some users (they become inactive) or groups (members move to Sales)."""
    from dimnb.directory import import_directory
    from dimnb.ingest.loader import sync_directory

    path = data.parent / "directory.json"
    directory = json.loads(path.read_text())
    directory["groups"] = [g for g in directory["groups"] if g["name"] not in groups]
    kept = []
    for user in directory["users"]:
        if user["login"] in users:
            continue
        memberships = []
        for m in user["groups"]:
            if m["group"] in groups:
                if not m["primary"]:
                    continue
                m = {**m, "group": "Sales"}
            memberships.append(m)
        kept.append({**user, "groups": memberships})
    directory["users"] = kept
    path.write_text(json.dumps(directory))
    stores = Stores.open(str(data))
    import_directory(stores.state, path)
    with stores.calls.write() as con:
        sync_directory(con, stores)
    stores.close()


@pytest.fixture
def data(demo_built: Path, tmp_path: Path) -> Path:
    return copy_demo(demo_built, tmp_path)


def _wb(data: Path, login: str) -> Workbench:
    return Workbench(Stores.open(str(data)), login)


# ------------------------------------------------------------------------------------------ the life of a filter


def test_save_list_run_rename_delete(data: Path) -> None:
    maria = _wb(data, "maria")
    saved = maria.saved.save("Long inbound", direction="inbound", min_duration=120, period="last_30_days")
    assert saved.editable and saved.owner == "maria" and saved.shared_group is None
    assert [f.name for f in maria.saved.list()] == ["Long inbound"]
    filters = maria.saved.get("Long inbound")
    assert filters == maria.filters(direction="inbound", min_duration=120, period="last_30_days")
    assert filters.timezone == "Europe/London"  # the user's zone was saved with it
    ran = maria.calls(filters)
    assert len(ran) == maria.count(direction="inbound", min_duration=120, period="last_30_days")
    # a name is unique per owner: saving again needs overwrite
    with pytest.raises(InvalidInput) as caught:
        maria.saved.save("Long inbound", direction="outbound")
    assert caught.value.field == "name"
    maria.saved.save("Long inbound", direction="outbound", overwrite=True)
    assert maria.saved.get("Long inbound").direction == ("outbound",)
    maria.saved.rename("Long inbound", "Long outbound")
    assert [f.name for f in maria.saved.list()] == ["Long outbound"]
    with pytest.raises(NotFound):
        maria.saved.get("Long inbound")
    maria.saved.delete("Long outbound")
    assert maria.saved.list() == []
    with pytest.raises(NotFound):
        maria.saved.delete("Long outbound")


def test_filters_are_per_user(data: Path) -> None:
    _wb(data, "maria").saved.save("Mine", group="Sales")
    olivia = _wb(data, "olivia")
    assert olivia.saved.list() == []
    with pytest.raises(NotFound):
        olivia.saved.get("Mine")
    olivia.saved.save("Mine", direction="inbound")  # the same name is fine for another owner
    assert olivia.saved.get("Mine").direction == ("inbound",)


@pytest.mark.parametrize(("name", "ok"), [("  Big   calls ", "Big calls"), ("", None), ("   ", None),
                                          ("x" * 81, None), (None, None), ("Ünïcode ☎ filter", "Ünïcode ☎ filter")])
def test_names_are_checked(data: Path, name: object, ok: str | None) -> None:
    wb = _wb(data, "maria")
    if ok is None:
        with pytest.raises(InvalidInput) as caught:
            wb.saved.save(name, direction="inbound")  # type: ignore[arg-type]
        assert caught.value.field == "name"
    else:
        assert wb.saved.save(name, direction="inbound").name == ok  # type: ignore[arg-type]


def test_a_filter_that_does_not_make_sense_is_not_saved(data: Path) -> None:
    wb = _wb(data, "maria")
    with pytest.raises(InvalidInput) as caught:
        wb.saved.save("Nope", group="Nonexistent")
    assert caught.value.field == "group"
    assert wb.saved.list() == []


# ------------------------------------------------------------------------------------------ sharing


def test_sharing_with_a_group_is_read_only_for_its_members(data: Path) -> None:
    maria = _wb(data, "maria")  # member of Management, Sales, Support
    maria.saved.save("Sales escalations", group="Sales", min_duration=300, share_with="Sales")
    olivia, nina = _wb(data, "olivia"), _wb(data, "nina")  # olivia is in Sales, nina in Billing
    [shared] = olivia.saved.list()
    assert (shared.name, shared.owner, shared.editable, shared.shared_group) == \
        ("Sales escalations", "maria", False, "Sales")
    assert shared.label == "Sales escalations · Maria Keller"
    assert nina.saved.list() == []
    with pytest.raises(NotFound):
        nina.saved.get("Sales escalations")
    # a member runs it in her own scope
    filters = olivia.saved.get("Sales escalations")
    assert set(olivia.calls(filters)["call_id"]) <= set(olivia.calls()["call_id"])
    assert olivia.count(filters) < maria.count(filters)
    # ... but cannot change it
    for change in (lambda: olivia.saved.rename("Sales escalations", "Mine now"),
                   lambda: olivia.saved.delete("Sales escalations"),
                   lambda: olivia.saved.share("Sales escalations", None)):
        with pytest.raises(InvalidInput) as caught:
            change()
        assert "only they can change it" in str(caught.value)
    # saving under that name makes her own copy; hers comes first from then on
    olivia.saved.save("Sales escalations", filters, direction="inbound")
    assert olivia.saved.get("Sales escalations").direction == ("inbound",)
    assert olivia.saved.get("Sales escalations", owner="maria").direction == ()
    assert [(f.owner, f.editable) for f in olivia.saved.list()] == [("olivia", True), ("maria", False)]
    # the owner edits: the members see the change; unsharing hides it
    maria.saved.save("Sales escalations", group="Sales", min_duration=600, overwrite=True)
    assert olivia.saved.get("Sales escalations", owner="maria").min_duration == 600
    assert maria.saved.list()[0].shared_group == "Sales"  # an overwrite keeps the sharing
    maria.saved.share("Sales escalations", None)
    assert [f.owner for f in olivia.saved.list()] == ["olivia"]


def test_one_shares_only_with_a_group_one_belongs_to(data: Path) -> None:
    maria = _wb(data, "maria")
    maria.saved.save("Mine", direction="inbound")
    for group, words in (("Billing", "only with a group you belong to"), ("Nowhere", "there is no group")):
        with pytest.raises(InvalidInput) as caught:
            maria.saved.share("Mine", group)
        assert caught.value.field == "share_with" and words in str(caught.value)
    assert maria.saved.share("Mine", "support").shared_group == "Support"


def test_a_member_who_leaves_the_group_no_longer_sees_it(data: Path) -> None:
    _wb(data, "maria").saved.save("Team", direction="inbound", share_with="Support")
    assert [f.name for f in _wb(data, "hannah").saved.list()] == ["Team"]
    drop_from_directory(data, users={"maria"})  # the owner left: her shared filters go with her
    assert _wb(data, "hannah").saved.list() == []


def test_by_id_answers_alike_for_missing_and_not_yours(data: Path) -> None:
    maria = _wb(data, "maria")
    mine = maria.saved.save("Mine", direction="inbound")
    nina = _wb(data, "nina")
    for forged in (mine.id, 10**9, "1", True, None, 1.0):
        with pytest.raises(NotFound) as caught:
            saved_filters.by_id(nina.stores.state, nina.actor, forged)
        assert str(caught.value) == "no such saved filter"


# ------------------------------------------------------------------------------------------ filters that broke


def _stored(data: Path, owner: str, name: str, text: str) -> None:
    stores = Stores.open(str(data))
    with stores.state.transaction() as con:
        con.execute("INSERT INTO saved_filters(owner, name, filters) VALUES (?, ?, ?)", (owner, name, text))


def test_a_deleted_group_gives_a_clear_message_and_the_filter_can_be_fixed(data: Path) -> None:
    maria = _wb(data, "maria")
    maria.saved.save("Retention calls", group="Retention", direction="outbound")
    drop_from_directory(data, groups={"Retention"})
    maria = _wb(data, "maria")
    with pytest.raises(saved_filters.BrokenFilter) as caught:
        maria.saved.get("Retention calls")
    broken = caught.value
    assert str(broken) == ("Saved filter 'Retention calls' no longer works: group: Retention no longer exists "
                           "(it was removed from the directory). To use it, edit it and save it again.")
    assert broken.field == "group" and [p.field for p in broken.problems] == ["group"]
    assert broken.draft.direction == ("outbound",) and broken.draft.group is None  # what still works
    frame = maria.saved.frame()
    assert frame.loc[0, "problem"].startswith("group: Retention no longer exists")
    # fixed by editing and saving again
    maria.saved.save("Retention calls", broken.draft, group="Sales", overwrite=True)
    assert maria.saved.get("Retention calls").group == "Sales"


def test_a_user_gone_gives_a_clear_message(data: Path) -> None:
    maria = _wb(data, "maria")
    maria.saved.save("Olivia's calls", party="olivia", outcome="missed")
    drop_from_directory(data, users={"olivia"})
    with pytest.raises(saved_filters.BrokenFilter) as caught:
        _wb(data, "maria").saved.get("Olivia's calls")
    assert caught.value.field == "party" and "olivia is no longer an active user" in str(caught.value)
    assert caught.value.draft.outcome == ("missed",)


@pytest.mark.parametrize(("text", "field", "words"), [
    ("{not json", None, "stored form is damaged"),
    ("[1, 2]", None, "stored form is damaged"),
    ('{"direction": "inbound", "queue": "800"}', "queue", "'queue', a filter this version of dimnb does not know"),
    ('{"direction": "sideways", "outcome": "missed"}', "direction", "'sideways' is not one of"),
    ('{"timezone": "Europe/Atlantis"}', "timezone", "unknown time zone"),
    ('{"period": "last_7_days", "start": "2026-11-01T00:00:00+00:00"}', "period", "either a period or"),
])
def test_bad_stored_filters_give_a_clear_message(data: Path, text: str, field: str | None, words: str) -> None:
    _stored(data, "maria", "Old one", text)
    maria = _wb(data, "maria")
    with pytest.raises(saved_filters.BrokenFilter) as caught:
        maria.saved.get("Old one")
    assert caught.value.field == field and words in str(caught.value)
    assert "edit it and save it again" in str(caught.value)
    assert maria.saved.frame().loc[0, "problem"]  # the list still shows it, with the problem
    maria.saved.save("Old one", caught.value.draft, overwrite=True)  # and it can be fixed
    assert isinstance(maria.saved.get("Old one"), Filters)


def test_a_broken_shared_filter_tells_members_whom_to_ask(data: Path) -> None:
    _stored(data, "maria", "Broken", '{"queue": "800"}')
    stores = Stores.open(str(data))
    with stores.state.transaction() as con:
        con.execute("UPDATE saved_filters SET shared_group = 'Sales' WHERE name = 'Broken'")
    with pytest.raises(saved_filters.BrokenFilter) as caught:
        _wb(data, "olivia").saved.get("Broken")
    assert "ask Maria Keller to fix it, or save a copy" in str(caught.value)


# ------------------------------------------------------------------------------------------ the command line


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dimnb", "filters", *args, "--data", str(data)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_the_filters_command(data: Path) -> None:
    done = _cli(data, "save", "Big inbound", "--as", "maria", "--direction", "inbound", "--min-duration", "2:00",
                "--share-with", "Sales")
    assert done.returncode == 0, done.stderr
    assert "saved 'Big inbound', shared with Sales: inbound · 120–∞ s" in done.stdout
    listed = _cli(data, "list", "--as", "olivia")
    assert "Big inbound [shared by maria, read-only]: inbound · 120–∞ s" in listed.stdout
    ran = _cli(data, "run", "Big inbound", "--as", "olivia", "--format", "csv", "--limit", "0")
    assert ran.returncode == 0 and ran.stdout.count("\n") - 1 == _wb(data, "olivia").count(
        direction="inbound", min_duration=120)
    refused = _cli(data, "rename", "Big inbound", "Mine", "--as", "olivia")
    assert refused.returncode == 1 and "only they can change it" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _cli(data, "rename", "Big inbound", "Big calls", "--as", "maria").returncode == 0
    assert _cli(data, "share", "Big calls", "--stop", "--as", "maria").returncode == 0
    assert "(no saved filters)" in _cli(data, "list", "--as", "olivia").stdout
    assert _cli(data, "delete", "Big calls", "--as", "maria").returncode == 0
    missing = _cli(data, "run", "Big calls", "--as", "maria")
    assert missing.returncode == 1 and "no saved filter named 'Big calls'" in missing.stderr
