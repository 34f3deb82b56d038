"""Time as a dependency, so that expiry, lockout and rate limits are testable without sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def utc(moment: datetime) -> datetime:
    """The same instant in UTC. Raises ValueError for a naive datetime (no zone: ambiguous)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: a time zone is required")
    return moment.astimezone(UTC)
