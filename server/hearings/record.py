"""The durable side of a live hearing: participant states and the event log, one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.clock import Clock
from server.enums import EventKind, ParticipantState
from server.ids import HearingId, ParticipantId
from server.storage.eventlog import EventLogRepository
from server.storage.repositories import ParticipantRepository


class DatabaseRecord:
    """`live.Record` on the database: each write commits or nothing does."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, hearing_id: HearingId
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._hearing_id = hearing_id

    async def write(
        self,
        *,
        actor: str,
        kind: EventKind,
        data: dict[str, Any],
        participant_states: dict[ParticipantId, ParticipantState] | None = None,
    ) -> None:
        async with self._sessions.begin() as db:
            participants = ParticipantRepository(db)
            for participant_id, state in (participant_states or {}).items():
                await participants.set_state(self._hearing_id, participant_id, state)
            await EventLogRepository(db).append(
                self._hearing_id, at=self._clock.now(), actor=actor, kind=kind, data=data
            )
