"""How many dashboard kernels the server keeps, and when it takes them back.

``KernelLimits`` holds the ``dimnb serve`` settings; ``default_max_kernels``
works out the server-wide cap from the machine's memory: what fits in 70 %
of RAM at the measured size of one dashboard kernel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Measured by bench/concurrency.py (RSS of a dashboard kernel that has listed calls and drawn a waveform: median
# 122 MB, max 126 MB; about 60 MB of it unshared): the size the server-wide cap is computed from.
KERNEL_MB = 130
RAM_SHARE = 0.7


class KernelCapReached(Exception):
    """A new dashboard would pass a cap: ``scope`` is ``"user"`` (their own tabs) or ``"server"`` (everyone's)."""

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(f"{scope} cap of {limit} dashboard kernels reached")
        self.scope = scope
        self.limit = limit


def memory_bytes() -> int:
    """Physical memory of this machine (``/proc/meminfo``, else ``sysconf``)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_max_kernels(ram_bytes: int | None = None, kernel_mb: int = KERNEL_MB) -> int:
    """How many dashboard kernels fit in 70 % of RAM (at least 1)."""
    ram = memory_bytes() if ram_bytes is None else ram_bytes
    return max(1, int(ram * RAM_SHARE) // (kernel_mb * 2**20))


def default_pool_size(max_kernels: int, cores: int | None = None) -> int:
    """Kernels to keep started ahead: enough for a team signing in at once (a fifth of the server cap), but no
    more than 10 per core, about what a core can refill in half a minute (2-3 s of CPU each)."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(max_kernels // 5, 10 * cores))


@dataclass(frozen=True)
class KernelLimits:
    """The caps and timeouts ``dimnb serve`` applies to dashboard kernels (times in seconds)."""

    per_user: int = 3
    max_kernels: int | None = None  # None: default_max_kernels()
    pool_size: int | None = None  # None: default_pool_size()
    page_gone_seconds: float = 30.0
    idle_seconds: float = 30 * 60.0

    def __post_init__(self) -> None:
        if self.per_user < 1:
            raise ValueError("kernels per user: at least 1")
        if self.max_kernels is not None and self.max_kernels < 1:
            raise ValueError("max kernels: at least 1")
        if self.pool_size is not None and self.pool_size < 0:
            raise ValueError("kernel pool: 0 or more")
        if self.page_gone_seconds <= 0 or self.idle_seconds <= 0:
            raise ValueError("timeouts: more than 0 seconds")

    @property
    def total(self) -> int:
        return self.max_kernels if self.max_kernels is not None else default_max_kernels()

    @property
    def pool(self) -> int:
        return self.pool_size if self.pool_size is not None else default_pool_size(self.total)

    @property
    def check_every(self) -> float:
        """How often the reaper looks: often enough that a gone page's kernel ends within 60 s by default."""
        return max(0.5, min(10.0, self.page_gone_seconds / 3, self.idle_seconds / 3))
