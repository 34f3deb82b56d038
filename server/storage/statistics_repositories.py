"""SQL of the court's quality-and-efficiency view (issue 15.4): the hearings of a period with
their cases, the log entries the figures count, the people, and the court's stations and staff
with their latest status. The figures are computed in server/hearings/statistics.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from server.storage.models import (
    Case,
    Court,
    Hearing,
    HearingEvent,
    Participant,
    Station,
    StationStatus,
    User,
)
from server.storage.repositories import _Repository

# Bound on the hearings one query reads: a court's year is a few thousand.
MAX_HEARINGS = 20_000


class StatisticsRepository(_Repository):
    async def court(self, court_id: str) -> Court | None:
        return await self._session.get(Court, court_id)

    async def hearings(
        self,
        court_id: str,
        start: datetime,
        end: datetime,
        *,
        station_id: str | None = None,
        cause: str | None = None,
    ) -> Sequence[tuple[Hearing, Case]]:
        """The court's hearings scheduled to start in [start, end), with their cases."""
        query = (
            select(Hearing, Case)
            .join(Case, Case.id == Hearing.case_id)
            .where(
                Hearing.court_id == court_id,
                Hearing.scheduled_start >= start,
                Hearing.scheduled_start < end,
            )
            .order_by(Hearing.scheduled_start, Hearing.id)
            .limit(MAX_HEARINGS)
        )
        if station_id is not None:
            query = query.where(Hearing.station_id == station_id)
        if cause is not None:
            query = query.where(Case.cause == cause)
        result = await self._session.execute(query)
        return [(h, c) for h, c in result.all()]

    async def events(self, hearing_ids: Sequence[str], kinds: Sequence[str]) -> list[HearingEvent]:
        """The log entries of these kinds of these hearings, in log order."""
        out: list[HearingEvent] = []
        ids = sorted(set(hearing_ids))
        for i in range(0, len(ids), 500):  # bounded IN lists
            result = await self._session.scalars(
                select(HearingEvent)
                .where(HearingEvent.hearing_id.in_(ids[i : i + 500]))
                .where(HearingEvent.kind.in_(sorted(set(kinds))))
                .order_by(HearingEvent.hearing_id, HearingEvent.seq)
            )
            out.extend(result.all())
        return out

    async def participants(self, hearing_ids: Sequence[str]) -> list[Participant]:
        out: list[Participant] = []
        ids = sorted(set(hearing_ids))
        for i in range(0, len(ids), 500):
            result = await self._session.scalars(
                select(Participant).where(Participant.hearing_id.in_(ids[i : i + 500]))
            )
            out.extend(result.all())
        return out

    async def stations(self, court_id: str) -> list[tuple[Station, StationStatus | None]]:
        """The court's stations with what each last reported (self-test), by name."""
        result = await self._session.execute(
            select(Station, StationStatus)
            .outerjoin(StationStatus, StationStatus.station_id == Station.id)
            .where(Station.court_id == court_id)
            .order_by(Station.name, Station.id)
        )
        return [(s, st) for s, st in result.all()]

    async def users(self, court_id: str) -> dict[str, User]:
        result = await self._session.scalars(select(User).where(User.court_id == court_id))
        return {u.id: u for u in result.all()}

    async def first_events(
        self, case_ids: Sequence[str], kinds: Sequence[str]
    ) -> list[tuple[str, HearingEvent]]:
        """(case id, entry) for every entry of these kinds in any hearing of these cases, in
        any period: a case resolved in the period may have been opened long before it."""
        out: list[tuple[str, HearingEvent]] = []
        ids = sorted(set(case_ids))
        for i in range(0, len(ids), 500):
            result = await self._session.execute(
                select(Hearing.case_id, HearingEvent)
                .join(Hearing, Hearing.id == HearingEvent.hearing_id)
                .where(Hearing.case_id.in_(ids[i : i + 500]))
                .where(HearingEvent.kind.in_(sorted(set(kinds))))
                .order_by(HearingEvent.at, HearingEvent.id)
            )
            out.extend((c, e) for c, e in result.all())
        return out
