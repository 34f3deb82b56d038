"""Relayed media through a real coturn on loopback, with the server's time-limited TURN REST
credentials (coturn `use-auth-secret`)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page
from pytest_aiohttp import AiohttpServer

from recordings import keygen
from server.app import create_app
from server.clock import SystemClock
from server.storage.db import upgrade_async
from server.web.appkeys import SESSIONS
from signaling import messages as m
from signaling.enums import HearingState
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import participant_id, wait_receiving
from tests.server.conftest import PASSWORD, World, make_config, seed_court

SECRET = "turn-test-shared-secret"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("coturn is not installed; `make test` installs it", pytrace=False)
    port = _free_udp_port()
    process = subprocess.Popen(
        [
            binary,
            "-n",
            "--listening-ip=127.0.0.1",
            f"--listening-port={port}",
            "--relay-ip=127.0.0.1",
            "--min-port=49160",
            "--max-port=49200",
            "--use-auth-secret",
            f"--static-auth-secret={SECRET}",
            "--realm=court.test",
            "--allow-loopback-peers",
            "--no-multicast-peers",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            f"--pidfile={tmp_path / 'turn.pid'}",
            "--log-file=stdout",
            "--simple-log",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture
async def turn_court(tmp_path: Path, aiohttp_server: AiohttpServer, coturn: int) -> Court:
    secret = tmp_path / "turn-secret"
    secret.write_text(SECRET)
    keys = await asyncio.to_thread(keygen, tmp_path / "keys")
    config = await asyncio.to_thread(
        make_config,
        tmp_path,
        sfu={"workers": 1},
        ice={
            "host_addresses": ["127.0.0.1"],
            "servers": [{"urls": [f"turn:127.0.0.1:{coturn}?transport=udp"], "turn_rest": True}],
            "turn_secret_file": str(secret),
        },
        recording={
            "signing_key_file": str(keys.signing_private),
            "archive_public_key_files": [str(keys.archive_public)],
        },
    )
    await upgrade_async(config.database_url)
    clock = SystemClock()  # end to end: real time, as watchdogs and rate limits see it
    server: TestServer = await aiohttp_server(create_app(config, clock=clock), host="127.0.0.1")
    world = World(
        own=await seed_court(server.app[SESSIONS], clock, "Court A", "a"),
        other=await seed_court(server.app[SESSIONS], clock, "Court B", "b"),
    )
    return Court(server, world, clock, tmp_path)


SELECTED_PAIR_JS = """
async () => {
  const stats = await window.courtRoom.pc.getStats();
  let pair = null;
  stats.forEach((r) => {
    if (r.type === "transport") pair = stats.get(r.selectedCandidatePairId);
  });
  if (!pair) return null;
  return { local: stats.get(pair.localCandidateId).candidateType,
           remote: stats.get(pair.remoteCandidateId).candidateType };
}
"""


async def relayed_page(browser: Browser, court: Court, role: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(court.base + "/")
    await page.fill("#username", court.world.own.users[role])
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(court.base + "/dashboard")
    await page.goto(f"{court.base}/hearings/{court.world.own.hearing_id}/room?relay=1")
    return page


@pytest.mark.browser
async def test_media_flows_through_the_turn_relay(turn_court: Court, browser: Browser) -> None:
    court = turn_court
    async with court.client(await court.staff("judge")) as judge:
        await judge.join(court.world.own.hearing_id)
        await judge.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
    welcome_servers = None
    pages = [await relayed_page(browser, court, role) for role in ("judge", "clerk")]
    try:
        ids = [await participant_id(p) for p in pages]
        welcome_servers = await pages[0].evaluate("window.courtRoom.me.ice_servers")
        for page, me in zip(pages, ids, strict=True):
            await wait_receiving(page, set(ids) - {me})
            pair = await page.evaluate(SELECTED_PAIR_JS)
            assert pair is not None
            assert pair["local"] == "relay", pair
    finally:
        for page in pages:
            await page.context.close()
    # The credentials were the TURN REST kind: "<expiry>:<participant>" and an HMAC.
    assert welcome_servers is not None
    username = welcome_servers[0]["username"]
    expiry, opaque = username.split(":", 1)
    assert int(expiry) > datetime.now(UTC).timestamp()
    assert opaque in ids
