"""In-process sliding-window rate limiting (per client address) before any password hashing.

Per-account lockout lives in the database (``users.failed_logins``/``locked_until``) so that it
holds across processes; this limiter only blunts floods from one address on one node.
"""

from __future__ import annotations

from collections import deque

from server.clock import Clock


class RateLimiter:
    """At most `limit` events per `window_s` seconds per key; memory bounded by `max_keys`."""

    def __init__(self, clock: Clock, limit: int, window_s: float, max_keys: int = 10_000) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window_s
        self._max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Record an attempt for `key`; False if it is over the limit (the attempt still counts)."""
        now = self._clock.monotonic()
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self._max_keys:
                self._evict(now)
            events = self._events[key] = deque()
        while events and events[0] <= now - self._window:
            events.popleft()
        events.append(now)
        return len(events) <= self._limit

    def _evict(self, now: float) -> None:
        stale = [k for k, ev in self._events.items() if not ev or ev[-1] <= now - self._window]
        for key in stale:
            del self._events[key]
        while len(self._events) >= self._max_keys:
            self._events.pop(next(iter(self._events)))
