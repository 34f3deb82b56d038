"""The court's administrative service: courts, stations, cases, hearings and their
participants, the hearing state, the recordings' confirmations and reviews, the event log.

Invitation links (``invitations``) and station backups (``station_backups``) are services of
their own. Authorization is decided in the trusted layer for every call, by the rules of
``access``: NOT_FOUND for anything outside the principal's court or own hearing, FORBIDDEN
for a role that may see a thing but not change it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principals import (
    PartyPrincipal,
    Principal,
    StaffPrincipal,
    StationPrincipal,
)
from server.clock import Clock, utc
from server.enums import (
    COURT_READERS,
    PRESIDING_ROLES,
    CaseKind,
    EventKind,
    HearingMode,
    HearingRole,
    HearingState,
    ParticipantState,
    StaffRole,
)
from server.errors import CourtError, ErrorCode, not_found
from server.hearings import states
from server.hearings.access import forbidden, managed_hearing, readable_hearing, require_presiding
from server.ids import HearingId
from server.storage.eventlog import EventLogRepository
from server.storage.models import Case, Court, Hearing, HearingEvent, Participant
from server.storage.models import Station as StationRow
from server.storage.repositories import (
    CaseRepository,
    CourtRepository,
    HearingRepository,
    ParticipantRepository,
    StationRepository,
    UserRepository,
)

log = logging.getLogger(__name__)


class CourtService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    # -- courts ------------------------------------------------------------------------

    async def get_court(self, principal: Principal, court_id: str) -> Court:
        if isinstance(principal, PartyPrincipal) or principal.court_id != court_id:
            raise not_found("court")
        async with self._sessions() as db:
            court = await CourtRepository(db).get(court_id)
        if court is None:
            raise not_found("court")
        return court

    # -- stations ----------------------------------------------------------------------

    async def list_stations(self, principal: Principal) -> Sequence[StationRow]:
        async with self._sessions() as db:
            repo = StationRepository(db)
            if isinstance(principal, StaffPrincipal):
                if principal.role in COURT_READERS:
                    return await repo.list_for_court(principal.court_id)
                if principal.role is StaffRole.STATION_DIRECTOR:
                    return await repo.list_for_director(principal.user_id)
            if isinstance(principal, StationPrincipal):
                own = await repo.get(principal.station_id)
                return [own] if own is not None else []
        raise forbidden("list stations")

    # -- cases -------------------------------------------------------------------------

    def _require_case_reader(self, principal: Principal) -> StaffPrincipal:
        if isinstance(principal, StaffPrincipal) and principal.role in COURT_READERS:
            return principal
        raise forbidden("read cases")

    async def list_cases(self, principal: Principal) -> Sequence[Case]:
        staff = self._require_case_reader(principal)
        async with self._sessions() as db:
            return await CaseRepository(db).list_for_court(staff.court_id)

    async def get_case(self, principal: Principal, case_id: str) -> Case:
        if isinstance(principal, PartyPrincipal):
            raise not_found("case")
        async with self._sessions() as db:
            case = await CaseRepository(db).get(case_id, principal.court_id)
        if case is None:
            raise not_found("case")
        self._require_case_reader(principal)
        return case

    async def create_case(
        self,
        principal: Principal,
        *,
        number: str,
        title: str,
        kind: CaseKind,
        cause: str | None = None,
        mode: HearingMode = HearingMode.HEARING,
    ) -> Case:
        """Raises FORBIDDEN (not presiding staff) or CONFLICT (case number taken; the error
        names the `number` field)."""
        staff = require_presiding(principal, "create cases")
        async with self._sessions.begin() as db:
            repo = CaseRepository(db)
            if await repo.number_taken(staff.court_id, number):
                raise CourtError(
                    ErrorCode.CONFLICT, f"case number {number!r} already exists", field="number"
                )
            return await repo.add(
                Case(
                    court_id=staff.court_id,
                    number=number,
                    title=title,
                    kind=kind,
                    cause=cause,
                    mode=mode,
                    created_by=staff.user_id,
                    created_at=self._clock.now(),
                )
            )

    # -- hearings ----------------------------------------------------------------------

    async def list_hearings(self, principal: Principal) -> Sequence[Hearing]:
        async with self._sessions() as db:
            repo = HearingRepository(db)
            if isinstance(principal, PartyPrincipal):
                return [await readable_hearing(db, principal, principal.hearing_id)]
            if isinstance(principal, StationPrincipal):
                return await repo.list(
                    court_id=principal.court_id, station_ids=[principal.station_id]
                )
            if principal.role is StaffRole.STATION_DIRECTOR:
                directed = await StationRepository(db).list_for_director(principal.user_id)
                return await repo.list(
                    court_id=principal.court_id, station_ids=[s.id for s in directed]
                )
            return await repo.list(court_id=principal.court_id)

    async def get_hearing(self, principal: Principal, hearing_id: HearingId) -> Hearing:
        async with self._sessions() as db:
            return await readable_hearing(db, principal, hearing_id)

    async def create_hearing(
        self,
        principal: Principal,
        *,
        case_id: str,
        title: str,
        scheduled_start: datetime,
        scheduled_end: datetime,
        station_id: str | None,
    ) -> Hearing:
        """Raises NOT_FOUND (case or station not in the court), FORBIDDEN, BAD_FIELD (times)."""
        if isinstance(principal, PartyPrincipal):
            raise not_found("case")
        async with self._sessions.begin() as db:
            case = await CaseRepository(db).get(case_id, principal.court_id)
            if case is None:
                raise not_found("case")
            staff = require_presiding(principal, "schedule hearings")
            scheduled_start, scheduled_end = utc(scheduled_start), utc(scheduled_end)
            if scheduled_end <= scheduled_start:
                raise CourtError(ErrorCode.BAD_FIELD, "scheduled_end must be after scheduled_start")
            if (
                station_id is not None
                and await StationRepository(db).get(station_id, staff.court_id) is None
            ):
                raise not_found("station")
            now = self._clock.now()
            hearing = await HearingRepository(db).add(
                Hearing(
                    court_id=staff.court_id,
                    case_id=case.id,
                    title=title,
                    scheduled_start=scheduled_start,
                    scheduled_end=scheduled_end,
                    state=HearingState.SCHEDULED,
                    station_id=station_id,
                    presiding_user_id=staff.user_id,
                    created_at=now,
                )
            )
            await EventLogRepository(db).append(
                hearing.id,
                at=now,
                actor=staff.actor,
                kind=EventKind.HEARING_SCHEDULED,
                data={
                    "case_id": case.id,
                    "scheduled_start": scheduled_start.isoformat(),
                    "scheduled_end": scheduled_end.isoformat(),
                    "station_id": station_id,
                },
            )
            return hearing

    # -- participants ------------------------------------------------------------------

    async def list_participants(
        self, principal: Principal, hearing_id: HearingId
    ) -> Sequence[Participant]:
        async with self._sessions() as db:
            await readable_hearing(db, principal, hearing_id)
            if isinstance(principal, PartyPrincipal):
                raise forbidden("list participants")
            return await ParticipantRepository(db).list_for_hearing(hearing_id)

    async def add_participant(
        self,
        principal: Principal,
        hearing_id: HearingId,
        *,
        display_name: str,
        role: HearingRole,
        legal_name: str | None = None,
        id_number_tail: str | None = None,
        user_id: str | None = None,
        station_id: str | None = None,
        represents_id: str | None = None,
        phone: str | None = None,
    ) -> Participant:
        """Add someone to a hearing.

        Staff roles (judge, clerk, mediator) must name a staff `user_id` of the court; the
        station role must name a `station_id` of the court; other roles join by invitation.
        Raises NOT_FOUND, FORBIDDEN, BAD_FIELD or WRONG_STATE (hearing closed).
        """
        async with self._sessions.begin() as db:
            staff, hearing = await managed_hearing(db, principal, hearing_id, "add participants")
            if hearing.state is HearingState.CLOSED:
                raise CourtError(ErrorCode.WRONG_STATE, "the hearing is closed")
            if role in PRESIDING_ROLES:
                if user_id is None or station_id is not None:
                    raise CourtError(ErrorCode.BAD_FIELD, f"a {role} participant needs user_id")
                user = await UserRepository(db).get(user_id)
                if user is None or user.court_id != staff.court_id:
                    raise not_found("user")
            elif role is HearingRole.STATION:
                if station_id is None or user_id is not None:
                    raise CourtError(ErrorCode.BAD_FIELD, "a station participant needs station_id")
                if await StationRepository(db).get(station_id, staff.court_id) is None:
                    raise not_found("station")
            elif user_id is not None or station_id is not None:
                raise CourtError(
                    ErrorCode.BAD_FIELD, f"a {role} joins by invitation: no user_id or station_id"
                )
            participants = ParticipantRepository(db)
            if represents_id is not None:
                represented = await participants.get(represents_id)
                if represented is None or represented.hearing_id != hearing.id:
                    raise not_found("represented participant")
            now = self._clock.now()
            participant = await participants.add(
                Participant(
                    hearing_id=hearing.id,
                    display_name=display_name,
                    role=role,
                    state=ParticipantState.INVITED,
                    user_id=user_id,
                    station_id=station_id,
                    legal_name=legal_name,
                    id_number_tail=id_number_tail.upper() if id_number_tail else None,
                    represents_id=represents_id,
                    phone=phone,
                    created_at=now,
                )
            )
            await EventLogRepository(db).append(
                hearing.id,
                at=now,
                actor=staff.actor,
                kind=EventKind.PARTICIPANT_ADDED,
                data={"participant_id": participant.id, "role": role.value},
            )
            return participant

    async def participant_for(self, principal: Principal, hearing_id: HearingId) -> Participant:
        """The participant a principal takes part as in a hearing (for joining it live).

        A party is its own participant; staff and stations must have been added to the hearing
        (a judge who is not on the hearing cannot slip in). Raises NOT_FOUND or FORBIDDEN.
        """
        async with self._sessions() as db:
            hearing = await readable_hearing(db, principal, hearing_id)
            participants = ParticipantRepository(db)
            if isinstance(principal, PartyPrincipal):
                found = await participants.get(principal.participant_id)
            elif isinstance(principal, StationPrincipal):
                found = await participants.find(hearing.id, station_id=principal.station_id)
            else:
                found = await participants.find(hearing.id, user_id=principal.user_id)
            if found is None or found.hearing_id != hearing.id:
                raise CourtError(ErrorCode.FORBIDDEN, "you are not a participant of this hearing")
            return found

    # -- lifecycle ---------------------------------------------------------------------

    async def set_hearing_state(
        self, principal: Principal, hearing_id: HearingId, target: HearingState, reason: str
    ) -> Hearing:
        """Move the hearing to `target` per the transition table in ``states``.

        Raises NOT_FOUND, FORBIDDEN (role may not take this transition), WRONG_STATE (no such
        transition from the current state) or BAD_FIELD (empty reason). Nothing changes then.
        """
        if not reason.strip():
            raise CourtError(ErrorCode.BAD_FIELD, "a reason is required")
        async with self._sessions.begin() as db:
            staff, hearing = await managed_hearing(
                db, principal, hearing_id, "change the hearing state", lock=True
            )
            source = hearing.state
            try:
                step = states.transition(source, target, staff.role)
            except states.TransitionRefused as refused:
                code = ErrorCode.FORBIDDEN if refused.forbidden else ErrorCode.WRONG_STATE
                raise CourtError(code, str(refused), state=source.value) from None
            hearing.state = target
            await EventLogRepository(db).append(
                hearing.id,
                at=self._clock.now(),
                actor=staff.actor,
                kind=EventKind.HEARING_STATE,
                data={
                    "action": step.action.value,
                    "from": source.value,
                    "to": target.value,
                    "reason": reason.strip(),
                },
            )
            return hearing

    # -- recordings --------------------------------------------------------------------

    async def confirm_recording(
        self,
        principal: Principal,
        hearing_id: HearingId,
        recording_id: str,
        root_hash: str,
        confirmed: bool,
    ) -> bool:
        """A participant confirms (or disputes) the sealed recording's root hash (AVR 9).

        Returns whether the hash they saw is the one sealed. Raises NOT_FOUND (no such sealed
        recording of this hearing) or FORBIDDEN (not a participant).
        """
        participant = await self.participant_for(principal, hearing_id)
        async with self._sessions.begin() as db:
            log = EventLogRepository(db)
            sealed = [
                e
                for e in await log.list(hearing_id)
                if e.kind == EventKind.RECORDING_SEALED
                and e.data.get("recording_id") == recording_id
            ]
            if not sealed:
                raise not_found("recording")
            matches = sealed[-1].data.get("root_hash") == root_hash
            await log.append(
                hearing_id,
                at=self._clock.now(),
                actor=f"participant:{participant.id}",
                kind=EventKind.RECORDING_CONFIRMED
                if confirmed and matches
                else EventKind.RECORDING_DISPUTED,
                data={
                    "participant_id": participant.id,
                    "recording_id": recording_id,
                    "root_hash": root_hash,
                    "matches": matches,
                    "confirmed": confirmed,
                },
            )
            return matches

    async def authorize_recording_review(self, principal: Principal, hearing_id: HearingId) -> None:
        """Presiding staff of the hearing's court may list and play back its recordings.

        Raises NOT_FOUND (not their court's hearing) or FORBIDDEN (other roles).
        """
        async with self._sessions() as db:
            await managed_hearing(db, principal, hearing_id, "review recordings")

    async def log_recording_review(
        self, principal: Principal, hearing_id: HearingId, recording_id: str
    ) -> None:
        """Put on the hearing's log who opened which recording for playback, and when."""
        async with self._sessions.begin() as db:
            staff, _ = await managed_hearing(db, principal, hearing_id, "review recordings")
            await EventLogRepository(db).append(
                hearing_id,
                at=self._clock.now(),
                actor=staff.actor,
                kind=EventKind.RECORDING_REVIEWED,
                data={"recording_id": recording_id},
            )

    # -- event log ---------------------------------------------------------------------

    async def timeline(self, principal: Principal, hearing_id: HearingId) -> Sequence[HearingEvent]:
        async with self._sessions() as db:
            await managed_hearing(db, principal, hearing_id, "read the hearing timeline")
            return await EventLogRepository(db).list(hearing_id)


def event_json(event: HearingEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "kind": event.kind,
        "data": event.data,
        "prev_hash": event.prev_hash.hex(),
        "hash": event.hash.hex(),
    }
