"""The judge runs a hearing from the console in the browser (issue 12, points 4 and 5): two
party browsers arrive and are announced, admitted, one is taken to a private room and brought
back, recess, resume and close with confirmation; only the transitions allowed now are offered,
the court frame shows the court, the case and the seats, and each person's connection quality.

Everything the judge does is done through the page; REST and the SFU's state are only read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiortc.mediastreams import AudioStreamTrack
from playwright.async_api import Browser, Locator, Page, expect

from server.sfu import aiortc_hooks
from station_client.devices import AvCamera
from station_client.media import CameraTrack
from station_client.session import StationSession
from tests.browser.axe import serious_violations
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import HASH, login_page, participant_id, party_page


class Steps:
    """Screenshots of each step, kept in the test's data dir."""

    def __init__(self, court: Court, page: Page) -> None:
        self.dir = court.data_dir / "screens"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.page = page
        self.n = 0

    async def shot(self, name: str, page: Page | None = None) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{name}.png"
        await (page or self.page).screenshot(path=path, full_page=True)
        return path


async def visible_state_buttons(page: Page) -> set[str]:
    buttons = page.locator("#state-buttons [data-state]")
    return {
        str(await buttons.nth(i).get_attribute("data-state"))
        for i in range(await buttons.count())
        if await buttons.nth(i).is_visible()
    }


async def expect_state_buttons(page: Page, expected: set[str]) -> None:
    await expect(page.locator("#state-buttons [data-state]:visible")).to_have_count(len(expected))
    assert await visible_state_buttons(page) == expected


# Media follows rooms by renegotiation: on a loaded machine that takes longer than a click.
MEDIA_S = 20_000


def row(page: Page, pid: str) -> Locator:
    return page.locator(f'#roster [data-testid="roster-row"][data-participant-id="{pid}"]')


@pytest.mark.browser
async def test_judge_runs_the_hearing_from_the_console(court: Court, browser: Browser) -> None:
    contexts = [await browser.new_context(locale="zh-CN") for _ in range(3)]
    try:
        judge = await login_page(contexts[0], court, "judge")
        steps = Steps(court, judge)
        await expect(judge.locator("#room")).to_have_attribute("data-state", "in_hearing")
        # The court frame: court, case number, state; the judge's own seat on the bench.
        banner = judge.get_by_test_id("court-banner")
        await expect(banner).to_contain_text("Court A")
        await expect(banner).to_contain_text("案号 a-1")
        await expect(judge.get_by_test_id("banner-state")).to_have_text("已排期")
        await expect(judge.locator("#seat-bench #self-tile .seat")).to_have_text("审判员")
        # scheduled: open the waiting room, or cancel
        await expect_state_buttons(judge, {"opened", "closed"})
        await expect(judge.get_by_test_id("state-closed")).to_have_text("取消庭审")
        await steps.shot("scheduled")
        assert await serious_violations(judge) == []

        await judge.get_by_test_id("state-opened").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("候庭中")
        await expect_state_buttons(judge, {"in_session", "closed"})
        await expect(judge.get_by_test_id("state-in_session")).to_have_text("开庭")
        await steps.shot("opened")
        assert await serious_violations(judge) == []

        # Arrivals are announced: a sound, the count, the row highlighted.
        plaintiff = await party_page(
            contexts[1], court, court.world.own.plaintiff_token, "PLAINTIFF"
        )
        p_id = await participant_id(plaintiff)
        await expect(judge.get_by_test_id("waiting-count")).to_have_text("候庭室 1")
        await expect(row(judge, p_id)).to_have_attribute("data-arrived", "true")
        await expect(judge.get_by_test_id("notice")).to_contain_text("plaintiff 已进入候庭室")
        assert await judge.evaluate("window.courtRoom.chimes") == 1
        defendant = await party_page(
            contexts[2], court, court.world.own.defendant_token, "DEFENDANT"
        )
        d_id = await participant_id(defendant)
        await expect(judge.get_by_test_id("waiting-count")).to_have_text("候庭室 2")
        await expect(row(judge, d_id)).to_have_class(re.compile(r"\barrived\b"))
        assert await judge.evaluate("window.courtRoom.chimes") == 2
        waiting_group = judge.locator('#roster [data-room="waiting"]')
        await expect(waiting_group).to_contain_text("plaintiff")
        await expect(waiting_group).to_contain_text("defendant")
        # The parties skipped the device check (party_page does): the console says so.
        await expect(row(judge, p_id).get_by_test_id("readiness")).to_have_text("设备检测: 已跳过")
        await steps.shot("arrivals")
        assert await serious_violations(judge) == []

        # Each row's controls say whose they are.
        await expect(judge.get_by_role("button", name="准入 plaintiff")).to_have_count(1)
        await judge.get_by_role("button", name="准入 plaintiff").click()
        await expect(judge.locator('#roster [data-room="main"]')).to_contain_text("plaintiff")
        await expect(row(judge, p_id)).to_have_attribute("data-arrived", "false")
        await judge.get_by_role("button", name="准入 defendant").click()
        await expect(judge.get_by_test_id("waiting-count")).to_have_text("候庭室 0")
        await expect(judge.get_by_role("button", name="静音 plaintiff")).to_have_count(1)
        await expect(judge.get_by_role("button", name="静音 defendant")).to_have_count(1)
        await expect(judge.get_by_role("button", name="移出 defendant")).to_have_count(1)
        # Locking the room is shown as such, and undone from the same button.
        await judge.get_by_test_id("lock").click()
        await expect(judge.get_by_test_id("lock")).to_have_text("解锁")
        await judge.get_by_test_id("lock").click()
        await expect(judge.get_by_test_id("lock")).to_have_text("锁定")

        await judge.get_by_test_id("state-in_session").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("庭审中")
        await expect(judge.get_by_test_id("banner-record")).to_have_text("● 正在录像")
        await expect_state_buttons(judge, {"recess", "suspended", "closed"})
        # The seats: the parties on their sides, labelled by role.
        p_tile = judge.locator(f'#seat-plaintiff figure[data-participant-id="{p_id}"]')
        d_tile = judge.locator(f'#seat-defendant figure[data-participant-id="{d_id}"]')
        await expect(p_tile.locator(".seat")).to_have_text("原告", timeout=MEDIA_S)
        await expect(d_tile.locator(".seat")).to_have_text("被告", timeout=MEDIA_S)
        await expect(
            defendant.locator(f'figure[data-participant-id="{p_id}"] figcaption')
        ).to_have_text("plaintiff · 原告", timeout=MEDIA_S)
        # Connection quality, as the SFU sees it, for a connected party.
        quality = row(judge, p_id).get_by_test_id("quality")
        await expect(quality).to_have_text(re.compile(r"往返 \d+ ms"), timeout=20_000)
        await expect(quality).to_contain_text("kbps")
        figures = await judge.evaluate(f"window.courtRoom.quality.get('{p_id}')")
        assert figures["rtt_ms"] > 0 or figures["bitrate_in_kbps"] > 0
        # Speaking: the party's received audio (Chromium's fake microphone beeps) lights the
        # row's dot and the tile's outline while it is loud.
        await judge.wait_for_function(
            "(pid) => window.courtRoom.spoke.has(pid)", arg=p_id, timeout=20_000
        )
        await expect(row(judge, p_id)).to_have_attribute("data-speaking", "true", timeout=MEDIA_S)
        await expect(p_tile).to_have_class(re.compile(r"\bspeaking\b"), timeout=MEDIA_S)
        await steps.shot("in-session")
        assert await serious_violations(judge) == []

        # A private room: create it, move the plaintiff there, visit, bring everyone back.
        await judge.get_by_test_id("caucus-name").fill("甲方")
        await judge.get_by_test_id("caucus-create").click()
        caucus = judge.locator('#roster [data-room="caucus:甲方"]')
        await expect(caucus).to_be_visible()
        await judge.get_by_role("button", name="plaintiff 移至 单独会谈室 甲方").click()
        await expect(caucus.locator(f'[data-participant-id="{p_id}"]')).to_have_count(1)
        await expect(row(judge, p_id)).to_have_attribute("data-location", "caucus:甲方")
        await expect(defendant.locator(f'figure[data-participant-id="{p_id}"]')).to_have_count(
            0, timeout=MEDIA_S
        )
        await expect(plaintiff.get_by_test_id("banner-room")).to_have_text("单独会谈室 甲方")
        # The parties' court frame too: court and case from the welcome.
        await expect(defendant.get_by_test_id("banner-court")).to_have_text("Court A")
        await expect(defendant.get_by_test_id("banner-case")).to_have_text("案号 a-1")
        await steps.shot("caucus")
        await steps.shot("caucus-defendant-view", defendant)
        await caucus.get_by_test_id("visit").click()
        await expect(judge.get_by_test_id("banner-room")).to_have_text("单独会谈室 甲方")
        j_id = await participant_id(judge)
        await expect(caucus.locator(f'[data-participant-id="{j_id}"]')).to_have_count(1)
        await expect(judge.locator(f'figure[data-participant-id="{p_id}"]')).to_have_count(
            1, timeout=MEDIA_S
        )
        await expect(judge.locator(f'figure[data-participant-id="{d_id}"]')).to_have_count(
            0, timeout=MEDIA_S
        )
        await steps.shot("judge-visits-caucus")
        assert await serious_violations(judge) == []
        await caucus.get_by_test_id("return-self").click()
        await expect(judge.get_by_test_id("banner-room")).to_be_hidden()
        await caucus.get_by_test_id("return-all").click()
        await expect(row(judge, p_id)).to_have_attribute("data-location", "main")
        await expect(defendant.locator(f'figure[data-participant-id="{p_id}"]')).to_have_count(
            1, timeout=MEDIA_S
        )

        # Recess and resume: only what can be done then is offered.
        await judge.get_by_test_id("state-recess").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("休庭")
        await expect_state_buttons(judge, {"in_session", "closed"})
        await expect(judge.get_by_test_id("state-in_session")).to_have_text("继续开庭")
        await steps.shot("recess")
        assert await serious_violations(judge) == []
        # The same console in English (the choice is remembered), then back to Chinese.
        await judge.select_option("#lang", "en")
        await expect(judge.get_by_test_id("state-in_session")).to_have_text("Resume")
        await expect(judge.get_by_test_id("banner-state")).to_have_text("Recess")
        await expect(judge.get_by_test_id("waiting-count")).to_have_text("Waiting room 0")
        await expect(judge.get_by_role("button", name="Mute plaintiff")).to_have_count(1)
        await steps.shot("recess-english")
        await judge.select_option("#lang", "zh-CN")
        await expect(judge.get_by_test_id("state-in_session")).to_have_text("继续开庭")
        await judge.get_by_test_id("state-in_session").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("庭审中")
        await expect_state_buttons(judge, {"recess", "suspended", "closed"})

        # Remove asks first and says what will happen; cancelling changes nothing.
        await judge.get_by_role("button", name="移出 defendant").click()
        dialog = judge.get_by_test_id("confirm-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("defendant将被移出本次庭审")
        await steps.shot("remove-confirm")
        await judge.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(row(judge, d_id)).to_have_attribute("data-location", "main")

        # Close asks once; then the hearing ends with no error shown.
        await judge.get_by_test_id("state-closed").click()
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("此操作不能撤销")
        assert await serious_violations(judge) == []
        await steps.shot("close-confirm")
        await judge.get_by_test_id("confirm-ok").click()
        await expect(judge.locator("#root-hash")).to_have_text(HASH, timeout=30_000)
        await expect(judge.get_by_test_id("closed-panel")).to_be_visible()
        await expect(judge.get_by_test_id("notice")).to_have_text("庭审已结束。")
        await expect(plaintiff.locator("#root-hash")).to_have_text(HASH, timeout=30_000)
        await judge.wait_for_timeout(500)  # a late error notice would land now; none must
        await expect(judge.get_by_test_id("notice")).to_have_text("庭审已结束。")
        await expect(judge.get_by_test_id("notice")).to_have_attribute("data-kind", "info")
        await steps.shot("closed")
    finally:
        for context in contexts:
            await context.close()


@pytest.mark.browser
async def test_the_station_sits_in_the_middle_named_after_its_village(
    court: Court, browser: Browser
) -> None:
    aiortc_hooks.install_host_addresses(["127.0.0.1"])  # this process is the station's machine
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    await camera.start()
    station = StationSession(
        court.client(await court.station()), video=camera, audio=AudioStreamTrack()
    )
    context = await browser.new_context(locale="zh-CN")
    try:
        judge = await login_page(context, court, "judge")
        steps = Steps(court, judge)
        await judge.get_by_test_id("state-opened").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("候庭中")
        await station.signaling.connect()
        welcome = await station.join(court.world.own.hearing_id)
        assert welcome.station_name == "a station"
        await expect(judge.get_by_test_id("waiting-count")).to_have_text("候庭室 1")
        await judge.get_by_role("button", name="准入 station").click()
        tile = judge.locator(f'#seat-centre figure[data-participant-id="{welcome.participant_id}"]')
        await expect(tile.locator(".seat")).to_have_text("共享法庭站点 · a station", timeout=20_000)
        await expect(tile.locator(".name")).to_have_text("station")
        await steps.shot("station-seat")
        assert await serious_violations(judge) == []

        # An agent added now (booking is not this test's subject) sits beside their party.
        w = court.world.own
        judge_cookies = await court.staff("judge")
        path = f"/api/hearings/{w.hearing_id}/participants"
        body = {"display_name": "律师赵六", "role": "agent", "legal_name": "AGENT"}
        status, agent = await court.call(
            judge_cookies,
            "POST",
            path,
            {**body, "id_number_tail": "1234", "represents_id": w.defendant_id},
        )
        assert status == 201, agent
        status, issued = await court.call(
            judge_cookies, "POST", f"{path}/{agent['id']}/invitations", {}
        )
        assert status == 201, issued
        agent_context = await browser.new_context(locale="zh-CN")
        try:
            await party_page(agent_context, court, issued["url"].split("#", 1)[1], "AGENT")
            await judge.get_by_role("button", name="准入 律师赵六").click()
            seat = judge.locator(f'#seat-defendant figure[data-participant-id="{agent["id"]}"]')
            await expect(seat.locator(".seat")).to_have_text("代理人", timeout=20_000)
            await steps.shot("agent-beside-defendant")
        finally:
            await agent_context.close()
    finally:
        await context.close()
        await station.close()
        camera.stop()


@pytest.mark.browser
async def test_witness_is_called_and_dismissed_and_the_clerk_gets_a_clerks_console(
    court: Court, browser: Browser
) -> None:
    w = court.world.own
    judge_cookies = await court.staff("judge")
    # Setting up who is in the hearing is not this test's subject (booking has its own).
    status, witness = await court.call(
        judge_cookies,
        "POST",
        f"/api/hearings/{w.hearing_id}/participants",
        {
            "display_name": "证人王五",
            "role": "witness",
            "legal_name": "WITNESS",
            "id_number_tail": "1234",
        },
    )
    assert status == 201, witness
    status, issued = await court.call(
        judge_cookies,
        "POST",
        f"/api/hearings/{w.hearing_id}/participants/{witness['id']}/invitations",
        {},
    )
    assert status == 201, issued
    token = issued["url"].split("#", 1)[1]
    contexts = [await browser.new_context(locale="zh-CN") for _ in range(3)]
    try:
        judge = await login_page(contexts[0], court, "judge")
        steps = Steps(court, judge)
        await judge.get_by_test_id("state-opened").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("候庭中")
        await judge.get_by_test_id("state-in_session").click()
        await expect(judge.get_by_test_id("banner-state")).to_have_text("庭审中")

        witness_page = await party_page(contexts[1], court, token, "WITNESS")
        x_id = await participant_id(witness_page)
        await expect(row(judge, x_id)).to_have_attribute("data-arrived", "true")
        # A witness is called, never admitted (OLR 26).
        await expect(row(judge, x_id).get_by_test_id("admit")).to_have_count(0)
        await judge.get_by_role("button", name="传唤 证人王五").click()
        await expect(row(judge, x_id)).to_have_attribute("data-location", "main")
        await expect(
            judge.locator(f'#seat-centre figure[data-participant-id="{x_id}"] .seat')
        ).to_have_text("证人", timeout=20_000)
        await steps.shot("witness-called")

        # The clerk's console: only what a clerk may do in session (suspend), no private rooms.
        clerk = await login_page(contexts[2], court, "clerk")
        await expect(clerk.get_by_test_id("banner-state")).to_have_text("庭审中")
        await expect_state_buttons(clerk, {"suspended"})
        await expect(clerk.get_by_test_id("caucus-form")).to_be_hidden()
        await expect(clerk.get_by_role("button", name="静音 证人王五")).to_have_count(1)
        await expect(clerk.locator("#seat-bench figure .seat")).to_have_text(["审判员", "书记员"])
        await steps.shot("clerk-console", clerk)
        assert await serious_violations(clerk) == []

        await judge.get_by_role("button", name="退庭 证人王五").click()
        await expect(witness_page.locator("#ended-title")).to_have_text("您已退庭")
        await expect(judge.locator('#departures li[data-reason="DISMISSED"]')).to_contain_text(
            "证人王五: 退庭"
        )
        await expect(judge.get_by_test_id("notice")).to_have_text("")
        await steps.shot("witness-dismissed")
    finally:
        for context in contexts:
            await context.close()
