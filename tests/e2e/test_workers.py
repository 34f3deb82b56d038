"""SFU worker processes: a killed worker ends only its hearings; their clients are told and
rejoin on a fresh worker."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from pytest_aiohttp import AiohttpServer

from server.app import create_app
from server.clock import SystemClock
from server.ids import HearingId
from server.storage.db import upgrade_async
from server.web.appkeys import MEDIA, SESSIONS
from signaling import messages as m
from signaling.reasons import CloseReason
from tests.e2e.conftest import Court
from tests.server.conftest import PASSWORD, World, make_config, seed_court


async def test_killing_a_worker_ends_only_its_hearings(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:

    clock = SystemClock()  # end to end: real time, as watchdogs and rate limits see it
    config = make_config(tmp_path, ice={"host_addresses": ["127.0.0.1"]}, sfu={"workers": 2})
    await upgrade_async(config.database_url)
    server = await aiohttp_server(create_app(config, clock=clock), host="127.0.0.1")
    world = World(
        own=await seed_court(server.app[SESSIONS], clock, "Court A", "a"),
        other=await seed_court(server.app[SESSIONS], clock, "Court B", "b"),
    )
    court = Court(server, world, clock, tmp_path)

    cookies_a = await court.staff("judge")
    cookies_b = await court.cookies(
        "/api/auth/login", {"username": world.other.users["judge"], "password": PASSWORD}
    )
    a = court.client(cookies_a)
    b = court.client(cookies_b)
    await a.connect()
    await b.connect()
    try:
        await a.join(world.own.hearing_id)
        await b.join(world.other.hearing_id)
        pool = server.app[MEDIA].pool
        worker_a = pool.worker_of(HearingId(world.own.hearing_id))
        worker_b = pool.worker_of(HearingId(world.other.hearing_id))
        assert worker_a is not worker_b  # the two hearings were placed on different workers

        os.kill(worker_a.process.pid, signal.SIGKILL)
        assert await asyncio.wait_for(a.wait_closed(), 15) is CloseReason.WORKER_DIED
        # The other hearing is untouched: its connection still answers.
        assert isinstance(await b.request(m.Heartbeat()), m.Result)
        assert not b.closed

        # The judge rejoins; the hearing is placed on a live (fresh) worker.
        await a.close()
        a = court.client(cookies_a)
        await a.connect()
        welcome = await a.join(world.own.hearing_id)
        assert welcome.participant_id
        assert pool.worker_of(HearingId(world.own.hearing_id)).alive
    finally:
        await a.close()
        await b.close()
    status, timeline = await court.call(
        cookies_a, "GET", f"/api/hearings/{world.own.hearing_id}/events"
    )
    assert status == 200
    causes = [e["data"]["cause"] for e in timeline["events"] if e["kind"] == "participant.departed"]
    assert CloseReason.WORKER_DIED.value in causes
