"""Per client address limits on the signaling WebSocket (docs/signaling.md, "Rate limits").

The per-connection token bucket in ``ws.Connection`` stops one socket from flooding; a client
that opens many sockets would multiply it. So, per client address (``request.remote``): at most
``max_sockets_per_address`` open signaling sockets (the next upgrade is refused with HTTP 429
``RATE_LIMITED`` before any WebSocket exists), and one shared budget of
``messages_per_address_per_s`` messages per second (burst twice that) across all of that
address's sockets; a message over it is answered ``RATE_LIMITED`` like the per-connection limit,
and counts as a strike towards the flood close.

State exists only for addresses with an open socket, so memory is bounded by the socket count.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from server.clock import Clock


@dataclass
class _Address:
    sockets: int
    tokens: float
    at: float


class AddressLimits:
    """Open signaling sockets and a shared message budget, per client address."""

    def __init__(self, clock: Clock, max_sockets: int, messages_per_s: float) -> None:
        self._clock = clock
        self._max_sockets = max_sockets
        self._rate = messages_per_s
        self._burst = 2 * messages_per_s
        self._addresses: dict[str, _Address] = {}

    def open(self, address: str) -> bool:
        """Count a new socket from `address`; False (and not counted) when at the cap."""
        state = self._addresses.get(address)
        if state is None:
            state = self._addresses[address] = _Address(0, self._burst, self._clock.monotonic())
        if state.sockets >= self._max_sockets:
            return False
        state.sockets += 1
        return True

    def close(self, address: str) -> None:
        """A socket from `address` ended; its address is forgotten with its last socket."""
        state = self._addresses.get(address)
        if state is None:
            return
        state.sockets -= 1
        if state.sockets <= 0:
            del self._addresses[address]

    def take(self, address: str) -> bool:
        """Spend one message of `address`'s shared budget; False when it is exhausted."""
        state = self._addresses.get(address)
        if state is None:
            return True  # not a counted socket (cannot happen on /ws)
        now = self._clock.monotonic()
        state.tokens = min(self._burst, state.tokens + (now - state.at) * self._rate)
        state.at = now
        if state.tokens >= 1:
            state.tokens -= 1
            return True
        return False

    def total(self) -> int:
        """Open signaling sockets from every address (the metrics' gauge)."""
        return sum(state.sockets for state in self._addresses.values())

    def sockets(self, address: str) -> int:
        state = self._addresses.get(address)
        return 0 if state is None else state.sockets


ADDRESS_LIMITS = web.AppKey("address_limits", AddressLimits)
