"""CPU use of this node (its main process and its SFU workers), read from /proc."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by these processes (gone ones count 0). Blocks:
    reads /proc files (call through `asyncio.to_thread`)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / _TICKS


class CpuMeter:
    """Fraction of one core used between two readings (1.0 = one core busy)."""

    def __init__(self) -> None:
        self._at: float | None = None
        self._used = 0.0

    def read(self, pids: Iterable[int]) -> float:
        """Blocks (reads /proc): call through `asyncio.to_thread`."""
        now, used = time.monotonic(), cpu_seconds(pids)
        share = 0.0
        if self._at is not None and now > self._at:
            share = max(0.0, used - self._used) / (now - self._at)
        self._at, self._used = now, used
        return round(share, 3)
