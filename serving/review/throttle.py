"""Sign-in throttling by client address (in memory, per process): a per-client exponential
backoff and a lock per (user name, client) pair, so one client can neither guess quickly nor lock
an officer out for everybody (docs/review.md, Security).

- A client's failures (any user name) are counted; after `backoff_after` of them each further
  failure makes the client wait `backoff_base * 2**k` seconds (k = 0, 1, 2, …), at most
  `lock_seconds`, before its next attempt is even checked.
- `max_failures` failures of one (name, client) pair lock that pair for `lock_seconds`: that client
  gets the "locked" answer for that name, known or not (the answer never says whether a name
  exists); other clients are not affected.
- What a client did is forgotten `lock_seconds` after its last failure.

The account-wide lock (in the store, shared by replicas) needs failures from `lock_clients`
distinct clients (`clients_of(name)`), so no single client triggers it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_ENTRIES = 100_000  # bound on the remembered clients and pairs (oldest forgotten first)


@dataclass
class _Count:
    n: int = 0
    last: float = 0.0
    until: float = 0.0  # blocked until (client backoff, or pair lock)


@dataclass
class LoginGuard:
    max_failures: int = 5
    lock_seconds: float = 900.0
    backoff_after: int = 10
    backoff_base: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _clients: dict[str, _Count] = field(default_factory=dict)
    _pairs: dict[tuple[str, str], _Count] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _get(self, table: dict, key) -> _Count | None:
        c = table.get(key)
        if c is not None and self.clock() - c.last >= self.lock_seconds:
            del table[key]
            return None
        return c

    def client_wait(self, client: str) -> float:
        """Seconds the client must still wait before an attempt is checked (0: none)."""
        with self._lock:
            c = self._get(self._clients, client)
            return max(0.0, c.until - self.clock()) if c else 0.0

    def pair_locked(self, name: str, client: str) -> bool:
        with self._lock:
            c = self._get(self._pairs, (name, client))
            return c is not None and c.until > self.clock()

    def clients_of(self, name: str) -> int:
        """How many distinct clients failed on `name` recently."""
        with self._lock:
            t = self.clock()
            recent = (c for (n, _), c in self._pairs.items() if n == name)
            return sum(1 for c in recent if t - c.last < self.lock_seconds)

    def failed(self, name: str, client: str) -> bool:
        """Count a failure; True when the (name, client) pair is now locked."""
        with self._lock:
            t = self.clock()
            self._prune(t)
            c = self._get(self._clients, client) or self._clients.setdefault(client, _Count())
            c.n, c.last = c.n + 1, t
            if c.n > self.backoff_after:
                k = c.n - self.backoff_after - 1
                c.until = t + min(self.backoff_base * 2.0 ** min(k, 64), self.lock_seconds)
            p = self._get(self._pairs, (name, client)) or self._pairs.setdefault(
                (name, client), _Count()
            )
            p.n, p.last = p.n + 1, t
            if p.n >= self.max_failures:
                p.until = t + self.lock_seconds
            return p.until > t

    def succeeded(self, name: str, client: str) -> None:
        """A right password: the pair's failures are forgotten (the client's backoff stays)."""
        with self._lock:
            self._pairs.pop((name, client), None)

    def _prune(self, t: float) -> None:
        for table in (self._clients, self._pairs):
            if len(table) < MAX_ENTRIES:
                continue
            for k in [k for k, c in table.items() if t - c.last >= self.lock_seconds]:
                del table[k]
            if len(table) >= MAX_ENTRIES:  # still full: forget the oldest half
                for k in sorted(table, key=lambda k: table[k].last)[: len(table) // 2]:
                    del table[k]
