"""Authentication: staff logins, station keys, party invitations, and the sessions they open.

Every way in ends in a ``WebSession`` row whose token is a 256-bit random value held only by the
client's HttpOnly cookie (the database keeps its SHA-256). A session belongs to exactly one of
a staff user, a station, or a participant bound through an invitation.

Brute force is met twice: a per-address sliding window before any hashing (cheap, one node)
and a per-account lockout after ``login_max_failures`` failures (durable, every node).
Unknown usernames cost the same argon2id work as known ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth import passwords, tokens
from server.auth.principals import PartyPrincipal, Principal, StaffPrincipal, StationPrincipal
from server.auth.ratelimit import RateLimiter
from server.clock import Clock
from server.config import SecurityConfig
from server.enums import EventKind
from server.errors import CourtError, ErrorCode
from server.ids import CourtId, HearingId, ParticipantId, StationId, UserId
from server.storage.eventlog import EventLogRepository
from server.storage.models import Invitation, WebSession
from server.storage.repositories import (
    HearingRepository,
    InvitationRepository,
    ParticipantRepository,
    SessionRepository,
    StationRepository,
    UserRepository,
)
from server.storage.station_status import StationKeyRepository

log = logging.getLogger(__name__)

# Refresh last_seen_at at most this often, so that reads do not all turn into writes.
_TOUCH_INTERVAL = timedelta(seconds=60)


SIGNED_LOGIN_SKEW = timedelta(minutes=5)


def signed_login_message(station_id: str, at: str) -> bytes:
    """What a station signs to log in with its own key (issue 14)."""
    return f"shared-court station login v1\n{station_id}\n{at}".encode()


def station_disabled() -> CourtError:
    return CourtError(
        ErrorCode.FORBIDDEN, "the court has disabled this station", reason="STATION_DISABLED"
    )


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A freshly opened session. The two secrets go to the client once and are not kept."""

    token: str
    csrf_token: str
    principal: Principal
    # Sessions this one replaced (an invitation redeemed again on a new device): revoked;
    # their open connections are for the caller to close.
    ended_sessions: tuple[str, ...] = ()


class AuthService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        security: SecurityConfig,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._security = security
        self._ip_limiter = RateLimiter(clock, security.login_ip_attempts_per_minute, 60.0)
        self._redeem_limiter = RateLimiter(clock, security.login_ip_attempts_per_minute, 60.0)
        # On a node of a cluster: counts attempts over every node (server.cluster.limits);
        # called with (limit name, client address, this node's own verdict).
        self.shared_limit: Callable[[str, str, bool], Awaitable[bool]] | None = None

    async def _allowed(self, limiter: RateLimiter, name: str, client: str) -> bool:
        """Count an attempt from `client`: this node's count, or the cluster's if there is one."""
        local = limiter.allow(client)
        if self.shared_limit is None:
            return local
        return await self.shared_limit(name, client, local)

    async def login(self, username: str, password: str, client: str) -> IssuedSession:
        """Log a staff user in.

        Raises CourtError RATE_LIMITED (too many attempts from this address), LOCKED_OUT
        (too many failures for this account, temporarily) or BAD_CREDENTIALS.
        """
        if not await self._allowed(self._ip_limiter, "login", client):
            raise CourtError(ErrorCode.RATE_LIMITED, "too many login attempts; try again later")
        now = self._clock.now()
        async with self._sessions.begin() as db:
            users = UserRepository(db)
            user = await users.by_username(username)
            if user is not None and user.locked_until is not None and user.locked_until > now:
                log.warning("login refused for locked account (client %s)", client)
                raise CourtError(
                    ErrorCode.LOCKED_OUT,
                    "too many failed logins for this account; try again later",
                    retry_after_s=int((user.locked_until - now).total_seconds()) + 1,
                )
            phc = user.password_hash if user is not None and not user.disabled else None
            ok = await asyncio.to_thread(passwords.verify_password, password, phc)
            if user is None or not ok:
                if user is not None:
                    await users.record_failure(
                        user,
                        max_failures=self._security.login_max_failures,
                        lock_until=now + timedelta(seconds=self._security.login_lockout_s),
                    )
                log.info("failed login (client %s)", client)
                failure = CourtError(ErrorCode.BAD_CREDENTIALS, "wrong username or password")
            else:
                await users.record_success(user)
                if passwords.needs_rehash(user.password_hash):
                    user.password_hash = await asyncio.to_thread(passwords.hash_password, password)
                issued = await self._open(db, user_id=user.id)
                log.info("staff login user=%s", user.id)
                return issued
        # Raised outside the transaction so that the failure count is committed.
        raise failure

    async def station_login(self, station_id: str, key: str, client: str) -> IssuedSession:
        """Log a station PC in with its id and key. Raises RATE_LIMITED or BAD_CREDENTIALS."""
        if not await self._allowed(self._ip_limiter, "login", client):
            raise CourtError(ErrorCode.RATE_LIMITED, "too many login attempts; try again later")
        bad = CourtError(ErrorCode.BAD_CREDENTIALS, "wrong station id or key")
        if not tokens.plausible(key):
            raise bad
        async with self._sessions.begin() as db:
            station = await StationRepository(db).get(station_id)
            if station is None or not tokens.same(station.key_hash, tokens.digest(key)):
                log.info("failed station login (client %s)", client)
                raise bad
            if station.disabled:  # told only to who holds the key: the station itself
                raise station_disabled()
            return await self._open(db, station_id=station.id)

    async def station_signed_login(
        self, station_id: str, at: str, signature: bytes, client: str
    ) -> IssuedSession:
        """Log a station PC in with its own key pair (issue 14): it signs
        `signed_login_message(station_id, at)` with the Ed25519 key it registered with an
        enrolment code. `at` (ISO 8601, with zone) must be within SIGNED_LOGIN_SKEW of the
        server's clock and later than the last login's, so a captured login cannot be replayed.
        Raises RATE_LIMITED, BAD_CREDENTIALS, or FORBIDDEN (details.reason STATION_DISABLED)."""
        if not await self._allowed(self._ip_limiter, "login", client):
            raise CourtError(ErrorCode.RATE_LIMITED, "too many login attempts; try again later")
        bad = CourtError(ErrorCode.BAD_CREDENTIALS, "wrong station id or signature")
        try:
            signed_at = datetime.fromisoformat(at)
        except ValueError:
            raise bad from None
        if signed_at.tzinfo is None or abs(self._clock.now() - signed_at) > SIGNED_LOGIN_SKEW:
            raise bad
        async with self._sessions.begin() as db:
            station = await StationRepository(db).get(station_id)
            key = await StationKeyRepository(db).key(station_id, lock=True)
            if station is None or key is None:
                raise bad
            try:
                public = load_pem_public_key(key.public_key.encode("ascii"))
                assert isinstance(public, Ed25519PublicKey)
                public.verify(signature, signed_login_message(station_id, at))
            except (InvalidSignature, ValueError, AssertionError):
                log.info("failed signed station login (client %s)", client)
                raise bad from None
            if key.last_login_at is not None and signed_at <= key.last_login_at:
                raise bad  # a replay, or a clock gone backwards
            key.last_login_at = signed_at
            if station.disabled:
                raise station_disabled()
            return await self._open(db, station_id=station.id)

    async def redeem_invitation(self, token: str, client: str) -> IssuedSession:
        """Exchange an invitation token for a session bound to its participant.

        The first redemption binds the link; a later one (a new device) is allowed within the
        validity window, revokes the sessions opened before and is written to the hearing's
        event log so the court sees it. Raises RATE_LIMITED or INVALID_INVITATION, whose
        message never says anything about the hearing.
        """
        if not await self._allowed(self._redeem_limiter, "redeem", client):
            raise CourtError(ErrorCode.RATE_LIMITED, "too many attempts; try again later")
        invalid = CourtError(
            ErrorCode.INVALID_INVITATION, "this invitation link is not valid", reason="invalid"
        )
        if not tokens.plausible(token):
            raise invalid
        now = self._clock.now()
        async with self._sessions.begin() as db:
            invitation = await InvitationRepository(db).by_token_hash(tokens.digest(token))
            if invitation is None:
                raise invalid
            self._check_window(invitation)
            participant = await ParticipantRepository(db).get(invitation.participant_id)
            hearing = await HearingRepository(db).get(invitation.hearing_id)
            if participant is None or hearing is None:
                raise invalid
            rebinding = invitation.redeemed_at is not None
            ended: list[str] = []
            if rebinding:
                ended = await SessionRepository(db).revoke_participant_sessions(participant.id, now)
            else:
                invitation.redeemed_at = now
            data: dict[str, object] = {
                "invitation_id": invitation.id,
                "participant_id": participant.id,
            }
            if rebinding:
                data["sessions_ended"] = len(ended)
            await EventLogRepository(db).append(
                hearing.id,
                at=now,
                actor=f"participant:{participant.id}",
                kind=EventKind.INVITATION_REBOUND if rebinding else EventKind.INVITATION_REDEEMED,
                data=data,
            )
            issued = await self._open(db, participant_id=participant.id)
            return replace(issued, ended_sessions=tuple(ended))

    def _check_window(self, invitation: Invitation) -> None:
        now = self._clock.now()
        if invitation.revoked_at is not None:
            raise CourtError(
                ErrorCode.INVALID_INVITATION,
                "this invitation link has been withdrawn; ask the court for a new one",
                reason="revoked",
            )
        if now < invitation.not_before:
            raise CourtError(
                ErrorCode.INVALID_INVITATION,
                "this invitation link is not valid yet",
                reason="not_yet_valid",
                valid_from=invitation.not_before.isoformat(),
            )
        if now >= invitation.not_after:
            raise CourtError(
                ErrorCode.INVALID_INVITATION,
                "this invitation link has expired; ask the court for a new one",
                reason="expired",
            )

    async def _open(
        self,
        db: AsyncSession,
        *,
        user_id: str | None = None,
        station_id: str | None = None,
        participant_id: str | None = None,
    ) -> IssuedSession:
        now = self._clock.now()
        token, csrf = tokens.new_token(), tokens.new_token()
        row = await SessionRepository(db).add(
            WebSession(
                token_hash=tokens.digest(token),
                csrf_hash=tokens.digest(csrf),
                user_id=user_id,
                station_id=station_id,
                participant_id=participant_id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(seconds=self._security.session_absolute_timeout_s),
            )
        )
        principal = await self._principal(db, row)
        assert principal is not None
        return IssuedSession(token=token, csrf_token=csrf, principal=principal)

    async def resolve(self, token: str) -> tuple[Principal, bytes] | None:
        """The principal and CSRF digest of a live session, or None (unknown, expired, revoked)."""
        if not tokens.plausible(token):
            return None
        now = self._clock.now()
        async with self._sessions.begin() as db:
            row = await SessionRepository(db).by_token_hash(tokens.digest(token))
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                return None
            idle = timedelta(seconds=self._security.session_idle_timeout_s)
            if row.last_seen_at + idle <= now:
                row.revoked_at = now
                return None
            principal = await self._principal(db, row)
            if principal is None:
                return None
            if now - row.last_seen_at >= _TOUCH_INTERVAL:
                row.last_seen_at = now
            return principal, row.csrf_hash

    async def logout(self, principal: Principal) -> None:
        async with self._sessions.begin() as db:
            await SessionRepository(db).revoke(principal.session_id, self._clock.now())

    async def _principal(self, db: AsyncSession, row: WebSession) -> Principal | None:
        """Build the principal from current rows: a disabled account or station loses access."""
        if row.user_id is not None:
            user = await UserRepository(db).get(row.user_id)
            if user is None or user.disabled:
                return None
            return StaffPrincipal(
                session_id=row.id,
                user_id=UserId(user.id),
                court_id=CourtId(user.court_id),
                role=user.role,
                display_name=user.display_name,
            )
        if row.station_id is not None:
            station = await StationRepository(db).get(row.station_id)
            if station is None or station.disabled:
                return None
            return StationPrincipal(
                session_id=row.id,
                station_id=StationId(station.id),
                court_id=CourtId(station.court_id),
            )
        if row.participant_id is not None:
            participant = await ParticipantRepository(db).get(row.participant_id)
            if participant is None:
                return None
            hearing = await HearingRepository(db).get(participant.hearing_id)
            if hearing is None:
                return None
            return PartyPrincipal(
                session_id=row.id,
                participant_id=ParticipantId(participant.id),
                hearing_id=HearingId(hearing.id),
                court_id=CourtId(hearing.court_id),
            )
        return None
