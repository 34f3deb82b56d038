"""Why the recording is off, on the wire: a real server, its SFU worker recording the hearing,
and signaling clients. An interruption by presiding staff (`set_recording`) carries its reason
in `hearing_state` and in the `welcome` of whoever joins meanwhile; resuming clears it; a
recess is told by its state alone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from recordings import keygen
from server.app import create_app
from server.storage.db import upgrade_async
from server.web.appkeys import SESSIONS
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import HearingState, RecordingPause
from tests.conftest import FakeClock
from tests.server.conftest import PASSWORD, CourtWorld, make_config, seed_court

S = HearingState


@dataclass
class Court:
    server: TestServer
    world: CourtWorld

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def cookies(self, path: str, body: dict[str, Any]) -> dict[str, str]:
        jar = aiohttp.CookieJar(unsafe=True)
        async with (
            aiohttp.ClientSession(cookie_jar=jar) as http,
            http.post(self.url(path), json=body) as resp,
        ):
            assert resp.status == 200, await resp.text()
        return {c.key: c.value for c in jar}

    async def client(self, who: str) -> SignalingClient:
        """A joined signaling client of staff `who` or of the station ("station")."""
        if who == "station":
            cookies = await self.cookies(
                "/api/auth/station",
                {"station_id": self.world.station_id, "key": self.world.station_key},
            )
        else:
            cookies = await self.cookies(
                "/api/auth/login", {"username": self.world.users[who], "password": PASSWORD}
            )
        client = SignalingClient(self.url("/ws").replace("http", "ws", 1), cookies=cookies)
        await client.connect()
        return client


@pytest.fixture
async def court(tmp_path: Path, aiohttp_server: AiohttpServer, clock: FakeClock) -> Court:
    keys = await asyncio.to_thread(keygen, tmp_path / "keys")
    config = make_config(
        tmp_path,
        ice={"host_addresses": ["127.0.0.1"]},
        sfu={"workers": 1},
        recording={
            "signing_key_file": str(keys.signing_private),
            "archive_public_key_files": [str(keys.archive_public)],
        },
    )
    await upgrade_async(config.database_url)
    server = await aiohttp_server(create_app(config, clock=clock), host="127.0.0.1")
    return Court(server, await seed_court(server.app[SESSIONS], clock, "Court A", "a"))


async def told(client: SignalingClient) -> m.HearingStateChanged:
    """The next `hearing_state` the client is sent (other events are skipped)."""
    async with asyncio.timeout(30):
        while True:
            event = await client.next_event()
            if isinstance(event, m.HearingStateChanged):
                return event


async def test_an_interruption_is_told_with_its_reason_and_a_recess_is_not(court: Court) -> None:
    hearing_id = court.world.hearing_id
    judge = await court.client("judge")
    station: SignalingClient | None = None
    try:
        await judge.join(hearing_id)
        await judge.request(m.SetHearingState(state=S.OPENED, reason="候庭"))
        await told(judge)
        await judge.request(m.SetHearingState(state=S.IN_SESSION, reason="开庭"))
        state = await told(judge)
        assert (state.state, state.recording, state.recording_pause) == (S.IN_SESSION, True, None)

        reason = RecordingPause.MEDIATION_OFF_RECORD
        await judge.request(m.SetRecording(recording=False, reason=reason, note="调解"))
        state = await told(judge)
        assert (state.state, state.recording, state.recording_pause) == (
            S.IN_SESSION,
            False,
            reason,
        )

        # The station joins while the recording is interrupted: its welcome says why.
        station = await court.client("station")
        welcome = await station.join(hearing_id)
        assert (welcome.hearing_state, welcome.recording, welcome.recording_pause) == (
            S.IN_SESSION,
            False,
            reason,
        )

        await judge.request(m.SetRecording(recording=True))
        for client in (judge, station):
            state = await told(client)
            assert (state.recording, state.recording_pause) == (True, None)

        # A recess pauses the recording too, but its reason is the state itself.
        await judge.request(m.SetHearingState(state=S.RECESS, reason="休庭"))
        for client in (judge, station):
            state = await told(client)
            assert (state.state, state.recording, state.recording_pause) == (S.RECESS, False, None)
        await station.close()
        station = await court.client("station")
        welcome = await station.join(hearing_id)
        assert (welcome.hearing_state, welcome.recording, welcome.recording_pause) == (
            S.RECESS,
            False,
            None,
        )

        # An interruption that a recess follows stays what stopped the recording; going back
        # in session resumes the recording and clears it.
        await judge.request(m.SetHearingState(state=S.IN_SESSION, reason="继续开庭"))
        assert (await told(judge)).recording is True
        await judge.request(
            m.SetRecording(recording=False, reason=RecordingPause.NON_PUBLIC_EVIDENCE)
        )
        assert (await told(judge)).recording_pause is RecordingPause.NON_PUBLIC_EVIDENCE
        await judge.request(m.SetHearingState(state=S.RECESS, reason="休庭"))
        state = await told(judge)
        assert (state.state, state.recording, state.recording_pause) == (
            S.RECESS,
            False,
            RecordingPause.NON_PUBLIC_EVIDENCE,
        )
        await judge.request(m.SetHearingState(state=S.IN_SESSION, reason="继续开庭"))
        state = await told(judge)
        assert (state.state, state.recording, state.recording_pause) == (S.IN_SESSION, True, None)
    finally:
        if station is not None:
            await station.close()
        await judge.close()
