"""Invitation links: issued per participant, re-issued, revoked, and what that ends.

A party enters a hearing with a single-hearing invitation link (ARCHITECTURE 4.6): a 256-bit
token, stored only as its digest, valid from `not_before` for `valid_for`. A participant has one
live link at a time: issuing a new one revokes the earlier ones, and revoking a link revokes
every session opened with it; the caller closes those sessions' connections (the results name
them). Staff and stations log in; they get no links. Who may do what: ``access``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth import tokens
from server.auth.principals import Principal
from server.clock import Clock, utc
from server.enums import PRESIDING_ROLES, EventKind, HearingRole, HearingState
from server.errors import CourtError, ErrorCode, not_found
from server.hearings.access import managed_hearing
from server.ids import HearingId
from server.storage.eventlog import EventLogRepository
from server.storage.models import Invitation
from server.storage.repositories import (
    InvitationRepository,
    ParticipantRepository,
    SessionRepository,
)


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


async def _log(
    db: AsyncSession, kind: EventKind, actor: str, invitation: Invitation, ended: list[str]
) -> None:
    """The hearing's log entry for a link issued or revoked, and the sessions that ended."""
    await EventLogRepository(db).append(
        invitation.hearing_id,
        at=invitation.revoked_at or invitation.created_at,
        actor=actor,
        kind=kind,
        data={
            "invitation_id": invitation.id,
            "participant_id": invitation.participant_id,
            "sessions_ended": len(ended),
        },
    )


class InvitationService:
    """Invitation links of a court's hearings; see the module docstring."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def create_invitation(
        self,
        principal: Principal,
        hearing_id: HearingId,
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
            staff, hearing = await managed_hearing(db, principal, hearing_id, "invite")
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
            await _log(db, EventKind.INVITATION_ISSUED, staff.actor, invitation, ended)
            return IssuedInvitation(invitation=invitation, token=token, ended_sessions=tuple(ended))

    async def list_invitations(
        self, principal: Principal, hearing_id: HearingId
    ) -> Sequence[Invitation]:
        async with self._sessions() as db:
            await managed_hearing(db, principal, hearing_id, "list invitations")
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
            staff, _ = await managed_hearing(
                db, principal, HearingId(invitation.hearing_id), "revoke invitations"
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
                await _log(db, EventKind.INVITATION_REVOKED, staff.actor, invitation, ended)
            return RevokedInvitation(invitation=invitation, ended_sessions=tuple(ended))
