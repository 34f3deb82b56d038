"""Operator actions behind the command line: courts, staff accounts, stations.

These run with the operator's authority (whoever can run the command on the server), not a
web principal, so they sit beside the web services rather than behind them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import passwords, tokens
from server.clock import Clock
from server.enums import StaffRole
from server.errors import CourtError, ErrorCode
from server.storage.models import Court, Station, User
from server.storage.repositories import CourtRepository, StationRepository, UserRepository


@dataclass(frozen=True, slots=True)
class NewStation:
    station: Station
    key: str  # shown once to the operator; only its digest is stored

    def __repr__(self) -> str:
        return f"NewStation(station={self.station.id!r}, key=<redacted>)"


async def ensure_court(db: AsyncSession, clock: Clock, name: str) -> Court:
    repo = CourtRepository(db)
    court = await repo.by_name(name)
    if court is None:
        court = await repo.add(Court(name=name, created_at=clock.now()))
    return court


async def add_user(
    db: AsyncSession,
    clock: Clock,
    *,
    court: Court,
    username: str,
    display_name: str,
    role: StaffRole,
    password: str,
    replace_password: bool = False,
) -> User:
    """Create a staff account (or, with `replace_password`, reset an existing one's password).

    Raises WeakPasswordError, or CourtError CONFLICT if the username is taken.
    """
    passwords.check_policy(password)
    phc = await asyncio.to_thread(passwords.hash_password, password)
    users = UserRepository(db)
    existing = await users.by_username(username)
    if existing is not None:
        if not replace_password or existing.court_id != court.id:
            raise CourtError(ErrorCode.CONFLICT, f"user {username!r} already exists")
        existing.password_hash = phc
        existing.failed_logins = 0
        existing.locked_until = None
        await db.flush()
        return existing
    return await users.add(
        User(
            court_id=court.id,
            username=username,
            display_name=display_name,
            role=role,
            password_hash=phc,
            created_at=clock.now(),
        )
    )


async def add_station(
    db: AsyncSession,
    clock: Clock,
    *,
    court: Court,
    name: str,
    location: str = "",
    director: User | None = None,
) -> NewStation:
    key = tokens.new_token()
    station = await StationRepository(db).add(
        Station(
            court_id=court.id,
            name=name,
            location=location,
            director_id=director.id if director else None,
            key_hash=tokens.digest(key),
            created_at=clock.now(),
        )
    )
    return NewStation(station=station, key=key)


async def rotate_station_key(db: AsyncSession, station: Station) -> str:
    key = tokens.new_token()
    station.key_hash = tokens.digest(key)
    await db.flush()
    return key
