"""The audio handler as a jupyter_server extension: an analyst's JupyterLab streams what their login may play."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from server_fixtures import (  # noqa: F401  (fixtures)
    ROOT,
    Client,
    demo_data,
    free_port,
    stop_process,
    wait_http,
)

from dimnb import access
from dimnb.store.stores import Stores

pytestmark = pytest.mark.slow


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except urllib.error.URLError:
        return 0, b""  # not listening yet


def test_jupyterlab_streams_recordings_for_its_analyst(demo_data: Path, tmp_path: Path) -> None:
    stores = Stores.open(str(demo_data))
    actor = access.load_actor(stores.state, "paul")
    ids = [r[0] for r in stores.calls.query("SELECT recording_id FROM recordings WHERE state = 'available' ORDER BY 1")]
    mine = next(i for i in ids if access.can_play(stores.calls, actor, i))
    other = next(i for i in ids if not access.can_play(stores.calls, actor, i))
    stores.close()
    port, token = free_port(), "t0k3n-for-the-test"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIMNB_DATA": str(demo_data), "DIMNB_USER": "paul",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    # Enabled by the very config file the package installs into <prefix>/etc/jupyter.
    confd = tmp_path / "cfg" / "jupyter_server_config.d"
    confd.mkdir(parents=True)
    (confd / "dimnb.json").write_bytes((ROOT / "jupyter-config" / "jupyter_server_config.d" / "dimnb.json").read_bytes())
    log = tmp_path / "lab.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}"],
        cwd=tmp_path, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/status?token={token}", proc, log, what="jupyter_server")
        assert proc.poll() is None, log.read_text()[-2000:]
        status, body = _get(f"{base}/dimnb/audio/{mine}?token={token}")
        assert status == 200 and body[:4] == b"RIFF", log.read_text()[-2000:]
        assert _get(f"{base}/dimnb/audio/{other}?token={token}")[0] == 404
        assert Client(base).request(f"/dimnb/audio/{mine}").status in (302, 403)  # no token: not signed in
        assert "streaming recordings" in log.read_text()
    finally:
        stop_process(proc)


def test_the_extension_is_enabled_by_a_config_file_the_package_installs() -> None:
    config = json.loads((ROOT / "jupyter-config" / "jupyter_server_config.d" / "dimnb.json").read_text())
    assert config["ServerApp"]["jpserver_extensions"] == {"dimnb.server.extension": True}
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"etc/jupyter/jupyter_server_config.d" = ["jupyter-config/jupyter_server_config.d/dimnb.json"]' in pyproject
