"""A judge plays a sealed two-party recording back in Chromium: the verification badge, the
signed timeline, one video per participant in sync on one recording clock, and the wall time
of the frame on screen overlaid on each picture."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Browser, Page, expect

from recordings import (
    StaticKeyProvider,
    load_archive_private_key,
    load_archive_public_key,
    load_signing_key,
)
from tests.e2e.conftest import Court
from tests.server.recorded import record_hearing

OFFSET_S = 1.5  # the defendant's stream starts this much after the plaintiff's
SYNC_TOLERANCE_MS = 300


def _keys(court: Court) -> StaticKeyProvider:
    keys = court.data_dir / "keys"
    return StaticKeyProvider(
        load_signing_key(keys / "signing.key"),
        (
            load_archive_public_key(keys / "archive.pub"),
            load_archive_private_key(keys / "playback.key").public_key,
        ),
    )


async def _judge_page(browser: Browser, court: Court, path: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(court.base + "/")
    await page.fill("#username", court.world.own.users["judge"])
    await page.fill("#password", "correct horse battery")
    await page.click("button[type=submit]")
    await page.wait_for_url(court.base + "/dashboard")
    await page.goto(court.base + path)
    return page


async def _tiles(page: Page) -> list[dict[str, Any]]:
    tiles: list[dict[str, Any]] = await page.evaluate(
        """() => [...document.querySelectorAll('.tile')].map((f) => {
            const v = f.querySelector('video');
            const o = f.querySelector('.overlay');
            return {participant: f.dataset.participantId, present: f.dataset.present,
                    origin: Number(f.dataset.origin), time: v.currentTime, paused: v.paused,
                    width: v.videoWidth, overlay: Number(o.dataset.wallMs),
                    overlayText: o.textContent};
        })"""
    )
    return tiles


async def _position(page: Page) -> tuple[float, float]:
    start, pos = await page.evaluate(
        "() => [Number(player.dataset.start), Number(player.dataset.position)]"
    )
    return float(start), float(pos)


async def test_a_judge_plays_back_a_verified_recording_in_sync(
    court: Court, browser: Browser
) -> None:
    w = court.world.own
    rid = str(uuid.uuid4())
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    keys = await asyncio.to_thread(_keys, court)
    await asyncio.to_thread(
        record_hearing,
        court.data_dir / "recordings" / rid,
        keys,
        w.hearing_id,
        [(w.plaintiff_id, 0.0), (w.defendant_id, OFFSET_S)],
        start=start,
    )
    page = await _judge_page(browser, court, f"/hearings/{w.hearing_id}/recordings/{rid}")

    badge = page.locator("#badge")
    await expect(badge).to_have_attribute("data-verdict", "intact", timeout=30_000)
    await expect(badge).not_to_be_empty()
    status, playback = await court.call(
        await court.staff("judge"), "GET", f"/api/hearings/{w.hearing_id}/recordings/{rid}/playback"
    )
    assert status == 200, playback
    await expect(page.locator("#timeline li")).to_have_count(len(playback["timeline"]))
    timeline_types = await page.locator("#timeline li").evaluate_all(
        "(items) => items.map((li) => li.dataset.type)"
    )
    assert timeline_types[0] == "recording_started"
    assert timeline_types.count("media_started") == 2
    assert timeline_types[-1] == "recording_stopped"
    await expect(page.locator(".tile")).to_have_count(2)
    await expect(page.locator(".tile figcaption").first).to_contain_text("plaintiff")

    # At position 0 only the plaintiff's stream has started.
    async with asyncio.timeout(20):
        while True:
            tiles = {t["participant"]: t for t in await _tiles(page)}
            if tiles[w.plaintiff_id]["present"] == "true":
                break
            await asyncio.sleep(0.05)  # polling the page's state
    assert tiles[w.defendant_id]["present"] == "false"
    assert tiles[w.defendant_id]["origin"] - tiles[w.plaintiff_id]["origin"] == OFFSET_S * 1000

    await page.click("#play")
    async with asyncio.timeout(30):
        while (await _position(page))[1] < (OFFSET_S + 1.0) * 1000:
            await asyncio.sleep(0.05)  # polling the page's clock
    clock_start, position = await _position(page)
    tiles = {t["participant"]: t for t in await _tiles(page)}
    for participant, tile in tiles.items():
        assert tile["present"] == "true", participant
        assert not tile["paused"], participant
        assert tile["width"] == 320, participant
        # Every stream shows the moment the recording clock is at.
        shown = tile["origin"] + tile["time"] * 1000
        assert abs(shown - (clock_start + position)) < SYNC_TOLERANCE_MS, (participant, tiles)
        # The overlay names the wall time of the frame on screen.
        assert abs(tile["overlay"] - shown) < SYNC_TOLERANCE_MS, (participant, tile)
        assert tile["overlayText"].startswith(f"{start.astimezone():%Y-%m-%d}")

    # Clicking a timeline entry seeks there: the defendant's media start.
    await page.locator('#timeline li[data-type="media_started"]').nth(1).click()
    _, position = await _position(page)
    assert abs(position - OFFSET_S * 1000) < SYNC_TOLERANCE_MS + 200
    await page.context.close()


async def test_playback_carries_on_after_a_recess(court: Court, browser: Browser) -> None:
    """The WebM of a paused recording has a hole in its timestamps: the player shows the
    recess on the bar and the timeline, and the picture carries on in sync after it."""
    w = court.world.own
    rid = str(uuid.uuid4())
    keys = await asyncio.to_thread(_keys, court)
    await asyncio.to_thread(
        record_hearing,
        court.data_dir / "recordings" / rid,
        keys,
        w.hearing_id,
        [(w.plaintiff_id, 0.0)],
        seconds=6.0,
        pause=(2.0, 4.0),
    )
    page = await _judge_page(browser, court, f"/hearings/{w.hearing_id}/recordings/{rid}")
    await expect(page.locator("#badge")).to_have_attribute("data-verdict", "intact", timeout=30_000)
    await expect(page.locator('#timeline li[data-type="paused"]')).to_contain_text("休庭")
    await expect(page.locator("#bar .pause")).to_have_count(1)

    # Seek to the resumption (a timeline entry), play, and watch it play on past it.
    await page.locator('#timeline li[data-type="resumed"]').click()
    _, resumed_at = await _position(page)
    assert 3_700 < resumed_at < 4_300, resumed_at
    await page.click("#play")
    async with asyncio.timeout(30):
        while (await _position(page))[1] < resumed_at + 1_200:
            await asyncio.sleep(0.05)  # polling the page's clock
    clock_start, position = await _position(page)
    (tile,) = await _tiles(page)
    assert tile["present"] == "true"
    assert not tile["paused"]
    shown = tile["origin"] + tile["time"] * 1000
    assert abs(shown - (clock_start + position)) < SYNC_TOLERANCE_MS, tile
    assert shown - tile["origin"] > 4_500, tile  # past the hole in the stream
    await page.context.close()
