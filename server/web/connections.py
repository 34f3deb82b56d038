"""The live signaling connections of this process, by hearing and participant, and by the
session each was opened with.

`HearingClients` is what a `LiveHearing` sees as its `Clients`: it turns the rules' events into
signaling messages on the participant's connection. `end_sessions` closes every connection of
sessions that just ended (an invitation revoked, re-issued or redeemed on another device, a
logout), joined to a hearing or not: revoked means revoked, at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol

from server.auth.ratelimit import RateLimiter
from server.clock import Clock
from server.hearings import live as rules
from server.ids import HearingId, ParticipantId
from signaling import messages as m
from signaling.limits import JOINS_PER_MINUTE
from signaling.reasons import CloseReason


class Connection(Protocol):
    """What the registry needs of a signaling connection (``ws.Connection``)."""

    @property
    def session_id(self) -> str: ...

    hearing_id: HearingId | None
    participant_id: ParticipantId | None

    async def send(self, message: m.Message) -> None: ...

    def translate(self, event: rules.LiveEvent) -> m.Message: ...

    async def close(
        self,
        reason: CloseReason,
        *,
        told_by_court: bool = False,
        detail: str = "",
        message: str | None = None,
    ) -> None: ...

    async def wait_finished(self) -> None: ...


log = logging.getLogger(__name__)

# How long `end_sessions` waits for a closed connection's departure to be recorded.
END_WAIT_S = 5.0


class HearingConnections:
    """The live signaling connections, by hearing and participant; `live.Clients` per hearing."""

    def __init__(self, clock: Clock) -> None:
        # `join` attempts per participant (docs/signaling.md, section 5): a reconnect loop must
        # back off. One node's count; a refused join closes its connection.
        self._joins = RateLimiter(clock, JOINS_PER_MINUTE, 60.0)
        self._by_hearing: dict[HearingId, dict[ParticipantId, Connection]] = {}
        self._by_session: dict[str, set[Connection]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # On a node of a cluster: tells the other nodes of ended sessions (server.web.cluster).
        self.relay: Callable[[list[str], str], Awaitable[None]] | None = None

    def register(self, connection: Connection) -> None:
        """Every open socket, from its upgrade on (joined or not), by its session."""
        self._by_session.setdefault(connection.session_id, set()).add(connection)

    def unregister(self, connection: Connection) -> None:
        sockets = self._by_session.get(connection.session_id)
        if sockets is not None:
            sockets.discard(connection)
            if not sockets:
                del self._by_session[connection.session_id]

    async def end_sessions(
        self, session_ids: Collection[str], message: str, *, relay: bool = True
    ) -> int:
        """Close every connection opened with one of these (now revoked) sessions with
        SESSION_REVOKED, and wait until their departures are recorded. Returns how many (on
        this node; in a cluster the other nodes are told too, unless `relay` is False)."""
        if relay and self.relay is not None and session_ids:
            await self.relay(list(session_ids), message)
        doomed = [c for sid in session_ids for c in self._by_session.get(sid, ())]
        if not doomed:
            return 0
        # Closed side by side, and never cancelled: a client slow to answer the close frame
        # delays neither the others nor (beyond END_WAIT_S) the caller.
        for connection in doomed:
            task = asyncio.ensure_future(
                connection.close(CloseReason.SESSION_REVOKED, detail=message, message=message)
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        finished = [asyncio.ensure_future(c.wait_finished()) for c in doomed]
        _, pending = await asyncio.wait(finished, timeout=END_WAIT_S)
        for waiter in pending:
            waiter.cancel()
        if pending:
            log.warning(
                "%d revoked connections did not finish within %s s", len(pending), END_WAIT_S
            )
        return len(doomed)

    def allow_join(self, participant_id: ParticipantId) -> bool:
        """Count a `join` attempt of the participant; False when over JOINS_PER_MINUTE."""
        return self._joins.allow(participant_id)

    def get(self, hearing_id: HearingId, participant_id: ParticipantId) -> Connection | None:
        return self._by_hearing.get(hearing_id, {}).get(participant_id)

    def add(self, connection: Connection) -> None:
        hearing_id, participant_id = connection.hearing_id, connection.participant_id
        if hearing_id is None or participant_id is None:
            raise ValueError("only a joined connection is registered")
        self._by_hearing.setdefault(hearing_id, {})[participant_id] = connection

    def discard(self, connection: Connection) -> None:
        if connection.hearing_id is None or connection.participant_id is None:
            return
        hearing = self._by_hearing.get(connection.hearing_id, {})
        if hearing.get(connection.participant_id) is connection:
            del hearing[connection.participant_id]

    def all(self) -> list[Connection]:
        return [c for hearing in self._by_hearing.values() for c in hearing.values()]

    def clients(self, hearing_id: HearingId) -> HearingClients:
        return HearingClients(self, hearing_id)


class HearingClients:
    """`live.Clients`: turns the rules' events into signaling messages for one hearing."""

    def __init__(self, connections: HearingConnections, hearing_id: HearingId) -> None:
        self._connections = connections
        self._hearing_id = hearing_id

    async def send(self, participant_id: ParticipantId, event: rules.LiveEvent) -> None:
        connection = self._connections.get(self._hearing_id, participant_id)
        if connection is not None:
            await connection.send(connection.translate(event))

    async def close(self, participant_id: ParticipantId, reason: CloseReason) -> None:
        connection = self._connections.get(self._hearing_id, participant_id)
        if connection is not None:
            await connection.close(reason, told_by_court=True)
