"""The live signaling connections of this process, by hearing and participant.

`HearingClients` is what a `LiveHearing` sees as its `Clients`: it turns the rules' events into
signaling messages on the participant's connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.hearings import live as rules
from server.ids import HearingId, ParticipantId
from signaling.reasons import CloseReason

if TYPE_CHECKING:
    from server.web.ws import Connection


class HearingConnections:
    """The live signaling connections, by hearing and participant; `live.Clients` per hearing."""

    def __init__(self) -> None:
        self._by_hearing: dict[HearingId, dict[ParticipantId, Connection]] = {}

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
