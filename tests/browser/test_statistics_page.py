"""The court's statistics page (issue 15.4) in a real browser: reached from the dashboard's
header, the filters change the figures, the charts are drawn, the CSV link follows the
filters, both languages, axe-core clean. Data: tests/server/statistics_seed.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import Browser, Page, expect
from pytest_aiohttp import AiohttpServer

from server.app import create_app
from server.hearings.booking import COURT_ZONE
from server.storage.db import upgrade_async
from server.web.appkeys import SESSIONS
from tests.browser.axe import serious_violations
from tests.conftest import FakeClock
from tests.server.conftest import PASSWORD, World, make_config, seed_court
from tests.server.statistics_seed import STATION_B, seed_december


async def _drawn(page: Page, testid: str) -> int:
    """How many pixels of the chart's canvas are painted (0: nothing drawn)."""
    painted: int = await page.evaluate(
        """(id) => {
          const c = document.querySelector(`[data-testid="${id}"]`);
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
          return window.Chart.getChart(c) ? n : 0;
        }""",
        testid,
    )
    return painted


async def _values(page: Page, testid: str) -> object:
    raw = await page.get_by_test_id(testid).get_attribute("data-values")
    assert raw is not None
    return json.loads(raw)


async def test_statistics_page_filters_and_charts(
    tmp_path: Path, aiohttp_server: AiohttpServer, browser: Browser
) -> None:
    clock = FakeClock(datetime.now(UTC))
    config = make_config(tmp_path)
    await upgrade_async(config.database_url)
    server = await aiohttp_server(create_app(config, clock=clock), host="127.0.0.1")
    sessions = server.app[SESSIONS]
    world = World(
        own=await seed_court(sessions, clock, "Court A", "a"),
        other=await seed_court(sessions, clock, "Court B", "b"),
    )
    seeded = await seed_december(
        sessions, world.own.court_id, world.own.station_id, world.own.user_ids
    )
    shots = tmp_path / "screens"
    shots.mkdir()
    page = await browser.new_page(viewport={"width": 1280, "height": 1000})
    base = str(server.make_url("/")).rstrip("/")
    await page.goto(base + "/")
    await page.fill("#username", world.own.users["judge"])
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/dashboard")
    link = page.get_by_test_id("statistics-link")
    await expect(link).to_have_text("质效统计")
    await link.click()
    await page.wait_for_url(base + "/statistics")
    await expect(page.locator("h2#st-title")).to_have_text("法院质效统计")
    # The last 30 days are shown first (as a person sees them before choosing a period).
    await expect(page.get_by_test_id("st-court")).to_contain_text("Court A")
    await expect(page.get_by_test_id("st-station").locator("option")).to_have_count(3)

    await page.get_by_test_id("st-from").fill("2026-12-01")
    await page.get_by_test_id("st-to").fill("2026-12-31")
    await page.get_by_test_id("st-apply").click()
    await expect(page.get_by_test_id("st-court")).to_have_text("Court A，2026-12-01 至 2026-12-31")
    # The seeded world's own two hearings (one case) are scheduled now, not held: in the
    # period only when the suite runs in December 2026.
    now = clock.now().astimezone(COURT_ZONE)
    extra = 2 if (now.year, now.month) == (2026, 12) else 0
    figures = {
        "scheduled": str(5 + extra),
        "held": "4",
        "hearings": "2",
        "mediations": "2",
        "cancelled": "1",
        "success": "50.0%",
        "days-mean": "8.0",
        "resolved": f"2 / {5 + extra // 2}",
        "recordings": "25.0%",
        "no-shows": "2",
        "excused": "2",
        "unexcused": "1",
    }
    for key, value in figures.items():
        await expect(page.get_by_test_id(f"fig-{key}-value")).to_have_text(value)
    await expect(page.get_by_test_id("fig-success")).to_contain_text("调解成功率")
    # Stations: a station (1 hearing, 1 mediation), 东村 (1, 0), the court desk (0, 1).
    assert await _values(page, "chart-station") == [[1, 1, 0], [1, 0, 1]]
    assert await _values(page, "chart-causes") == [[1, 1, 1]]
    for chart in ("chart-station", "chart-judge", "chart-causes", "chart-quality"):
        assert await _drawn(page, chart) > 500, chart
    label = await page.get_by_test_id("chart-causes").get_attribute("aria-label")
    assert label is not None
    assert "网络中断" in label
    assert "站点断电" in label
    rows = page.get_by_test_id("st-station-row")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("一般")
    await expect(rows.nth(0)).to_contain_text("80 ms")
    await page.screenshot(path=str(shots / "1-december.png"), full_page=True)
    assert await serious_violations(page) == []

    # One station: the figures and the CSV link follow the filter.
    await page.get_by_test_id("st-station").select_option(seeded.station_b)
    await page.get_by_test_id("st-apply").click()
    await expect(page.get_by_test_id("fig-held-value")).to_have_text("1")
    await expect(page.get_by_test_id("fig-scheduled-value")).to_have_text("2")
    await expect(rows).to_have_count(1)
    await expect(rows.nth(0)).to_contain_text(STATION_B)
    href = await page.get_by_test_id("st-csv").get_attribute("href")
    assert href is not None
    assert f"station_id={seeded.station_b}" in href
    async with page.expect_download() as download_info:
        await page.get_by_test_id("st-csv").click()
    download = await download_info.value
    csv_text = (await download.path()).read_text(encoding="utf-8-sig")
    assert f"by_station,{seeded.station_b},{STATION_B},hearings,1" in csv_text
    await page.screenshot(path=str(shots / "2-station.png"), full_page=True)

    # One cause: the mediation that took effect.
    await page.get_by_test_id("st-station").select_option("")
    await page.get_by_test_id("st-cause").select_option("marriage_family")
    await page.get_by_test_id("st-apply").click()
    await expect(page.get_by_test_id("fig-success-value")).to_have_text("100.0%")
    await expect(page.get_by_test_id("fig-held-value")).to_have_text("1")

    # A period that ends before it starts is refused in words, not codes.
    await page.get_by_test_id("st-from").fill("2026-12-31")
    await page.get_by_test_id("st-to").fill("2026-12-01")
    await page.get_by_test_id("st-apply").click()
    await expect(page.get_by_test_id("st-error")).to_have_text("截止日期不能早于起始日期。")

    await page.select_option("#lang", "en")
    await expect(page.locator("h2#st-title")).to_have_text("Court quality and efficiency")
    await expect(page.get_by_test_id("fig-success")).to_contain_text("Mediation success rate")
    await expect(page.get_by_test_id("st-error")).to_have_text(
        "The end date cannot be before the start date."
    )
    await expect(page.get_by_test_id("st-station").locator("option").first).to_have_text("All")
    await page.screenshot(path=str(shots / "3-english.png"), full_page=True)
    assert await serious_violations(page) == []

    # The dashboard link is not offered to a station director (who may not read them).
    await page.click("#logout")
    await page.wait_for_url(base + "/")
    await page.fill("#username", world.own.users["station_director"])
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/dashboard")
    await expect(page.get_by_test_id("hearings")).to_be_visible()
    await expect(page.get_by_test_id("statistics-link")).to_be_hidden()
