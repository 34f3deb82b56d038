"""Enrolling a station PC without pasting secrets, and disabling a station (issue 14).

Design:
- An administrator of the station's court issues a **one-time enrolment code** (REST
  `POST /api/stations/{id}/enrolment-codes`, or `shared-court station enrol-code`): 12
  characters from an alphabet without look-alikes, grouped by four, valid for `CODE_VALIDITY`,
  stored only as its SHA-256. It is read out or written down, never a key.
- On first run the station creates its own **Ed25519 key pair** (the private key stays on the
  PC, file mode 0600) and registers the public key with the code (`POST /api/station/enrol`,
  no session needed). The code is then used up. A new enrolment replaces the key (a new PC).
- The station then logs in by signing the time (``AuthService.station_signed_login``); the
  shared station key of `station add` keeps working for stations installed before.
- **Disabling** a station (administrators) ends its sessions at once (its sockets are closed
  by the caller) and refuses its logins with FORBIDDEN, `details.reason` `STATION_DISABLED`,
  told only to whoever proves to be the station (the key or signature is checked first), so the
  station's window can say so plainly. Enabling it again lets it log in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principals import Principal, StaffPrincipal
from server.clock import Clock
from server.enums import StaffRole
from server.errors import CourtError, ErrorCode, not_found
from server.hearings.access import forbidden
from server.storage.models import Station, StationEnrolmentCode
from server.storage.repositories import StationRepository
from server.storage.station_status import StationKeyRepository

CODE_VALIDITY = timedelta(hours=24)
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I
CODE_LENGTH = 12


@dataclass(frozen=True, slots=True)
class IssuedCode:
    station_id: str
    code: str  # shown once
    expires_at: datetime


def normalise_code(code: str) -> str:
    """The code as typed: case, spaces and dashes do not matter."""
    return "".join(c for c in code.upper() if c.isalnum())


def _digest(code: str) -> bytes:
    return hashlib.sha256(normalise_code(code).encode("ascii", "replace")).digest()


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def key_id(public: Ed25519PublicKey) -> str:
    """A short fingerprint of the key (shown to the administrator, logged)."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


async def issue_code_in(db: AsyncSession, station: Station, clock: Clock, by: str) -> IssuedCode:
    """Issue a one-time code for `station` in the transaction `db` (the service, and
    `shared-court station enrol-code` on the server)."""
    code = new_code()
    now = clock.now()
    await StationKeyRepository(db).add_code(
        StationEnrolmentCode(
            station_id=station.id,
            code_hash=_digest(code),
            created_by=by,
            created_at=now,
            expires_at=now + CODE_VALIDITY,
        )
    )
    return IssuedCode(station.id, code, now + CODE_VALIDITY)


class StationEnrolmentService:
    """See the module docstring. Raises CourtError."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    @staticmethod
    async def _administered(db: AsyncSession, principal: Principal, station_id: str) -> Station:
        """The station, if the principal administers its court. NOT_FOUND outside the court,
        FORBIDDEN for other roles."""
        station = await StationRepository(db).get(station_id, principal.court_id)
        if station is None:
            raise not_found("station")
        if not (isinstance(principal, StaffPrincipal) and principal.role is StaffRole.ADMIN):
            raise forbidden("enrol or disable stations")
        return station

    async def issue_code(self, principal: Principal, station_id: str) -> IssuedCode:
        """A one-time enrolment code for the station (administrators of its court)."""
        async with self._sessions.begin() as db:
            station = await self._administered(db, principal, station_id)
            return await self._issue(db, station, principal.actor)

    async def _issue(self, db: AsyncSession, station: Station, by: str) -> IssuedCode:
        return await issue_code_in(db, station, self._clock, by)

    async def enrol(self, station_id: str, code: str, public_key_pem: str) -> str:
        """Register the station's public key with a one-time code; returns the key's id.
        Raises BAD_CREDENTIALS (unknown, used or expired code, or not this station's),
        BAD_FIELD (not an Ed25519 public key), FORBIDDEN (disabled station).

        Guessing is not a way in: a code carries 60 random bits, is bound to one station,
        expires and is used once."""
        try:
            public = load_pem_public_key(public_key_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            public = None
        if not isinstance(public, Ed25519PublicKey):
            raise CourtError(
                ErrorCode.BAD_FIELD, "public_key: not an Ed25519 public key", field="public_key"
            )
        bad = CourtError(ErrorCode.BAD_CREDENTIALS, "this enrolment code is not valid")
        now = self._clock.now()
        async with self._sessions.begin() as db:
            keys = StationKeyRepository(db)
            row = await keys.code(_digest(code))
            if (
                row is None
                or row.station_id != station_id
                or row.used_at is not None
                or row.expires_at <= now
            ):
                raise bad
            station = await StationRepository(db).get(station_id)
            if station is None:
                raise bad
            if station.disabled:
                raise CourtError(
                    ErrorCode.FORBIDDEN,
                    "the court has disabled this station",
                    reason="STATION_DISABLED",
                )
            row.used_at = now
            fingerprint = key_id(public)
            await keys.set_key(station_id, public_key_pem.strip(), fingerprint, now)
            return fingerprint

    async def set_disabled(
        self, principal: Principal, station_id: str, disabled: bool
    ) -> list[str]:
        """Disable (or enable) a station; returns the ids of the sessions ended (the caller
        closes their sockets)."""
        async with self._sessions.begin() as db:
            station = await self._administered(db, principal, station_id)
            station.disabled = disabled
            keys = StationKeyRepository(db)
            ended = await keys.open_session_ids(station.id) if disabled else []
            await keys.revoke_sessions(ended, self._clock.now())
            return ended
