"""A Python aiortc participant (the station client's session, with the real camera path on a
synthetic lavfi source) joins a hearing with a browser: each sees and hears the other."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.mediastreams import AudioStreamTrack
from playwright.async_api import Browser

from server.sfu import aiortc_hooks
from signaling import messages as m
from signaling.client import SignalingClient
from station_client.devices import AvCamera
from station_client.media import CameraTrack
from station_client.session import StationSession
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import login_page, participant_id, wait_receiving


@pytest.fixture(autouse=True)
def _loopback_candidates() -> None:
    # This test process is the station's machine: offer only loopback candidates.
    aiortc_hooks.install_host_addresses(["127.0.0.1"])


@pytest.mark.browser
async def test_station_and_browser_see_and_hear_each_other(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    await court.set_state("in_session", "开庭")
    # the station shares this process (and its event loop) with the server: a light camera
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    await camera.start()
    station = StationSession(
        court.client(await court.station()), video=camera, audio=AudioStreamTrack()
    )
    context = await browser.new_context()
    try:
        await station.signaling.connect()
        welcome = await station.join(court.world.own.hearing_id)
        assert welcome.role == "station"
        await clerk.request(m.Admit(participant_id=welcome.participant_id))
        judge = await login_page(context, court, "judge")
        judge_id = await participant_id(judge)
        await wait_receiving(judge, {welcome.participant_id})
        async with asyncio.timeout(30):
            while station.frames.get(judge_id, 0) < 10:
                await asyncio.sleep(0.1)  # polling the station's frame counter with a deadline
    finally:
        await context.close()
        await station.close()
        camera.stop()
