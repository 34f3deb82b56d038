"""Booking hearings from the staff console, the dashboard's readiness and a closed hearing's
summary (issue 12).

Booking (``schedule``, ``update``, ``cancel``): a hearing is scheduled for a case with its
presiding judge or mediator, a clerk and the station it is held at; those three take part by
their logins, so they are added as participants at once (the room lets in only participants).
While it is still scheduled, the booking can be changed (each change is logged as
``hearing.updated`` with what changed) or cancelled with a reason (the ``cancel`` transition of
``states``: closed before it opened, logged with the reason).

Invitation states (``link_states``): the token is stored hashed, so the link itself exists only
in the issue response; what can be shown later is each participant's latest link's state:
never issued, valid (until), used (redeemed, still valid for re-entry), expired, revoked, and
how many earlier links it superseded.

Errors that belong to one form field carry ``field`` (the request's field name) in their
details, so that the page can put the message next to it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principals import PartyPrincipal, Principal, StaffPrincipal
from server.clock import Clock, utc
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
from server.hearings import states
from server.hearings.access import forbidden, managed_hearing, require_presiding
from server.hearings.station_backups import backup_states
from server.hearings.stations import overall_score
from server.ids import HearingId
from server.storage.booking_repositories import DashboardRepository, StaffRepository
from server.storage.eventlog import EventLogRepository
from server.storage.models import Case, Hearing, HearingEvent, Invitation, Participant, User
from server.storage.repositories import (
    CaseRepository,
    CourtRepository,
    HearingRepository,
    ParticipantRepository,
    StationRepository,
    UserRepository,
)
from server.storage.station_status import StationStatusRepository

# The court's zone (China keeps UTC+8 all year): "today" on the dashboard is the court's day.
COURT_ZONE = timezone(timedelta(hours=8), "Asia/Shanghai")
CANCEL = next(t for t in states.TRANSITIONS if t.action is states.HearingAction.CANCEL)
# Closed hearings stay on the dashboard this long (their summary is one click away).
RECENT_CLOSED = timedelta(days=7)


def field_error(name: str, message: str, code: ErrorCode = ErrorCode.BAD_FIELD) -> CourtError:
    return CourtError(code, f"{name}: {message}", field=name)


@dataclass(frozen=True, slots=True)
class LinkState:
    """The state of a participant's latest invitation link (see the module docstring)."""

    participant: Participant
    state: str  # never_issued, valid, not_yet_valid, used, expired, revoked
    invitation: Invitation | None
    superseded: int  # earlier links replaced by a re-issue


@dataclass(frozen=True, slots=True)
class Person:
    participant_id: str
    display_name: str
    role: HearingRole
    state: ParticipantState
    connected: bool


@dataclass(frozen=True, slots=True)
class DashboardRow:
    hearing: Hearing
    case: Case | None
    station_name: str | None
    presiding_name: str | None
    clerk_name: str | None
    people: list[Person] = field(default_factory=list)
    station_online: bool = False
    station_self_test: str | None = None  # the station's latest self-test: good, okay, bad


@dataclass(frozen=True, slots=True)
class Summary:
    hearing: Hearing
    case: Case | None
    participants: Sequence[Participant]
    events: Sequence[HearingEvent]
    departures: list[dict[str, Any]]
    recordings: list[dict[str, Any]]
    station_backups: list[dict[str, Any]]


LiveView = dict[str, tuple[ParticipantState, bool]]  # participant id -> (state, connected)


class BookingService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    # -- what to choose from ----------------------------------------------------------

    async def list_staff(self, principal: Principal) -> Sequence[User]:
        """Judges, clerks and mediators of the principal's court. Raises FORBIDDEN."""
        if not (isinstance(principal, StaffPrincipal) and principal.role in COURT_READERS):
            raise forbidden("list staff")
        async with self._sessions() as db:
            return await StaffRepository(db).list_presiding(principal.court_id)

    async def case_hearings(self, principal: Principal, case_id: str) -> Sequence[Hearing]:
        """A case's hearings, earliest first. Raises NOT_FOUND or FORBIDDEN."""
        if isinstance(principal, PartyPrincipal):
            raise not_found("case")
        async with self._sessions() as db:
            case = await CaseRepository(db).get(case_id, principal.court_id)
            if case is None:
                raise not_found("case")
            if not (isinstance(principal, StaffPrincipal) and principal.role in COURT_READERS):
                raise forbidden("read cases")
            return await HearingRepository(db).list(court_id=principal.court_id, case_id=case.id)

    async def get_booking(self, principal: Principal, hearing_id: HearingId) -> Hearing:
        """A hearing as booked, for presiding staff. Raises NOT_FOUND or FORBIDDEN."""
        async with self._sessions() as db:
            _, hearing = await managed_hearing(db, principal, hearing_id, "read the booking")
            return hearing

    # -- booking ----------------------------------------------------------------------

    async def _staff_user(
        self, db: AsyncSession, court_id: str, user_id: str, roles: set[StaffRole], name: str
    ) -> User:
        user = await UserRepository(db).get(user_id)
        if user is None or user.court_id != court_id or user.disabled:
            raise field_error(name, "no such staff member of this court")
        if user.role not in roles:
            raise field_error(name, f"a {user.role} cannot be booked here")
        return user

    async def _check_booking(
        self,
        db: AsyncSession,
        staff: StaffPrincipal,
        *,
        station_id: str | None,
        presiding_user_id: str,
        clerk_user_id: str | None,
    ) -> tuple[User, User | None]:
        if (
            station_id is not None
            and await StationRepository(db).get(station_id, staff.court_id) is None
        ):
            raise field_error("station_id", "no such station of this court")
        presiding = await self._staff_user(
            db,
            staff.court_id,
            presiding_user_id,
            {StaffRole.JUDGE, StaffRole.MEDIATOR},
            "presiding_user_id",
        )
        clerk = None
        if clerk_user_id is not None:
            clerk = await self._staff_user(
                db, staff.court_id, clerk_user_id, {StaffRole.CLERK}, "clerk_user_id"
            )
        return presiding, clerk

    async def schedule(
        self,
        principal: Principal,
        *,
        case_id: str,
        title: str,
        start: datetime,
        minutes: int,
        station_id: str | None,
        presiding_user_id: str,
        clerk_user_id: str | None,
    ) -> Hearing:
        """Schedule a hearing of a case with its staff and station as participants; the
        people of the case's latest hearing that had any are copied to it.

        Raises NOT_FOUND (case), FORBIDDEN (not presiding staff), BAD_FIELD with `field`
        (station, presiding or clerk not of the court or of the wrong role).
        """
        if isinstance(principal, PartyPrincipal):
            raise not_found("case")
        async with self._sessions.begin() as db:
            case = await CaseRepository(db).get(case_id, principal.court_id)
            if case is None:
                raise not_found("case")
            staff = require_presiding(principal, "schedule hearings")
            presiding, clerk = await self._check_booking(
                db,
                staff,
                station_id=station_id,
                presiding_user_id=presiding_user_id,
                clerk_user_id=clerk_user_id,
            )
            hearings = HearingRepository(db)
            earlier = await hearings.list(court_id=staff.court_id, case_id=case.id)
            now = self._clock.now()
            start = utc(start)
            end = start + timedelta(minutes=minutes)
            hearing = await hearings.add(
                Hearing(
                    court_id=staff.court_id,
                    case_id=case.id,
                    title=title,
                    scheduled_start=start,
                    scheduled_end=end,
                    state=HearingState.SCHEDULED,
                    station_id=station_id,
                    presiding_user_id=presiding.id,
                    clerk_user_id=clerk.id if clerk else None,
                    created_at=now,
                )
            )
            log = EventLogRepository(db)
            await log.append(
                hearing.id,
                at=now,
                actor=staff.actor,
                kind=EventKind.HEARING_SCHEDULED,
                data={
                    "case_id": case.id,
                    "scheduled_start": start.isoformat(),
                    "scheduled_end": end.isoformat(),
                    "station_id": station_id,
                    "presiding_user_id": presiding.id,
                    "clerk_user_id": clerk.id if clerk else None,
                },
            )
            await self._sync_booked_people(db, staff, hearing, presiding, clerk)
            await self._copy_people(db, staff, [h.id for h in reversed(earlier)], hearing.id)
            return hearing

    async def _copy_people(
        self, db: AsyncSession, staff: StaffPrincipal, latest_first: list[str], target_id: str
    ) -> None:
        """A case's next hearing has the same people as its latest one that had any (parties,
        agents, witnesses...; not the staff or station, who are booked): copied with what the
        court holds of them, each side kept. Their links are not: each hearing has its own."""
        participants = ParticipantRepository(db)
        log = EventLogRepository(db)
        people: list[Participant] = []
        for source_id in latest_first:
            people = [
                p
                for p in await participants.list_for_hearing(source_id)
                if p.role not in PRESIDING_ROLES and p.role is not HearingRole.STATION
            ]
            if people:
                break
        copied: dict[str, str] = {}
        for person in people:
            now = self._clock.now()
            added = await participants.add(
                Participant(
                    hearing_id=target_id,
                    display_name=person.display_name,
                    role=person.role,
                    state=ParticipantState.INVITED,
                    legal_name=person.legal_name,
                    id_number_tail=person.id_number_tail,
                    phone=person.phone,
                    represents_id=copied.get(person.represents_id or ""),
                    created_at=now,
                )
            )
            copied[person.id] = added.id
            await log.append(
                target_id,
                at=now,
                actor=staff.actor,
                kind=EventKind.PARTICIPANT_ADDED,
                data={"participant_id": added.id, "role": person.role.value},
            )

    async def _sync_booked_people(
        self,
        db: AsyncSession,
        staff: StaffPrincipal,
        hearing: Hearing,
        presiding: User,
        clerk: User | None,
    ) -> None:
        """Make the booked staff and station the hearing's participants in those roles (a
        changed booking replaces a participant who has not connected yet, or adds one)."""
        participants = ParticipantRepository(db)
        rows = await participants.list_for_hearing(hearing.id)
        wanted: list[tuple[HearingRole, str | None, str | None, str]] = [
            (HearingRole(presiding.role.value), presiding.id, None, presiding.display_name)
        ]
        if clerk is not None:
            wanted.append((HearingRole.CLERK, clerk.id, None, clerk.display_name))
        if hearing.station_id is not None:
            station = await StationRepository(db).get(hearing.station_id)
            assert station is not None
            wanted.append((HearingRole.STATION, None, station.id, station.name))
        log = EventLogRepository(db)
        for role, user_id, station_id, name in wanted:
            seat = next((r for r in rows if _seat(r.role) == _seat(role)), None)
            if seat is not None and (seat.user_id, seat.station_id) == (user_id, station_id):
                continue
            now = self._clock.now()
            if seat is not None and seat.state is ParticipantState.INVITED:
                # The seat, booked for someone else: handed over while nobody sat in it.
                seat.user_id, seat.station_id = user_id, station_id
                seat.display_name, seat.role = name, role
                continue
            added = await participants.add(
                Participant(
                    hearing_id=hearing.id,
                    display_name=name,
                    role=role,
                    state=ParticipantState.INVITED,
                    user_id=user_id,
                    station_id=station_id,
                    created_at=now,
                )
            )
            await log.append(
                hearing.id,
                at=now,
                actor=staff.actor,
                kind=EventKind.PARTICIPANT_ADDED,
                data={"participant_id": added.id, "role": role.value},
            )

    async def update(
        self,
        principal: Principal,
        hearing_id: HearingId,
        *,
        title: str,
        start: datetime,
        minutes: int,
        station_id: str | None,
        presiding_user_id: str,
        clerk_user_id: str | None,
    ) -> Hearing:
        """Change a scheduled hearing's booking; the change is logged with what changed.

        Raises NOT_FOUND, FORBIDDEN, WRONG_STATE (no longer scheduled) or BAD_FIELD.
        """
        async with self._sessions.begin() as db:
            staff, hearing = await managed_hearing(
                db, principal, hearing_id, "change the booking", lock=True
            )
            if hearing.state is not HearingState.SCHEDULED:
                raise CourtError(
                    ErrorCode.WRONG_STATE,
                    "only a scheduled hearing can be changed",
                    state=hearing.state.value,
                )
            presiding, clerk = await self._check_booking(
                db,
                staff,
                station_id=station_id,
                presiding_user_id=presiding_user_id,
                clerk_user_id=clerk_user_id,
            )
            start = utc(start)
            new = {
                "title": title,
                "scheduled_start": start,
                "scheduled_end": start + timedelta(minutes=minutes),
                "station_id": station_id,
                "presiding_user_id": presiding.id,
                "clerk_user_id": clerk.id if clerk else None,
            }
            changed: dict[str, Any] = {}
            for name, value in new.items():
                if getattr(hearing, name) != value:
                    setattr(hearing, name, value)
                    changed[name] = value.isoformat() if isinstance(value, datetime) else value
            if changed:
                await EventLogRepository(db).append(
                    hearing.id,
                    at=self._clock.now(),
                    actor=staff.actor,
                    kind=EventKind.HEARING_UPDATED,
                    data=changed,
                )
                await self._sync_booked_people(db, staff, hearing, presiding, clerk)
            return hearing

    async def cancel(self, principal: Principal, hearing_id: HearingId, reason: str) -> Hearing:
        """Cancel a scheduled hearing (it becomes closed; the reason is logged and kept).

        Raises NOT_FOUND, FORBIDDEN (a clerk may not cancel: ``states``), WRONG_STATE (not
        scheduled) or BAD_FIELD (empty reason).
        """
        reason = reason.strip()
        if not reason:
            raise field_error("reason", "a reason is required")
        async with self._sessions.begin() as db:
            staff, hearing = await managed_hearing(
                db, principal, hearing_id, "cancel hearings", lock=True
            )
            source = hearing.state
            # The role first, then the state: who may cancel does not depend on the moment.
            if staff.role not in CANCEL.roles:
                raise forbidden("cancel hearings")
            if source is not CANCEL.source:
                raise CourtError(
                    ErrorCode.WRONG_STATE,
                    "only a scheduled hearing can be cancelled; close it instead",
                    state=source.value,
                )
            hearing.state = HearingState.CLOSED
            hearing.cancel_reason = reason
            await EventLogRepository(db).append(
                hearing.id,
                at=self._clock.now(),
                actor=staff.actor,
                kind=EventKind.HEARING_STATE,
                data={
                    "action": CANCEL.action.value,
                    "from": source.value,
                    "to": HearingState.CLOSED.value,
                    "reason": reason,
                },
            )
            return hearing

    # -- invitation links -------------------------------------------------------------

    async def link_states(self, principal: Principal, hearing_id: HearingId) -> list[LinkState]:
        """Each invited participant's latest link and its state. Raises NOT_FOUND, FORBIDDEN."""
        async with self._sessions() as db:
            await managed_hearing(db, principal, hearing_id, "list invitations")
            people = await ParticipantRepository(db).list_for_hearing(hearing_id)
            invitations = await DashboardRepository(db).invitations(hearing_id)
        by_participant: dict[str, list[Invitation]] = defaultdict(list)
        for invitation in invitations:
            by_participant[invitation.participant_id].append(invitation)
        now = self._clock.now()
        out = []
        for person in people:
            if person.role in PRESIDING_ROLES or person.role is HearingRole.STATION:
                continue
            links = by_participant.get(person.id, [])
            # At most one link is live (issuing revokes the others); else the last revoked.
            live = [i for i in links if i.revoked_at is None]
            latest = live[-1] if live else links[-1] if links else None
            out.append(
                LinkState(
                    participant=person,
                    state=_link_state(latest, now),
                    invitation=latest,
                    superseded=max(len(links) - 1, 0),
                )
            )
        return out

    # -- dashboard --------------------------------------------------------------------

    async def dashboard(
        self, principal: Principal, live: Callable[[str], LiveView | None]
    ) -> tuple[datetime, str, list[DashboardRow]]:
        """Today's and later hearings (and those closed in the last week) with their people.

        `live` gives, for a hearing id, what its live room knows now (state and connection per
        participant); hearings without a live room show the stored states. Returns the start
        of the court's today, the court's name and the rows. Raises FORBIDDEN (parties and
        stations).
        """
        if not isinstance(principal, StaffPrincipal):
            raise forbidden("see the dashboard")
        now = self._clock.now()
        today = now.astimezone(COURT_ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
        async with self._sessions() as db:
            repo = DashboardRepository(db)
            station_ids: list[str] | None = None
            if principal.role is StaffRole.STATION_DIRECTOR:
                directed = await StationRepository(db).list_for_director(principal.user_id)
                station_ids = [s.id for s in directed]
            elif principal.role not in COURT_READERS:
                raise forbidden("see the dashboard")
            hearings = [
                h
                for h in await repo.hearings_since(
                    principal.court_id, min(today, now - RECENT_CLOSED), station_ids
                )
                if h.state is not HearingState.CLOSED or h.scheduled_end >= now - RECENT_CLOSED
            ]
            cases = await repo.cases([h.case_id for h in hearings])
            stations = await repo.stations(principal.court_id)
            users = await StaffRepository(db).by_ids(
                [h.presiding_user_id for h in hearings]
                + [h.clerk_user_id for h in hearings if h.clerk_user_id]
            )
            people = await repo.participants([h.id for h in hearings])
            court = await CourtRepository(db).get(principal.court_id)
            statuses = await StationStatusRepository(db).list(
                sorted({h.station_id for h in hearings if h.station_id})
            )
        self_tests = {
            status.station_id: overall_score(status.self_test.get("items", []))
            for status in statuses
            if status.self_test
        }
        by_hearing: dict[str, list[Participant]] = defaultdict(list)
        for person in people:
            by_hearing[person.hearing_id].append(person)
        rows = []
        for hearing in hearings:
            view = live(hearing.id) or {}
            persons = [
                Person(
                    participant_id=p.id,
                    display_name=p.display_name,
                    role=p.role,
                    state=view[p.id][0] if p.id in view else p.state,
                    connected=view[p.id][1] if p.id in view else False,
                )
                for p in by_hearing[hearing.id]
            ]
            station = stations.get(hearing.station_id) if hearing.station_id else None
            presiding = users.get(hearing.presiding_user_id)
            clerk = users.get(hearing.clerk_user_id) if hearing.clerk_user_id else None
            rows.append(
                DashboardRow(
                    hearing=hearing,
                    case=cases.get(hearing.case_id),
                    station_name=station.name if station else None,
                    presiding_name=presiding.display_name if presiding else None,
                    clerk_name=clerk.display_name if clerk else None,
                    people=persons,
                    station_online=any(
                        p.role is HearingRole.STATION and p.connected for p in persons
                    ),
                    station_self_test=self_tests.get(hearing.station_id or ""),
                )
            )
        return today, court.name if court else "", rows

    # -- summary ----------------------------------------------------------------------

    async def summary(self, principal: Principal, hearing_id: HearingId) -> Summary:
        """What happened in a hearing, from its event log. Raises NOT_FOUND, FORBIDDEN."""
        async with self._sessions() as db:
            _, hearing = await managed_hearing(db, principal, hearing_id, "read the summary")
            case = await CaseRepository(db).get(hearing.case_id, hearing.court_id)
            participants = await ParticipantRepository(db).list_for_hearing(hearing_id)
            events = await EventLogRepository(db).list(hearing_id)
        return Summary(
            hearing=hearing,
            case=case,
            participants=participants,
            events=events,
            departures=[
                {"at": e.at, **e.data} for e in events if e.kind == EventKind.PARTICIPANT_DEPARTED
            ],
            recordings=_recordings(events),
            station_backups=_backups(events),
        )


def _link_state(latest: Invitation | None, now: datetime) -> str:
    if latest is None:
        return "never_issued"
    if latest.revoked_at is not None:
        return "revoked"
    if latest.not_after <= now:
        return "expired"
    if latest.redeemed_at is not None:
        return "used"
    if latest.not_before > now:
        return "not_yet_valid"
    return "valid"


def _recordings(events: Sequence[HearingEvent]) -> list[dict[str, Any]]:
    """Each sealed recording with its root hash and who confirmed or disputed it."""
    sealed: dict[str, dict[str, Any]] = {}
    for e in events:
        rid = str(e.data.get("recording_id", ""))
        if e.kind == EventKind.RECORDING_SEALED:
            sealed[rid] = {
                "recording_id": rid,
                "at": e.at,
                "root_hash": e.data.get("root_hash"),
                "status": e.data.get("status"),
                "confirmations": [],
            }
        elif (
            e.kind in (EventKind.RECORDING_CONFIRMED, EventKind.RECORDING_DISPUTED)
            and rid in sealed
        ):
            sealed[rid]["confirmations"].append(
                {
                    "participant_id": e.data.get("participant_id"),
                    "confirmed": e.kind == EventKind.RECORDING_CONFIRMED,
                    "matches": bool(e.data.get("matches")),
                    "at": e.at,
                }
            )
    return list(sealed.values())


def _backups(events: Sequence[HearingEvent]) -> list[dict[str, Any]]:
    """Each backup a station registered, and whether the court received it intact."""
    return [
        {
            "recording_id": b.recording_id,
            "at": b.registered_at,
            "station_id": b.station_id,
            "received": b.received,
            "root_hash": b.root_hash,
        }
        for b in backup_states(events)
    ]


def _seat(role: HearingRole) -> str:
    """The booked seat a role sits in: the presiding seat (judge or mediator), the clerk's,
    the station's; everyone else has their own."""
    if role in (HearingRole.JUDGE, HearingRole.MEDIATOR):
        return "presiding"
    return role.value
