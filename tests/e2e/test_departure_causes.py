"""Departure causes produced for real (OLR 25 evidence): the client process is killed, and the
client's network is cut inside a network namespace this test creates."""

from __future__ import annotations

import asyncio
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
from server.appkeys import SESSIONS
from server.clock import SystemClock
from server.storage.db import upgrade_async
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import HearingState
from signaling.reasons import CloseReason
from tests.e2e.conftest import Court
from tests.e2e.test_signaling import next_of
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


async def _court(tmp_path: Path, aiohttp_server: AiohttpServer, host: str) -> Court:
    config = make_config(
        tmp_path,
        sfu={"workers": 1},
        signaling={"heartbeat_interval_s": 1},
        ice={"host_addresses": ["127.0.0.1"]},
        recording={"enabled": False},
    )
    await upgrade_async(config.database_url)
    clock = SystemClock()  # end to end: real time, as watchdogs and rate limits see it
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
