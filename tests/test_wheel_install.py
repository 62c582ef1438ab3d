"""The wheel, installed as an administrator would: built from the checkout, pip-installed into a fresh
virtualenv outside it, and run from another directory, so nothing is imported from the repository.

It sets up the demo, serves the dashboards (login page, sign-in, the dashboard), has the JupyterLab
server extension enabled by the config file the wheel installs, and writes an audit report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from server_fixtures import ROOT, Client, free_port, stop_process, wait_http

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _not_sources(folder: str, names: list[str]) -> set[str]:
    skipped = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis"}
    if Path(folder) == ROOT:
        skipped |= {".git", ".venv", "build", "dist", "data", ".bench", ".spill", "dimnb.egg-info"}
    return skipped & set(names)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(venv, work folder, environment): the wheel installed into a new virtualenv outside the checkout."""
    root = tmp_path_factory.mktemp("wheel")
    assert ROOT not in root.parents
    # Built from a copy: setuptools' build/ folder in the checkout could carry files deleted since.
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=_not_sources)
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(root / "dist"), str(source)], cwd=root,
         env=os.environ.copy())
    (wheel,) = (root / "dist").glob("dimnb-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"dimnb/notebooks/dashboard.ipynb", "dimnb/notebooks/audit.ipynb"} <= names

    venv = root / "venv"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("DIMNB_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=root, env=env)  # on the base interpreter, not ours
    started = time.monotonic()
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], cwd=root, env=env,
         timeout=1800)
    print(f"\npip install of the wheel into a fresh venv: {time.monotonic() - started:.0f} s")
    work = root / "work"
    work.mkdir()
    return venv, work, env


def test_the_installed_package_is_imported_from_the_venv(installed) -> None:  # type: ignore[no-untyped-def]
    venv, work, env = installed
    where = _run([str(venv / "bin" / "python"), "-c", "import dimnb; print(dimnb.__file__)"], cwd=work, env=env)
    assert Path(where.strip()).is_relative_to(venv)


def test_demo_serve_lab_extension_and_audit_report(installed) -> None:  # type: ignore[no-untyped-def]
    venv, work, env = installed
    dimnb = str(venv / "bin" / "dimnb")
    data = work / "data"
    _run([dimnb, "demo", "setup", "--data", str(data), "--calls", "20"], cwd=work, env=env)
    assert (data / "state.sqlite").is_file()

    # the dashboards, from the notebooks inside the installed package
    port = free_port()
    log = work / "serve.log"
    server = subprocess.Popen([dimnb, "serve", "--data", str(data), "--port", str(port)], cwd=work, env=env,
                              stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/login", server, log)
        client = Client(base)
        assert client.request("/login").status == 200
        assert client.login("maria").status == 302
        dashboard = client.request("/dashboard")
        assert dashboard.status == 200, dashboard.text[-2000:]
        assert "kernel" in dashboard.text.lower()  # Voilà's page, with the kernel it started for maria
    finally:
        stop_process(server)
    assert "Traceback" not in log.read_text()

    # JupyterLab: the server extension is enabled by the config file the wheel put into the venv
    assert (venv / "etc" / "jupyter" / "jupyter_server_config.d" / "dimnb.json").is_file()
    listed = subprocess.run([str(venv / "bin" / "jupyter"), "server", "extension", "list"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300)
    output = listed.stdout + listed.stderr
    assert "dimnb.server.extension" in output and "enabled" in output
    assert "dimnb.server.extension  OK" in output.replace("\x1b[32m", "").replace("\x1b[0m", ""), output

    # the audit report runs the audit notebook shipped in the package
    report = work / "report.html"
    _run([dimnb, "audit", "report", "--data", str(data), "--out", str(report)], cwd=work, env=env)
    html = report.read_text()
    assert "Audit trail" in html and "Traceback" not in html
