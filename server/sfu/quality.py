"""LinkQuality: how well a subscriber receives one forwarded stream, from its RTCP receiver
reports; and PeerStats, one participant's figures for the court's console.

The SFU already gets these reports (the subscriber's browser sends them for every stream it
receives); nothing is measured that the media path does not already carry.

Round trip (RFC 3550, 6.4.1): a report block echoes the middle 32 bits of the last sender
report's NTP timestamp (LSR) and how long the receiver held it (DLSR, 1/65536 s). The SFU's
sender reports carry the *publisher's* NTP clock (so that subscribers keep lip sync across
forwarded streams), not this machine's, so the round trip is measured against our own send
time instead: each SR sent is remembered with the monotonic time it left, and a report whose
LSR matches one of them gives ``rtt = now - sent - DLSR``. Loss is the report's fraction lost
(the receiver's count over the last report interval).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

# Recent sender reports remembered for matching (one goes out every 0.5-1.5 s).
SENT_REPORTS = 8
# Weight of the previous round-trip estimate (smooths one late report).
RTT_SMOOTHING = 0.5


class LinkQuality:
    """Round trip and loss of one send stream, from the subscriber's receiver reports."""

    __slots__ = ("_sent", "fraction_lost", "reports", "rtt_s")

    def __init__(self) -> None:
        self._sent: deque[tuple[int, float]] = deque(maxlen=SENT_REPORTS)
        self.rtt_s: float | None = None
        self.fraction_lost: float | None = None
        self.reports = 0

    def sender_report_sent(self, ntp: int, now: float) -> None:
        """An SR with 64-bit NTP timestamp `ntp` leaves now (monotonic seconds)."""
        self._sent.append(((ntp >> 16) & 0xFFFFFFFF, now))

    def receiver_report(self, lsr: int, dlsr: int, fraction_lost: int, now: float) -> None:
        """A report block about this stream arrived now (monotonic seconds)."""
        self.reports += 1
        self.fraction_lost = fraction_lost / 256
        if lsr == 0:
            return  # no SR received yet by the subscriber: no round trip to measure
        sent = next((at for middle, at in self._sent if middle == lsr), None)
        if sent is None:
            return
        rtt = max(0.0, now - sent - dlsr / 65536)
        self.rtt_s = (
            rtt if self.rtt_s is None else (RTT_SMOOTHING * self.rtt_s + (1 - RTT_SMOOTHING) * rtt)
        )


@dataclass(frozen=True, slots=True)
class PeerStats:
    """One participant's connection as the SFU sees it (figures None when not known yet)."""

    peer: str
    connection_state: str
    rtt_ms: float | None  # mean round trip over the streams the participant receives
    loss: float | None  # worst fraction lost (0..1) over those streams, last report interval
    bitrate_in_kbps: float  # what the participant sends (camera and microphone)
    bitrate_out_kbps: float  # what the SFU forwards to the participant

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RateMeter:
    """Bit rates from two byte counters, over the time since the previous sample (at least
    MIN_INTERVAL_S, so that two consoles polling at once still get a steady figure)."""

    MIN_INTERVAL_S = 0.5

    __slots__ = ("_at", "_in", "_out", "in_kbps", "out_kbps")

    def __init__(self) -> None:
        self._at: float | None = None
        self._in = self._out = 0
        self.in_kbps = self.out_kbps = 0.0

    def sample(self, bytes_in: int, bytes_out: int, now: float) -> None:
        if self._at is not None:
            elapsed = now - self._at
            if elapsed < self.MIN_INTERVAL_S:
                return
            self.in_kbps = max(0, bytes_in - self._in) * 8 / 1000 / elapsed
            self.out_kbps = max(0, bytes_out - self._out) * 8 / 1000 / elapsed
        self._at, self._in, self._out = now, bytes_in, bytes_out
