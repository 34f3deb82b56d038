"""Departure causes produced for real (OLR 25 evidence): the client process is killed, the
client's network is cut inside a network namespace this test creates, and a client that floods
or sends an oversized frame is closed by the server (never recorded as a network failure)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from server.app import create_app
from server.clock import Clock, SystemClock
from server.storage.db import upgrade_async
from server.web.appkeys import SESSIONS
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import HearingState
from signaling.limits import RATE_BURST, RATE_STRIKES, WS_MAX_FRAME_BYTES
from signaling.reasons import CloseReason
from tests.conftest import FakeClock
from tests.e2e.conftest import Court
from tests.e2e.test_signaling import _timeline, next_of
from tests.server.conftest import World, make_config, seed_court

ROOT = Path(__file__).resolve().parents[2]
HOST_IP, CLIENT_IP = "10.231.0.1", "10.231.0.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[tuple[str, str]]:
    """A network namespace joined to this one by a veth pair: (namespace, host-side link)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail(
            "network namespace tests need root and iproute2 (`make test` runs as root)",
            pytrace=False,
        )
    tag = uuid.uuid4().hex[:6]
    ns, host_link, client_link = f"sc-{tag}", f"sch{tag}", f"scc{tag}"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", host_link, "type", "veth", "peer", "name", client_link)
        _ip("link", "set", client_link, "netns", ns)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", host_link)
        _ip("link", "set", host_link, "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{CLIENT_IP}/30", "dev", client_link)
        _ip("netns", "exec", ns, "ip", "link", "set", client_link, "up")
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns, host_link
    finally:
        subprocess.run(["ip", "link", "del", host_link], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


async def _court(
    tmp_path: Path, aiohttp_server: AiohttpServer, host: str, clock: Clock | None = None
) -> Court:
    config = make_config(
        tmp_path,
        sfu={"workers": 1},
        signaling={"heartbeat_interval_s": 1},
        ice={"host_addresses": ["127.0.0.1"]},
        recording={"enabled": False},
    )
    await upgrade_async(config.database_url)
    # End to end: real time, as watchdogs and rate limits see it (unless a test holds it still).
    clock = clock or SystemClock()
    server: TestServer = await aiohttp_server(create_app(config, clock=clock), host=host)
    world = World(
        own=await seed_court(server.app[SESSIONS], clock, "Court A", "a"),
        other=await seed_court(server.app[SESSIONS], clock, "Court B", "b"),
    )
    return Court(server, world, clock, tmp_path)


async def _spawn_client(court: Court, prefix: list[str]) -> asyncio.subprocess.Process:
    cookies = await court.party(court.world.own.plaintiff_token)
    process = await asyncio.create_subprocess_exec(
        *prefix,
        sys.executable,
        "-m",
        "tests.e2e.client_process",
        court.ws_url,
        json.dumps(cookies),
        court.world.own.hearing_id,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert line.strip() == b"joined"
    return process


async def _watch(court: Court) -> SignalingClient:
    judge = court.client(await court.staff("judge"))
    await judge.connect()
    await judge.join(court.world.own.hearing_id)
    await judge.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
    return judge


async def test_killed_client_is_network_lost(tmp_path: Path, aiohttp_server: AiohttpServer) -> None:
    court = await _court(tmp_path, aiohttp_server, "127.0.0.1")
    judge = await _watch(court)
    process = await _spawn_client(court, [])
    try:
        process.send_signal(signal.SIGKILL)
        await process.wait()
        evidence = await next_of(
            judge,
            m.DisconnectEvidence,
            lambda e: e.participant_id == court.world.own.plaintiff_id,
        )
        assert evidence.reason is CloseReason.NETWORK_LOST
    finally:
        await judge.close()


async def test_cut_network_is_heartbeat_lost(
    tmp_path: Path, aiohttp_server: AiohttpServer, netns: tuple[str, str]
) -> None:
    ns, host_link = netns
    court = await _court(tmp_path, aiohttp_server, HOST_IP)
    judge = await _watch(court)
    process = await _spawn_client(court, ["ip", "netns", "exec", ns])
    try:
        # The line goes dead without a word: no FIN, no RST, nothing more arrives.
        _ip("link", "set", host_link, "down")
        evidence = await next_of(
            judge,
            m.DisconnectEvidence,
            lambda e: e.participant_id == court.world.own.plaintiff_id,
            timeout=20,
        )
        assert evidence.reason is CloseReason.HEARTBEAT_LOST
    finally:
        process.kill()
        await process.wait()
        await judge.close()


async def _departure(court: Court, participant_id: str) -> dict[str, object]:
    departed = [
        e["data"]
        for e in await _timeline(court)
        if e["kind"] == "participant.departed" and e["data"]["participant_id"] == participant_id
    ]
    assert len(departed) == 1, departed
    found: dict[str, object] = departed[0]
    return found


async def test_a_flooding_client_is_closed_for_protocol_violation(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    # The clock stands still, so the token bucket never refills: exactly RATE_BURST requests
    # pass, then RATE_STRIKES refusals in a row close the connection, however slow the machine.
    court = await _court(tmp_path, aiohttp_server, "127.0.0.1", FakeClock())
    judge = await _watch(court)
    station = court.client(await court.station())
    try:
        await station.connect()
        me = (await station.join(court.world.own.hearing_id)).participant_id
        assert station._ws is not None
        for n in range(RATE_BURST + RATE_STRIKES + 10):
            text = json.dumps({"v": 1, "type": "heartbeat", "transaction": f"flood-{n}"})
            with contextlib.suppress(ConnectionError):
                await station._ws.send_str(text)
        assert await asyncio.wait_for(station.wait_closed(), 10) is CloseReason.PROTOCOL_VIOLATION
        assert station._ws.close_code == 1008  # policy violation
        evidence = await next_of(judge, m.DisconnectEvidence, lambda e: e.participant_id == me)
        assert evidence.reason is CloseReason.PROTOCOL_VIOLATION
        assert "flooding" in (evidence.detail or "")
    finally:
        await station.close()
        await judge.close()
    departed = await _departure(court, me)
    assert departed["cause"] == "PROTOCOL_VIOLATION"
    assert departed["excused"] is False


async def test_an_oversized_frame_is_closed_1009_for_protocol_violation(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    court = await _court(tmp_path, aiohttp_server, "127.0.0.1")
    judge = await _watch(court)
    station = court.client(await court.station())
    try:
        await station.connect()
        me = (await station.join(court.world.own.hearing_id)).participant_id
        assert station._ws is not None
        await station._ws.send_str("x" * (WS_MAX_FRAME_BYTES + 1))
        assert await asyncio.wait_for(station.wait_closed(), 10) is CloseReason.PROTOCOL_VIOLATION
        assert station._ws.close_code == 1009  # message too big, aiohttp's own close
        evidence = await next_of(judge, m.DisconnectEvidence, lambda e: e.participant_id == me)
        assert evidence.reason is CloseReason.PROTOCOL_VIOLATION
    finally:
        await station.close()
        await judge.close()
    departed = await _departure(court, me)
    assert (departed["cause"], departed["excused"]) == ("PROTOCOL_VIOLATION", False)
