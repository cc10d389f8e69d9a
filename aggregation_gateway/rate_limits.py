"""Per-client token buckets: a scanning bot or a notification flood is slowed with a 429
before it reaches the database or the payment platform.

In-process (each HTTP worker keeps its own buckets): a cheap first line, not an account
quota.
"""

from __future__ import annotations

import threading
import time

__all__ = ["RateLimiter"]


class RateLimiter:
    """``rate`` tokens per second per key, bursts up to ``burst``; rate 0 disables."""

    def __init__(self, rate: float, burst: float | None = None, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate * 2)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def exhausted(self, key: str, now: float | None = None) -> bool:
        """Whether ``key`` has no token left (without taking one)."""
        if self.rate <= 0:
            return False
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            return min(self.burst, tokens + (now - last) * self.rate) < 1

    def allow(self, key: str, now: float | None = None) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return False
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()
            self._buckets[key] = (tokens - 1, now)
            return True
