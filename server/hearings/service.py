"""The court's administrative service: cases, hearings, participants, invitations, stations.

Authorization is decided here, in the trusted layer, for every call (ASVS 8.3.1), from the
principal and the rows involved:

- presiding staff (judge, clerk, mediator) schedule and manage everything of their own court;
- an administrator reads everything of their own court;
- a station director reads the hearings held at the stations they direct;
- a station reads its own hearings, and registers the backup recordings it makes of them;
- a party reads only its own hearing.

Anything outside a principal's court (or own hearing) is reported as NOT_FOUND, exactly as if
it did not exist, so that ids cannot be probed. Inside the court, a role that may see a thing
but not change it gets FORBIDDEN.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recordings import VerifyKey
from server.auth import tokens
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
    PRESIDING_STAFF,
    CaseKind,
    EventKind,
    HearingRole,
    HearingState,
    ParticipantState,
    StaffRole,
)
from server.errors import CourtError, ErrorCode, not_found
from server.hearings import states
from server.ids import RecordingId, StationId
from server.storage.eventlog import EventLogRepository
from server.storage.models import Case, Court, Hearing, HearingEvent, Invitation, Participant
from server.storage.models import Station as StationRow
from server.storage.repositories import (
    CaseRepository,
    CourtRepository,
    HearingRepository,
    InvitationRepository,
    ParticipantRepository,
    SessionRepository,
    StationRepository,
    UserRepository,
)

log = logging.getLogger(__name__)

# Station backup recordings a hearing accepts: a station reconnecting re-registers the same
# one, so a handful is plenty; the bound keeps a hostile station from flooding the event log.
MAX_STATION_BACKUPS = 50


@dataclass(frozen=True, slots=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # shown once; only its digest is stored
    # Sessions opened with the participant's earlier links, revoked with them: the caller
    # closes their connections.
    ended_sessions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RevokedInvitation:
    invitation: Invitation
    ended_sessions: tuple[str, ...] = ()  # revoked with it; the caller closes their connections


@dataclass(frozen=True, slots=True)
class StationBackup:
    """A station's local backup recording of a hearing, as the event log holds it."""

    recording_id: RecordingId
    key_id: str  # of the Ed25519 key the station signs the backup with
    station_id: StationId
    recipients: tuple[str, ...]  # X25519 public keys (PEM) to seal the backup for
    created: bool  # False: the same registration was already logged


async def _registered_backup_key(db: AsyncSession, hearing_id: str, recording_id: str) -> VerifyKey:
    """The key a station registered backup `recording_id` of the hearing with (NOT_FOUND if
    none): what the backup is verified against, never a key inside the package."""
    for entry in await EventLogRepository(db).list(
        hearing_id, kind=EventKind.STATION_BACKUP_STARTED
    ):
        if entry.data.get("recording_id") == recording_id:
            return VerifyKey.from_raw(base64.b64decode(str(entry.data["verify_key"])))
    raise CourtError(
        ErrorCode.NOT_FOUND, "no backup recording of this hearing is registered under that id"
    )


def _forbidden(action: str) -> CourtError:
    return CourtError(ErrorCode.FORBIDDEN, f"your role may not {action}")


def _require_presiding(principal: Principal, action: str) -> StaffPrincipal:
    """The principal if it is presiding staff; FORBIDDEN for other staff; NOT_FOUND otherwise."""
    if isinstance(principal, StaffPrincipal):
        if principal.role in PRESIDING_STAFF:
            return principal
        raise _forbidden(action)
    raise _forbidden(action)


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
        raise _forbidden("list stations")

    # -- cases -------------------------------------------------------------------------

    def _require_case_reader(self, principal: Principal) -> StaffPrincipal:
        if isinstance(principal, StaffPrincipal) and principal.role in COURT_READERS:
            return principal
        raise _forbidden("read cases")

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
        self, principal: Principal, *, number: str, title: str, kind: CaseKind
    ) -> Case:
        """Raises FORBIDDEN (not presiding staff) or CONFLICT (case number taken)."""
        staff = _require_presiding(principal, "create cases")
        async with self._sessions.begin() as db:
            repo = CaseRepository(db)
            if await repo.number_taken(staff.court_id, number):
                raise CourtError(ErrorCode.CONFLICT, f"case number {number!r} already exists")
            return await repo.add(
                Case(
                    court_id=staff.court_id,
                    number=number,
                    title=title,
                    kind=kind,
                    created_by=staff.user_id,
                    created_at=self._clock.now(),
                )
            )

    # -- hearings ----------------------------------------------------------------------

    async def _readable_hearing(
        self, db: AsyncSession, principal: Principal, hearing_id: str, *, lock: bool = False
    ) -> Hearing:
        """Load a hearing the principal may read; NOT_FOUND for everything else."""
        hearing = await HearingRepository(db).get(hearing_id, lock=lock)
        if hearing is None or hearing.court_id != principal.court_id:
            raise not_found("hearing")
        if isinstance(principal, PartyPrincipal):
            if hearing.id != principal.hearing_id:
                raise not_found("hearing")
        elif isinstance(principal, StationPrincipal):
            if hearing.station_id != principal.station_id:
                raise not_found("hearing")
        elif principal.role is StaffRole.STATION_DIRECTOR:
            directed = await StationRepository(db).list_for_director(principal.user_id)
            if hearing.station_id not in {s.id for s in directed}:
                raise not_found("hearing")
        return hearing

    async def _managed_hearing(
        self,
        db: AsyncSession,
        principal: Principal,
        hearing_id: str,
        action: str,
        *,
        lock: bool = False,
    ) -> tuple[StaffPrincipal, Hearing]:
        hearing = await self._readable_hearing(db, principal, hearing_id, lock=lock)
        return _require_presiding(principal, action), hearing

    async def list_hearings(self, principal: Principal) -> Sequence[Hearing]:
        async with self._sessions() as db:
            repo = HearingRepository(db)
            if isinstance(principal, PartyPrincipal):
                return [await self._readable_hearing(db, principal, principal.hearing_id)]
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

    async def get_hearing(self, principal: Principal, hearing_id: str) -> Hearing:
        async with self._sessions() as db:
            return await self._readable_hearing(db, principal, hearing_id)

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
            staff = _require_presiding(principal, "schedule hearings")
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
        self, principal: Principal, hearing_id: str
    ) -> Sequence[Participant]:
        async with self._sessions() as db:
            await self._readable_hearing(db, principal, hearing_id)
            if isinstance(principal, PartyPrincipal):
                raise _forbidden("list participants")
            return await ParticipantRepository(db).list_for_hearing(hearing_id)

    async def add_participant(
        self,
        principal: Principal,
        hearing_id: str,
        *,
        display_name: str,
        role: HearingRole,
        legal_name: str | None = None,
        id_number_tail: str | None = None,
        user_id: str | None = None,
        station_id: str | None = None,
        represents_id: str | None = None,
    ) -> Participant:
        """Add someone to a hearing.

        Staff roles (judge, clerk, mediator) must name a staff `user_id` of the court; the
        station role must name a `station_id` of the court; other roles join by invitation.
        Raises NOT_FOUND, FORBIDDEN, BAD_FIELD or WRONG_STATE (hearing closed).
        """
        async with self._sessions.begin() as db:
            staff, hearing = await self._managed_hearing(
                db, principal, hearing_id, "add participants"
            )
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

    async def participant_for(self, principal: Principal, hearing_id: str) -> Participant:
        """The participant a principal takes part as in a hearing (for joining it live).

        A party is its own participant; staff and stations must have been added to the hearing
        (a judge who is not on the hearing cannot slip in). Raises NOT_FOUND or FORBIDDEN.
        """
        async with self._sessions() as db:
            hearing = await self._readable_hearing(db, principal, hearing_id)
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

    # -- invitations -------------------------------------------------------------------

    async def create_invitation(
        self,
        principal: Principal,
        hearing_id: str,
        participant_id: str,
        *,
        valid_for: timedelta,
        not_before: datetime | None = None,
    ) -> IssuedInvitation:
        """Issue an invitation link for a participant; earlier links for them are revoked.

        Raises NOT_FOUND, FORBIDDEN, BAD_FIELD (staff/station participants log in instead) or
        WRONG_STATE (hearing closed).
        """
        async with self._sessions.begin() as db:
            staff, hearing = await self._managed_hearing(db, principal, hearing_id, "invite")
            if hearing.state is HearingState.CLOSED:
                raise CourtError(ErrorCode.WRONG_STATE, "the hearing is closed")
            participant = await ParticipantRepository(db).get(participant_id)
            if participant is None or participant.hearing_id != hearing.id:
                raise not_found("participant")
            if participant.role in PRESIDING_ROLES or participant.role is HearingRole.STATION:
                raise CourtError(
                    ErrorCode.BAD_FIELD, f"a {participant.role} participant logs in; no invitation"
                )
            now = self._clock.now()
            invitations = InvitationRepository(db)
            await invitations.revoke_for_participant(participant.id, now)
            # Re-issuing revokes the old link, and with it what was opened with it.
            ended = await SessionRepository(db).revoke_participant_sessions(participant.id, now)
            token = tokens.new_token()
            start = utc(not_before) if not_before is not None else now
            invitation = await invitations.add(
                Invitation(
                    hearing_id=hearing.id,
                    participant_id=participant.id,
                    token_hash=tokens.digest(token),
                    not_before=start,
                    not_after=start + valid_for,
                    created_by=staff.user_id,
                    created_at=now,
                )
            )
            await EventLogRepository(db).append(
                hearing.id,
                at=now,
                actor=staff.actor,
                kind=EventKind.INVITATION_ISSUED,
                data={
                    "invitation_id": invitation.id,
                    "participant_id": participant.id,
                    "sessions_ended": len(ended),
                },
            )
            return IssuedInvitation(invitation=invitation, token=token, ended_sessions=tuple(ended))

    async def list_invitations(self, principal: Principal, hearing_id: str) -> Sequence[Invitation]:
        async with self._sessions() as db:
            await self._managed_hearing(db, principal, hearing_id, "list invitations")
            return await InvitationRepository(db).list_for_hearing(hearing_id)

    async def revoke_invitation(
        self, principal: Principal, invitation_id: str
    ) -> RevokedInvitation:
        """Revoke a link and the sessions opened with it (the caller closes their connections).

        Raises NOT_FOUND or FORBIDDEN. Revoking twice is harmless."""
        async with self._sessions.begin() as db:
            invitation = await InvitationRepository(db).get(invitation_id)
            if invitation is None:
                raise not_found("invitation")
            staff, hearing = await self._managed_hearing(
                db, principal, invitation.hearing_id, "revoke invitations"
            )
            ended: list[str] = []
            if invitation.revoked_at is None:
                now = self._clock.now()
                invitation.revoked_at = now
                # A participant has one live link at a time (issuing one revokes the others),
                # so their live invitation sessions are the ones opened with this link.
                ended = await SessionRepository(db).revoke_participant_sessions(
                    invitation.participant_id, now
                )
                await EventLogRepository(db).append(
                    hearing.id,
                    at=now,
                    actor=staff.actor,
                    kind=EventKind.INVITATION_REVOKED,
                    data={
                        "invitation_id": invitation.id,
                        "participant_id": invitation.participant_id,
                        "sessions_ended": len(ended),
                    },
                )
            return RevokedInvitation(invitation=invitation, ended_sessions=tuple(ended))

    # -- lifecycle ---------------------------------------------------------------------

    async def set_hearing_state(
        self, principal: Principal, hearing_id: str, target: HearingState, reason: str
    ) -> Hearing:
        """Move the hearing to `target` per the transition table in ``states``.

        Raises NOT_FOUND, FORBIDDEN (role may not take this transition), WRONG_STATE (no such
        transition from the current state) or BAD_FIELD (empty reason). Nothing changes then.
        """
        if not reason.strip():
            raise CourtError(ErrorCode.BAD_FIELD, "a reason is required")
        async with self._sessions.begin() as db:
            staff, hearing = await self._managed_hearing(
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
        hearing_id: str,
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

    async def authorize_recording_review(self, principal: Principal, hearing_id: str) -> None:
        """Presiding staff of the hearing's court may list and play back its recordings.

        Raises NOT_FOUND (not their court's hearing) or FORBIDDEN (other roles).
        """
        async with self._sessions() as db:
            await self._managed_hearing(db, principal, hearing_id, "review recordings")

    async def log_recording_review(
        self, principal: Principal, hearing_id: str, recording_id: str
    ) -> None:
        """Put on the hearing's log who opened which recording for playback, and when."""
        async with self._sessions.begin() as db:
            staff, _ = await self._managed_hearing(db, principal, hearing_id, "review recordings")
            await EventLogRepository(db).append(
                hearing_id,
                at=self._clock.now(),
                actor=staff.actor,
                kind=EventKind.RECORDING_REVIEWED,
                data={"recording_id": recording_id},
            )

    async def register_station_backup(
        self,
        principal: Principal,
        hearing_id: str,
        recording_id: RecordingId,
        verify_key: VerifyKey,
        recipients: Sequence[str],
    ) -> StationBackup:
        """The hearing's own station registers the backup recording it makes locally, signed
        with `verify_key`'s private half and sealed for `recipients` (the archive keys and the
        playback key the court's own recordings are sealed for; none when recording is off).

        Logged as ``station.backup_started`` with the recording id, the key (id and raw key,
        base64) and the station. Registering the same recording with the same key again logs
        nothing (the station does so after reconnecting); the result then has ``created``
        False.

        Raises NOT_FOUND (a hearing the principal may not read), FORBIDDEN (anyone but the
        hearing's station), WRONG_STATE (the hearing is closed, or the court has no archive
        key), CONFLICT (the recording is registered with another key, or the hearing already
        has MAX_STATION_BACKUPS).
        """
        async with self._sessions.begin() as db:
            hearing = await self._readable_hearing(db, principal, hearing_id, lock=True)
            # A station reads only the hearings held at it, so this is the hearing's station.
            if not isinstance(principal, StationPrincipal):
                raise _forbidden("register a station backup recording")
            if hearing.state is HearingState.CLOSED:
                raise CourtError(
                    ErrorCode.WRONG_STATE, "the hearing is closed", state=hearing.state.value
                )
            if not recipients:
                raise CourtError(
                    ErrorCode.WRONG_STATE,
                    "the court has no archive key configured: recordings cannot be sealed",
                )
            backup = StationBackup(
                recording_id=recording_id,
                key_id=verify_key.key_id,
                station_id=principal.station_id,
                recipients=tuple(recipients),
                created=True,
            )
            events = EventLogRepository(db)
            registered = await events.list(hearing.id, kind=EventKind.STATION_BACKUP_STARTED)
            for entry in registered:
                if entry.data.get("recording_id") != recording_id:
                    continue
                if entry.data.get("key_id") != backup.key_id:
                    raise CourtError(
                        ErrorCode.CONFLICT,
                        f"recording {recording_id} is registered with another key",
                        key_id=entry.data.get("key_id"),
                    )
                return dataclasses.replace(backup, created=False)
            if len(registered) >= MAX_STATION_BACKUPS:
                raise CourtError(
                    ErrorCode.CONFLICT,
                    f"this hearing has {MAX_STATION_BACKUPS} station backup recordings "
                    "registered; no more are accepted",
                    limit=MAX_STATION_BACKUPS,
                )
            await events.append(
                hearing.id,
                at=self._clock.now(),
                actor=principal.actor,
                kind=EventKind.STATION_BACKUP_STARTED,
                data={
                    "recording_id": recording_id,
                    "key_id": backup.key_id,
                    # The whole key, encoded as in the package's recording.json: what an
                    # appeal court checks the backup's signatures against.
                    "verify_key": base64.b64encode(verify_key.raw).decode(),
                    "station_id": principal.station_id,
                },
            )
            return backup

    async def station_backup_key(
        self, principal: Principal, hearing_id: str, recording_id: RecordingId
    ) -> VerifyKey:
        """The key the hearing's station registered backup `recording_id` with: what its
        upload is verified against (never a key inside the upload).

        Raises NOT_FOUND (a hearing the principal may not read, or no such backup registered),
        FORBIDDEN (anyone but the hearing's station).
        """
        async with self._sessions.begin() as db:
            hearing = await self._readable_hearing(db, principal, hearing_id)
            if not isinstance(principal, StationPrincipal):
                raise _forbidden("send a station backup recording")
            return await _registered_backup_key(db, hearing.id, recording_id)

    async def reviewed_backup_key(
        self, principal: Principal, hearing_id: str, recording_id: str
    ) -> VerifyKey:
        """For presiding staff playing a received station backup: the key its station
        registered, which it must verify against. Raises NOT_FOUND, FORBIDDEN."""
        async with self._sessions() as db:
            _, hearing = await self._managed_hearing(db, principal, hearing_id, "review recordings")
            return await _registered_backup_key(db, hearing.id, recording_id)

    async def log_station_backup_received(
        self,
        principal: Principal,
        hearing_id: str,
        recording_id: RecordingId,
        *,
        root_hash: str | None,
        status: str | None,
        size: int,
    ) -> None:
        """The court took the station's backup (verified against the registered key)."""
        async with self._sessions.begin() as db:
            hearing = await self._readable_hearing(db, principal, hearing_id, lock=True)
            await EventLogRepository(db).append(
                hearing.id,
                at=self._clock.now(),
                actor=principal.actor,
                kind=EventKind.STATION_BACKUP_RECEIVED,
                data={
                    "recording_id": recording_id,
                    "root_hash": root_hash,
                    "status": status,
                    "bytes": size,
                },
            )

    # -- event log ---------------------------------------------------------------------

    async def timeline(self, principal: Principal, hearing_id: str) -> Sequence[HearingEvent]:
        async with self._sessions() as db:
            await self._managed_hearing(db, principal, hearing_id, "read the hearing timeline")
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
