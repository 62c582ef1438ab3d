"""The audit notebook on the demo: nbval against its committed outputs, and the headless report command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dimnb import audit
from dimnb.demo.audit_events import seed_demo_audit
from dimnb.demo.setup import setup_demo
from dimnb.store.stores import Stores

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "dimnb" / "notebooks" / "audit.ipynb"
FIXED_NOW = "2026-11-20T00:00:00Z"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("demo") / "data"
    setup_demo(data)
    stores = Stores.open(str(data))
    seed_demo_audit(stores)  # a no-op once `dimnb demo setup` seeds the trail itself
    head = audit.head(stores.state)
    assert head is not None and head.seq > 100
    stores.close()
    return data


def _env(demo: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIMNB_DATA": str(demo), "DIMNB_NOW": FIXED_NOW}
    env.pop("DIMNB_USER", None)  # an administrator's command line, not a dashboard kernel
    return env


def test_the_demo_trail_is_seeded_once_and_verifies(demo: Path) -> None:
    stores = Stores.open(str(demo))
    result = audit.verify(stores.state)
    assert result.ok
    assert seed_demo_audit(stores) == 0
    kinds = {e.kind for e in audit.read_events(stores.state)}
    assert kinds == {"play", "download", "denied"}
    # the committed notebook was produced from this very trail
    committed = "".join(o.get("text", "") for c in nbformat.read(NOTEBOOK, 4).cells if c.cell_type == "code"
                        for o in c.get("outputs", []))
    assert f"chain head {result.head}" in committed


def test_the_notebook_passes_nbval_against_its_committed_outputs(demo: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", str(NOTEBOOK), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=_env(demo), capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_the_report_command_writes_html_for_a_period_and_user(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "maria.html"
    run = subprocess.run(
        [sys.executable, "-m", "dimnb", "audit", "report", "--period", "2026-11-16..2026-11-19", "--user", "maria",
         "--out", str(out)],
        cwd=tmp_path, env=_env(demo), capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    html = out.read_text()
    assert "2026-11-16T00:00:00Z .. 2026-11-20T00:00:00Z" in html
    assert "198.51.100.23" in html  # maria's unusual hour, from another address
    assert "audit_report.load(" not in html  # code hidden
    assert "Traceback" not in html
