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
server runs with ``--behind-proxy``). Account locks live in an account book:
the server's is ``StoredAccounts`` (the state store's ``sign_in_failures``
table, so with several ``dimnb serve`` nodes on one PostgreSQL a lock taken
through one node holds on all of them); ``MemoryAccounts`` serves the rules'
own tests. The per-address slow-down stays in each server's memory: it is a
brake on one noisy client, not a lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dimnb.store.statestore import StateStore


@dataclass
class _Account:
    failures: int = 0
    locks: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class AccountBook(Protocol):
    def read(self, login: str) -> _Account | None: ...

    def change(self, login: str, update: Callable[[_Account], None]) -> None:
        """Apply ``update`` to the login's entry (a new one if none) atomically, and keep the result."""

    def forget(self, login: str) -> None: ...


class MemoryAccounts:
    """Account entries in this process (the rules' tests; a server uses StoredAccounts)."""

    _MAX_TRACKED = 50_000

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}
        self._lock = threading.Lock()

    def read(self, login: str) -> _Account | None:
        with self._lock:
            return self._accounts.get(login)

    def change(self, login: str, update: Callable[[_Account], None]) -> None:
        with self._lock:
            if len(self._accounts) >= self._MAX_TRACKED:  # a flood of made-up logins must not fill the memory
                now = max(a.last_failure for a in self._accounts.values())
                self._accounts = {k: a for k, a in self._accounts.items()
                                  if a.locked_until > now or now - a.last_failure < 3600}
            update(self._accounts.setdefault(login, _Account()))

    def forget(self, login: str) -> None:
        with self._lock:
            self._accounts.pop(login, None)


class StoredAccounts:
    """Account entries in the state store's ``sign_in_failures`` table, shared by every node (wall-clock times).

    Old entries are removed as new failures are written, so made-up logins cannot grow the table for long.
    """

    KEEP_SECONDS = 24 * 3600.0

    def __init__(self, state: StateStore, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.clock = clock

    def read(self, login: str) -> _Account | None:
        row = self.state.connection().execute(
            "SELECT failures, locks, locked_until, last_failure FROM sign_in_failures WHERE login = ?", (login,)
        ).fetchone()
        return _Account(int(row[0]), int(row[1]), float(row[2]), float(row[3])) if row else None

    def change(self, login: str, update: Callable[[_Account], None]) -> None:
        with self.state.transaction() as con:
            row = con.execute("SELECT failures, locks, locked_until, last_failure FROM sign_in_failures "
                              "WHERE login = ?", (login,)).fetchone()
            account = _Account(int(row[0]), int(row[1]), float(row[2]), float(row[3])) if row else _Account()
            update(account)
            con.execute("DELETE FROM sign_in_failures WHERE last_failure < ? AND locked_until < ?",
                        (self.clock() - self.KEEP_SECONDS, self.clock()))
            con.execute(
                "INSERT INTO sign_in_failures(login, failures, locks, locked_until, last_failure) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(login) DO UPDATE SET failures = excluded.failures, locks = excluded.locks, "
                "locked_until = excluded.locked_until, last_failure = excluded.last_failure",
                (login, account.failures, account.locks, account.locked_until, account.last_failure),
            )

    def forget(self, login: str) -> None:
        with self.state.transaction() as con:
            con.execute("DELETE FROM sign_in_failures WHERE login = ?", (login,))


@dataclass
class LoginGuard:
    account_failures: int = 5
    first_lock: float = 30.0
    max_lock: float = 15 * 60.0
    address_failures: int = 20
    address_window: float = 15 * 60.0
    max_delay: float = 5.0
    clock: Callable[[], float] = time.monotonic
    accounts: AccountBook = field(default_factory=MemoryAccounts)
    _addresses: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    _MAX_TRACKED = 50_000

    def locked_for(self, login: str) -> float:
        """Seconds until ``login`` may try again (0: not locked)."""
        account = self.accounts.read(login)
        return max(0.0, account.locked_until - self.clock()) if account else 0.0

    def delay_for(self, address: str) -> float:
        """Seconds to wait before answering an attempt from ``address`` (0 below the per-address limit)."""
        with self._lock:
            recent = self._recent(address)
            excess = len(recent) - self.address_failures
            return 0.0 if excess < 0 else min(self.max_delay, 0.25 * 2 ** min(excess, 8))

    def failed(self, login: str, address: str) -> None:
        now = self.clock()

        def count(account: _Account) -> None:
            if now - account.last_failure > 4 * self.max_lock:
                account.locks = 0  # a long quiet spell: start again from the first lock's length
            account.failures += 1
            account.last_failure = now
            if account.failures >= self.account_failures:
                account.locks += 1
                account.failures = 0
                account.locked_until = now + min(self.max_lock, self.first_lock * 2 ** (account.locks - 1))

        self.accounts.change(login, count)
        with self._lock:
            self._prune(now)
            self._addresses.setdefault(address, deque()).append(now)
            self._recent(address)

    def succeeded(self, login: str) -> None:
        if self.accounts.read(login) is not None:
            self.accounts.forget(login)

    def _recent(self, address: str) -> deque[float]:
        recent = self._addresses.get(address, deque())
        now = self.clock()
        while recent and now - recent[0] > self.address_window:
            recent.popleft()
        return recent

    def _prune(self, now: float) -> None:
        """Forget old entries once there are many (a flood of made-up logins must not fill the memory)."""
        if len(self._addresses) < self._MAX_TRACKED:
            return
        self._addresses = {k: d for k, d in self._addresses.items() if d and now - d[-1] < self.address_window}
