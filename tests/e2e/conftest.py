"""A real server on 127.0.0.1 with a seeded world, and clients that log in like people do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from recordings import ArchivePrivateKey, keygen
from server.app import create_app
from server.clock import Clock, SystemClock
from server.storage.db import upgrade_async
from server.web.appkeys import SESSIONS
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import HearingState
from tests.browser.conftest import browser  # noqa: F401 - the fixture, shared
from tests.server.conftest import PASSWORD, World, make_config, seed_court


async def login_cookies(url: str, body: dict[str, Any]) -> dict[str, str]:
    """POST a login (staff, station, invitation) and return the session's cookies."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as http,
        http.post(url, json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()
    return {c.key: c.value for c in jar}


@dataclass
class Court:
    server: TestServer
    world: World
    clock: Clock
    data_dir: Path

    @property
    def base(self) -> str:
        return str(self.server.make_url("/")).rstrip("/")

    @property
    def ws_url(self) -> str:
        return self.base.replace("http", "ws", 1) + "/ws"

    async def cookies(self, path: str, body: dict[str, Any]) -> dict[str, str]:
        return await login_cookies(self.base + path, body)

    async def staff(self, role: str) -> dict[str, str]:
        return await self.cookies(
            "/api/auth/login", {"username": self.world.own.users[role], "password": PASSWORD}
        )

    async def party(self, token: str) -> dict[str, str]:
        return await self.cookies("/api/invitations/redeem", {"token": token})

    async def station(self) -> dict[str, str]:
        w = self.world.own
        return await self.cookies(
            "/api/auth/station", {"station_id": w.station_id, "key": w.station_key}
        )

    async def call(
        self, cookies: dict[str, str], method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        """A REST call with a session's cookies and its CSRF token."""
        jar = aiohttp.CookieJar(unsafe=True)
        headers = {"X-CSRF-Token": cookies.get("sc_csrf", "")}
        async with (
            aiohttp.ClientSession(cookies=cookies, cookie_jar=jar) as http,
            http.request(method, self.base + path, json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.json()

    async def set_state(self, state: str, reason: str) -> None:
        status, body = await self.call(
            await self.staff("judge"),
            "POST",
            f"/api/hearings/{self.world.own.hearing_id}/state",
            {"state": state, "reason": reason},
        )
        assert status == 200, body

    async def playback(self, recording_id: str) -> dict[str, Any]:
        """The judge prepares a sealed recording of the hearing for playback; waits for it."""
        judge = await self.staff("judge")
        path = f"/api/hearings/{self.world.own.hearing_id}/recordings/{recording_id}/playback"
        status, body = await self.call(judge, "POST", path)
        assert status == 202, body
        async with asyncio.timeout(60):
            while body["status"] == "preparing":
                await asyncio.sleep(0.1)  # polling the preparation's state
                status, body = await self.call(judge, "GET", path)
        result: dict[str, Any] = body
        return result

    def client(self, cookies: dict[str, str], **kwargs: Any) -> SignalingClient:
        return SignalingClient(self.ws_url, cookies=cookies, **kwargs)


async def start_court(
    tmp_path: Path, aiohttp_server: AiohttpServer, *, host: str = "127.0.0.1", **overrides: Any
) -> Court:
    """A running court with two seeded courts, recording on, media on loopback; `overrides`
    are configuration sections (limits, workers) for tests that need other settings."""
    clock = SystemClock()  # end to end: real time, as watchdogs and rate limits see it
    keys = await asyncio.to_thread(keygen, tmp_path / "keys")
    playback = tmp_path / "keys" / "playback.key"
    await asyncio.to_thread(playback.write_bytes, ArchivePrivateKey.generate().private_pem())
    config = make_config(
        tmp_path,
        ice={"host_addresses": ["127.0.0.1"]},
        sfu={"workers": 1},
        recording={
            "signing_key_file": str(keys.signing_private),
            "archive_public_key_files": [str(keys.archive_public)],
            "playback_key_file": str(playback),
        },
        **overrides,
    )
    await upgrade_async(config.database_url)
    server = await aiohttp_server(create_app(config, clock=clock), host=host)
    sessions = server.app[SESSIONS]
    world = World(
        own=await seed_court(sessions, clock, "Court A", "a"),
        other=await seed_court(sessions, clock, "Court B", "b"),
    )
    return Court(server, world, clock, tmp_path)


@pytest.fixture
async def court(tmp_path: Path, aiohttp_server: AiohttpServer) -> Court:
    return await start_court(tmp_path, aiohttp_server)


@pytest.fixture
async def clerk(court: Court) -> AsyncIterator[SignalingClient]:
    """The clerk runs the room from a Python client: open, start, admit."""
    async with court.client(await court.staff("clerk")) as client:
        await client.join(court.world.own.hearing_id)
        await client.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        yield client
