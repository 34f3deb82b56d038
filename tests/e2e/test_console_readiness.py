"""The dashboard's readiness column with real connections (issue 12): a party waiting and the
station connected show on the judge's dashboard; a station that drops shows as not connected.
The party and the station join over signaling (not this test's subject); the dashboard is
read in Chromium."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, expect

from signaling.client import SignalingClient
from tests.browser.axe import serious_violations
from tests.e2e.conftest import Court
from tests.e2e.test_signaling import enter_party


@pytest.mark.browser
async def test_dashboard_shows_who_waits_and_whether_the_station_is_online(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    w = court.world.own
    station = court.client(await court.station())
    await station.connect()
    await station.join(w.hearing_id)
    party = await enter_party(court, w.plaintiff_token, "PLAINTIFF")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = await context.new_page()
        await page.goto(court.base + "/")
        await page.fill("#username", w.users["judge"])
        await page.fill("#password", "correct horse battery")
        await page.click("button[type=submit]")
        await page.wait_for_url(court.base + "/dashboard")
        row = page.locator(f"[data-hearing-id='{w.hearing_id}']")
        readiness = row.locator("[data-testid=readiness]")
        await expect(readiness).to_contain_text("候庭 1 人")
        await expect(readiness).to_contain_text("未到 1 人")  # the defendant
        await expect(readiness).to_contain_text("plaintiff（候庭）")
        await expect(row.locator("[data-testid=station-status]")).to_have_text("站点在线")
        await expect(row.locator("[data-testid=hearing-state]")).to_have_text("候庭中")
        assert await serious_violations(page) == []
        await page.screenshot(path=str(court.data_dir / "console-dashboard-readiness.png"))
        # The station drops: on the next look, it is not connected.
        await station.close()
        async with asyncio.timeout(10):
            while True:
                await page.reload()
                status = row.locator("[data-testid=station-status]")
                await expect(status).to_be_visible()
                if await status.text_content() == "站点未连接":
                    break
    finally:
        await context.close()
        await party.close()
