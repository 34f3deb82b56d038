"""The registry of live hearings in this process, loaded from storage on first use."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principals import Principal
from server.clock import Clock
from server.enums import EventKind, HearingRole, HearingState, ParticipantState
from server.errors import CourtError, not_found
from server.hearings.live import (
    Attendee,
    Clients,
    HearingHeading,
    IdentityMethod,
    LiveHearing,
    MediaRouting,
)
from server.hearings.record import DatabaseRecord
from server.hearings.service import CourtService
from server.ids import HearingId, ParticipantId
from server.media import HearingMedia
from server.storage.eventlog import EventLogRepository
from server.storage.models import Hearing, HearingEvent, Participant
from server.storage.repositories import (
    CaseRepository,
    CourtRepository,
    HearingRepository,
    ParticipantRepository,
    StationRepository,
)

log = logging.getLogger(__name__)

# Live states do not survive a restart: whoever was connected is disconnected now.
_RESTART_STATES = {
    ParticipantState.WAITING: ParticipantState.DISCONNECTED,
    ParticipantState.IN_HEARING: ParticipantState.DISCONNECTED,
    ParticipantState.IN_PRIVATE_ROOM: ParticipantState.DISCONNECTED,
}


def _attendee(row: Participant) -> Attendee:
    return Attendee(
        participant_id=ParticipantId(row.id),
        display_name=row.display_name,
        role=row.role,
        represents_id=ParticipantId(row.represents_id) if row.represents_id else None,
        legal_name=row.legal_name,
        id_number_tail=row.id_number_tail,
        state=_RESTART_STATES.get(row.state, row.state),
    )


def _restore_entry(attendees: dict[ParticipantId, Attendee], events: list[HearingEvent]) -> None:
    """Identity checks and consents already on the hearing's log hold when the hearing is
    loaded again (a restarted server, or another node of a cluster taking it over): a party
    coming back is not asked again, and is not left at a step its page has passed."""
    for event in events:
        attendee = attendees.get(ParticipantId(str(event.data.get("participant_id", ""))))
        if attendee is None:
            continue
        if event.kind == EventKind.IDENTITY_CONFIRMED:
            try:
                attendee.identity_method = IdentityMethod(str(event.data.get("method")))
            except ValueError:
                log.warning("hearing log: unknown identity method %r", event.data.get("method"))
        elif event.kind == EventKind.CONSENT_GIVEN:
            attendee.consented = True


async def _heading(db: AsyncSession, hearing: Hearing) -> HearingHeading:
    """The court, case number and station shown in the court frame of this hearing."""
    court = await CourtRepository(db).get(hearing.court_id)
    case = await CaseRepository(db).get(hearing.case_id, hearing.court_id)
    station = (
        await StationRepository(db).get(hearing.station_id, hearing.court_id)
        if hearing.station_id
        else None
    )
    return HearingHeading(
        court_name=court.name if court else "",
        case_number=case.number if case else "",
        station_name=station.name if station else None,
    )


class HearingRooms:
    """One `LiveHearing` per hearing, created on first use with its routing and clients."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        routing_for: Callable[[HearingId], MediaRouting],
        clients_for: Callable[[HearingId], Clients],
        court: CourtService,
    ) -> None:
        self._court = court
        self._sessions = sessions
        self._clock = clock
        self._routing_for = routing_for
        self._clients_for = clients_for
        self._live: dict[HearingId, LiveHearing] = {}
        self._loading = asyncio.Lock()
        self._alerts: set[asyncio.Task[None]] = set()
        # On a node of a cluster: tells the hearing's node of a state change made here
        # (over REST) when the hearing is live elsewhere; set by the web layer's cluster
        # relay when the node joins a cluster.
        self.elsewhere: (
            Callable[[HearingId, HearingState, str, ParticipantId | None], Awaitable[None]] | None
        ) = None

    def get(self, hearing_id: HearingId) -> LiveHearing | None:
        return self._live.get(hearing_id)

    async def open(self, hearing_id: HearingId) -> LiveHearing:
        """The live hearing, loaded from storage if needed. Raises NOT_FOUND."""
        live = self._live.get(hearing_id)
        if live is not None:
            return live
        async with self._loading:
            live = self._live.get(hearing_id)
            if live is None:
                live = await self._load(hearing_id)
                self._live[hearing_id] = live
        return live

    async def _load(self, hearing_id: HearingId) -> LiveHearing:
        async with self._sessions() as db:
            hearing = await HearingRepository(db).get(hearing_id)
            if hearing is None:
                raise not_found("hearing")
            rows = await ParticipantRepository(db).list_for_hearing(hearing_id)
            heading = await _heading(db, hearing)
            entries = await EventLogRepository(db).list_kinds(
                [hearing_id], [EventKind.IDENTITY_CONFIRMED, EventKind.CONSENT_GIVEN]
            )
        attendees = {ParticipantId(row.id): _attendee(row) for row in rows}
        _restore_entry(attendees, list(entries))
        station_attesters = frozenset(
            ParticipantId(row.id)
            for row in rows
            if row.role is HearingRole.STATION and row.station_id == hearing.station_id
        )
        routing = self._routing_for(hearing_id)
        live = LiveHearing(
            hearing_id=hearing_id,
            state=hearing.state,
            attendees=attendees,
            routing=routing,
            clients=self._clients_for(hearing_id),
            record=DatabaseRecord(self._sessions, self._clock, hearing_id),
            clock=self._clock,
            station_director_ids=station_attesters,
            heading=heading,
        )
        if isinstance(routing, HearingMedia):

            def alert(code: str, message: str) -> None:
                task = asyncio.ensure_future(live.recording_failed(code, message))
                self._alerts.add(task)
                task.add_done_callback(self._alerts.discard)

            routing.on_recording_error = alert
            if hearing.state is HearingState.IN_SESSION:
                # In session with no recording: the state changed while nobody was connected,
                # or the server restarted after a crash (start-up recovery sealed the old
                # package with a crash incident). Record again at once, in a new package.
                try:
                    await routing.hearing_state(HearingState.IN_SESSION)
                except Exception as exc:
                    log.exception("hearing %s: cannot start its recording", hearing_id)
                    alert("RECORDING_FAILED", str(exc))
        return live

    async def set_hearing_state(
        self,
        principal: Principal,
        hearing_id: HearingId,
        state: HearingState,
        reason: str,
        by: ParticipantId | None = None,
    ) -> Hearing:
        """Change the hearing's state (the court service checks and logs it), then tell the
        live hearing, if people are connected: the recording and everyone follow.

        `by` is the acting participant; if None it is looked up (staff acting over REST), and
        stays None for someone who takes no part in this hearing. Raises as
        `CourtService.set_hearing_state`.
        """
        hearing = await self._court.set_hearing_state(principal, hearing_id, state, reason)
        live = self.get(hearing_id)
        if live is not None or self.elsewhere is not None:
            if by is None:
                try:
                    row = await self._court.participant_for(principal, hearing_id)
                    by = ParticipantId(row.id)
                except CourtError:
                    by = None
            if live is not None:
                await live.hearing_state_changed(state, reason, by)
            elif self.elsewhere is not None:
                await self.elsewhere(hearing_id, state, reason, by)
        return hearing

    def admit_row(self, live: LiveHearing, row: Participant) -> None:
        """Make sure a participant added after the hearing went live is part of it."""
        participant_id = ParticipantId(row.id)
        if participant_id not in live.attendees:
            live.attendees[participant_id] = _attendee(row)

    def forget(self, hearing_id: HearingId) -> None:
        self._live.pop(hearing_id, None)
