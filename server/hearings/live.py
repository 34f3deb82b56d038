"""Live hearings: who is connected, where each person is, and what media reaches whom.

A ``LiveHearing`` holds one hearing in progress in the main process. Every rule of the room is
enforced here, whatever a client's interface shows:

- **Entry** (OLR 4-7, 27): a party confirms identity (legal name plus the ID-number digits the
  court holds), or the station checks it in person (the name and digits read from the ID
  document must match the court's record), or presiding staff check it another way (also
  after the party is locked out of its own check); each such check is logged with who and
  how. Then the party consents to online
  proceedings, the court's rules and the ban on recording. Only then does the party wait.
  Staff enter on their login; the check is repeated for every hearing, not every reconnect.
- **Waiting room**: presiding staff admit one or all, and can send people back. Witnesses and
  experts stay apart until called and leave when dismissed (OLR 26). While the hearing is in
  session, arrivals wait unless the judge pre-admitted their role. A locked room admits nobody.
- **Private rooms**: a mediator or judge moves parties (and their agents) between the main
  room and caucus rooms; an agent may open a consultation with their own client outside the
  session. Caucus is off the record (OMR 18): the log says when and who, never what.
- **Controls**: mute one or all (the server stops forwarding their audio and tells them); a
  muted participant may ask to speak and only staff unmute; remove, lock, spotlight.
- **Departures** carry a cause (clicked leave, removed, dismissed, ICE failed, socket lost,
  heartbeat lost, station power or network trouble), shown live to staff and kept in the log:
  OLR 25 treats leaving without cause as failure to appear.

Media follows the rooms strictly through ``MediaRouting.place``: a person receives and is
received by exactly the people in the same media room; anyone waiting or outside the session
is alone in their own room. Every state change is written to the hearing's hash-chained event
log (and the participant's row) before it takes effect; operations on one hearing run one at
a time under a lock, so the log and the live state agree.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from server.clock import Clock
from server.enums import (
    PRESIDING_ROLES,
    RUNNING_ROLES,
    EventKind,
    HearingRole,
    HearingState,
    ParticipantState,
)
from server.errors import CourtError, ErrorCode
from server.ids import HearingId, ParticipantId
from signaling.enums import RecordingPause
from signaling.reasons import CloseReason

log = logging.getLogger(__name__)

P = ParticipantState
MAIN_ROOM = "main"
# Who may move people between the main room and caucus rooms (the role table, server/enums).
ROOM_MOVERS = RUNNING_ROLES
CALLED_ROLES = frozenset({HearingRole.WITNESS, HearingRole.EXPERT})
PARTY_ROLES = frozenset({HearingRole.PLAINTIFF, HearingRole.DEFENDANT})
REQUIRED_CONSENTS = frozenset({"online_proceedings", "court_rules", "no_recording"})
MAX_IDENTITY_ATTEMPTS = 3
# Causes of a departure that are not the participant's choice (OLR 25).
EXCUSED_CAUSES = frozenset(
    {
        CloseReason.ICE_FAILED,
        CloseReason.NETWORK_LOST,
        CloseReason.HEARTBEAT_LOST,
        CloseReason.STATION_POWER,
        CloseReason.STATION_NETWORK,
        CloseReason.WORKER_DIED,
        CloseReason.SERVER_SHUTDOWN,
        CloseReason.JUDGE_ENDED,
        CloseReason.DISMISSED,
        CloseReason.SESSION_REVOKED,  # the court withdrew the link (or it moved to a new device)
    }
)
# A connection ended for these causes keeps no place to come back to: the next connection
# (a new device, a new link) goes through the waiting room, where the court sees who it is.
UNRESUMABLE_CAUSES = frozenset({CloseReason.SESSION_REVOKED})
# Where a departure leaves the participant; any other cause is a disconnection they may
# resume from (their place is kept).
DEPARTURE_STATES = {
    CloseReason.CLIENT_LEFT: ParticipantState.LEFT,
    CloseReason.REMOVED: ParticipantState.REMOVED,
    CloseReason.DISMISSED: ParticipantState.LEFT,
    CloseReason.JUDGE_ENDED: ParticipantState.LEFT,
}


class IdentityMethod(StrEnum):
    STAFF_LOGIN = "staff_login"
    STATION_KEY = "station_key"
    SELF_DECLARED = "self_declared"  # name and ID digits matched what the court holds
    STATION_ATTESTED = "station_attested"  # checked in person by the station director
    STAFF_ATTESTED = "staff_attested"  # checked by presiding staff another way (issue 14)


class IdentityCheck(StrEnum):
    """How someone other than the party checked the party's identity (the log keeps it)."""

    IN_PERSON = "in_person"  # ID document seen in person at the station
    DOCUMENT_ON_VIDEO = "document_on_video"  # ID document held up to the camera
    OTHER = "other"  # another way, described in the note (required)


# -- what the hearing tells its clients ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HearingHeading:
    """What the court frame shows everyone in the room (OLR 24): the court, the case number
    and the station the hearing is held at (None when it is held at none)."""

    court_name: str = ""
    case_number: str = ""
    station_name: str | None = None


@dataclass(frozen=True, slots=True)
class AttendeeView:
    participant_id: ParticipantId
    display_name: str
    role: HearingRole
    state: ParticipantState
    room: str | None
    muted: bool
    connected: bool
    identity_method: str | None
    # The party's last device check (what `report_readiness` carried), for presiding staff.
    readiness: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RosterChanged:
    attendees: tuple[AttendeeView, ...]


@dataclass(frozen=True, slots=True)
class HearingStateChanged:
    state: HearingState
    reason: str
    recording: bool = False
    # Why presiding staff interrupted the recording (`set_recording`); None otherwise.
    recording_pause: RecordingPause | None = None
    # Who did it: the acting participant (None: the server, or staff outside the hearing).
    by: ParticipantId | None = None


@dataclass(frozen=True, slots=True)
class YouChanged:
    """Sent to a participant whose own state or room changed."""

    state: ParticipantState
    room: str | None
    # Who moved them (themself when they moved on their own; None: the rules, on entry).
    by: ParticipantId | None = None


@dataclass(frozen=True, slots=True)
class MutedChanged:
    muted: bool
    by: ParticipantId | None


@dataclass(frozen=True, slots=True)
class UnmuteRequested:
    """To staff: this muted participant asks to speak."""

    participant_id: ParticipantId


@dataclass(frozen=True, slots=True)
class SpotlightChanged:
    participant_id: ParticipantId | None


@dataclass(frozen=True, slots=True)
class RoomLockChanged:
    locked: bool
    by: ParticipantId | None = None


@dataclass(frozen=True, slots=True)
class DepartureRecorded:
    """Disconnect evidence, for staff: who left, why, when, and whether it was excused."""

    participant_id: ParticipantId
    cause: CloseReason
    at: datetime
    excused: bool
    detail: str


@dataclass(frozen=True, slots=True)
class RecordingSealed:
    """To everyone, when the hearing closes: the sealed recording's root hash (AVR 9)."""

    recording_id: str
    root_hash: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RecordingAlert:
    """To presiding staff, at once: the evidence recording is in trouble."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class StationReported:
    """To presiding staff, at once: a station reported trouble."""

    participant_id: ParticipantId
    cause: str
    detail: str
    since: datetime


@dataclass(frozen=True, slots=True)
class RecordChanged:
    """To presiding staff and the main room: the hearing record changed (issue 15)."""

    kind: str
    document_id: str
    version: int
    state: str
    text: str
    text_sha256: str
    signers: tuple[tuple[str, str, HearingRole, str], ...]  # id, name, role, status


@dataclass(frozen=True, slots=True)
class ScreenShareChanged:
    """A step of a screen share (issue 13.4): requested, allowed, denied, live, stopped."""

    participant_id: ParticipantId
    state: str
    by: ParticipantId | None = None
    reason: str = ""
    mid: str | None = None


LiveEvent = (
    RosterChanged
    | HearingStateChanged
    | YouChanged
    | MutedChanged
    | UnmuteRequested
    | SpotlightChanged
    | RoomLockChanged
    | DepartureRecorded
    | RecordingSealed
    | RecordingAlert
    | StationReported
    | RecordChanged
    | ScreenShareChanged
)


# -- the edges ----------------------------------------------------------------------------------


class MediaRouting(Protocol):
    """The SFU side of a hearing (a Router in-process, or a proxy to a worker)."""

    async def place(self, participant_id: ParticipantId, room: str | None) -> None:
        """Put the participant's media in `room`; None isolates it (receives and sends nothing)."""

    async def set_muted(self, participant_id: ParticipantId, muted: bool) -> None:
        """Stop (or resume) forwarding the participant's audio."""

    async def set_recorded(self, participant_id: ParticipantId, recorded: bool) -> None:
        """Record the participant's media in the evidence recording, or not."""

    async def hearing_state(self, state: HearingState) -> Any:
        """Follow the hearing's state; on close, return the sealed recording (or None)."""

    @property
    def recording(self) -> bool:
        """Whether the evidence recording runs now (told to everyone: they are on the record)."""

    @property
    def recording_pause(self) -> RecordingPause | None:
        """The reason given to `pause_recording` while the recording is interrupted by it;
        None while it runs, paused for the recess, or not started."""

    async def pause_recording(self, reason: RecordingPause, note: str) -> None:
        """Interrupt the evidence recording for a lawful reason."""

    async def resume_recording(self) -> None:
        """Resume the evidence recording after `pause_recording`."""

    async def set_screen(self, participant_id: ParticipantId, mid: str | None) -> None:
        """Forward (and record) the participant's m-line `mid` as their shared screen; None
        stops it. The SFU forwards no other stream beyond a camera and a microphone."""


class Clients(Protocol):
    """The signaling connections of a hearing."""

    async def send(self, participant_id: ParticipantId, event: LiveEvent) -> None: ...

    async def close(self, participant_id: ParticipantId, reason: CloseReason) -> None: ...


class Record(Protocol):
    """Durable writes: the participant's state and the hearing's event log, in one transaction."""

    async def write(
        self,
        *,
        actor: str,
        kind: EventKind,
        data: dict[str, Any],
        participant_states: dict[ParticipantId, ParticipantState] | None = None,
    ) -> None: ...


# -- state ----------------------------------------------------------------------------------------


@dataclass
class Attendee:
    participant_id: ParticipantId
    display_name: str
    role: HearingRole
    represents_id: ParticipantId | None = None
    legal_name: str | None = None
    id_number_tail: str | None = None
    state: ParticipantState = P.INVITED
    private_room: str | None = None
    muted: bool = False
    unmute_requested: bool = False
    connected: bool = False
    identity_method: IdentityMethod | None = None
    identity_attempts: int = 0
    consented: bool = False
    # Where the participant was when the connection dropped, to return them after a reconnect.
    resume_state: ParticipantState | None = None
    # The last device check the participant reported (held while the hearing is live).
    readiness: dict[str, Any] | None = None

    @property
    def actor(self) -> str:
        return f"participant:{self.participant_id}"

    @property
    def media_room(self) -> str | None:
        if not self.connected:
            return None
        if self.state is P.IN_HEARING:
            return MAIN_ROOM
        if self.state is P.IN_PRIVATE_ROOM:
            return self.private_room
        return None

    def view(self) -> AttendeeView:
        return AttendeeView(
            participant_id=self.participant_id,
            display_name=self.display_name,
            role=self.role,
            state=self.state,
            room=self.media_room,
            muted=self.muted,
            connected=self.connected,
            identity_method=self.identity_method.value if self.identity_method else None,
            readiness=self.readiness,
        )


def _normalise(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


def _refuse(message: str, code: ErrorCode = ErrorCode.WRONG_STATE, **details: Any) -> CourtError:
    return CourtError(code, message, **details)


@dataclass
class LiveHearing:
    """One hearing in progress; see the module docstring for the rules.

    Every public coroutine takes the acting participant's id first, and raises CourtError with
    FORBIDDEN (wrong role), NOT_FOUND (no such participant in this hearing), WRONG_STATE (not
    possible now) or BAD_FIELD; when it raises, nothing changed.
    """

    hearing_id: HearingId
    state: HearingState
    attendees: dict[ParticipantId, Attendee]
    routing: MediaRouting
    clients: Clients
    record: Record
    clock: Clock
    station_director_ids: frozenset[ParticipantId] = frozenset()
    locked: bool = False
    spotlight: ParticipantId | None = None
    pre_admitted: set[HearingRole] = field(default_factory=set)
    heading: HearingHeading = field(default_factory=HearingHeading)
    # Screen sharing (issue 13.4): pending requests in order, the one allowed or live share,
    # and the m-line it is on once live.
    screen_requests: list[ParticipantId] = field(default_factory=list)
    screen_sharer: ParticipantId | None = None
    screen_mid: str | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # -- helpers ------------------------------------------------------------------------------

    def _get(self, participant_id: ParticipantId) -> Attendee:
        attendee = self.attendees.get(participant_id)
        if attendee is None:
            raise CourtError(ErrorCode.NOT_FOUND, "no such participant in this hearing")
        return attendee

    def _presiding(self, actor_id: ParticipantId, action: str) -> Attendee:
        actor = self._get(actor_id)
        if actor.role not in PRESIDING_ROLES or not actor.connected:
            raise CourtError(ErrorCode.FORBIDDEN, f"only presiding staff may {action}")
        return actor

    def check_presiding(self, actor_id: ParticipantId, action: str) -> None:
        """Raises FORBIDDEN unless the actor is connected presiding staff (judge, clerk,
        mediator): for what only the court may see, such as everyone's connection quality."""
        self._presiding(actor_id, action)

    def _movers(self, actor_id: ParticipantId, action: str) -> Attendee:
        actor = self._get(actor_id)
        if actor.role not in ROOM_MOVERS or not actor.connected:
            raise CourtError(ErrorCode.FORBIDDEN, f"only the judge or mediator may {action}")
        return actor

    def _live(self) -> None:
        if self.state is HearingState.CLOSED:
            raise _refuse("the hearing is closed")

    @property
    def recording_pause(self) -> RecordingPause | None:
        """Why presiding staff interrupted the recording (told to everyone), or None."""
        return self.routing.recording_pause

    def _state_event(self, reason: str, by: ParticipantId | None = None) -> HearingStateChanged:
        """The hearing's state as everyone is told it, with whether they are on the record."""
        return HearingStateChanged(
            self.state, reason, self.routing.recording, self.recording_pause, by
        )

    async def _apply(
        self,
        actor: str,
        kind: EventKind,
        data: dict[str, Any],
        changes: Sequence[tuple[Attendee, ParticipantState, str | None]] = (),
        by: ParticipantId | None = None,
    ) -> None:
        """Write the change durably, then make it so: states, media placement, notices
        (`by`: the participant who made the change, told to those it moved)."""
        await self.record.write(
            actor=actor,
            kind=kind,
            data=data,
            participant_states={a.participant_id: new for a, new, _room in changes} or None,
        )
        for attendee, new_state, private_room in changes:
            before = attendee.media_room
            attendee.state = new_state
            attendee.private_room = private_room if new_state is P.IN_PRIVATE_ROOM else None
            if attendee.connected:
                after = attendee.media_room
                if after != before:
                    # Only the main room is on the record (caucus is not, OMR 18): stop
                    # recording before media leaves it, start after media arrives in it.
                    if before == MAIN_ROOM:
                        await self.routing.set_recorded(attendee.participant_id, False)
                    await self.routing.place(attendee.participant_id, after)
                    if after == MAIN_ROOM:
                        await self.routing.set_recorded(attendee.participant_id, True)
                await self._notify(
                    attendee.participant_id, YouChanged(new_state, attendee.media_room, by)
                )
        for attendee, _state, _room in changes:
            if attendee.media_room != MAIN_ROOM:
                await self._screen_share_left(attendee)
        if changes:
            await self._broadcast_roster()

    async def _notify(self, participant_id: ParticipantId, event: LiveEvent) -> None:
        try:
            await self.clients.send(participant_id, event)
        except Exception:  # a dead socket must not stop the room
            log.exception("could not notify participant %s", participant_id)

    def _connected(self) -> Iterable[Attendee]:
        return (a for a in self.attendees.values() if a.connected)

    def roster_for(self, viewer: Attendee) -> tuple[AttendeeView, ...]:
        """Staff see everyone (with their device checks); others see staff and the people in
        their own media room."""
        if viewer.role in PRESIDING_ROLES:
            return tuple(a.view() for a in self.attendees.values())
        room = viewer.media_room
        return tuple(
            replace(a.view(), readiness=None)
            for a in self.attendees.values()
            if a is viewer or a.role in PRESIDING_ROLES or (room and a.media_room == room)
        )

    async def _broadcast_roster(self) -> None:
        for attendee in list(self._connected()):
            await self._notify(attendee.participant_id, RosterChanged(self.roster_for(attendee)))

    async def _broadcast(self, event: LiveEvent, *, staff_only: bool = False) -> None:
        for attendee in list(self._connected()):
            if not staff_only or attendee.role in PRESIDING_ROLES:
                await self._notify(attendee.participant_id, event)

    def _arrival_state(self, attendee: Attendee) -> ParticipantState:
        """Where someone ready to take part goes: the hearing room or the waiting room."""
        if attendee.role in PRESIDING_ROLES:
            return P.IN_HEARING
        if (
            self.state is HearingState.IN_SESSION
            and attendee.role in self.pre_admitted
            and attendee.role not in CALLED_ROLES
            and not self.locked
        ):
            return P.IN_HEARING
        return P.WAITING

    async def record_changed(self, event: RecordChanged) -> None:
        """Tell presiding staff and the people in the main room that the hearing record
        changed; never those in a caucus room or waiting: what is said there stays off the
        record (OMR 18), and so does the record's progress while they are there."""
        for attendee in list(self._connected()):
            if attendee.role in PRESIDING_ROLES or attendee.media_room == MAIN_ROOM:
                await self._notify(attendee.participant_id, event)

    # -- connection -------------------------------------------------------------------------------

    async def duplicate_session(self, participant_id: ParticipantId) -> None:
        """A second connection of the participant replaces the first (logged before the old
        one is closed with DUPLICATE_SESSION)."""
        await self.record.write(
            actor=f"participant:{participant_id}",
            kind=EventKind.PARTICIPANT_DUPLICATE_SESSION,
            data={"participant_id": participant_id},
        )

    async def connect(self, participant_id: ParticipantId) -> Attendee:
        """A participant's signaling connection joined (after authentication).

        Staff enter the hearing room, a station and parties start (or resume) their entry
        steps. Raises WRONG_STATE if the hearing is closed or the participant was removed.
        """
        async with self._lock:
            self._live()
            attendee = self._get(participant_id)
            if attendee.state is P.REMOVED:
                raise _refuse("you were removed from this hearing")
            if attendee.role in CALLED_ROLES and attendee.state is P.LEFT:
                raise _refuse("you were dismissed from this hearing")
            # A connection that replaces one the server still holds (a page rejoining before
            # its dead socket was noticed: DUPLICATE_SESSION) keeps the place it had.
            replacing = attendee.connected and attendee.state in (
                P.IN_HEARING,
                P.IN_PRIVATE_ROOM,
                P.WAITING,
            )
            attendee.connected = True
            if attendee.role in PRESIDING_ROLES:
                attendee.identity_method = IdentityMethod.STAFF_LOGIN
                attendee.consented = True
            elif attendee.role is HearingRole.STATION:
                attendee.identity_method = IdentityMethod.STATION_KEY
                attendee.consented = True
            target: ParticipantState
            if replacing:
                target, kind = attendee.state, EventKind.PARTICIPANT_RECONNECTED
            elif attendee.resume_state is not None:
                target, attendee.resume_state = attendee.resume_state, None
                kind = EventKind.PARTICIPANT_RECONNECTED
            elif attendee.identity_method is not None and attendee.consented:
                target, kind = self._arrival_state(attendee), EventKind.PARTICIPANT_JOINED
            else:
                target, kind = P.INVITED, EventKind.PARTICIPANT_CONNECTED
            await self._apply(
                attendee.actor,
                kind,
                {"participant_id": participant_id, "state": target.value},
                [(attendee, target, attendee.private_room)],
            )
            # Tell the SFU where this connection's media belongs, even when nothing changed.
            await self.routing.set_recorded(participant_id, attendee.media_room == MAIN_ROOM)
            await self.routing.place(participant_id, attendee.media_room)
            await self._screen_catch_up(attendee)
            return attendee

    async def disconnect(
        self, participant_id: ParticipantId, cause: CloseReason, detail: str = ""
    ) -> None:
        """The participant's connection ended with `cause`; record the evidence."""
        async with self._lock:
            attendee = self.attendees.get(participant_id)
            if attendee is None or not attendee.connected:
                return
            if cause is CloseReason.DUPLICATE_SESSION:
                return  # the new connection carries on in the same place
            now = self.clock.now()
            excused = cause in EXCUSED_CAUSES
            new_state = DEPARTURE_STATES.get(cause, P.DISCONNECTED)
            if (
                new_state is P.DISCONNECTED
                and cause not in UNRESUMABLE_CAUSES
                and attendee.state in (P.IN_HEARING, P.IN_PRIVATE_ROOM, P.WAITING)
            ):
                attendee.resume_state = attendee.state
            await self.routing.place(participant_id, None)
            attendee.connected = False
            await self._apply(
                attendee.actor,
                EventKind.PARTICIPANT_DEPARTED,
                {
                    "participant_id": participant_id,
                    "cause": cause.value,
                    "excused": excused,
                    "detail": detail[:500],
                    "was": attendee.state.value,
                },
                [(attendee, new_state, attendee.private_room)],
            )
            await self._broadcast(
                DepartureRecorded(participant_id, cause, now, excused, detail[:500]),
                staff_only=True,
            )

    async def access_revoked(self, participant_id: ParticipantId) -> None:
        """The participant's invitation was revoked or re-issued (their sessions are ended by
        the caller): a place kept from an earlier drop is forgotten, so whoever comes next
        with a new link waits to be admitted."""
        async with self._lock:
            attendee = self.attendees.get(participant_id)
            if attendee is not None:
                attendee.resume_state = None

    # -- entry ------------------------------------------------------------------------------------

    async def confirm_identity(
        self, participant_id: ParticipantId, legal_name: str, id_digits: str
    ) -> None:
        """A party's own identity check against what the court holds.

        Raises WRONG_STATE (not in the entry step, or too many failed attempts: staff or the
        station must check now), or BAD_FIELD (no match; the attempt is counted and logged).
        """
        async with self._lock:
            self._live()
            attendee = self._get(participant_id)
            if attendee.state is not P.INVITED or attendee.identity_method is not None:
                raise _refuse("identity is already confirmed")
            if not attendee.legal_name or not attendee.id_number_tail:
                raise _refuse("the court must check your identity; please wait for staff")
            if attendee.identity_attempts >= MAX_IDENTITY_ATTEMPTS:
                raise _refuse("too many attempts; the court or station staff will check you")
            matches = _normalise(legal_name) == _normalise(attendee.legal_name) and (
                id_digits.strip().upper() == attendee.id_number_tail.upper()
            )
            if not matches:
                attendee.identity_attempts += 1
                await self.record.write(
                    actor=attendee.actor,
                    kind=EventKind.IDENTITY_FAILED,
                    data={"participant_id": participant_id, "attempt": attendee.identity_attempts},
                )
                raise CourtError(
                    ErrorCode.BAD_FIELD,
                    "the name or ID digits do not match the court's records",
                    attempts_left=MAX_IDENTITY_ATTEMPTS - attendee.identity_attempts,
                )
            await self._identity_confirmed(attendee, IdentityMethod.SELF_DECLARED, attendee.actor)

    async def attest_identity(
        self,
        actor_id: ParticipantId,
        participant_id: ParticipantId,
        *,
        check: IdentityCheck = IdentityCheck.IN_PERSON,
        name: str | None = None,
        id_digits: str | None = None,
        note: str = "",
    ) -> None:
        """Someone other than the party checks the party's identity: the hearing's station
        (in person, for people present there) or presiding staff (another way, e.g. the ID
        document on video), also after the party is locked out of its own check.

        Raises FORBIDDEN (another role), BAD_FIELD (the name or digits do not match the court's
        record, a station checking other than in person, `other` without a note) or
        WRONG_STATE (already confirmed, staff or station, the hearing closed).
        """
        async with self._lock:
            self._live()
            actor = self._get(actor_id)
            if actor.connected and actor_id in self.station_director_ids:
                method = IdentityMethod.STATION_ATTESTED
                if check is not IdentityCheck.IN_PERSON:
                    raise CourtError(ErrorCode.BAD_FIELD, "a station checks identity in person")
            elif actor.connected and actor.role in PRESIDING_ROLES:
                method = IdentityMethod.STAFF_ATTESTED
            else:
                raise CourtError(
                    ErrorCode.FORBIDDEN,
                    "only presiding staff or this hearing's station may check identity",
                )
            await self._attest(actor.actor, participant_id, method, check, name, id_digits, note)

    async def attest_in_person(
        self,
        actor: str,
        participant_id: ParticipantId,
        *,
        name: str | None,
        id_digits: str | None,
        note: str = "",
    ) -> None:
        """The station's director checked, in person at the station, the identity of someone
        present there, from the director console (the caller checked that `actor` directs the
        hearing's station). The same rule as the station's own `attest_identity`."""
        async with self._lock:
            self._live()
            await self._attest(
                actor,
                participant_id,
                IdentityMethod.STATION_ATTESTED,
                IdentityCheck.IN_PERSON,
                name,
                id_digits,
                note,
            )

    async def _attest(
        self,
        by: str,
        participant_id: ParticipantId,
        method: IdentityMethod,
        check: IdentityCheck,
        name: str | None,
        id_digits: str | None,
        note: str,
    ) -> None:
        attendee = self._get(participant_id)
        if attendee.role in PRESIDING_ROLES or attendee.role is HearingRole.STATION:
            raise _refuse("staff and stations do not need attestation")
        if attendee.identity_method is not None:
            raise _refuse("identity is already confirmed")
        if check is IdentityCheck.OTHER and not note.strip():
            raise CourtError(ErrorCode.BAD_FIELD, "say in the note how identity was checked")
        if check is IdentityCheck.IN_PERSON and not (name and id_digits):
            raise CourtError(
                ErrorCode.BAD_FIELD, "give the name and ID digits read from the ID document"
            )
        matched: bool | None = None
        if name and id_digits and attendee.legal_name and attendee.id_number_tail:
            matched = _normalise(name) == _normalise(attendee.legal_name) and (
                id_digits.strip().upper() == attendee.id_number_tail.upper()
            )
            if not matched:
                # Logged (who tried, how), not counted against the party's own attempts.
                await self.record.write(
                    actor=by,
                    kind=EventKind.IDENTITY_FAILED,
                    data={
                        "participant_id": participant_id,
                        "method": method.value,
                        "check": check.value,
                    },
                )
                raise CourtError(
                    ErrorCode.BAD_FIELD, "the name or ID digits do not match the court's records"
                )
        await self._identity_confirmed(
            attendee,
            method,
            by,
            {"check": check.value, "record_matched": matched, "note": note[:500]},
        )

    async def _identity_confirmed(
        self,
        attendee: Attendee,
        method: IdentityMethod,
        by: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        target = self._arrival_state(attendee) if attendee.consented else P.IDENTITY_CONFIRMED
        attendee.identity_method = method
        try:
            await self._apply(
                by,
                EventKind.IDENTITY_CONFIRMED,
                {
                    "participant_id": attendee.participant_id,
                    "method": method.value,
                    "state": target.value,
                    **(details or {}),
                },
                [(attendee, target, None)],
            )
        except BaseException:
            attendee.identity_method = None
            raise

    async def consent(self, participant_id: ParticipantId, accepted: Iterable[str]) -> None:
        """Consent to online proceedings, the court's rules and the ban on recording (OLR 27).

        Raises BAD_FIELD if a required consent is missing, WRONG_STATE if given already.
        """
        async with self._lock:
            self._live()
            attendee = self._get(participant_id)
            if attendee.consented:
                raise _refuse("consent was already given")
            missing = REQUIRED_CONSENTS - set(accepted)
            if missing:
                raise CourtError(
                    ErrorCode.BAD_FIELD,
                    "all of these must be accepted: " + ", ".join(sorted(missing)),
                    missing=sorted(missing),
                )
            await self.record.write(
                actor=attendee.actor,
                kind=EventKind.CONSENT_GIVEN,
                data={"participant_id": participant_id, "accepted": sorted(REQUIRED_CONSENTS)},
            )
            attendee.consented = True
            if attendee.identity_method is not None:
                await self._enter(attendee)

    async def _enter(self, attendee: Attendee) -> None:
        target = self._arrival_state(attendee)
        await self._apply(
            attendee.actor,
            EventKind.PARTICIPANT_JOINED,
            {"participant_id": attendee.participant_id, "state": target.value},
            [(attendee, target, None)],
        )

    # -- waiting room ---------------------------------------------------------------------------

    async def admit(self, actor_id: ParticipantId, participant_id: ParticipantId | None) -> int:
        """Admit one waiting participant, or (None) everyone waiting but witnesses and experts.

        Returns how many were admitted. Raises WRONG_STATE if the room is locked, the
        hearing is only scheduled, or the person is not waiting; FORBIDDEN for witnesses and
        experts (they are called, not admitted).
        """
        async with self._lock:
            self._live()
            actor = self._presiding(actor_id, "admit")
            if self.locked:
                raise _refuse("the room is locked")
            if self.state is HearingState.SCHEDULED:
                raise _refuse("open the hearing first")
            if participant_id is None:
                targets = [
                    a
                    for a in self.attendees.values()
                    if a.state is P.WAITING and a.connected and a.role not in CALLED_ROLES
                ]
            else:
                target = self._get(participant_id)
                if target.role in CALLED_ROLES:
                    raise CourtError(
                        ErrorCode.FORBIDDEN, "witnesses and experts enter only when called"
                    )
                if target.state is not P.WAITING or not target.connected:
                    raise _refuse("that participant is not in the waiting room")
                targets = [target]
            if targets:
                await self._apply(
                    actor.actor,
                    EventKind.PARTICIPANT_ADMITTED,
                    {"participant_ids": [t.participant_id for t in targets]},
                    [(t, P.IN_HEARING, None) for t in targets],
                    by=actor_id,
                )
            return len(targets)

    async def send_to_waiting(self, actor_id: ParticipantId, participant_id: ParticipantId) -> None:
        async with self._lock:
            self._live()
            actor = self._presiding(actor_id, "send people to the waiting room")
            target = self._get(participant_id)
            if target.role in PRESIDING_ROLES:
                raise CourtError(ErrorCode.FORBIDDEN, "staff cannot be sent to the waiting room")
            if target.state not in (P.IN_HEARING, P.IN_PRIVATE_ROOM) or not target.connected:
                raise _refuse("that participant is not in the hearing")
            await self._apply(
                actor.actor,
                EventKind.PARTICIPANT_SENT_TO_WAITING,
                {"participant_id": participant_id},
                [(target, P.WAITING, None)],
                by=actor_id,
            )

    async def pre_admit(self, actor_id: ParticipantId, roles: Iterable[HearingRole]) -> None:
        """Roles whose arrivals during the session go straight in (never witnesses, experts)."""
        async with self._lock:
            actor = self._presiding(actor_id, "pre-admit roles")
            chosen = set(roles)
            if chosen & CALLED_ROLES:
                raise CourtError(
                    ErrorCode.FORBIDDEN, "witnesses and experts cannot be pre-admitted"
                )
            await self.record.write(
                actor=actor.actor,
                kind=EventKind.ROOM_PRE_ADMITTED,
                data={"roles": sorted(r.value for r in chosen)},
            )
            self.pre_admitted = chosen

    async def call_witness(self, actor_id: ParticipantId, participant_id: ParticipantId) -> None:
        async with self._lock:
            self._live()
            actor = self._presiding(actor_id, "call witnesses")
            target = self._get(participant_id)
            if target.role not in CALLED_ROLES:
                raise _refuse("only witnesses and experts are called", ErrorCode.BAD_FIELD)
            if self.state is not HearingState.IN_SESSION:
                raise _refuse("witnesses are called during the session")
            if target.state is not P.WAITING or not target.connected:
                raise _refuse("the witness is not waiting")
            await self._apply(
                actor.actor,
                EventKind.WITNESS_CALLED,
                {"participant_id": participant_id},
                [(target, P.IN_HEARING, None)],
                by=actor_id,
            )

    async def dismiss_witness(self, actor_id: ParticipantId, participant_id: ParticipantId) -> None:
        """The witness leaves for good: their connection is closed with DISMISSED."""
        actor_check = self._presiding(actor_id, "dismiss witnesses")
        target = self._get(participant_id)
        if target.role not in CALLED_ROLES:
            raise _refuse("only witnesses and experts are dismissed", ErrorCode.BAD_FIELD)
        if not target.connected:
            raise _refuse("the witness is not connected")
        async with self._lock:
            await self.record.write(
                actor=actor_check.actor,
                kind=EventKind.WITNESS_DISMISSED,
                data={"participant_id": participant_id},
            )
        await self.clients.close(participant_id, CloseReason.DISMISSED)
        await self.disconnect(participant_id, CloseReason.DISMISSED)

    async def remove(
        self, actor_id: ParticipantId, participant_id: ParticipantId, reason: str
    ) -> None:
        """Remove someone from the hearing for good (OLR 28): closed with REMOVED."""
        actor = self._presiding(actor_id, "remove participants")
        target = self._get(participant_id)
        if target.role in PRESIDING_ROLES:
            raise CourtError(ErrorCode.FORBIDDEN, "staff cannot be removed")
        if not reason.strip():
            raise CourtError(ErrorCode.BAD_FIELD, "a reason is required")
        data = {"participant_id": participant_id, "reason": reason.strip()[:500]}
        async with self._lock:
            if not target.connected:
                await self._apply(
                    actor.actor, EventKind.PARTICIPANT_REMOVED, data, [(target, P.REMOVED, None)]
                )
                return
            await self.record.write(
                actor=actor.actor, kind=EventKind.PARTICIPANT_REMOVED, data=data
            )
        await self.clients.close(participant_id, CloseReason.REMOVED)
        await self.disconnect(participant_id, CloseReason.REMOVED, reason.strip()[:500])

    # -- controls ---------------------------------------------------------------------------------

    async def mute(self, actor_id: ParticipantId, participant_id: ParticipantId | None) -> int:
        """Stop forwarding the audio of one participant, or (None) of everyone but staff."""
        async with self._lock:
            self._live()
            actor = self._presiding(actor_id, "mute participants")
            if participant_id is None:
                targets = [
                    a for a in self._connected() if a.role not in PRESIDING_ROLES and not a.muted
                ]
            else:
                target = self._get(participant_id)
                if target.role in PRESIDING_ROLES and target is not actor:
                    raise CourtError(ErrorCode.FORBIDDEN, "staff cannot be muted by others")
                targets = [] if target.muted else [target]
            await self.record.write(
                actor=actor.actor,
                kind=EventKind.CONTROL_MUTED,
                data={"participant_ids": [t.participant_id for t in targets]},
            )
            for target in targets:
                target.muted, target.unmute_requested = True, False
                await self.routing.set_muted(target.participant_id, True)
                if target.connected:
                    await self._notify(target.participant_id, MutedChanged(True, actor_id))
            if targets:
                await self._broadcast_roster()
            return len(targets)

    async def report_readiness(
        self, participant_id: ParticipantId, readiness: dict[str, Any]
    ) -> None:
        """A participant's device check (score, devices, network): logged, held for the
        hearing, and shown to presiding staff in the roster so they know who is ready."""
        async with self._lock:
            attendee = self._get(participant_id)
            await self.record.write(
                actor=attendee.actor,
                kind=EventKind.PARTICIPANT_READINESS,
                data={"participant_id": participant_id, "readiness": readiness},
            )
            attendee.readiness = readiness
            await self._broadcast_roster()

    async def request_unmute(self, actor_id: ParticipantId) -> None:
        """A muted participant asks to speak; presiding staff are told and decide."""
        async with self._lock:
            actor = self._get(actor_id)
            if not actor.muted or not actor.connected:
                raise _refuse("you are not muted")
            await self.record.write(
                actor=actor.actor,
                kind=EventKind.CONTROL_UNMUTE_REQUESTED,
                data={"participant_id": actor_id},
            )
            actor.unmute_requested = True
            await self._broadcast(UnmuteRequested(actor_id), staff_only=True)

    async def unmute(self, actor_id: ParticipantId, participant_id: ParticipantId) -> None:
        """Only presiding staff unmute someone the court muted (or themselves)."""
        async with self._lock:
            actor = self._get(actor_id)
            target = self._get(participant_id)
            if actor.role not in PRESIDING_ROLES or not actor.connected:
                raise CourtError(ErrorCode.FORBIDDEN, "only presiding staff may unmute")
            if not target.muted:
                raise _refuse("not muted")
            await self.record.write(
                actor=actor.actor,
                kind=EventKind.CONTROL_UNMUTED,
                data={"participant_id": participant_id},
            )
            target.muted, target.unmute_requested = False, False
            await self.routing.set_muted(participant_id, False)
            await self._notify(participant_id, MutedChanged(False, actor_id))
            await self._broadcast_roster()

    async def set_recording(
        self,
        actor_id: ParticipantId,
        recording: bool,
        reason: RecordingPause | None = None,
        note: str = "",
    ) -> None:
        """Presiding staff interrupt the recording in session for a lawful reason, or resume it.

        Raises FORBIDDEN (not presiding staff), WRONG_STATE (not in session; or already in the
        asked state), BAD_FIELD (an interruption without a reason).
        """
        async with self._lock:
            actor = self._presiding(actor_id, "interrupt or resume the recording")
            if self.state is not HearingState.IN_SESSION:
                raise _refuse("the recording can be interrupted or resumed only in session")
            if recording == self.routing.recording:
                raise _refuse(
                    "the recording already " + ("runs" if recording else "is interrupted")
                )
            if recording:
                await self.routing.resume_recording()
                kind, data = EventKind.RECORDING_RESUMED, {"note": note[:500]}
            else:
                if reason is None:
                    raise CourtError(ErrorCode.BAD_FIELD, "an interruption needs a reason")
                await self.routing.pause_recording(reason, note[:500])
                kind, data = (
                    EventKind.RECORDING_PAUSED,
                    {"reason": reason.value, "note": note[:500]},
                )
            await self.record.write(actor=actor.actor, kind=kind, data=data)
            await self._broadcast(self._state_event(note or kind, actor_id))

    async def lock_room(self, actor_id: ParticipantId, locked: bool) -> None:
        async with self._lock:
            actor = self._presiding(actor_id, "lock the room")
            await self.record.write(
                actor=actor.actor, kind=EventKind.CONTROL_LOCK, data={"locked": locked}
            )
            self.locked = locked
            await self._broadcast(RoomLockChanged(locked, actor_id), staff_only=True)

    async def set_spotlight(
        self, actor_id: ParticipantId, participant_id: ParticipantId | None
    ) -> None:
        async with self._lock:
            actor = self._presiding(actor_id, "spotlight")
            if participant_id is not None:
                self._get(participant_id)
            await self.record.write(
                actor=actor.actor,
                kind=EventKind.CONTROL_SPOTLIGHT,
                data={"participant_id": participant_id},
            )
            self.spotlight = participant_id
            await self._broadcast(SpotlightChanged(participant_id))

    # -- private rooms ----------------------------------------------------------------------------

    async def move_to_room(
        self, actor_id: ParticipantId, participant_ids: Sequence[ParticipantId], room: str
    ) -> None:
        """Move parties (and their agents) to `room`: "main" or a private caucus room name.

        Caucus is off the record (OMR 18): the log keeps who moved where and when.
        """
        async with self._lock:
            self._live()
            actor = self._movers(actor_id, "move people between rooms")
            if room != MAIN_ROOM and (not room or len(room) > 64 or not room.isprintable()):
                raise CourtError(ErrorCode.BAD_FIELD, "room names are 1-64 printable characters")
            targets = [self._get(pid) for pid in participant_ids]
            for target in targets:
                if target.role in PRESIDING_ROLES or target.role in CALLED_ROLES:
                    raise CourtError(ErrorCode.FORBIDDEN, f"a {target.role} cannot be moved")
                if target.state not in (P.IN_HEARING, P.IN_PRIVATE_ROOM) or not target.connected:
                    raise _refuse(f"{target.display_name} is not in the hearing")
            new_state = P.IN_HEARING if room == MAIN_ROOM else P.IN_PRIVATE_ROOM
            private = None if room == MAIN_ROOM else f"caucus:{room}"
            await self._apply(
                actor.actor,
                EventKind.ROOM_MOVED,
                {
                    "participant_ids": [t.participant_id for t in targets],
                    "room": private or MAIN_ROOM,
                },
                [(t, new_state, private) for t in targets],
                by=actor_id,
            )

    async def join_room(self, actor_id: ParticipantId, room: str) -> None:
        """The mediator or judge enters a caucus room (or returns to the main room) themselves."""
        async with self._lock:
            self._live()
            actor = self._movers(actor_id, "visit private rooms")
            private = None if room == MAIN_ROOM else f"caucus:{room}"
            new_state = P.IN_HEARING if private is None else P.IN_PRIVATE_ROOM
            await self._apply(
                actor.actor,
                EventKind.ROOM_VISITED,
                {"participant_id": actor_id, "room": private or MAIN_ROOM},
                [(actor, new_state, private)],
                by=actor_id,
            )

    async def open_consultation(self, actor_id: ParticipantId, client_id: ParticipantId) -> None:
        """An agent takes their own client to a private consultation, outside the session."""
        async with self._lock:
            self._live()
            agent = self._get(actor_id)
            client = self._get(client_id)
            if agent.role is not HearingRole.AGENT or agent.represents_id != client_id:
                raise CourtError(ErrorCode.FORBIDDEN, "only a party's own agent may consult them")
            if self.state is HearingState.IN_SESSION:
                raise _refuse("consultations happen outside the session (waiting room or recess)")
            for person in (agent, client):
                if not person.connected or person.state not in (
                    P.WAITING,
                    P.IN_HEARING,
                    P.IN_PRIVATE_ROOM,
                ):
                    raise _refuse(f"{person.display_name} is not available")
            room = f"consult:{agent.participant_id}"
            await self._apply(
                agent.actor,
                EventKind.CONSULTATION_OPENED,
                {"participant_ids": [actor_id, client_id]},
                [(agent, P.IN_PRIVATE_ROOM, room), (client, P.IN_PRIVATE_ROOM, room)],
                by=actor_id,
            )

    async def end_consultation(self, actor_id: ParticipantId) -> None:
        async with self._lock:
            agent = self._get(actor_id)
            room = f"consult:{agent.participant_id}"
            members = [a for a in self.attendees.values() if a.private_room == room]
            if not members:
                raise _refuse("no consultation is open")
            await self._apply(
                agent.actor,
                EventKind.CONSULTATION_ENDED,
                {"participant_ids": [m.participant_id for m in members]},
                [(m, P.WAITING, None) for m in members],
                by=actor_id,
            )

    # -- hearing state ----------------------------------------------------------------------------

    async def hearing_state_changed(
        self, state: HearingState, reason: str, by: ParticipantId | None = None
    ) -> None:
        """Called after the service changed the hearing's state (already logged there); `by`
        is the participant who changed it (None if they are not one of this hearing's).

        The recording follows: it starts in session, pauses for a recess, and is sealed on
        close, when everyone is shown its root hash before the connections end.
        """
        async with self._lock:
            self.state = state
            # The recording follows first, so the state told to everyone says truly whether
            # they are on the record (on close: the recording is sealed by then).
            try:
                sealed = await self.routing.hearing_state(state)
            except Exception as exc:
                log.exception("hearing %s: the recording failed on %s", self.hearing_id, state)
                await self._recording_problem("RECORDING_FAILED", str(exc))
                sealed = None
            await self._broadcast(self._state_event(reason, by))
            if sealed is not None:
                await self.log_sealed(sealed)
                await self._broadcast(
                    RecordingSealed(sealed.recording_id, sealed.root_hash, self.clock.now())
                )
            if state is HearingState.CLOSED:
                for attendee in list(self._connected()):
                    await self.clients.close(attendee.participant_id, CloseReason.JUDGE_ENDED)
        if state is HearingState.CLOSED:
            for attendee in list(self._connected()):
                await self.disconnect(attendee.participant_id, CloseReason.JUDGE_ENDED)

    async def log_sealed(self, sealed: Any) -> None:
        """A sealed recording package on the hearing's log (its id, root hash and status): at
        close, and when a node gives the hearing up to another (server/web/cluster.py)."""
        await self.record.write(
            actor="system",
            kind=EventKind.RECORDING_SEALED,
            data={
                "recording_id": sealed.recording_id,
                "root_hash": sealed.root_hash,
                "status": sealed.status,
            },
        )

    async def recording_failed(self, code: str, message: str) -> None:
        """The SFU reported the recording in trouble (disk full, ...): log it, alert staff."""
        async with self._lock:
            await self._recording_problem(code, message)

    async def station_reported(
        self, participant_id: ParticipantId, cause: str, detail: str, since: datetime
    ) -> None:
        """A station reports trouble (power, network, a device, its backup recording): on the
        hearing's log, and told to presiding staff at once."""
        attendee = self.attendees[participant_id]
        await self.record.write(
            actor=attendee.actor,
            kind=EventKind.STATION_REPORT,
            data={
                "participant_id": participant_id,
                "cause": cause,
                "since": since.isoformat(),
                "detail": detail[:500],
            },
        )
        await self._broadcast(
            StationReported(participant_id, cause, detail[:500], since), staff_only=True
        )

    async def _recording_problem(self, code: str, message: str) -> None:
        await self.record.write(
            actor="system",
            kind=EventKind.RECORDING_PROBLEM,
            data={"code": code, "message": message[:500]},
        )
        await self._broadcast(RecordingAlert(code, message[:500]), staff_only=True)

    # -- screen sharing (issue 13.4) ----------------------------------------------------------
    #
    # Only participants in the main room share, one share at a time per hearing: a request
    # waits until presiding staff allow or deny it; the allowed participant names the m-line
    # (`screen_share_start`) and only then does the SFU forward and record it. The share stops
    # when staff or the sharer stop it, the browser ends the capture, or the sharer leaves the
    # main room or disconnects. Every step is in the event log with who and why.

    def _in_main_room(self, attendee: Attendee) -> None:
        if attendee.media_room != MAIN_ROOM:
            raise _refuse("only participants in the main room may share their screen")

    async def _screen_event(self, event: ScreenShareChanged, *, everyone: bool = False) -> None:
        """Tell presiding staff and the participant concerned; everyone if `everyone`."""
        for attendee in list(self._connected()):
            if (
                everyone
                or attendee.role in PRESIDING_ROLES
                or attendee.participant_id == event.participant_id
            ):
                await self._notify(attendee.participant_id, event)

    async def _screen_catch_up(self, attendee: Attendee) -> None:
        """A connection gets where screen sharing stands, as the steps it would have been
        told had it been connected: presiding staff (and the requester) each pending request,
        presiding staff (and the sharer) an allowed share, everyone a live one. Without this
        a console opened after a party asked would never show the request."""
        pid = attendee.participant_id
        presiding = attendee.role in PRESIDING_ROLES
        for requester in self.screen_requests:
            if presiding or requester == pid:
                await self._notify(pid, ScreenShareChanged(requester, "requested", requester))
        sharer = self.screen_sharer
        if sharer is not None and self.screen_mid is not None:
            await self._notify(pid, ScreenShareChanged(sharer, "live", sharer, mid=self.screen_mid))
        elif sharer is not None and (presiding or sharer == pid):
            await self._notify(pid, ScreenShareChanged(sharer, "allowed"))

    async def request_screen_share(self, actor_id: ParticipantId) -> None:
        """A participant in the main room asks to share their screen. Presiding staff's own
        request is allowed at once (they preside over it). Raises WRONG_STATE (closed, not in
        the main room, already asked or sharing, another share running for staff)."""
        async with self._lock:
            self._live()
            actor = self._get(actor_id)
            self._in_main_room(actor)
            if actor_id in self.screen_requests or self.screen_sharer == actor_id:
                raise _refuse("you have already asked to share your screen")
            data = {"participant_id": actor_id}
            if actor.role in PRESIDING_ROLES:
                if self.screen_sharer is not None:
                    raise _refuse("someone is sharing a screen; stop that share first")
                await self.record.write(
                    actor=actor.actor, kind=EventKind.SCREEN_SHARE_ALLOWED, data=data
                )
                self.screen_sharer, self.screen_mid = actor_id, None
                await self._screen_event(ScreenShareChanged(actor_id, "allowed", actor_id))
                return
            await self.record.write(
                actor=actor.actor, kind=EventKind.SCREEN_SHARE_REQUESTED, data=data
            )
            self.screen_requests.append(actor_id)
            await self._screen_event(ScreenShareChanged(actor_id, "requested", actor_id))

    async def allow_screen_share(
        self, actor_id: ParticipantId, participant_id: ParticipantId
    ) -> None:
        """Presiding staff allow a pending request. Raises FORBIDDEN, NOT_FOUND, WRONG_STATE
        (no such request, the participant left the main room, another share running)."""
        async with self._lock:
            self._live()
            actor = self._presiding(actor_id, "allow screen sharing")
            target = self._get(participant_id)
            if participant_id not in self.screen_requests:
                raise _refuse("this participant has not asked to share a screen")
            self._in_main_room(target)
            if self.screen_sharer is not None:
                raise _refuse("someone is sharing a screen; stop that share first")
            await self.record.write(
                actor=actor.actor,
                kind=EventKind.SCREEN_SHARE_ALLOWED,
                data={"participant_id": participant_id},
            )
            self.screen_requests.remove(participant_id)
            self.screen_sharer, self.screen_mid = participant_id, None
            await self._screen_event(ScreenShareChanged(participant_id, "allowed", actor_id))

    async def deny_screen_share(
        self, actor_id: ParticipantId, participant_id: ParticipantId, reason: str = ""
    ) -> None:
        """Presiding staff turn a pending request down (with their reason, if given)."""
        async with self._lock:
            actor = self._presiding(actor_id, "deny screen sharing")
            self._get(participant_id)
            if participant_id not in self.screen_requests:
                raise _refuse("this participant has not asked to share a screen")
            await self.record.write(
                actor=actor.actor,
                kind=EventKind.SCREEN_SHARE_DENIED,
                data={"participant_id": participant_id, "reason": reason[:500]},
            )
            self.screen_requests.remove(participant_id)
            await self._screen_event(
                ScreenShareChanged(participant_id, "denied", actor_id, reason[:500])
            )

    async def start_screen_share(self, actor_id: ParticipantId, mid: str) -> None:
        """The allowed participant names the m-line of its screen; the SFU forwards and
        records that m-line from now on. Raises WRONG_STATE (not allowed, not in the main
        room, already live) or BAD_FIELD."""
        async with self._lock:
            self._live()
            actor = self._get(actor_id)
            if self.screen_sharer != actor_id:
                raise _refuse("screen sharing was not allowed")
            self._in_main_room(actor)
            if self.screen_mid is not None:
                raise _refuse("your screen is already shared")
            if not mid or len(mid) > 16 or not mid.isprintable():
                raise CourtError(ErrorCode.BAD_FIELD, "mid must be 1-16 printable characters")
            await self.record.write(
                actor=actor.actor,
                kind=EventKind.SCREEN_SHARE_STARTED,
                data={"participant_id": actor_id, "mid": mid},
            )
            self.screen_mid = mid
            await self.routing.set_screen(actor_id, mid)
            await self._screen_event(
                ScreenShareChanged(actor_id, "live", actor_id, mid=mid), everyone=True
            )

    async def stop_screen_share(
        self,
        actor_id: ParticipantId,
        participant_id: ParticipantId | None = None,
        *,
        ended: bool = False,
    ) -> None:
        """Stop a share or withdraw a request: the sharer its own, presiding staff anyone's.
        `ended`: the sharer's browser ended the capture. Raises FORBIDDEN, WRONG_STATE (no
        share or request of that participant)."""
        async with self._lock:
            actor = self._get(actor_id)
            target_id = participant_id or actor_id
            if target_id != actor_id and (actor.role not in PRESIDING_ROLES or not actor.connected):
                raise CourtError(ErrorCode.FORBIDDEN, "only presiding staff may stop others")
            if target_id != self.screen_sharer and target_id not in self.screen_requests:
                raise _refuse("this participant is not sharing a screen")
            reason = "court" if target_id != actor_id else "track_ended" if ended else "sharer"
            await self._end_screen_share(self._get(target_id), reason, actor)

    async def _screen_share_left(self, attendee: Attendee) -> None:
        """The participant left the main room or disconnected: their share or request ends."""
        pid = attendee.participant_id
        if pid == self.screen_sharer or pid in self.screen_requests:
            reason = "left_main_room" if attendee.connected else "disconnected"
            await self._end_screen_share(attendee, reason, None)

    async def _end_screen_share(
        self, target: Attendee, reason: str, actor: Attendee | None
    ) -> None:
        pid = target.participant_id
        was_live = self.screen_sharer == pid and self.screen_mid is not None
        await self.record.write(
            actor=actor.actor if actor is not None else "system",
            kind=EventKind.SCREEN_SHARE_STOPPED,
            data={"participant_id": pid, "reason": reason, "was_live": was_live},
        )
        if pid in self.screen_requests:
            self.screen_requests.remove(pid)
        if self.screen_sharer == pid:
            self.screen_sharer, self.screen_mid = None, None
            await self.routing.set_screen(pid, None)
        by = actor.participant_id if actor is not None else None
        await self._screen_event(ScreenShareChanged(pid, "stopped", by, reason), everyone=was_live)
