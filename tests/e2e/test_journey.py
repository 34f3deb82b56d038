"""A clerk and a judge run a hearing from booking to archive in the browser alone (issue 12,
point 7): the clerk opens a case, adds two parties, schedules the hearing at the station and
copies the links; two party browsers join with them; the judge opens the waiting room, admits
both, takes one to a private room and brings them back, recesses, resumes and closes; the
summary shows the sealed recording, and the judge plays it back.

Every step is done through the pages. The only REST call reads the sealed recording's id to
compare it with what the pages show."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.browser.axe import serious_violations
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import HASH, participant_id, party_page
from tests.server.conftest import PASSWORD

MEDIA_S = 20_000  # ms: renegotiation after a move takes a while on a loaded machine
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Shots:
    """Numbered screenshots of the journey, kept in the test's data dir."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory / "journey"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n = 0

    async def __call__(self, page: Page, name: str) -> None:
        self.n += 1
        await page.screenshot(path=self.dir / f"{self.n:02d}-{name}.png", full_page=True)


async def _staff(browser: Browser, court: Court, role: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=court.base)
    page = await context.new_page()
    await page.goto(court.base + "/")
    await page.fill("#username", court.world.own.users[role])
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(court.base + "/dashboard")
    return context, page


async def _book(page: Page, court: Court, shot: Shots) -> tuple[str, dict[str, str]]:
    """The clerk books the hearing; returns its id and each party's copied link."""
    await page.click("[data-testid=new-case]")
    await page.fill("[data-testid=case-number]", "(2026)示民初8号")
    await page.fill("[data-testid=case-title]", "张三诉李四民间借贷纠纷")
    await page.select_option("[data-testid=case-cause]", label="民间借贷")
    await page.click("[data-testid=case-submit]")
    await page.wait_for_url(re.compile(r"/cases/[0-9a-f-]{36}$"))
    await shot(page, "case-opened")

    # Today, in a quarter of an hour (Beijing time), at the station.
    start = datetime.now(UTC).astimezone(SHANGHAI) + timedelta(minutes=15)
    await page.fill("[data-testid=bk-title]", "开庭审理")
    await page.fill("[data-testid=bk-length]", "60")
    await page.select_option("[data-testid=bk-station]", label="a station")
    await page.select_option("[data-testid=bk-presiding]", label="a judge（法官）")
    await page.select_option("[data-testid=bk-clerk]", label="a clerk")
    await page.fill("[data-testid=bk-date]", start.date().isoformat())
    await page.fill("[data-testid=bk-time]", start.strftime("%H:%M"))
    await page.click("[data-testid=schedule-submit]")
    await page.wait_for_url(re.compile(r"/hearings/[0-9a-f-]{36}/booking$"))
    hearing_id = page.url.split("/")[-2]
    await expect(page.locator("[data-testid=hearing-station]")).to_have_text("a station")

    links: dict[str, str] = {}
    for role, name in (("原告", "张三"), ("被告", "李四")):
        await page.select_option("[data-testid=person-role]", label=role)
        await page.fill("[data-testid=person-name]", name)
        await page.fill("[data-testid=person-digits]", "1234")
        await page.click("[data-testid=person-submit]")
        person = page.locator("[data-testid=person-row]", has_text=name)
        await expect(person).to_contain_text("尚未签发")
        pid = await person.get_attribute("data-participant-id")
        await person.locator("[data-testid=issue-link]").click()
        row = page.locator(f"[data-testid=link-row][data-participant-id='{pid}']")
        await expect(row.locator("[data-testid=link-url]")).to_have_value(re.compile(r"/join#"))
        await row.locator("[data-testid=copy-link]").click()
        await expect(row.locator("[data-testid=copy-note]")).to_have_text("已复制到剪贴板")
        links[name] = await page.evaluate("navigator.clipboard.readText()")
    assert await serious_violations(page) == []
    await shot(page, "links-issued")
    return hearing_id, links


@pytest.mark.browser
async def test_a_hearing_from_booking_to_archive_in_the_browser(
    court: Court, browser: Browser
) -> None:
    shot = Shots(court.data_dir)
    contexts: list[BrowserContext] = []
    try:
        clerk_context, clerk = await _staff(browser, court, "clerk")
        contexts.append(clerk_context)
        hearing_id, links = await _book(clerk, court, shot)

        # The judge finds the new hearing on the dashboard and enters its room.
        judge_context, judge = await _staff(browser, court, "judge")
        contexts.append(judge_context)
        row = judge.locator(f"[data-testid=hearing-row][data-hearing-id='{hearing_id}']")
        await expect(row).to_contain_text("(2026)示民初8号")
        await shot(judge, "judge-dashboard")
        await row.locator("[data-testid=room-link]").click()
        await judge.wait_for_url(f"**/hearings/{hearing_id}/room")
        await expect(judge.get_by_test_id("banner-case")).to_have_text("案号 (2026)示民初8号")
        await judge.get_by_test_id("state-opened").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("候庭中")
        judge_id = await participant_id(judge)

        # Both parties open the links the clerk copied and reach the waiting room.
        parties: dict[str, Page] = {}
        for name in ("张三", "李四"):
            context = await browser.new_context(
                viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
            )
            contexts.append(context)
            token = links[name].split("#", 1)[1]
            parties[name] = await party_page(context, court, token, name, hearing_id=hearing_id)
        ids = {name: await participant_id(page) for name, page in parties.items()}
        await expect(judge.get_by_test_id("waiting-count")).to_have_text("候庭室 2")
        await shot(judge, "arrivals")
        await shot(parties["张三"], "plaintiff-waiting")

        # Open the session and admit both.
        await judge.get_by_test_id("state-in_session").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("庭审中")
        for name in ("张三", "李四"):
            await judge.get_by_role("button", name=f"准入 {name}").click()
        await expect(judge.get_by_test_id("waiting-count")).to_have_text("候庭室 0")
        for page in parties.values():
            await expect(page.locator("#hearing-state")).to_contain_text("庭审中")
        other = parties["李四"]
        await expect(other.locator(f'figure[data-participant-id="{ids["张三"]}"]')).to_have_count(
            1, timeout=MEDIA_S
        )
        await shot(judge, "in-session")
        await shot(other, "defendant-in-session")

        # A private room for the plaintiff, then back to the court.
        await judge.get_by_test_id("caucus-name").fill("甲方")
        await judge.get_by_test_id("caucus-create").click()
        caucus = judge.locator('#roster [data-room="caucus:甲方"]')
        await judge.get_by_role("button", name="张三 移至 单独会谈室 甲方").click()
        await expect(parties["张三"].get_by_test_id("banner-room")).to_have_text("单独会谈室 甲方")
        await expect(other.locator(f'figure[data-participant-id="{ids["张三"]}"]')).to_have_count(
            0, timeout=MEDIA_S
        )
        await shot(judge, "caucus")
        await shot(parties["张三"], "plaintiff-in-caucus")
        await caucus.get_by_test_id("return-all").click()
        await expect(parties["张三"].get_by_test_id("banner-room")).to_be_hidden()
        await expect(other.locator(f'figure[data-participant-id="{ids["张三"]}"]')).to_have_count(
            1, timeout=MEDIA_S
        )

        # Recess and resume.
        await judge.get_by_test_id("state-recess").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("休庭")
        await expect(other.locator("#hearing-state")).to_contain_text("休庭")
        await shot(other, "defendant-recess")
        await judge.get_by_test_id("state-in_session").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("庭审中")

        # Close, confirmed once: the sealed recording's hash on every screen.
        await judge.get_by_test_id("state-closed").click()
        await judge.get_by_test_id("confirm-ok").click()
        await expect(judge.locator("#root-hash")).to_have_text(HASH, timeout=30_000)
        root_hash = await judge.locator("#root-hash").text_content()
        for page in parties.values():
            await expect(page.locator("#root-hash")).to_have_text(root_hash or "", timeout=30_000)
        await parties["张三"].get_by_test_id("confirm-hash").click()
        await expect(parties["张三"].get_by_test_id("hash-confirmed")).to_be_visible()
        await shot(judge, "closed")
        await shot(parties["张三"], "plaintiff-closed")

        # The summary: the recording with its hash and who confirmed it, the departures.
        await judge.goto(f"{court.base}/dashboard")
        await judge.locator(
            f"[data-testid=hearing-row][data-hearing-id='{hearing_id}'] [data-testid=summary-link]"
        ).click()
        await judge.wait_for_url(f"**/hearings/{hearing_id}/summary")
        recordings = judge.get_by_test_id("recordings")
        await expect(recordings).to_contain_text(root_hash or "")
        await expect(recordings).to_contain_text("张三")
        await expect(judge.get_by_test_id("hearing-state")).to_have_text("已结束")
        assert await serious_violations(judge) == []
        await shot(judge, "summary")

        # Play the recording back: verified intact, a picture for each person who was there.
        await judge.get_by_test_id("recordings-link").click()
        await judge.wait_for_url(f"**/hearings/{hearing_id}/recordings")
        assert await serious_violations(judge) == []
        await judge.locator("#recording-list a").first.click()
        await judge.wait_for_url(re.compile(r"/recordings/[0-9a-f-]{36}$"))
        await expect(judge.locator("#badge")).to_have_attribute(
            "data-verdict", re.compile(r"^(intact|gaps)$"), timeout=60_000
        )
        # (a person may have several streams: media restarts after a private room)
        for pid in (judge_id, ids["张三"], ids["李四"]):
            tiles = judge.locator(f'.tile[data-participant-id="{pid}"]')
            await expect(tiles.first).to_be_attached()
        await judge.click("#play")
        present = f'.tile[data-participant-id="{ids["张三"]}"][data-present="true"]'
        await expect(judge.locator(present).first).to_be_attached(timeout=30_000)
        assert await serious_violations(judge) == []
        await shot(judge, "playback")
    finally:
        for context in contexts:
            await context.close()
