"""What the fault tests of issue 16 (points 3-5) share: a real server with two courts whose
limits a test may set, and a hearing with media running in the other court, whose packet rate
at a real aiortc subscriber is measured before, during and after whatever a test does to the
first court.

The watched hearing: court B's station publishes a test-pattern camera and a tone over
`StationSession`; court B's judge subscribes with an aiortc peer connection (no tracks of its
own). `packets_per_s` reads the judge's RTCP-free receive counters (`getStats` inbound-rtp
`packetsReceived`) over a window.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiortc.mediastreams import AudioStreamTrack

from server.ids import HearingId
from server.sfu import aiortc_hooks
from server.web.appkeys import MEDIA
from signaling import messages as m
from signaling.enums import HearingState
from station_client.devices import AvCamera
from station_client.media import CameraTrack
from station_client.session import StationSession
from tests.e2e.conftest import Court, login_cookies
from tests.e2e.conftest import start_court as e2e_start_court
from tests.server.conftest import PASSWORD, CourtWorld

MEDIA_TIMEOUT_S = 45.0  # first packets at the subscriber (generous: the machine is shared)


async def start_court(
    tmp_path: Path, aiohttp_server: Any, *, host: str = "127.0.0.1", **overrides: Any
) -> Court:
    """tests/e2e's court, with configuration overrides, and this process's own aiortc peers
    (the watching subscribers) gathering on loopback only."""
    aiortc_hooks.install_host_addresses(["127.0.0.1"])
    return await e2e_start_court(tmp_path, aiohttp_server, host=host, **overrides)


async def other_judge_cookies(court: Court) -> dict[str, str]:
    return await login_cookies(
        court.base + "/api/auth/login",
        {"username": court.world.other.users["judge"], "password": PASSWORD},
    )


async def received_packets(session: StationSession | None) -> int:
    """RTP packets a session's peer connection has received so far (audio and video)."""
    if session is None or session.pc is None:
        return 0
    report = await session.pc.getStats()
    return sum(
        int(getattr(s, "packetsReceived", 0) or 0)
        for s in report.values()
        if getattr(s, "type", "") == "inbound-rtp"
    )


class WatchedHearing:
    """Court B's hearing in session: the station publishes, the judge receives."""

    def __init__(self, court: Court, which: str = "other") -> None:
        self.court = court
        self.world: CourtWorld = getattr(court.world, which)
        self.camera = CameraTrack(AvCamera.test_pattern(size="160x120", fps=15))
        self.station: StationSession | None = None
        self.judge: StationSession | None = None

    async def start(self) -> None:
        court, w = self.court, self.world
        await self.camera.start()
        judge_cookies = await login_cookies(
            court.base + "/api/auth/login", {"username": w.users["judge"], "password": PASSWORD}
        )
        judge = self.judge = StationSession(court.client(judge_cookies))
        await judge.signaling.connect()
        await judge.join(w.hearing_id)
        await judge.signaling.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        station_cookies = await login_cookies(
            court.base + "/api/auth/station", {"station_id": w.station_id, "key": w.station_key}
        )
        station = self.station = StationSession(
            court.client(station_cookies), video=self.camera, audio=AudioStreamTrack()
        )
        await station.signaling.connect()
        welcome = await station.join(w.hearing_id)
        await judge.signaling.request(
            m.SetHearingState(state=HearingState.IN_SESSION, reason="开庭")
        )
        await judge.signaling.request(m.Admit(participant_id=welcome.participant_id))
        async with asyncio.timeout(MEDIA_TIMEOUT_S):
            while await self.packets() < 50:
                await asyncio.sleep(0.2)  # polling the subscriber's receive counters

    async def packets(self) -> int:
        """RTP packets the judge's peer connection has received so far (audio and video)."""
        return await received_packets(self.judge)

    async def packets_per_s(self, window_s: float = 1.5) -> float:
        """Packets per second at the subscriber over the next `window_s` seconds."""
        start, t0 = await self.packets(), time.monotonic()
        await asyncio.sleep(window_s)  # a measurement window, not a wait for an outcome
        return (await self.packets() - start) / (time.monotonic() - t0)

    async def recorded_frames(self) -> int:
        dump: dict[str, Any] = await (
            self.court.server.app[MEDIA].pool.router(HearingId(self.world.hearing_id)).dump()
        )
        recording = dump.get("recording") or {}
        return sum(
            track["frames"]
            for participant in recording.get("participants", {}).values()
            for track in participant["tracks"]
        )

    async def close(self) -> None:
        for session in (self.station, self.judge):
            if session is not None:
                await session.close(leave=False)
        self.camera.stop()


class RateDuring:
    """Samples the watched hearing's packet rate continuously while a block of hostile work
    runs (`async with RateDuring(watched) as during: ...`; then `during.rates`)."""

    def __init__(self, watched: WatchedHearing, window_s: float = 1.0) -> None:
        self.watched = watched
        self.window_s = window_s
        self.rates: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.rates.append(await self.watched.packets_per_s(self.window_s))

    async def __aenter__(self) -> RateDuring:
        self._task = asyncio.ensure_future(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def watched_hearing(court: Court) -> AsyncIterator[WatchedHearing]:
    watched = WatchedHearing(court)
    try:
        await watched.start()
        yield watched
    finally:
        await watched.close()


__all__ = ["PASSWORD", "RateDuring", "WatchedHearing", "start_court", "watched_hearing"]
