"""A party's phone loses its network in session and gets it back (issue 13, point 2).

Chromium runs inside a network namespace this test creates (`scpns`, joined to this one by the
veth pair scpv0/scpv1 on 10.233.7.0/30; the court listens on the host side, 10.233.7.1). The
party is cut off while the judge is seen and heard, two ways: packets to the court go nowhere
(a blackhole route; the phone keeps its network) or the interface goes down. The page says
"重新连接中…" (never goes blank); the network comes back: the party is in the hearing again and
receiving the judge's media within 5 s (8 s when the interface itself came back, see
BACK_WITHIN), without a page reload (a marker on `window` survives). The namespace is removed
whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright, expect
from pytest_aiohttp import AiohttpServer

from server.app import create_app
from server.clock import SystemClock
from server.storage.db import upgrade_async
from server.web.appkeys import SESSIONS
from signaling import messages as m
from signaling.enums import HearingState
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import login_page, participant_id, party_page, received
from tests.server.conftest import World, make_config, seed_court

NS, HOST_LINK, NS_LINK = "scpns", "scpv0", "scpv1"
HOST_IP, NS_IP = "10.233.7.1", "10.233.7.2"
BACK_WITHIN_S = 5.0
# The usual flags, with the court's address let through the resolver rules.
ARGS = [
    f"{a} , EXCLUDE {HOST_IP}" if a.startswith("--host-resolver-rules=") else a
    for a in CHROMIUM_ARGS
]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _cleanup() -> None:
    subprocess.run(["ip", "link", "del", HOST_LINK], capture_output=True, timeout=30)
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[None]:
    """The namespace and its veth link (left over from a killed run: removed first)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail(
            "network namespace tests need root and iproute2 (`make test` runs as root)",
            pytrace=False,
        )
    _cleanup()
    try:
        _ip("netns", "add", NS)
        _ip("link", "add", HOST_LINK, "type", "veth", "peer", "name", NS_LINK)
        _ip("link", "set", NS_LINK, "netns", NS)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", HOST_LINK)
        _ip("link", "set", HOST_LINK, "up")
        _ip("netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", NS_LINK)
        _ip("netns", "exec", NS, "ip", "link", "set", NS_LINK, "up")
        _ip("netns", "exec", NS, "ip", "link", "set", "lo", "up")
        yield
    finally:
        _cleanup()


@pytest.fixture
async def browsers(ns_court: Court, tmp_path: Path) -> AsyncIterator[tuple[Browser, Browser]]:
    """(Chromium inside the namespace, Chromium in this one). Playwright talks to the first
    over a pipe, not the network, so cutting the link leaves the test in control. The court's
    plain-http origin counts as secure, as 127.0.0.1 would (getUserMedia needs that)."""
    args = [*ARGS, f"--unsafely-treat-insecure-origin-as-secure={ns_court.base}"]
    wrapper = tmp_path / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {NS} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    async with async_playwright() as pw:
        inside = await pw.chromium.launch(executable_path=str(wrapper), headless=True, args=args)
        try:
            outside = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                yield inside, outside
            finally:
                await outside.close()
        finally:
            await inside.close()


@pytest.fixture
async def ns_court(netns: None, tmp_path: Path, aiohttp_server: AiohttpServer) -> Court:
    config = make_config(
        tmp_path,
        sfu={"workers": 1},
        ice={"host_addresses": [HOST_IP]},
        recording={"enabled": False},
    )
    await upgrade_async(config.database_url)
    clock = SystemClock()
    server: TestServer = await aiohttp_server(create_app(config, clock=clock), host=HOST_IP)
    world = World(
        own=await seed_court(server.app[SESSIONS], clock, "Court A", "a"),
        other=await seed_court(server.app[SESSIONS], clock, "Court B", "b"),
    )
    return Court(server, world, clock, tmp_path)


def _cut(how: str, cut: bool) -> None:
    """Cut the phone off the court, or restore it: `route`: packets to the court go nowhere
    (the phone keeps its network, as when the line behind the Wi-Fi fails); `link`: the
    interface goes down (as when the phone loses the Wi-Fi)."""
    if how == "route":
        verb = "add" if cut else "del"
        cmd = ["ip", "route", verb, "blackhole", f"{HOST_IP}/32"]
        if cut:
            _ip("netns", "exec", NS, *cmd)
        else:
            subprocess.run(["ip", "netns", "exec", NS, *cmd], capture_output=True, timeout=30)
    else:
        _ip("netns", "exec", NS, "ip", "link", "set", NS_LINK, "down" if cut else "up")


# How soon the party must be back after the network returns. With the interface itself gone,
# Chromium learns it again only 1.5-3 s after it is back (its network-change notice) and
# gathers ICE candidates on it then; measured 1.7-4.9 s, so that case is held to 8 s.
BACK_WITHIN = {"route": BACK_WITHIN_S, "link": 8.0}


async def _back_in_session(page: Page, judge_id: str) -> bool:
    room = await page.evaluate(
        "({status: window.courtRoom.status, state: window.courtRoom.state,"
        " rejoins: window.courtRoom.rejoins})"
    )
    if room != {"status": "connected", "state": "in_hearing", "rejoins": room["rejoins"]}:
        return False
    if room["rejoins"] < 1:
        return False
    media = await received(page)
    return (
        media.get((judge_id, "video"), {}).get("framesDecoded", 0) > 0
        and media.get((judge_id, "audio"), {}).get("packetsReceived", 0) > 0
    )


@pytest.mark.browser
@pytest.mark.parametrize("how", ["route", "link"])
async def test_party_comes_back_by_itself_within_5_s(
    ns_court: Court, browsers: tuple[Browser, Browser], how: str
) -> None:
    court = ns_court
    ns_browser, browser = browsers
    w = court.world.own
    async with court.client(await court.staff("clerk")) as clerk:
        await clerk.join(w.hearing_id)
        await clerk.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        judge_context = await browser.new_context()
        phone = await ns_browser.new_context(
            viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
        )
        try:
            judge = await login_page(judge_context, court, "judge")
            page = await party_page(phone, court, w.plaintiff_token, "PLAINTIFF")
            await court.set_state("in_session", "开庭")
            await clerk.request(m.Admit(all=True))
            judge_id = await participant_id(judge)
            await page.wait_for_timeout(8000)
            async with asyncio.timeout(30):
                while (await received(page)).get((judge_id, "video"), {}).get(
                    "framesDecoded", 0
                ) == 0:
                    await page.wait_for_timeout(100)  # polling the stats with a deadline
            first = await page.evaluate(
                "window.courtRoom.peer.connectedAt - window.courtRoom.peer.answeredAt"
            )
            print(f"first connection: media connected {first:.0f} ms after the answer")
            await page.evaluate("window.__scpMarker = 'no reload'")
            await page.screenshot(path=str(court.data_dir / f"reconnect-{how}-1-in-session.png"))

            _cut(how, True)
            banner = page.locator("#reconnecting")
            await expect(banner).to_be_visible(timeout=20_000)
            await page.wait_for_function(
                "() => window.courtRoom.status === 'reconnecting'", timeout=20_000
            )
            await expect(banner).to_contain_text("重新连接中…")
            await expect(page.locator("#tiles .tile.main")).to_be_visible()  # never blank
            await page.screenshot(path=str(court.data_dir / f"reconnect-{how}-2-reconnecting.png"))

            _cut(how, False)
            restored = time.monotonic()
            restored_at = await page.evaluate("performance.now()")
            async with asyncio.timeout(30):
                while not await _back_in_session(page, judge_id):
                    await page.wait_for_timeout(50)  # polling the page's state with a deadline
            took = time.monotonic() - restored
            await page.screenshot(path=str(court.data_dir / f"reconnect-{how}-3-back.png"))
            phases = await page.evaluate(
                "(t0) => ({rejoined: window.courtRoom.timings.rejoined - t0,"
                " offered: window.courtRoom.peer.offeredAt - t0,"
                " answered: window.courtRoom.peer.answeredAt - t0,"
                " media: window.courtRoom.peer.connectedAt - t0})",
                restored_at,
            )
            print(
                f"back in session and receiving media {took:.2f} s after the link returned"
                f" (after: joined again {phases['rejoined']:.0f} ms, offer sent"
                f" {phases['offered']:.0f} ms, answered {phases['answered']:.0f} ms,"
                f" media connected {phases['media']:.0f} ms)"
            )
            assert took < BACK_WITHIN[how]
            assert await page.evaluate("window.__scpMarker") == "no reload"
            await expect(banner).to_be_hidden()
            await expect(page.locator("#room")).to_have_attribute("data-state", "in_hearing")
            # the judge has the party back too, in the hearing
            me = await participant_id(page)
            await expect(
                judge.locator(f'#roster li[data-participant-id="{me}"]')
            ).to_have_attribute("data-state", "in_hearing", timeout=10_000)
        finally:
            _cut(how, False)
            await phone.close()
            await judge_context.close()
