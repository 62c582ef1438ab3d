"""What docs/deploy.md ships in contrib/: the serve unit runs real options, the backup script makes a copy
that opens as a data directory, and the deployment guide names every file."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dimnb import audit
from dimnb.cli import main
from dimnb.store.stores import Stores
from demo_fixtures import copy_stores, demo_built  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
CONTRIB = ROOT / "contrib"
SERVE_UNIT = CONTRIB / "dimnb-serve.service"


def _exec_start(unit: Path) -> list[str]:
    line = next(l for l in unit.read_text().splitlines() if l.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def test_the_serve_unit_runs_dimnb_serve_with_options_it_has() -> None:
    command = _exec_start(SERVE_UNIT)
    assert Path(command[0]).name == "dimnb" and command[1] == "serve"
    assert "--behind-proxy" in command and command[command.index("--ip") + 1] == "127.0.0.1"
    options = {p for param in main.commands["serve"].params for p in param.opts}
    assert {arg for arg in command[2:] if arg.startswith("-")} <= options
    port = command[command.index("--port") + 1]
    assert f"proxy_pass http://127.0.0.1:{port};" in (CONTRIB / "nginx-dimnb.conf").read_text()


def test_systemd_accepts_the_serve_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    dimnb = Path(sys.executable).with_name("dimnb")
    unit = tmp_path / SERVE_UNIT.name
    unit.write_text(SERVE_UNIT.read_text().replace("/opt/dimnb/.venv/bin/dimnb", str(dimnb)))
    run = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    complaints = [l for l in (run.stdout + run.stderr).splitlines() if SERVE_UNIT.name in l]
    assert complaints == []


def test_deploy_md_names_every_contrib_file() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for path in CONTRIB.iterdir():
        assert f"contrib/{path.name}" in guide, f"docs/deploy.md does not mention contrib/{path.name}"


@pytest.mark.slow
def test_the_backup_script_copies_a_data_directory_that_opens(demo_built: Path, tmp_path: Path) -> None:
    data = copy_stores(demo_built, tmp_path / "data")
    (data / "cookie_secret").write_bytes(os.urandom(32))
    live = Stores.open(str(data))  # a connection held open, as the server holds one
    run = subprocess.run([str(CONTRIB / "dimnb-backup.sh"), str(data), str(tmp_path / "backups")],
                         env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    copy = Path(run.stdout.strip().splitlines()[-1])
    assert copy.parent == tmp_path / "backups"
    restored = Stores.open(str(copy))
    try:
        count = "SELECT count(*) FROM calls"
        assert restored.calls.query(count) == live.calls.query(count)
        assert audit.verify(restored.state).ok
        assert audit.head(restored.state) == audit.head(live.state)
        assert (copy / "cookie_secret").read_bytes() == (data / "cookie_secret").read_bytes()
    finally:
        restored.close()
        live.close()
    status = CliRunner().invoke(main, ["status", "--data", str(copy)])
    assert status.exit_code == 0, status.output
