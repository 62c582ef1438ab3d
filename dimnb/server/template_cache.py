"""Compile Voilà's page templates once per server process, not once per page load.

Voilà builds a new nbconvert exporter, hence a new Jinja environment, for
every dashboard request, and Jinja then parses and compiles the dozen
templates of the page again: measured ~0.4 s of the server's single thread
per login on this machine, a queue when a team logs in at once. Jinja's
bytecode cache is the documented hook for this: every environment nbconvert
creates in this process gets an in-memory cache, shared by environments with
the same settings. Jinja checks each template's source checksum against the
cached code, so an edited template is compiled afresh.
"""

from __future__ import annotations

import threading
from typing import Any

from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from nbconvert.exporters.templateexporter import TemplateExporter


class MemoryBytecodeCache(BytecodeCache):
    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code


_caches: dict[tuple[Any, ...], MemoryBytecodeCache] = {}
_installed = False


def install() -> None:
    """Give every Jinja environment nbconvert creates in this process a shared bytecode cache (idempotent)."""
    global _installed
    if _installed:
        return
    create = TemplateExporter._create_environment

    def _create_environment(self: TemplateExporter) -> Any:
        environment = create(self)
        # Compiled code depends on these settings (async rendering, extensions): one cache per combination.
        key = (environment.is_async, tuple(sorted(environment.extensions)))
        environment.bytecode_cache = _caches.setdefault(key, MemoryBytecodeCache())
        return environment

    TemplateExporter._create_environment = _create_environment  # type: ignore[method-assign]
    _installed = True
