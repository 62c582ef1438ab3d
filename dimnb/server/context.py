"""What the dimnb server processes share: the data directory's stores, opened once per process."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from dimnb.datadir import DATA_ENV, resolve_data_dir
from dimnb.store.stores import Stores

_lock = threading.Lock()
_stores: dict[Path, Stores] = {}


def server_stores(data_dir: str | os.PathLike[str] | None = None) -> Stores:
    """The stores of the server's data directory (``--data``, else ``$DIMNB_DATA``, else ``data/``)."""
    root = resolve_data_dir(data_dir or os.environ.get(DATA_ENV)).root
    with _lock:
        if root not in _stores:
            _stores[root] = Stores.open(str(root))
        return _stores[root]


def cookie_secret(stores: Stores) -> bytes:
    """The server's persistent cookie secret (created once, mode 0600), so logins survive a restart."""
    path = stores.data.cookie_secret
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    secret = secrets.token_bytes(64)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server process made it first
        return path.read_bytes()
    try:
        os.write(fd, secret)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return path.read_bytes()
