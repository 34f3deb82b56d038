"""The station's day (issue 14): what a station and its director see of the hearings held at
the station, the station PC's status, and the director's in-person identity check.

Design:
- **Who sees what.** A station sees the hearings held at it; a station director sees the
  hearings held at the stations they direct (``access.readable_hearing`` has the same rule for
  one hearing). A station's status (last seen, self-test, backups waiting) is read by the
  station itself, its director, and the court's presiding staff and administrators (the
  judge's readiness column); anything of another court is NOT_FOUND.
- **The hearings of the day**: every hearing at the station that is not closed, plus those
  that closed in the last `RECENT` (the window still shows the recording's hash to confirm),
  soonest first, each with its court, case and the people expected (everyone but the station
  itself), with how each one's identity was checked, read from the hearing's event log (the
  durable record), and who is connected, from the live hearing if it is running.
- **Status** is what the station reports (`POST /api/station/status`: a heartbeat every minute
  while the app runs, with the number of backups waiting to be sent and, after a self-test,
  its scored result). The station is *online* if it reported within `ONLINE_WITHIN`.
- **The director's in-person check** from the browser is the same rule as the station's own
  `attest_identity` (``LiveHearing.attest_in_person``), logged with the director as actor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principals import PartyPrincipal, Principal, StaffPrincipal, StationPrincipal
from server.clock import Clock
from server.enums import (
    COURT_READERS,
    PRESIDING_ROLES,
    EventKind,
    HearingRole,
    HearingState,
    ParticipantState,
    StaffRole,
)
from server.errors import CourtError, ErrorCode, not_found
from server.hearings.access import forbidden, readable_hearing
from server.hearings.rooms import HearingRooms
from server.hearings.station_backups import BACKUP_EVENT_KINDS, backup_states
from server.ids import HearingId, ParticipantId
from server.storage.eventlog import EventLogRepository
from server.storage.models import Case, Court, Hearing, Participant, Station, StationStatus
from server.storage.repositories import (
    CaseRepository,
    CourtRepository,
    HearingRepository,
    ParticipantRepository,
    StationRepository,
)
from server.storage.station_status import StationStatusRepository

RECENT = timedelta(hours=12)
ONLINE_WITHIN = timedelta(seconds=150)
SCORES = ("good", "okay", "bad")


@dataclass(frozen=True, slots=True)
class ExpectedPerson:
    participant_id: str
    display_name: str
    role: HearingRole
    state: ParticipantState
    connected: bool
    identity_method: str | None  # how identity was confirmed, from the log (None: not yet)
    identity_check: str | None  # in_person, document_on_video, other (checked by someone else)
    identity_checked_by: str | None  # the log's actor of the confirmation


@dataclass(frozen=True, slots=True)
class StationHearing:
    id: str
    title: str
    state: HearingState
    scheduled_start: datetime
    scheduled_end: datetime
    court_name: str
    case_number: str
    case_title: str
    station_id: str
    station_name: str
    people: tuple[ExpectedPerson, ...]


@dataclass(frozen=True, slots=True)
class StationState:
    station_id: str
    station_name: str
    online: bool
    last_seen_at: datetime | None
    self_test: dict[str, Any] | None
    self_test_at: datetime | None
    pending_backups: int  # as the station last reported (sealed, not yet confirmed sent)
    backups_not_received: int = 0  # registered at the court, not received yet (the court's log)


def overall_score(items: Sequence[dict[str, Any]]) -> str:
    """The worst score of the self-test's items (bad > okay > good)."""
    worst = max((SCORES.index(str(i.get("score"))) for i in items), default=0)
    return SCORES[worst]


class StationDayService:
    """See the module docstring. Raises CourtError (NOT_FOUND, FORBIDDEN, BAD_FIELD, ...)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, rooms: HearingRooms
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._rooms = rooms

    async def _stations_of(self, db: AsyncSession, principal: Principal) -> Sequence[Station]:
        """The stations whose day the principal sees: its own, or those it directs."""
        if isinstance(principal, StationPrincipal):
            own = await StationRepository(db).get(principal.station_id, principal.court_id)
            return [own] if own is not None else []
        if isinstance(principal, StaffPrincipal) and principal.role is StaffRole.STATION_DIRECTOR:
            return await StationRepository(db).list_for_director(principal.user_id)
        raise forbidden("see a station's day")

    async def hearings(self, principal: Principal) -> list[StationHearing]:
        """The hearings of the day at the principal's station(s), soonest first."""
        now = self._clock.now()
        async with self._sessions() as db:
            stations = {s.id: s for s in await self._stations_of(db, principal)}
            if not stations:
                return []
            rows = await HearingRepository(db).list(
                court_id=principal.court_id, station_ids=list(stations)
            )
            wanted = [
                h
                for h in rows
                if h.state is not HearingState.CLOSED or h.scheduled_end >= now - RECENT
            ]
            court = await CourtRepository(db).get(principal.court_id)
            out = []
            for hearing in wanted:
                case = await CaseRepository(db).get(hearing.case_id, hearing.court_id)
                assert hearing.station_id is not None
                out.append(
                    await self._describe(db, hearing, court, case, stations[hearing.station_id])
                )
        return out

    async def _describe(
        self,
        db: AsyncSession,
        hearing: Hearing,
        court: Court | None,
        case: Case | None,
        station: Station,
    ) -> StationHearing:
        participants = await ParticipantRepository(db).list_for_hearing(HearingId(hearing.id))
        checks: dict[str, tuple[str | None, str | None, str]] = {}
        for event in await EventLogRepository(db).list(HearingId(hearing.id)):
            if event.kind == EventKind.IDENTITY_CONFIRMED:
                data = event.data
                checks[str(data.get("participant_id"))] = (
                    data.get("method"),
                    data.get("check"),
                    event.actor,
                )
        live = self._rooms.get(HearingId(hearing.id))
        people = tuple(
            self._person(p, checks.get(p.id), live)
            for p in participants
            if p.role is not HearingRole.STATION
        )
        return StationHearing(
            id=hearing.id,
            title=hearing.title,
            state=hearing.state,
            scheduled_start=hearing.scheduled_start,
            scheduled_end=hearing.scheduled_end,
            court_name=court.name if court else "",
            case_number=case.number if case else "",
            case_title=case.title if case else "",
            station_id=station.id,
            station_name=station.name,
            people=people,
        )

    @staticmethod
    def _person(
        row: Participant, check: tuple[str | None, str | None, str] | None, live: Any
    ) -> ExpectedPerson:
        state, connected = row.state, False
        attendee = live.attendees.get(ParticipantId(row.id)) if live is not None else None
        if attendee is not None:
            state, connected = attendee.state, attendee.connected
        method, how, by = check if check is not None else (None, None, None)
        if method is None and row.role in PRESIDING_ROLES:
            method = "staff_login"
        return ExpectedPerson(
            participant_id=row.id,
            display_name=row.display_name,
            role=row.role,
            state=state,
            connected=connected,
            identity_method=method,
            identity_check=how,
            identity_checked_by=by,
        )

    # -- status ---------------------------------------------------------------------------

    async def report(
        self, principal: Principal, *, pending_backups: int, self_test: dict[str, Any] | None
    ) -> StationState:
        """The station reports itself (a heartbeat, and a self-test result when it ran one).
        Raises FORBIDDEN (not a station)."""
        if not isinstance(principal, StationPrincipal):
            raise forbidden("report a station's status")
        if self_test is not None:
            self_test = {**self_test, "overall": overall_score(self_test.get("items", []))}
        async with self._sessions.begin() as db:
            station = await StationRepository(db).get(principal.station_id, principal.court_id)
            if station is None:
                raise not_found("station")
            row = await StationStatusRepository(db).record(
                station.id,
                at=self._clock.now(),
                pending_backups=pending_backups,
                self_test=self_test,
            )
            return self._state(station, row)

    async def status(self, principal: Principal, station_id: str) -> StationState:
        """A station's status for the station, its director and the court's readers. Raises
        NOT_FOUND (another court's station, a party) or FORBIDDEN."""
        if isinstance(principal, PartyPrincipal):
            raise not_found("station")
        async with self._sessions() as db:
            station = await StationRepository(db).get(station_id, principal.court_id)
            if station is None:
                raise not_found("station")
            allowed = (
                isinstance(principal, StationPrincipal) and principal.station_id == station.id
            ) or (
                isinstance(principal, StaffPrincipal)
                and (
                    principal.role in COURT_READERS
                    or (
                        principal.role is StaffRole.STATION_DIRECTOR
                        and station.director_id == principal.user_id
                    )
                )
            )
            if not allowed:
                raise forbidden("read this station's status")
            row = await StationStatusRepository(db).get(station.id)
            state = self._state(station, row)
            missing = await self._backups_not_received(db, principal, station.id)
            return dataclasses.replace(state, backups_not_received=missing)

    @staticmethod
    async def _backups_not_received(db: AsyncSession, principal: Principal, station_id: str) -> int:
        """Backup recordings the station registered that the court has not received yet, over
        the station's hearings: the court's own view of what is still on the station PC."""
        hearings = await HearingRepository(db).list(
            court_id=principal.court_id, station_ids=[station_id]
        )
        events = await EventLogRepository(db).list_kinds(
            [h.id for h in hearings], BACKUP_EVENT_KINDS
        )
        return sum(not b.received for b in backup_states(events))

    def _state(self, station: Station, row: StationStatus | None) -> StationState:
        if row is None:
            return StationState(station.id, station.name, False, None, None, None, 0)
        return StationState(
            station_id=station.id,
            station_name=station.name,
            online=self._clock.now() - row.last_seen_at <= ONLINE_WITHIN,
            last_seen_at=row.last_seen_at,
            self_test=row.self_test,
            self_test_at=row.self_test_at,
            pending_backups=row.pending_backups,
        )

    # -- identity checked in person ----------------------------------------------------------

    async def check_identity(
        self,
        principal: Principal,
        hearing_id: HearingId,
        participant_id: ParticipantId,
        *,
        name: str,
        id_digits: str,
        note: str,
    ) -> ParticipantState:
        """The station's director (or the station) checked in person the identity of someone
        present at the station; returns the person's state after. Raises NOT_FOUND (not a
        hearing at a station the principal directs or is), FORBIDDEN (another role), and what
        ``LiveHearing.attest_in_person`` raises."""
        async with self._sessions() as db:
            hearing = await readable_hearing(db, principal, hearing_id)
            directs = isinstance(principal, StationPrincipal) or (
                isinstance(principal, StaffPrincipal)
                and principal.role is StaffRole.STATION_DIRECTOR
            )
            if not directs or hearing.station_id is None:
                raise forbidden("check identity in person")
        live = await self._rooms.open(hearing_id)
        if participant_id not in live.attendees:
            raise CourtError(ErrorCode.NOT_FOUND, "no such participant in this hearing")
        await live.attest_in_person(
            principal.actor, participant_id, name=name, id_digits=id_digits, note=note
        )
        return live.attendees[participant_id].state
