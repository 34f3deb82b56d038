"""The app under test, an HTTP client that speaks like the browser code, and a seeded world:
two courts, each with one account per staff role, a station, a case, a hearing held at the
station with parties, and invitation tokens."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from recordings import ArchivePrivateKey, keygen
from server import admin
from server.app import create_app
from server.clock import Clock
from server.config import Config, load_config
from server.enums import (
    HearingRole,
    StaffRole,
)
from server.storage.db import upgrade_async
from server.web.appkeys import SESSIONS
from tests.conftest import FakeClock
from tests.factories import add_case, add_hearing, add_invitation, add_participant

PASSWORD = "correct horse battery"
STAFF_ROLES = [r.value for r in StaffRole]


class Api:
    """Calls the API the way the browser code does: cookies, JSON, and the CSRF header."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.csrf: str | None = None

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        hdrs = dict(headers or {})
        if self.csrf and method not in ("GET", "HEAD"):
            hdrs.setdefault("X-CSRF-Token", self.csrf)
        kwargs: dict[str, Any] = {"headers": hdrs}
        if raw is not None:
            kwargs["data"] = raw
            hdrs.setdefault("Content-Type", "application/json")
        elif body is not None:
            kwargs["json"] = body
        async with self.client.request(method, path, **kwargs) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data

    async def login(self, username: str, password: str = PASSWORD) -> tuple[int, Any]:
        status, data = await self.call(
            "POST", "/api/auth/login", {"username": username, "password": password}
        )
        if status == 200:
            self.csrf = data["csrf_token"]
        return status, data

    async def station_login(self, station_id: str, key: str) -> tuple[int, Any]:
        status, data = await self.call(
            "POST", "/api/auth/station", {"station_id": station_id, "key": key}
        )
        if status == 200:
            self.csrf = data["csrf_token"]
        return status, data

    async def redeem(self, token: str) -> tuple[int, Any]:
        status, data = await self.call("POST", "/api/invitations/redeem", {"token": token})
        if status == 200:
            self.csrf = data["csrf_token"]
        return status, data


@dataclass
class CourtWorld:
    court_id: str
    users: dict[str, str] = field(default_factory=dict)  # role -> username
    user_ids: dict[str, str] = field(default_factory=dict)
    station_id: str = ""
    station_key: str = ""
    case_id: str = ""
    hearing_id: str = ""  # held at the station
    other_hearing_id: str = ""  # same court, not at the station
    plaintiff_id: str = ""
    defendant_id: str = ""
    invitation_id: str = ""  # the plaintiff's
    defendant_invitation_id: str = ""
    plaintiff_token: str = ""
    defendant_token: str = ""


def app_of(client: TestClient[Any, Any]) -> web.Application:
    app: web.Application | None = client.app
    assert app is not None
    return app


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    return load_config(
        environ={},
        overrides={"data_dir": str(tmp_path), **overrides},
    )


async def recording_keys(directory: Path, *, playback: bool = False) -> dict[str, Any]:
    """Fresh recording keys in `directory`, as the `recording` section of a configuration.

    Files: signing.key/.pub, archive.key/.pub (as `shared-court recording keygen` writes them)
    and, with `playback`, playback.key.
    """
    files = await asyncio.to_thread(keygen, directory)
    section: dict[str, Any] = {
        "signing_key_file": str(files.signing_private),
        "archive_public_key_files": [str(files.archive_public)],
    }
    if playback:
        path = directory / "playback.key"
        await asyncio.to_thread(path.write_bytes, ArchivePrivateKey.generate().private_pem())
        section["playback_key_file"] = str(path)
    return section


async def seed_court(app_sessions: Any, clock: Clock, name: str, prefix: str) -> CourtWorld:
    async with app_sessions.begin() as db:
        court = await admin.ensure_court(db, clock, name)
        world = CourtWorld(court_id=court.id)
        for role in StaffRole:
            user = await admin.add_user(
                db,
                clock,
                court=court,
                username=f"{prefix}-{role.value}",
                display_name=f"{prefix} {role.value}",
                role=role,
                password=PASSWORD,
            )
            world.users[role.value] = user.username
            world.user_ids[role.value] = user.id
        director_id = world.user_ids["station_director"]
        from server.storage.models import User

        director = await db.get(User, director_id)
        station = await admin.add_station(
            db, clock, court=court, name=f"{prefix} station", director=director
        )
        world.station_id, world.station_key = station.station.id, station.key
        case = await add_case(
            db, clock, court_id=court.id, created_by=world.user_ids["judge"], number=f"{prefix}-1"
        )
        world.case_id = case.id
        hearings = []
        for station_id in (station.station.id, None):
            hearing = await add_hearing(
                db, clock, case, presiding_user_id=world.user_ids["judge"], station_id=station_id
            )
            hearings.append(hearing.id)
        world.hearing_id, world.other_hearing_id = hearings
        for staff_role in (HearingRole.JUDGE, HearingRole.CLERK):
            await add_participant(
                db,
                clock,
                world.hearing_id,
                staff_role,
                staff_role.value,
                user_id=world.user_ids[staff_role.value],
            )
        await add_participant(
            db,
            clock,
            world.hearing_id,
            HearingRole.STATION,
            HearingRole.STATION.value,
            station_id=station.station.id,
        )
        for party_role in (HearingRole.PLAINTIFF, HearingRole.DEFENDANT):
            participant = await add_participant(
                db,
                clock,
                world.hearing_id,
                party_role,
                party_role.value,
                legal_name=party_role.value.upper(),
                id_number_tail="1234",
            )
            invitation, token = await add_invitation(
                db, clock, participant, created_by=world.user_ids["judge"]
            )
            if party_role is HearingRole.PLAINTIFF:
                world.plaintiff_id, world.plaintiff_token = participant.id, token
                world.invitation_id = invitation.id
            else:
                world.defendant_id, world.defendant_token = participant.id, token
                world.defendant_invitation_id = invitation.id
    return world


@dataclass
class World:
    own: CourtWorld
    other: CourtWorld


@pytest.fixture
async def app_client(
    tmp_path: Path, aiohttp_client: AiohttpClient, clock: FakeClock
) -> TestClient[Any, Any]:
    config = make_config(tmp_path)
    await upgrade_async(config.database_url)
    return await aiohttp_client(create_app(config, clock=clock))


@pytest.fixture
async def world(app_client: TestClient[Any, Any], clock: FakeClock) -> World:
    sessions = app_of(app_client)[SESSIONS]
    own = await seed_court(sessions, clock, "Court A", "a")
    other = await seed_court(sessions, clock, "Court B", "b")
    return World(own=own, other=other)


@pytest.fixture
def api(app_client: TestClient[Any, Any]) -> Api:
    return Api(app_client)
