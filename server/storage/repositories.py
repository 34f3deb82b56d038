"""Repositories: all SQL lives here. Services call these; they never commit.

Every read that is scoped by a court takes the court id, so that a caller cannot forget the
scope: a hearing of another court is simply not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.enums import ParticipantState
from server.storage.models import (
    Case,
    Court,
    Hearing,
    Invitation,
    Participant,
    Station,
    User,
    WebSession,
)

T = TypeVar("T")


class _Repository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _add(self, row: T) -> T:
        self._session.add(row)
        await self._session.flush()
        return row


class CourtRepository(_Repository):
    async def add(self, court: Court) -> Court:
        return await self._add(court)

    async def get(self, court_id: str) -> Court | None:
        return await self._session.get(Court, court_id)

    async def by_name(self, name: str) -> Court | None:
        return await self._session.scalar(select(Court).where(Court.name == name))


class UserRepository(_Repository):
    async def add(self, user: User) -> User:
        return await self._add(user)

    async def get(self, user_id: str) -> User | None:
        return await self._session.get(User, user_id)

    async def by_username(self, username: str) -> User | None:
        return await self._session.scalar(select(User).where(User.username == username))

    async def record_failure(self, user: User, *, max_failures: int, lock_until: datetime) -> None:
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until = lock_until
            user.failed_logins = 0
        await self._session.flush()

    async def record_success(self, user: User) -> None:
        user.failed_logins = 0
        user.locked_until = None
        await self._session.flush()


class StationRepository(_Repository):
    async def add(self, station: Station) -> Station:
        return await self._add(station)

    async def get(self, station_id: str, court_id: str | None = None) -> Station | None:
        station = await self._session.get(Station, station_id)
        if station is None or (court_id is not None and station.court_id != court_id):
            return None
        return station

    async def list_for_court(self, court_id: str) -> Sequence[Station]:
        result = await self._session.scalars(
            select(Station).where(Station.court_id == court_id).order_by(Station.name)
        )
        return result.all()

    async def list_for_director(self, user_id: str) -> Sequence[Station]:
        result = await self._session.scalars(
            select(Station).where(Station.director_id == user_id).order_by(Station.name)
        )
        return result.all()


class CaseRepository(_Repository):
    async def add(self, case: Case) -> Case:
        return await self._add(case)

    async def get(self, case_id: str, court_id: str) -> Case | None:
        return await self._session.scalar(
            select(Case).where(Case.id == case_id, Case.court_id == court_id)
        )

    async def number_taken(self, court_id: str, number: str) -> bool:
        found = await self._session.scalar(
            select(Case.id).where(Case.court_id == court_id, Case.number == number)
        )
        return found is not None

    async def list_for_court(self, court_id: str) -> Sequence[Case]:
        result = await self._session.scalars(
            select(Case).where(Case.court_id == court_id).order_by(Case.created_at, Case.number)
        )
        return result.all()


class HearingRepository(_Repository):
    async def add(self, hearing: Hearing) -> Hearing:
        return await self._add(hearing)

    async def get(self, hearing_id: str, *, lock: bool = False) -> Hearing | None:
        """The hearing; with `lock`, row-locked for the transaction (state changes)."""
        if lock:
            return await self._session.scalar(
                select(Hearing).where(Hearing.id == hearing_id).with_for_update()
            )
        return await self._session.get(Hearing, hearing_id)

    async def list(
        self,
        *,
        court_id: str,
        case_id: str | None = None,
        station_ids: Sequence[str] | None = None,
    ) -> Sequence[Hearing]:
        query = select(Hearing).where(Hearing.court_id == court_id)
        if case_id is not None:
            query = query.where(Hearing.case_id == case_id)
        if station_ids is not None:
            query = query.where(Hearing.station_id.in_(station_ids))
        result = await self._session.scalars(query.order_by(Hearing.scheduled_start))
        return result.all()


class ParticipantRepository(_Repository):
    async def add(self, participant: Participant) -> Participant:
        return await self._add(participant)

    async def get(self, participant_id: str) -> Participant | None:
        return await self._session.get(Participant, participant_id)

    async def find(
        self, hearing_id: str, *, user_id: str | None = None, station_id: str | None = None
    ) -> Participant | None:
        query = select(Participant).where(Participant.hearing_id == hearing_id)
        if user_id is not None:
            query = query.where(Participant.user_id == user_id)
        if station_id is not None:
            query = query.where(Participant.station_id == station_id)
        return (await self._session.scalars(query.limit(1))).first()

    async def set_state(
        self, hearing_id: str, participant_id: str, state: ParticipantState
    ) -> None:
        await self._session.execute(
            update(Participant)
            .where(Participant.id == participant_id, Participant.hearing_id == hearing_id)
            .values(state=state)
        )

    async def list_for_hearing(self, hearing_id: str) -> Sequence[Participant]:
        result = await self._session.scalars(
            select(Participant)
            .where(Participant.hearing_id == hearing_id)
            .order_by(Participant.created_at, Participant.id)
        )
        return result.all()


class InvitationRepository(_Repository):
    async def add(self, invitation: Invitation) -> Invitation:
        return await self._add(invitation)

    async def get(self, invitation_id: str) -> Invitation | None:
        return await self._session.get(Invitation, invitation_id)

    async def by_token_hash(self, token_hash: bytes) -> Invitation | None:
        return await self._session.scalar(
            select(Invitation).where(Invitation.token_hash == token_hash)
        )

    async def revoke_for_participant(self, participant_id: str, at: datetime) -> None:
        await self._session.execute(
            update(Invitation)
            .where(Invitation.participant_id == participant_id, Invitation.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    async def list_for_hearing(self, hearing_id: str) -> Sequence[Invitation]:
        result = await self._session.scalars(
            select(Invitation)
            .where(Invitation.hearing_id == hearing_id)
            .order_by(Invitation.created_at)
        )
        return result.all()


class SessionRepository(_Repository):
    async def add(self, web_session: WebSession) -> WebSession:
        return await self._add(web_session)

    async def by_token_hash(self, token_hash: bytes) -> WebSession | None:
        return await self._session.scalar(
            select(WebSession).where(WebSession.token_hash == token_hash)
        )

    async def revoke(self, session_id: str, at: datetime) -> None:
        await self._session.execute(
            update(WebSession)
            .where(WebSession.id == session_id, WebSession.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    async def revoke_participant_sessions(self, participant_id: str, at: datetime) -> list[str]:
        """Revoke the live sessions opened through the participant's invitation links; their
        ids (so that the connections opened with them can be closed too)."""
        ids = list(
            await self._session.scalars(
                select(WebSession.id).where(
                    WebSession.participant_id == participant_id, WebSession.revoked_at.is_(None)
                )
            )
        )
        if ids:
            await self._session.execute(
                update(WebSession).where(WebSession.id.in_(ids)).values(revoked_at=at)
            )
        return ids

    async def revoke_for(
        self,
        at: datetime,
        *,
        user_id: str | None = None,
        participant_id: str | None = None,
        station_id: str | None = None,
    ) -> None:
        conditions = []
        if user_id is not None:
            conditions.append(WebSession.user_id == user_id)
        if participant_id is not None:
            conditions.append(WebSession.participant_id == participant_id)
        if station_id is not None:
            conditions.append(WebSession.station_id == station_id)
        if not conditions:
            return
        await self._session.execute(
            update(WebSession)
            .where(or_(*conditions), WebSession.revoked_at.is_(None))
            .values(revoked_at=at)
        )
