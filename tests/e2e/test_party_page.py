"""The party's page (issue 13) as a person on a phone uses it, and on a desktop: the link,
the identity check (an error next to the field), consent, the waiting room, the hearing room
(the judge large, oneself small, the controls within reach, the court's mute, asking to
speak, audio only, landscape), leaving with a confirmation and rejoining; and each end state's
own screen. A screenshot is kept at each step; axe-core finds no serious violation on any."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from signaling import messages as m
from signaling.client import SignalingClient
from tests.browser.axe import serious_violations
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import login_page, participant_id, party_page, wait_receiving

PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 1,
}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}


async def step(page: Page, court: Court, name: str) -> Path:
    """A screenshot of this step, and no serious accessibility violation on it."""
    path = court.data_dir / f"party-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert await serious_violations(page) == [], name
    return path


async def box(page: Page, selector: str) -> dict[str, float]:
    found = await page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return {"x": found["x"], "y": found["y"], "width": found["width"], "height": found["height"]}


async def open_link(context: BrowserContext, court: Court, token: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{court.base}/join#{token}")
    await expect(page.locator("#enter")).to_be_visible()
    async with page.expect_navigation(url=f"**/hearings/{court.world.own.hearing_id}/attend"):
        await page.click("#enter")
    return page


@pytest.mark.browser
@pytest.mark.parametrize("device", ["phone", "desktop"])
async def test_party_journey(
    court: Court, browser: Browser, clerk: SignalingClient, device: str
) -> None:
    w = court.world.own
    phone = device == "phone"
    context = await browser.new_context(**(PHONE if phone else DESKTOP))
    staff = await browser.new_context()
    try:
        judge = await login_page(staff, court, "judge")
        page = await open_link(context, court, w.plaintiff_token)

        # The device check: the camera's picture, the microphone's level, the test sound, the
        # network to the court; a score; the result reaches the court.
        check = page.locator("[data-testid=device-check]")
        await expect(check).to_be_visible()
        await expect(page.locator("#check-camera")).to_have_attribute("data-status", "ok")
        await expect(page.locator("#check-camera")).to_contain_text("正常")
        await expect(page.locator("#check-microphone")).to_have_attribute("data-status", "ok")
        await page.wait_for_function("() => document.getElementById('check-video').videoWidth > 0")
        await page.wait_for_function(  # Chromium's fake microphone beeps
            "() => document.getElementById('check-mic-level').value > 0", timeout=10_000
        )
        await page.click("#check-play")
        await page.click("#check-heard")
        await expect(page.locator("#check-speaker")).to_contain_text("能听到")
        await expect(page.locator("#check-network")).to_contain_text("往返", timeout=20_000)
        await expect(page.locator("#check-score")).to_have_attribute("data-score", "good")
        await expect(page.locator("#check-score")).to_have_text("检查结果：良好，可以进入。")
        await step(page, court, f"{device}-0-device-check")
        await page.click("#check-continue")
        roster = await next_event(
            clerk,
            m.Roster,
            lambda r: any(p.readiness is not None for p in r.participants),
        )
        mine = next(p for p in roster.participants if p.readiness is not None)
        assert mine.participant_id == w.plaintiff_id
        assert mine.readiness is not None
        assert (mine.readiness.score, mine.readiness.camera) == ("good", "ok")
        assert mine.readiness.rtt_ms is not None
        await expect(page.locator("#identity-form")).to_be_visible()
        await step(page, court, f"{device}-1-identity")

        # A wrong answer: the sentence sits next to the field, and the summary links to it.
        await page.fill("#legal-name", "PLAINTIFF")
        await page.fill("#id-digits", "12")
        await page.click("[data-testid=identity-submit]")
        await expect(page.locator("#id-digits-error")).to_have_text(
            "请填写身份证号码的后四位（最后一位可以是 X）。"
        )
        await page.fill("#id-digits", "9999")
        await page.click("[data-testid=identity-submit]")
        error = page.locator("#id-digits-error")
        await expect(error).to_contain_text("与法院登记的不一致")
        await expect(page.locator("#error-summary a")).to_have_attribute("href", "#id-digits")
        field, message = await box(page, "#id-digits"), await box(page, "#id-digits-error")
        assert 0 <= field["y"] - (message["y"] + message["height"]) < 40  # right above the field
        await step(page, court, f"{device}-2-identity-error")

        await page.fill("#id-digits", "1234")
        await page.click("[data-testid=identity-submit]")
        await expect(page.locator("#consent-form")).to_be_visible()
        await page.click("[data-testid=consent-submit]")  # nothing ticked: said next to it
        await expect(page.locator("#consent-error")).to_have_text("请勾选全部三项后再继续。")
        for rule in ("online_proceedings", "court_rules", "no_recording"):
            await page.check(f"#consent-form input[name={rule}]")
        await step(page, court, f"{device}-3-consent")
        await page.click("[data-testid=consent-submit]")
        await expect(page.locator("#room")).to_have_attribute("data-state", "waiting")
        await expect(page.locator("#waiting")).to_contain_text("请稍候")
        await expect(page.locator("#hearing-state")).to_have_text("候庭中")
        await step(page, court, f"{device}-4-waiting")
        # The judge's console shows the party's readiness from that check.
        readiness = judge.locator(
            f'#roster [data-participant-id="{w.plaintiff_id}"]'
        ).get_by_test_id("readiness")
        await expect(readiness).to_have_text("设备检测: 良好")

        # In session: the judge large, oneself small, the controls at the bottom.
        await court.set_state("in_session", "开庭")
        await clerk.request(m.Admit(all=True))
        await expect(page.locator("#room")).to_have_attribute("data-state", "in_hearing")
        judge_id, me = await participant_id(judge), await participant_id(page)
        await wait_receiving(page, {judge_id})
        main = page.locator(".tile.main")
        await expect(main).to_have_attribute("data-participant-id", judge_id)
        await expect(main).to_contain_text("法官")
        # the speaking indicator lights with the judge's voice (Chromium's fake microphone beeps)
        await expect(page.locator(".tile.main.speaking")).to_have_count(1, timeout=15_000)
        await expect(page.locator("#hearing-state")).to_have_text("庭审中 · ● 录像中")
        big, small = await box(page, ".tile.main"), await box(page, "#self-tile")
        assert big["width"] * big["height"] > 4 * small["width"] * small["height"]
        viewport = PHONE["viewport"] if phone else DESKTOP["viewport"]
        for control in ("#mic", "#cam", "#audio-only", "#leave"):
            b = await box(page, control)
            assert b["width"] >= 44, control
            assert b["height"] >= 44, control
            if phone:  # within thumb reach: the bottom of the screen
                assert b["y"] + b["height"] <= viewport["height"]
                assert b["y"] > viewport["height"] * 0.8, control
        await step(page, court, f"{device}-5-in-session")

        # The court mutes: its mute wins over the phone's own button; asking to speak.
        await clerk.request(m.Mute(participant_id=me))
        await expect(page.locator("#mic")).to_contain_text("法庭静音")
        ask = page.locator("#ask-to-speak")
        await expect(ask).to_be_visible()
        await page.click("#mic")
        await expect(page.locator("#notice")).to_have_text(
            "法庭已将您静音，需要发言请点“申请发言”。"
        )
        await step(page, court, f"{device}-6-court-muted")
        await ask.click()
        asked = await next_event(clerk, m.UnmuteRequested, lambda _e: True)
        assert asked.participant_id == me
        await clerk.request(m.Unmute(participant_id=me))
        await expect(ask).to_be_hidden()
        await expect(page.locator("#mic")).to_contain_text("麦克风开")

        # One's own microphone and camera; audio only for a weak link.
        await page.click("#mic")
        await expect(page.locator("#mic")).to_have_attribute("aria-pressed", "true")
        assert await page.evaluate(
            "window.courtRoom.stream.getAudioTracks().every((t) => !t.enabled)"
        )
        await page.click("#mic")
        await page.click("#cam")
        await expect(page.locator("#cam")).to_contain_text("摄像头关")
        await page.click("#cam")
        await page.click("#audio-only")
        await expect(page.locator("#stage")).to_have_class("audio-only")
        await page.wait_for_function(
            """async () => {
              const s = window.courtRoom.pc.getSenders().find((x) => x.track?.kind === 'video');
              return s.getParameters().encodings.every((e) => e.active === false);
            }"""
        )
        await step(page, court, f"{device}-7-audio-only")
        await page.click("#audio-only")

        if phone:  # turned sideways: still the judge large and the controls in reach
            await page.set_viewport_size({"width": 740, "height": 360})
            big, bar = await box(page, ".tile.main"), await box(page, "#controls")
            assert big["height"] > 150
            assert big["y"] + big["height"] <= bar["y"]  # not covered by the controls
            leave = await box(page, "#leave")
            assert leave["y"] + leave["height"] <= 360
            await step(page, court, f"{device}-8-landscape")
            await page.set_viewport_size(PHONE["viewport"])

        # Leaving asks once; "stay" keeps the person in; "leave" lands on its own screen.
        await page.click("#leave")
        await expect(page.locator("#leave-dialog")).to_be_visible()
        await step(page, court, f"{device}-9-leave-confirm")
        await page.click("#leave-cancel")
        await expect(page.locator("#leave-dialog")).to_be_hidden()
        await expect(page.locator("#room")).to_have_attribute("data-state", "in_hearing")
        await page.click("#leave")
        await page.click("#leave-confirm")
        await expect(page.locator("#ended-title")).to_have_text("您已离开庭审")
        await expect(page.locator("#hearing-state")).to_have_text("已离开")
        await expect(page.locator("#stage")).to_be_hidden()
        assert page.url.endswith("/attend")  # never the staff login page
        await step(page, court, f"{device}-10-left")
        await page.click("#ended-action")
        await expect(page.locator("#room")).to_have_attribute("data-state", "waiting")
        await expect(page.locator("#waiting")).to_be_visible()
    finally:
        await context.close()
        await staff.close()


E = TypeVar("E", bound=m.Message)


async def next_event(client: SignalingClient, kind: type[E], where: Callable[[E], bool]) -> E:
    """The next event of `kind` the client is sent that `where` accepts (others are skipped)."""
    async with asyncio.timeout(10):
        while True:
            event = await client.next_event()
            if isinstance(event, kind) and where(event):
                return event


# -- end states -------------------------------------------------------------------------------


@pytest.mark.browser
async def test_removed_and_replaced_and_closed_screens(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    w = court.world.own
    contexts = [await browser.new_context(**PHONE) for _ in range(2)]
    try:
        plaintiff = await party_page(contexts[0], court, w.plaintiff_token, "PLAINTIFF")
        defendant = await party_page(contexts[1], court, w.defendant_token, "DEFENDANT")
        await court.set_state("in_session", "开庭")
        await clerk.request(m.Admit(all=True))
        p_id = await participant_id(plaintiff)

        # Replaced: the same person opens the page again (another tab); the old one says so.
        second = await contexts[1].new_page()
        await second.goto(f"{court.base}/hearings/{w.hearing_id}/attend")
        await expect(second.locator("#room")).to_have_attribute("data-state", "in_hearing")
        await expect(defendant.locator("#ended-title")).to_have_text("您已在其他设备或窗口进入")
        await expect(defendant.locator("#ended-action")).to_have_text("在此设备继续")
        await expect(defendant.locator("#hearing-state")).not_to_contain_text("庭审中")
        await step(defendant, court, "end-replaced")

        # Removed.
        await clerk.request(m.Remove(participant_id=p_id, reason="违反法庭纪律"))
        await expect(plaintiff.locator("#ended-title")).to_have_text("您已被移出庭审")
        await expect(plaintiff.locator("#ended-action")).to_be_hidden()
        await expect(plaintiff.locator("#hearing-state")).to_have_text("已移出")
        await step(plaintiff, court, "end-removed")
        # in the party's language: the end screen follows the picker
        await plaintiff.select_option("#lang", "en")
        await expect(plaintiff.locator("#ended-title")).to_have_text(
            "You were removed from the hearing"
        )
        await expect(plaintiff.locator("#hearing-state")).to_have_text("Removed")
        await plaintiff.select_option("#lang", "zh-CN")
        # ... and coming back is refused with its own screen (not a blank page).
        await plaintiff.reload()
        await expect(plaintiff.locator("#ended-title")).to_have_text("无法进入本次庭审")

        # Closed: the root hash to confirm.
        await court.set_state("closed", "闭庭")
        await expect(second.locator("#ended-title")).to_have_text("庭审已结束")
        await expect(second.locator("#root-hash")).to_have_text(
            re.compile(r"^[0-9a-f]{64}$"), timeout=30_000
        )
        await second.click("#confirm-hash")
        await expect(second.locator("#hash-confirmed")).to_be_visible()
        await expect(second.locator("#recording-hash")).to_have_attribute("data-confirmed", "true")
        await expect(second.locator("#hearing-state")).to_have_text("庭审已结束")
        await step(second, court, "end-closed")
    finally:
        for context in contexts:
            await context.close()


@pytest.mark.browser
async def test_link_not_valid_yet_and_no_session_screens(court: Court, browser: Browser) -> None:
    w = court.world.own
    context = await browser.new_context(**PHONE)
    try:
        # A page without a session says to open the link: never the staff login page.
        page = await context.new_page()
        await page.goto(f"{court.base}/hearings/{w.hearing_id}/attend")
        await expect(page.locator("#ended-title")).to_have_text("请使用邀请链接进入")
        assert page.url.endswith("/attend")
        await step(page, court, "end-no-session")

        # The hearing has not opened yet: the waiting room says when it starts.
        party = await party_page(context, court, w.plaintiff_token, "PLAINTIFF")
        await expect(party.locator("#not-open-yet")).to_contain_text("庭审尚未开始，计划于")
        await expect(party.locator("#hearing-state")).to_have_text("已排期")
        await step(party, court, "not-open-yet")
        # the staff room is not for parties: a party sent there lands on their own page
        await party.goto(f"{court.base}/hearings/{w.hearing_id}/room")
        await expect(party).to_have_url(re.compile(r"/attend$"))
        await expect(party.locator("#room")).to_have_attribute("data-state", "waiting")
        await party.close()

        # Identity lockout: after the last wrong try the page says who can help.
        other = await open_link(context, court, w.defendant_token)
        await other.click("#check-skip")
        await other.fill("#legal-name", "DEFENDANT")
        locked = other.locator("#identity-locked")
        for _ in range(4):
            await other.fill("#id-digits", "9999")
            await other.click("[data-testid=identity-submit]")
            answered = other.locator("#id-digits-error:visible, #identity-locked:visible")
            await expect(answered).to_be_visible()
            if await locked.is_visible():
                break
            await expect(other.locator("#id-digits-error")).to_contain_text("不一致")
        await expect(locked).to_contain_text("书记员")
        await expect(locked).to_contain_text("共享法庭站点")
        await expect(other.locator("#identity-form")).to_be_hidden()
        await step(other, court, "identity-locked")
        await other.close()

        # A link that works only from tomorrow says from when.
        starts = datetime.now(UTC) + timedelta(days=1)
        status, issued = await court.call(
            await court.staff("judge"),
            "POST",
            f"/api/hearings/{w.hearing_id}/participants/{w.plaintiff_id}/invitations",
            {"not_before": starts.isoformat()},
        )
        assert status == 201, issued
        await page.goto(f"{court.base}/join#{issued['url'].split('#', 1)[1]}")
        status_line = page.locator("#status")
        await expect(status_line).to_have_attribute("data-reason", "not_yet_valid")
        await expect(status_line).to_contain_text("起才能使用")
        await expect(status_line).to_contain_text(f"{starts.astimezone().year}年")
        await step(page, court, "link-not-yet-valid")
    finally:
        await context.close()


@pytest.mark.browser
async def test_device_check_names_a_denied_camera_and_what_to_do(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    context = await browser.new_context(**PHONE)
    # The person said "block" to the camera: every request for it is refused.
    await context.add_init_script(
        """(() => {
          const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
          navigator.mediaDevices.getUserMedia = (c) => c.video
            ? Promise.reject(new DOMException("denied", "NotAllowedError")) : real(c);
        })()"""
    )
    try:
        page = await open_link(context, court, court.world.own.plaintiff_token)
        await expect(page.locator("#check-camera")).to_have_attribute("data-status", "denied")
        await expect(page.locator("#check-microphone")).to_have_attribute("data-status", "ok")
        await expect(page.locator("#check-score")).to_have_attribute(
            "data-score", "bad", timeout=20_000
        )
        problem = page.locator('#check-problems li[data-problem="camera_denied"]')
        await expect(problem).to_contain_text("没有允许使用摄像头。")
        await expect(problem).to_contain_text("网站设置")  # how, in this browser (Chromium)
        await expect(page.locator("#check-skip")).to_be_visible()  # the court allows skipping
        await step(page, court, "device-check-denied")
        await page.click("#check-continue")  # the court is told; the party may still go on
        roster = await next_event(
            clerk, m.Roster, lambda r: any(p.readiness is not None for p in r.participants)
        )
        readiness = next(p.readiness for p in roster.participants if p.readiness is not None)
        assert readiness is not None
        assert readiness.score == "bad"
        assert readiness.camera == "denied"
        assert "camera_denied" in readiness.problems
        await expect(page.locator("#identity-form")).to_be_visible()
    finally:
        await context.close()
