"""Clients behind a plain load balancer rejoin by themselves when a node dies (issue 17.3, 17.6).

haproxy (tests/cluster/haproxy.py) stands in front of the three nodes; a station and a judge
run as their own processes (the station client's session, rejoining by itself: see
tests/cluster/lb_participant.py) and know only haproxy's address. kill -9 of the node holding
the hearing mid-hearing, recording on: the clients' connections end, they join again through
haproxy (which has taken the dead node out), the hearing is placed on a live node and they see
and hear each other again; the recordings verify 0 and 2 and the event log has the returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from recordings import verify_package
from signaling import messages as m
from signaling.client import SignalingClient
from signaling.enums import ClientKind, HearingState
from signaling.errors import SignalingError
from tests.cluster.conftest import Cluster
from tests.cluster.haproxy import Haproxy
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import party_page, wait_receiving

ROOT = Path(__file__).resolve().parents[2]
RESUME_DEADLINE_S = 10.0


class ParticipantProcess:
    """tests/cluster/lb_participant.py, with its latest figures (one JSON line each 0.5 s)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.latest: dict[str, Any] = {}
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, ws_url: str, cookies: dict[str, str], hearing_id: str) -> None:
        config = {"ws": ws_url, "cookies": cookies, "hearing": hearing_id, "video": True}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.cluster.lb_participant",
            json.dumps(config),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            with contextlib.suppress(ValueError):
                figures = json.loads(line)
                if "error" not in figures:
                    self.latest = figures

    def me(self) -> str | None:
        return self.latest.get("me") if self.latest.get("joined") else None

    def receives(self, other: str, joins: int) -> tuple[int, int]:
        """Decoded video frames and audio packets from `other` in the session of join number
        `joins` (0, 0 before it)."""
        if self.latest.get("joins", 0) < joins or not self.latest.get("joined"):
            return 0, 0
        frames = int(self.latest.get("frames", {}).get(other, 0))
        audio = self.latest.get("in", {}).get(other, {}).get("audio", [0, 0])
        return frames, int(audio[0])

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


@pytest.fixture
async def haproxy(cluster: Cluster, tmp_path: Path) -> AsyncIterator[Haproxy]:
    proxy = Haproxy(tmp_path / "haproxy")
    await proxy.start(cluster.nodes)
    yield proxy
    await proxy.stop()


async def _rest(
    proxy: Haproxy, cookies: dict[str, str], method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": cookies.get("sc_csrf", "")}
    async with (
        aiohttp.ClientSession(cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True)) as h,
        h.request(method, proxy.base + path, json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


async def _as_clerk(
    proxy: Haproxy, cookies: dict[str, str], hearing_id: str, request: m.Request
) -> None:
    """The clerk's page, briefly through haproxy: join, one request, leave."""
    async with SignalingClient(proxy.ws_url, cookies=cookies) as clerk:
        await clerk.join(hearing_id, client_kind=ClientKind.BROWSER)
        await clerk.request(request)
        await clerk.leave()


async def _room(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = await page.evaluate(
        "({state: window.courtRoom.state, status: window.courtRoom.status,"
        " rejoins: window.courtRoom.rejoins})"
    )
    return value


async def _admit_when_back(
    proxy: Haproxy,
    cookies: dict[str, str],
    hearing_id: str,
    station: ParticipantProcess,
    phone: Page | None,
) -> None:
    """The clerk admits the station (and the party) once back in the waiting room (a
    participant rejoining after its hearing's server went away waits to be admitted again, as
    after a restart)."""
    while True:
        room = await _room(phone) if phone is not None else None
        station_back = station.me() is not None and station.latest.get("joins", 0) >= 2
        phone_back = room is None or (
            room["rejoins"] >= 1 and room["state"] == "waiting" and room["status"] == "connected"
        )
        if station_back and phone_back:
            try:
                await _as_clerk(proxy, cookies, hearing_id, m.Admit(all=True))
                return
            except (SignalingError, OSError):
                pass  # the hearing is being placed again: try once more
        await asyncio.sleep(0.2)  # polling the participants' states for their return


async def _see_and_hear(
    a: ParticipantProcess, b: ParticipantProcess, joins: int, deadline_s: float
) -> None:
    async with asyncio.timeout(deadline_s):
        while True:
            a_id, b_id = a.me(), b.me()
            if a_id and b_id:
                fa, aa = a.receives(b_id, joins)
                fb, ab = b.receives(a_id, joins)
                if min(fa, fb) >= 10 and min(aa, ab) >= 25:
                    return
            await asyncio.sleep(0.2)  # polling the participants' figures, with a deadline


async def _packages(root: Path) -> set[Path]:
    def find() -> set[Path]:
        return {p for p in root.iterdir() if p.is_dir()} if root.exists() else set()

    return await asyncio.to_thread(find)


async def test_clients_behind_haproxy_rejoin_by_themselves_when_a_node_dies(
    cluster: Cluster, haproxy: Haproxy, tmp_path: Path
) -> None:
    await _kill_the_hearings_node(cluster, haproxy, tmp_path, None)


@pytest.mark.browser
async def test_the_party_page_behind_haproxy_comes_back_when_a_node_dies(
    cluster: Cluster, haproxy: Haproxy, tmp_path: Path, browser: Browser
) -> None:
    await _kill_the_hearings_node(cluster, haproxy, tmp_path, browser)


async def _kill_the_hearings_node(
    cluster: Cluster, haproxy: Haproxy, tmp_path: Path, browser: Browser | None
) -> None:
    world = cluster.worlds[0]
    n0 = cluster.nodes[0]
    clerk = await n0.staff(world, "clerk")
    judge_cookies = await n0.staff(world, "judge")
    hid = world.hearing_id
    station = ParticipantProcess("station")
    judge = ParticipantProcess("judge")
    # The party's phone knows only haproxy's address too (party_page reads `base` and the
    # world's hearing from what it is given).
    through_haproxy = cast(
        Court, SimpleNamespace(base=haproxy.base, world=SimpleNamespace(own=world))
    )
    phone_context: BrowserContext | None = None
    phone: Page | None = None
    if browser is not None:
        phone_context = await browser.new_context(
            viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
        )
    try:
        await _as_clerk(
            haproxy, clerk, hid, m.SetHearingState(state=HearingState.OPENED, reason="候庭")
        )
        status, body = await _rest(
            haproxy,
            judge_cookies,
            "POST",
            f"/api/hearings/{hid}/state",
            {"state": "in_session", "reason": "开庭"},
        )
        assert status == 200, body
        await station.start(haproxy.ws_url, await n0.station(world), hid)
        await judge.start(haproxy.ws_url, judge_cookies, hid)
        if phone_context is not None:
            phone = await party_page(
                phone_context, through_haproxy, world.plaintiff_token, "PLAINTIFF"
            )
        async with asyncio.timeout(30):
            while station.me() is None or judge.me() is None:
                await asyncio.sleep(0.1)  # polling the processes' figures for their first join
        await _as_clerk(haproxy, clerk, hid, m.Admit(all=True))
        await _see_and_hear(station, judge, 1, 40)
        if phone is not None:
            await expect(phone.locator("#room")).to_have_attribute("data-state", "in_hearing")
            await wait_receiving(phone, {str(judge.me()), str(station.me())})
            await phone.screenshot(path=str(tmp_path / "lb-1-in-session.png"))
        owner = await cluster.owner(hid)
        assert owner is not None
        assert owner >= 0
        first = await _packages(cluster.data_dirs[owner] / "recordings")
        assert len(first) == 1, first
        # kill -9 of the hearing's node, mid-hearing, recording on.
        await cluster.nodes[owner].kill()
        killed_at = time.monotonic()
        async with asyncio.timeout(RESUME_DEADLINE_S):
            await _admit_when_back(haproxy, clerk, hid, station, phone)
            while judge.latest.get("joins", 0) < 2 or judge.me() is None:
                await asyncio.sleep(0.1)  # polling the judge's figures for its return
        rejoined_in = time.monotonic() - killed_at
        new_owner = await cluster.owner(hid)
        assert new_owner is not None
        assert new_owner >= 0
        assert new_owner != owner
        await _see_and_hear(station, judge, 2, RESUME_DEADLINE_S + 5)
        if phone is not None:
            await phone.screenshot(path=str(tmp_path / "lb-2-back.png"))
            await expect(phone.locator("#room")).to_have_attribute("data-state", "in_hearing")
            await wait_receiving(phone, {str(judge.me()), str(station.me())}, timeout=15)
            await phone.screenshot(path=str(tmp_path / "lb-3-seeing-again.png"))
            assert (await _room(phone))["rejoins"] >= 1  # the same page, rejoined by itself
        resumed_in = time.monotonic() - killed_at
        print(
            f"node {owner} killed; both back through haproxy on node {new_owner} after "
            f"{rejoined_in:.1f} s, seeing and hearing each other after {resumed_in:.1f} s"
        )
        assert resumed_in < RESUME_DEADLINE_S + 5, resumed_in
        second = await _packages(cluster.data_dirs[new_owner] / "recordings")
        assert len(second) == 1, second
        status, body = await _rest(
            haproxy,
            judge_cookies,
            "POST",
            f"/api/hearings/{hid}/state",
            {"state": "closed", "reason": "闭庭"},
        )
        assert status == 200, body
    finally:
        await station.stop()
        await judge.stop()
        if phone_context is not None:
            await phone_context.close()
    # The killed node restarts: its start-up recovery seals the package the kill left.
    await cluster.nodes[owner].start()
    async with asyncio.timeout(30):
        while True:
            reports = [
                await asyncio.to_thread(verify_package, p, [cluster.verify_key])
                for p in sorted(first | second)
            ]
            if all(r.exit_code in (0, 2) for r in reports):
                break
            await asyncio.sleep(0.5)  # polling until both packages are sealed
    assert sorted(r.exit_code for r in reports) == [0, 2], [r.text() for r in reports]
    status, body = await _rest(haproxy, judge_cookies, "GET", f"/api/hearings/{hid}/events")
    assert status == 200, body
    events = [(e["kind"], e.get("data", {})) for e in body["events"]]
    # The returns: each came back (joined again; the station admitted again), and the gap the
    # dead node left is on the log with its bounds. The departures at the kill are not: the
    # node that would have logged them was dead (docs/deployment.md, failure table).
    station_id, judge_id = station.latest["me"], judge.latest["me"]
    joined = [d["participant_id"] for k, d in events if k == "participant.joined"]
    assert joined.count(station_id) >= 2, events
    assert joined.count(judge_id) >= 2, events
    admitted = [d["participant_ids"] for k, d in events if k == "participant.admitted"]
    assert sum(station_id in ids for ids in admitted) == 2, events
    recovered = [d for k, d in events if k == "recording.recovered"]
    assert len(recovered) == 1, events
    assert recovered[0]["gap_from"] < recovered[0]["gap_to"], recovered
