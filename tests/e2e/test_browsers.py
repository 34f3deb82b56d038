"""Real Chromium participants in one hearing, through the SFU.

(a) a judge and two parties, each in their own browser with a fake camera and microphone,
    decode video from both others and receive their audio;
(c) a late joiner's first decoded frame arrives within a second of its connection coming up;
(d) a participant who leaves disappears from the others' media and they renegotiate cleanly.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from signaling import messages as m
from signaling.client import SignalingClient
from tests.e2e.conftest import Court

HASH = re.compile(r"^[0-9a-f]{64}$")
# Chromium's fake devices on a loaded machine may leave a declared network gap: still verified.
VERIFIED = re.compile(r"^(intact|gaps)$")

STATS_JS = """
async () => {
  const room = window.courtRoom;
  if (!room || !room.pc) return [];
  const out = [];
  (await room.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp") {
      out.push({ kind: r.kind, mid: r.mid, owner: room.peer.midOwner.get(r.mid) ?? null,
                 framesDecoded: r.framesDecoded ?? 0, packetsReceived: r.packetsReceived ?? 0 });
    }
  });
  return out;
}
"""


async def received(page: Page) -> dict[tuple[str, str], dict[str, int]]:
    """Inbound media by (participant, kind): frames decoded and packets received."""
    stats = await page.evaluate(STATS_JS)
    return {(s["owner"], s["kind"]): s for s in stats if s["owner"]}


async def wait_receiving(
    page: Page, sources: set[str], *, timeout: float = 30.0
) -> dict[tuple[str, str], dict[str, int]]:
    """Wait until video frames are decoded and audio packets arrive from every source."""
    async with asyncio.timeout(timeout):
        while True:
            now = await received(page)
            if all(
                now.get((s, "video"), {}).get("framesDecoded", 0) > 0
                and now.get((s, "audio"), {}).get("packetsReceived", 0) > 0
                for s in sources
            ):
                return now
            await page.wait_for_timeout(100)  # polling the browser's stats with a deadline


async def frames_keep_coming(
    page: Page, sources: Iterable[str], *, frames: int = 5, timeout: float = 10.0
) -> None:
    """Wait until `frames` more video frames of each source are decoded than now: the picture
    moves on (not one keyframe and a frozen picture), within a deadline a loaded machine
    can keep."""
    start = await received(page)
    async with asyncio.timeout(timeout):
        while True:
            now = await received(page)
            if all(
                now.get((s, "video"), {}).get("framesDecoded", 0)
                >= start.get((s, "video"), {}).get("framesDecoded", 0) + frames
                for s in sources
            ):
                return
            await page.wait_for_timeout(100)  # polling the browser's stats with a deadline


async def login_page(context: BrowserContext, court: Court, role: str) -> Page:
    page = await context.new_page()
    await page.goto(court.base + "/")
    await page.fill("#username", court.world.own.users[role])
    await page.fill("#password", "correct horse battery")
    await page.click("button[type=submit]")
    await page.wait_for_url(court.base + "/dashboard")
    await page.goto(f"{court.base}/hearings/{court.world.own.hearing_id}/room")
    return page


async def party_page(
    context: BrowserContext, court: Court, token: str, name: str, *, hearing_id: str | None = None
) -> Page:
    page = await context.new_page()
    await page.goto(f"{court.base}/join#{token}")
    await expect(page.locator("#enter")).to_be_visible()
    hearing_id = hearing_id or court.world.own.hearing_id
    async with page.expect_navigation(url=f"**/hearings/{hearing_id}/attend"):
        await page.click("#enter")
    await page.click("#check-skip")  # the device check is tested in test_party_page.py
    await page.fill("#legal-name", name)
    await page.fill("#id-digits", "1234")
    await page.click("#identity-form button[type=submit]")
    for rule in ("online_proceedings", "court_rules", "no_recording"):
        await page.check(f"#consent-form input[name={rule}]")
    await page.click("#consent-form button[type=submit]")
    await expect(page.locator("#room")).to_have_attribute("data-state", "waiting")
    return page


async def participant_id(page: Page) -> str:
    """The page's own participant id, once it has joined."""
    await page.wait_for_function("() => Boolean(window.courtRoom && window.courtRoom.me)")
    value: Any = await page.evaluate("window.courtRoom.me.participant_id")
    return str(value)


@pytest.mark.browser
async def test_three_browsers_see_and_hear_each_other_and_leave_cleanly(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    contexts = [await browser.new_context() for _ in range(3)]
    try:
        judge = await login_page(contexts[0], court, "judge")
        plaintiff = await party_page(
            contexts[1], court, court.world.own.plaintiff_token, "PLAINTIFF"
        )
        defendant = await party_page(
            contexts[2], court, court.world.own.defendant_token, "DEFENDANT"
        )
        await court.set_state("in_session", "开庭")
        await clerk.request(m.Admit(all=True))
        pages = [judge, plaintiff, defendant]
        # everyone is told they are on the record, and when the judge interrupts it
        for on_record in ("true", "false", "true"):
            if on_record == "false":
                await judge.select_option("#pause-reason", "MEDIATION_OFF_RECORD")
                await judge.click("#pause-recording")
            elif await judge.locator("#resume-recording").is_visible():
                await judge.click("#resume-recording")
            for page in pages:
                await expect(page.locator("#hearing-state")).to_have_attribute(
                    "data-recording", on_record
                )
        ids = [await participant_id(p) for p in pages]
        for page, me in zip(pages, ids, strict=True):
            others = set(ids) - {me}
            await wait_receiving(page, others)
        # Frames keep being decoded (not a single keyframe and a frozen picture).
        await frames_keep_coming(judge, ids[1:])

        # (d) The defendant leaves: the others stop getting their media and keep the rest.
        await defendant.click("#leave")
        await defendant.click("#leave-confirm")  # a party's page asks once
        await expect(defendant.locator("#ended-title")).to_have_text("您已离开庭审")
        for page in (judge, plaintiff):
            tile = page.locator(f'figure.tile[data-participant-id="{ids[2]}"]')
            await expect(tile).to_have_count(0)
        await frames_keep_coming(plaintiff, [ids[0]])
        departures = judge.locator('#departures li[data-reason="CLIENT_LEFT"]')
        await expect(departures).to_have_count(1)

        # (e) The judge closes the hearing: those still there are shown the recording's root
        # hash, the plaintiff confirms it, and the judge plays the recording back.
        await judge.fill("#state-reason", "调解结束")
        await judge.click('#state-buttons [data-state="closed"]')
        await judge.click('[data-testid="confirm-ok"]')  # closing asks once
        for page in (judge, plaintiff):
            await expect(page.locator("#root-hash")).to_have_text(HASH, timeout=30_000)
        root_hash = await judge.locator("#root-hash").text_content()
        assert await plaintiff.locator("#root-hash").text_content() == root_hash
        await expect(plaintiff.locator("#play-recording")).to_be_hidden()
        await plaintiff.click("#confirm-hash")
        await expect(plaintiff.locator("#recording-hash")).to_have_attribute(
            "data-confirmed", "true"
        )
        link = await judge.locator("#play-recording").get_attribute("href")
        assert link is not None
        await judge.goto(court.base + link)
        badge = judge.locator("#badge")
        await expect(badge).to_have_attribute("data-verdict", VERIFIED, timeout=60_000)
        await expect(judge.locator("#root-hash")).to_have_text(root_hash or "")
        # one stream per browser, the defendant's too (recorded until they left)
        tiles = judge.locator(".tile")
        await expect(tiles).to_have_count(3)
        for pid in ids:
            await expect(judge.locator(f'.tile[data-participant-id="{pid}"]')).to_have_count(1)
    finally:
        for context in contexts:
            await context.close()


@pytest.mark.browser
async def test_late_joiner_sees_a_picture_within_a_second(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    contexts = [await browser.new_context() for _ in range(3)]
    try:
        await court.set_state("in_session", "开庭")
        plaintiff = await party_page(
            contexts[0], court, court.world.own.plaintiff_token, "PLAINTIFF"
        )
        defendant = await party_page(
            contexts[1], court, court.world.own.defendant_token, "DEFENDANT"
        )
        await clerk.request(m.Admit(all=True))
        ids = [await participant_id(p) for p in (plaintiff, defendant)]
        await wait_receiving(plaintiff, {ids[1]})
        # The judge arrives while the session runs (staff go straight in).
        judge = await login_page(contexts[2], court, "judge")
        await wait_receiving(judge, set(ids))
        # Decoded frames are painted a moment later: wait for the first painted frame of each.
        await judge.wait_for_function(
            "(ids) => ids.every((id) => window.courtRoom.timings.firstFrame.has(id))", arg=ids
        )
        timings = await judge.evaluate(
            "({connected: window.courtRoom.timings.connected,"
            " first: Object.fromEntries(window.courtRoom.timings.firstFrame)})"
        )
        for pid in ids:
            delay = timings["first"][pid] - timings["connected"]
            assert delay < 1000, f"first frame of {pid} {delay:.0f} ms after connecting"
    finally:
        for context in contexts:
            await context.close()
