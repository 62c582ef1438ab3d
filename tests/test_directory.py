"""Directory import: formats, rules, history, passwords."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SMALL_DIRECTORY, legacy_row, write_legacy
from dimnb import access
from dimnb.directory import import_directory, set_password
from dimnb.errors import DirectoryError, UnknownUser
from dimnb.ingest.loader import load_3cx
from dimnb.passwords import verify_password
from dimnb.store.stores import Stores

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, data: dict, name: str = "dir.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_the_example_directory_imports(stores: Stores) -> None:
    summary = import_directory(stores.state, ROOT / "data" / "directory.example.json")
    assert summary.users >= 3 and summary.groups >= 2


def test_the_example_csv_directory_imports_to_the_same_directory(stores: Stores, tmp_path: Path) -> None:
    import_directory(stores.state, ROOT / "data" / "directory.example.json")
    query = ("SELECT u.login, u.name, u.report_scope, u.playback, u.roles, e.extension, e.valid_from, e.valid_to "
             "FROM users u LEFT JOIN extensions e USING (login) ORDER BY 1, 6, 7")
    members = "SELECT login, group_name, is_primary, valid_from, valid_to FROM memberships ORDER BY 1, 2, 4"
    from_json = (stores.state.connection().execute(query).fetchall(), stores.state.connection().execute(members).fetchall())
    other = Stores.open(str(tmp_path / "other"), create=True)
    import_directory(other.state, ROOT / "data" / "directory.example.csv")
    from_csv = (other.state.connection().execute(query).fetchall(), other.state.connection().execute(members).fetchall())
    assert [tuple(r) for r in from_json[0]] == [tuple(r) for r in from_csv[0]]
    assert [tuple(r) for r in from_json[1]] == [tuple(r) for r in from_csv[1]]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["users"][0]["groups"].append({"group": "Support", "primary": True}), "two primary groups at once"),
        (lambda d: d["users"][1]["extensions"].append({"extension": "101"}), "belongs to both ann"),
        (lambda d: d["users"][0]["groups"].append({"group": "Nowhere"}), "unknown group 'Nowhere'"),
        (lambda d: d["users"][0].update(playback="everything"), "playback 'everything' must be one of"),
        (lambda d: d["users"][0].update(report_scope="team"), "report_scope 'team' must be one of"),
        (lambda d: d["users"][0]["extensions"].append({"extension": "150", "from": "2026-13-01"}), "not a date"),
        (lambda d: d["users"][0]["extensions"].append({"extension": "150", "from": "2026-02-01", "to": "2026-01-01"}),
         "must be before"),
        (lambda d: d["users"].append(dict(d["users"][0])), "listed twice"),
        (lambda d: d["users"][0].update(login="bad login!"), "login 'bad login!'"),
        (lambda d: d["users"][0].update(groups=[{"group": "Sales"}]), "needs a primary group"),
        (lambda d: d["users"][0].update(roles=["superuser"]), "unknown role"),
        (lambda d: d["users"][0].update(timezone="Mars/Olympus"), "unknown timezone"),
    ],
)
def test_rule_breaks_are_refused_with_a_clear_message_and_change_nothing(stores: Stores, tmp_path: Path, change, message) -> None:
    import_directory(stores.state, _write(tmp_path, SMALL_DIRECTORY, "ok.json"))
    data = json.loads(json.dumps(SMALL_DIRECTORY))
    change(data)
    with pytest.raises(DirectoryError, match=message):
        import_directory(stores.state, _write(tmp_path, data))
    assert stores.state.connection().execute("SELECT count(*) FROM users").fetchone()[0] == len(SMALL_DIRECTORY["users"])


def test_not_json_is_a_clear_error(stores: Stores, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"users": [')
    with pytest.raises(DirectoryError, match="not valid JSON"):
        import_directory(stores.state, path)


def test_reimport_keeps_passwords_and_deactivates_missing_users(stores: Stores, tmp_path: Path) -> None:
    import_directory(stores.state, _write(tmp_path, SMALL_DIRECTORY))
    set_password(stores.state, "ann", "correct horse battery")
    smaller = json.loads(json.dumps(SMALL_DIRECTORY))
    smaller["users"] = [u for u in smaller["users"] if u["login"] != "bob"]
    summary = import_directory(stores.state, _write(tmp_path, smaller))
    assert summary.deactivated == ["bob"]
    with pytest.raises(UnknownUser):
        access.load_actor(stores.state, "bob")
    stored = stores.state.connection().execute("SELECT password_hash FROM users WHERE login = 'ann'").fetchone()[0]
    assert verify_password("correct horse battery", stored)


def test_passwords_are_salted_slow_hashes(stores_with_directory: Stores) -> None:
    set_password(stores_with_directory.state, "ann", "s3cret-password")
    set_password(stores_with_directory.state, "bob", "s3cret-password")
    hashes = [r[0] for r in stores_with_directory.state.connection().execute(
        "SELECT password_hash FROM users WHERE login IN ('ann', 'bob')")]
    assert hashes[0] != hashes[1]  # salted
    assert all(h.startswith("scrypt$") and "s3cret" not in h for h in hashes)
    assert not verify_password("wrong", hashes[0])
    assert not verify_password("s3cret-password", None)


def test_set_password_cli_never_echoes(stores_with_directory: Stores) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dimnb", "users", "set-password", "ann", "--password-stdin",
         "--data", str(stores_with_directory.data.root)],
        input="a-very-secret-pw\n", capture_output=True, text=True, check=True,
    )
    assert "a-very-secret-pw" not in result.stdout + result.stderr
    stored = stores_with_directory.state.connection().execute(
        "SELECT password_hash FROM users WHERE login = 'ann'").fetchone()[0]
    assert verify_password("a-very-secret-pw", stored)


def test_group_moves_change_only_later_calls(stores: Stores, tmp_path: Path) -> None:
    """Ann moves from Sales to Support on 2026-03-02 09:30: earlier calls keep the Sales tag."""
    data = json.loads(json.dumps(SMALL_DIRECTORY))
    data["users"][0]["groups"] = [
        {"group": "Sales", "primary": True, "to": "2026-03-02T09:30:00Z"},
        {"group": "Support", "primary": True, "from": "2026-03-02T09:30:00Z"},
    ]
    import_directory(stores.state, _write(tmp_path, data))
    load_3cx(stores, [write_legacy(tmp_path / "cdr.csv", [legacy_row(i * 20) for i in range(4)])])  # 09:00 .. 10:00
    tags = stores.calls.query(
        "SELECT strftime(c.start_time, '%H:%M'), t.group_name FROM calls c JOIN call_tags t USING (call_id) ORDER BY 1"
    )
    assert tags == [("09:00", "Sales"), ("09:20", "Sales"), ("09:40", "Support"), ("10:00", "Support")]


def test_the_state_store_is_sqlite_in_wal_mode(stores: Stores) -> None:
    con = sqlite3.connect(stores.data.state_db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] >= 1


def test_audit_events_are_append_only_at_the_database_level(stores: Stores) -> None:
    with stores.state.transaction() as con:
        con.execute("INSERT INTO audit_events(ts, kind, prev_hash, hash) VALUES ('t', 'play', '0', '1')")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        with stores.state.transaction() as con:
            con.execute("DELETE FROM audit_events")
