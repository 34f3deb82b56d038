"""The party page's audio-only switch asks the court's server for no video (issue 16.1).

A party on a phone taps "仅语音": the page stops sending its own video (as before) and asks the
SFU to stop sending it anyone's video (`set_audio_only`); the video packets it receives stop
while the judge's audio keeps arriving. Tapped again, the judge's picture comes back (at a
keyframe: frames are decoded again).
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, Page, expect

from signaling import messages as m
from signaling.client import SignalingClient
from tests.browser.axe import serious_violations
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import login_page, participant_id, party_page, received, wait_receiving


async def packets(page: Page, owner: str) -> tuple[int, int, int]:
    """(video packets, video frames decoded, audio packets) received from `owner`."""
    now = await received(page)
    video = now.get((owner, "video"), {})
    audio = now.get((owner, "audio"), {})
    return (
        int(video.get("packetsReceived", 0)),
        int(video.get("framesDecoded", 0)),
        int(audio.get("packetsReceived", 0)),
    )


@pytest.mark.browser
async def test_audio_only_stops_incoming_video_and_brings_it_back(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    judge_context = await browser.new_context()
    phone = await browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    try:
        judge = await login_page(judge_context, court, "judge")
        page = await party_page(phone, court, court.world.own.plaintiff_token, "PLAINTIFF")
        await court.set_state("in_session", "开庭")
        await clerk.request(m.Admit(all=True))
        judge_id = await participant_id(judge)
        await wait_receiving(page, {judge_id})
        start = await packets(page, judge_id)
        await page.wait_for_timeout(3000)  # a measuring window: the counts are asserted
        before = await packets(page, judge_id)
        video_rate_before = (before[0] - start[0]) / 3
        assert video_rate_before > 20  # packets/s of the judge's picture
        await page.screenshot(path=str(court.data_dir / "audio-only-1-video.png"))

        await page.get_by_test_id("audio-only").click()
        await expect(page.get_by_test_id("notice")).to_contain_text("已切换为仅语音")
        await expect(page.get_by_test_id("audio-only")).to_have_attribute("aria-pressed", "true")
        await page.wait_for_timeout(1000)  # packets in flight when the SFU stopped
        mark = await packets(page, judge_id)
        await page.wait_for_timeout(3000)  # a measuring window
        during = await packets(page, judge_id)
        video_rate_during = (during[0] - mark[0]) / 3
        audio_rate_during = (during[2] - mark[2]) / 3
        print(
            f"audio only: judge's video {video_rate_before:.0f} -> {video_rate_during:.1f}"
            f" packets/s, audio {audio_rate_during:.0f} packets/s"
        )
        assert video_rate_during < 1  # no video from the court's server
        assert audio_rate_during > 40  # the judge is still heard (50 packets/s)
        await page.screenshot(path=str(court.data_dir / "audio-only-2-on.png"))
        assert await serious_violations(page) == []

        await page.get_by_test_id("audio-only").click()
        async with asyncio.timeout(15):
            while (await packets(page, judge_id))[1] <= during[1] + 10:
                await page.wait_for_timeout(100)  # polling the decoder's frame count
        await page.screenshot(path=str(court.data_dir / "audio-only-3-off.png"))
    finally:
        await phone.close()
        await judge_context.close()
