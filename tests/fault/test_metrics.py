"""GET /metrics (issue 16.7): who may read it, and that its numbers move while a recorded
hearing with media runs."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from tests.e2e.conftest import Court
from tests.fault.live_court import WatchedHearing, start_court
from tests.server.conftest import PASSWORD

# An address of this machine that is not loopback, to call the server "from outside" on any
# machine (a CI box may have no other interface): added to `lo` for the test, then removed.
OUTSIDE_ADDRESS = "10.242.9.1"


@pytest.fixture
def outside_address() -> Iterator[str]:
    ip = ["ip", "addr", "{}", f"{OUTSIDE_ADDRESS}/32", "dev", "lo"]
    subprocess.run([a.format("add") for a in ip], check=True, capture_output=True)
    try:
        yield OUTSIDE_ADDRESS
    finally:
        subprocess.run([a.format("del") for a in ip], check=False, capture_output=True)


def _values(text: str) -> dict[str, float]:
    """Sample name (with labels) -> value, from the Prometheus text format."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def _total(values: dict[str, float], metric: str) -> float:
    return sum(v for k, v in values.items() if re.fullmatch(metric + r"(\{.*\})?", k))


async def _scrape(url: str, cookies: dict[str, str] | None = None) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True)) as h,
        h.get(url) as resp,
    ):
        return resp.status, await resp.text()


async def test_only_administrators_or_loopback_read_metrics(
    tmp_path: Path, aiohttp_server: AiohttpServer, outside_address: str
) -> None:
    address = outside_address
    # Every interface, so that the same server is called from loopback and from outside it.
    court = await start_court(tmp_path, aiohttp_server, host="0.0.0.0")  # noqa: S104
    port = court.server.port
    loopback, outside = f"http://127.0.0.1:{port}", f"http://{address}:{port}"
    w = court.world.own

    async def login(path: str, body: dict[str, str]) -> dict[str, str]:
        return await court.cookies(path, body)

    admin = await login("/api/auth/login", {"username": w.users["admin"], "password": PASSWORD})
    judge = await login("/api/auth/login", {"username": w.users["judge"], "password": PASSWORD})
    party = await login("/api/invitations/redeem", {"token": w.plaintiff_token})
    status, text = await _scrape(outside + "/metrics")
    assert status == 401, text
    assert "UNAUTHORIZED" in text
    for cookies in (judge, party):
        status, text = await _scrape(outside + "/metrics", cookies)
        assert status == 403, text
        assert "FORBIDDEN" in text
    status, text = await _scrape(outside + "/metrics", admin)
    assert status == 200, text
    assert "shared_court_hearings" in text
    status, text = await _scrape(loopback + "/metrics")
    assert status == 200, text


async def test_metrics_move_while_a_recorded_hearing_runs(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    court: Court = await start_court(tmp_path, aiohttp_server)
    url = court.base + "/metrics"
    status, text = await _scrape(url)
    assert status == 200, text
    idle = _values(text)
    assert _total(idle, "shared_court_hearings") == 0
    watched = WatchedHearing(court)
    try:
        await watched.start()
        first = _values((await _scrape(url))[1])
        await watched.packets_per_s(2.0)  # let media flow between the two scrapes
        second = _values((await _scrape(url))[1])
    finally:
        await watched.close()
    print({k: v for k, v in second.items() if v})
    assert _total(second, "shared_court_hearings") == 1
    assert _total(second, "shared_court_participants") == 2  # the judge and the station
    assert _total(second, "shared_court_signaling_sockets") >= 2
    assert _total(second, "shared_court_worker_peers") == 2
    assert _total(second, "shared_court_recordings") == 1
    assert _total(second, "shared_court_paused_video_streams") == 0
    for counter in (
        "shared_court_forwarded_packets_total",
        "shared_court_forwarded_bytes_total",
        "shared_court_received_packets_total",
        "shared_court_worker_cpu_seconds_total",
        "shared_court_recording_writes_total",
        "shared_court_recording_write_seconds_total",
    ):
        assert _total(second, counter) > _total(first, counter), counter
    assert _total(second, "shared_court_recording_failures_total") == 0
