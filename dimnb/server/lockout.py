"""Failed sign-ins: a lock per account with growing delays, and a per-address slow-down that locks nobody out.

- **Per account** (whatever the address): ``account_failures`` wrong
  passwords in a row lock that account for ``first_lock`` seconds; each lock
  after that doubles, up to ``max_lock``. A right password after the lock
  ends clears it all. Unknown logins are tracked the same way, so a lock says
  nothing about whether an account exists. Five wrong passwords for paul
  lock paul only: alex signs in as usual.
- **Per address**: past ``address_failures`` failures within
  ``address_window`` seconds, every further attempt from that address is
  answered after a growing delay (at most ``max_delay``), right password or
  not. An address is never locked: behind a shared proxy one person's typos
  slow the others' next sign-in a little, and lock no account.

The address is the server's ``request.remote_ip`` (the real client when the
server runs with ``--behind-proxy``). State lives in the server's memory.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Account:
    failures: int = 0
    locks: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


@dataclass
class LoginGuard:
    account_failures: int = 5
    first_lock: float = 30.0
    max_lock: float = 15 * 60.0
    address_failures: int = 20
    address_window: float = 15 * 60.0
    max_delay: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _accounts: dict[str, _Account] = field(default_factory=dict)
    _addresses: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    _MAX_TRACKED = 50_000

    def locked_for(self, login: str) -> float:
        """Seconds until ``login`` may try again (0: not locked)."""
        with self._lock:
            account = self._accounts.get(login)
            return max(0.0, account.locked_until - self.clock()) if account else 0.0

    def delay_for(self, address: str) -> float:
        """Seconds to wait before answering an attempt from ``address`` (0 below the per-address limit)."""
        with self._lock:
            recent = self._recent(address)
            excess = len(recent) - self.address_failures
            return 0.0 if excess < 0 else min(self.max_delay, 0.25 * 2 ** min(excess, 8))

    def failed(self, login: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            self._prune(now)
            account = self._accounts.setdefault(login, _Account())
            if now - account.last_failure > 4 * self.max_lock:
                account.locks = 0  # a long quiet spell: start again from the first lock's length
            account.failures += 1
            account.last_failure = now
            if account.failures >= self.account_failures:
                account.locks += 1
                account.failures = 0
                account.locked_until = now + min(self.max_lock, self.first_lock * 2 ** (account.locks - 1))
            self._addresses.setdefault(address, deque()).append(now)
            self._recent(address)

    def succeeded(self, login: str) -> None:
        with self._lock:
            self._accounts.pop(login, None)

    def _recent(self, address: str) -> deque[float]:
        recent = self._addresses.get(address, deque())
        now = self.clock()
        while recent and now - recent[0] > self.address_window:
            recent.popleft()
        return recent

    def _prune(self, now: float) -> None:
        """Forget old entries once there are many (a flood of made-up logins must not fill the memory)."""
        if len(self._accounts) + len(self._addresses) < self._MAX_TRACKED:
            return
        self._accounts = {k: a for k, a in self._accounts.items()
                          if a.locked_until > now or now - a.last_failure < self.address_window}
        self._addresses = {k: d for k, d in self._addresses.items() if d and now - d[-1] < self.address_window}
