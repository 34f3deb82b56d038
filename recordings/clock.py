"""The `Clock` edge: the writer never reads the system time itself, so tests and the crash
harness can drive checkpoints, segment rotation and gap detection deterministically."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time (aware, UTC) for timestamps and a monotonic time for intervals."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def iso(ts: datetime) -> str:
    """ISO 8601 UTC with microseconds and a trailing Z (the only time format we persist)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unix_us(ts: datetime) -> int:
    """Microseconds since the Unix epoch."""
    delta = ts.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_unix_us(us: int) -> datetime:
    """Inverse of `unix_us`."""
    return datetime.fromtimestamp(us / 1_000_000, UTC)
