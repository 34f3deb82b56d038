"""SQL of the staff console's booking and dashboard (issue 12): staff to choose from, the
hearings of a period with their cases, people and links. Kept apart from ``repositories`` so
that feature branches do not edit one file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select

from server.enums import PRESIDING_STAFF, HearingState
from server.storage.models import Case, Hearing, Invitation, Participant, Station, User
from server.storage.repositories import _Repository


class StaffRepository(_Repository):
    async def list_presiding(self, court_id: str) -> Sequence[User]:
        """The court's judges, clerks and mediators who can still log in, by name."""
        result = await self._session.scalars(
            select(User)
            .where(
                User.court_id == court_id,
                User.role.in_(sorted(PRESIDING_STAFF)),
                User.disabled.is_(False),
            )
            .order_by(User.role, User.display_name)
        )
        return result.all()

    async def by_ids(self, user_ids: Sequence[str]) -> dict[str, User]:
        if not user_ids:
            return {}
        result = await self._session.scalars(select(User).where(User.id.in_(set(user_ids))))
        return {u.id: u for u in result.all()}


class DashboardRepository(_Repository):
    async def hearings_since(
        self, court_id: str, since: datetime, station_ids: Sequence[str] | None
    ) -> Sequence[Hearing]:
        """Hearings of the court that end after `since`, or are still not closed."""
        query = select(Hearing).where(
            Hearing.court_id == court_id,
            or_(Hearing.scheduled_end >= since, Hearing.state != HearingState.CLOSED),
        )
        if station_ids is not None:
            query = query.where(Hearing.station_id.in_(station_ids))
        result = await self._session.scalars(query.order_by(Hearing.scheduled_start, Hearing.id))
        return result.all()

    async def cases(self, case_ids: Sequence[str]) -> dict[str, Case]:
        if not case_ids:
            return {}
        result = await self._session.scalars(select(Case).where(Case.id.in_(set(case_ids))))
        return {c.id: c for c in result.all()}

    async def stations(self, court_id: str) -> dict[str, Station]:
        result = await self._session.scalars(select(Station).where(Station.court_id == court_id))
        return {s.id: s for s in result.all()}

    async def participants(self, hearing_ids: Sequence[str]) -> Sequence[Participant]:
        if not hearing_ids:
            return []
        result = await self._session.scalars(
            select(Participant)
            .where(Participant.hearing_id.in_(set(hearing_ids)))
            .order_by(Participant.created_at, Participant.id)
        )
        return result.all()

    async def invitations(self, hearing_id: str) -> Sequence[Invitation]:
        result = await self._session.scalars(
            select(Invitation)
            .where(Invitation.hearing_id == hearing_id)
            .order_by(Invitation.created_at, Invitation.id)
        )
        return result.all()
