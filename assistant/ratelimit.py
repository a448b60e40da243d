"""A per-key token bucket: a key (a Slack user) may ask ``burst`` questions at once, then ``per_minute``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_KEYS = 10_000


class RateLimiter:
    """Token bucket per key, refilled continuously at ``per_minute / 60`` tokens a second up to ``burst``.

    Thread-safe. ``clock`` (seconds, monotonic) is injectable so tests control time.
    """

    def __init__(self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError(f"the rate must be positive, got {per_minute} per minute")
        if burst < 1:
            raise ValueError(f"the burst must be at least 1, got {burst}")
        self.per_minute = float(per_minute)
        self.burst = int(burst)
        self._per_second = self.per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, time of last update)
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + max(0.0, now - last) * self._per_second)

    def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until the next token (nothing is
        taken then)."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                self._prune(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._per_second

    def available(self, key: str) -> float:
        """Tokens ``key`` has now (for display and tests)."""
        with self._lock:
            return self._tokens(key, self._clock())

    def _prune(self, now: float) -> None:
        # Keys whose bucket is full again carry no state: drop them when the table grows large.
        if len(self._buckets) <= MAX_KEYS:
            return
        full = [k for k in self._buckets if self._tokens(k, now) >= self.burst]
        for k in full:
            del self._buckets[k]
