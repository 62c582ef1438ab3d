"""The state store on both back ends: the embedded SQLite file and PostgreSQL (a throwaway cluster, see
postgres_fixtures.py). Each test runs once per back end through the same library calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from dimnb import access, audit, directory, saved_filters
from dimnb.cli import main
from dimnb.errors import InvalidInput
from dimnb.filters import Filters
from dimnb.server import login_sessions
from dimnb.store.statestore import STATE_URL_ENV, SCHEMA_VERSION
from dimnb.store.stores import Stores
from conftest import SMALL_DIRECTORY
from postgres_fixtures import postgres_cluster, state_backend  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]
POLICY = login_sessions.SessionPolicy()


@pytest.fixture
def state_stores(state_backend: str, tmp_path: Path) -> Stores:
    """A new data directory whose state store lives on the back end under test, with the small directory."""
    stores = Stores.open(str(tmp_path / "data"), create=True)
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(SMALL_DIRECTORY))
    directory.import_directory(stores.state, path)
    yield stores
    stores.close()


def test_schema_migrates_once_to_the_current_version(state_stores: Stores, state_backend: str) -> None:
    state = state_stores.state
    assert state.dialect == state_backend
    assert state.schema_version() == SCHEMA_VERSION
    assert state.migrate() == SCHEMA_VERSION  # a second migrate finds it current and changes nothing
    assert Stores.open(str(state_stores.data.root)).state.exists()


def test_directory_grants_and_passwords(state_stores: Stores) -> None:
    state = state_stores.state
    bob = access.load_actor(state, "bob")
    assert (bob.primary_group, bob.groups, bob.playback) == ("Sales", ("Sales", "Support"), "primary_group")
    directory.set_grants(state, "bob", playback="none")
    assert access.load_actor(state, "bob").playback == "none"
    directory.set_password(state, "ann", "correct horse")
    changed = state.connection().execute("SELECT password_changed_at FROM users WHERE login = ?", ("ann",)).fetchone()
    assert changed["password_changed_at"].endswith("Z") and len(changed["password_changed_at"]) == 24
    assert ("101", "ann", None, None) in directory.extension_history(state)


def test_login_sessions_open_resolve_and_end(state_stores: Stores) -> None:
    state = state_stores.state
    directory.set_password(state, "ann", "first password")
    now = time.time()
    token = login_sessions.open_session(state, "ann", client="127.0.0.1", policy=POLICY, now=now)
    assert login_sessions.resolve(state, token, POLICY, now=now + 120) == "ann"  # and touches last_seen
    seen = state.connection().execute("SELECT last_seen FROM web_sessions").fetchone()[0]
    assert seen == pytest.approx(now + 120)
    assert login_sessions.resolve(state, token, POLICY, now=now + 120 + POLICY.idle_seconds + 1) is None
    assert login_sessions.revoke(state, token) is True
    assert login_sessions.revoke(state, token) is False
    assert login_sessions.resolve(state, token, POLICY, now=now + 130) is None
    other = login_sessions.open_session(state, "ann", client=None, policy=POLICY)
    directory.set_password(state, "ann", "second password")  # a password change ends every session
    assert login_sessions.resolve(state, other, POLICY) is None


def test_saved_filters_round_trip(state_stores: Stores) -> None:
    state = state_stores.state
    bob = access.load_actor(state, "bob")
    cat = access.load_actor(state, "cat")
    saved = saved_filters.save(state, bob, "mine", Filters(), share_with="Support")
    assert saved.editable and saved.shared_group == "Support"
    with pytest.raises(InvalidInput):
        saved_filters.save(state, bob, "mine", Filters())
    assert [f.name for f in saved_filters.visible(state, cat)] == ["mine"]
    renamed = saved_filters.rename(state, bob, "mine", "weekly")
    assert renamed.id == saved.id and renamed.updated_at >= saved.updated_at
    saved_filters.share(state, bob, "weekly", None)
    assert saved_filters.visible(state, cat) == []
    saved_filters.delete(state, bob, "weekly")
    assert saved_filters.visible(state, bob) == []


def test_audit_chain_is_append_only_and_counts_a_play_once(state_stores: Stores) -> None:
    state = state_stores.state
    at = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    first = audit.record(state, login="ann", kind=audit.PLAY, recording_id=11, play_id="p" * 16, at=at)
    again = audit.record(state, login="ann", kind=audit.PLAY, recording_id=11, play_id="p" * 16, at=at)
    audit.record(state, login=None, kind=audit.DENIED, recording_id=None, detail={"asked_id": "x"}, at=at)
    assert first is not None and again is None
    assert [e.seq for e in audit.read_events(state)] == [1, 2]
    assert audit.verify(state).ok
    with pytest.raises(Exception, match="append-only"):
        with state.transaction() as con:
            con.execute("UPDATE audit_events SET login = 'eve' WHERE seq = 1")
    with pytest.raises(Exception, match="append-only"):
        with state.transaction() as con:
            con.execute("DELETE FROM audit_events")
    assert audit.verify(state).events == 2


_APPENDER = """
import sys, time
from dimnb import audit
from dimnb.store.stores import Stores
stores = Stores.open(sys.argv[1])
me, other, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
for i in range(count):
    audit.record(stores.state, login="ann", kind=audit.DOWNLOAD, recording_id=11, client=me)
    while i == 0 and not stores.state.connection().execute(
            "SELECT count(*) FROM audit_events WHERE client = ?", (other,)).fetchone()[0]:
        time.sleep(0.01)  # both have appended before either goes on: the two really write at once
"""


def test_concurrent_appenders_from_two_processes_keep_one_chain(state_stores: Stores, tmp_path: Path) -> None:
    """Two processes (as two nodes would) append at once; `dimnb audit verify` still finds one valid chain."""
    data = str(state_stores.data.root)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    each = 30
    writers = [subprocess.Popen([sys.executable, "-c", _APPENDER, data, f"node-{me}", f"node-{other}", str(each)],
                                env=env, stderr=subprocess.PIPE) for me, other in ("ab", "ba")]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()
    events = audit.read_events(state_stores.state)
    assert [e.seq for e in events] == list(range(1, 2 * each + 1))
    assert {e.client for e in events[:2]} == {"node-a", "node-b"}
    verified = CliRunner().invoke(main, ["audit", "verify", "--data", data])
    assert verified.exit_code == 0, verified.output
    assert f"audit chain ok: {2 * each} events" in verified.output


def test_postgres_url_comes_from_the_state_option(postgres_cluster, tmp_path: Path,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`dimnb --state URL init` puts the state store on PostgreSQL; no SQLite file is made."""
    url = postgres_cluster.new_database()
    monkeypatch.setenv(STATE_URL_ENV, "")  # not set: the option alone chooses PostgreSQL (undone after the test)
    data = tmp_path / "data"
    done = CliRunner().invoke(main, ["--state", url, "init", "--data", str(data)])
    assert done.exit_code == 0, done.output
    assert not (data / "state.sqlite").exists()
    assert os.environ[STATE_URL_ENV] == url  # what the server's kernels and children inherit
    stores = Stores.open(str(data))
    assert stores.state.dialect == "postgresql" and stores.state.schema_version() == SCHEMA_VERSION


def test_a_state_url_that_is_not_postgresql_is_refused_plainly(tmp_path: Path) -> None:
    done = CliRunner().invoke(main, ["--state", "mysql://db/dimnb", "status", "--data", str(tmp_path)],
                              env={STATE_URL_ENV: ""})
    assert done.exit_code == 1 and "must be a postgresql:// URL" in done.output and "Traceback" not in done.output


_WRITER = """
import sys, time
from dimnb.store.stores import Stores
stores = Stores.open(sys.argv[1])
with stores.calls.write():
    print("writing", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_one_call_store_writer_across_nodes(postgres_cluster, tmp_path: Path,  # noqa: F811
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With a PostgreSQL state store the call-store writer holds the store's lock: a writer elsewhere (another
    node, whose file lock would not see this one) waits for it."""
    from dimnb.errors import StoreBusy

    monkeypatch.setenv(STATE_URL_ENV, postgres_cluster.new_database())
    stores = Stores.open(str(tmp_path / "data"), create=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", _WRITER, str(stores.data.root), "30"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"writing"
        with pytest.raises(StoreBusy, match="another node"):
            with stores.state.calls_writer(timeout=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()
    with stores.calls.write():  # the lock went with the dead writer's connection
        pass


def test_each_state_table_is_read_and_written_in_one_module_only() -> None:
    """Every state-store table has one home module (both back ends run what it says).

    Other tables' statements may JOIN a directory table for a name or a flag; none reads or changes it
    otherwise. spark.py reads the Parquet export's copy of the directory, not the state store.
    """
    import re

    from dimnb.store import statestore

    package = Path(__file__).resolve().parent.parent / "dimnb"
    directory_tables = ("users", "groups", "extensions", "memberships", "directory_imports")
    homes = {**{table: {"store/directory_repo.py"} for table in directory_tables},
             "saved_filters": {"saved_filters.py"}, "audit_events": {"audit.py"}, "play_tokens": {"audit.py"},
             "web_sessions": {"server/login_sessions.py"}, "sign_in_failures": {"server/lockout.py"}}
    created = set(re.findall(r"CREATE TABLE (\w+)", "".join(statestore.MIGRATIONS.values())))
    assert created <= set(homes), f"a new state table needs a home here: {sorted(created - set(homes))}"
    sources = {str(path.relative_to(package)): path.read_text() for path in package.rglob("*.py")
               if path.parts[-2:] != ("store", "statestore.py") and path.name != "state_postgres.py"}
    found = {}
    for table in created:
        statement = re.compile(rf"\b(FROM|INTO|UPDATE)\s+{table}\b", re.IGNORECASE)
        found[table] = {name for name, text in sources.items() if statement.search(text)} - {"spark.py"}
    assert found == {table: homes[table] for table in created}



def test_an_account_locked_through_one_node_is_locked_on_every_node(state_stores: Stores) -> None:
    """Two servers' guards on one state store (two nodes): the failures add up and the lock holds on both."""
    from dimnb.server.lockout import LoginGuard, StoredAccounts

    now = [1_800_000_000.0]
    clock = lambda: now[0]  # noqa: E731
    node_a = LoginGuard(clock=clock, accounts=StoredAccounts(state_stores.state, clock))
    node_b = LoginGuard(clock=clock, accounts=StoredAccounts(state_stores.state, clock))
    for node in (node_a, node_b, node_a, node_b):
        node.failed("bob", "10.0.0.1")
    assert node_a.locked_for("bob") == node_b.locked_for("bob") == 0
    node_b.failed("bob", "10.0.0.2")  # the fifth, through the other node
    assert node_a.locked_for("bob") == node_b.locked_for("bob") == 30 and node_a.locked_for("ann") == 0
    now[0] += 31
    node_a.succeeded("bob")
    assert node_b.locked_for("bob") == 0 and StoredAccounts(state_stores.state).read("bob") is None
