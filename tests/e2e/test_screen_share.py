"""Screen sharing to present evidence (issue 13.4), as people do it, in three browsers.

A party on a phone (360x740) asks to share its screen; the judge allows it in the console;
the party picks the screen (headless Chromium's getDisplayMedia, granted by
--use-fake-ui-for-media-stream and fed by --use-fake-device-for-media-stream: a real display
capture code path, no stand-in); another party's browser and the judge's console show it as a
tile of its own, large, captioned "<name> 的共享屏幕", with real decoded frames; the judge stops
it and it disappears for everyone. The sealed recording holds the screen as its own stream
(`<participant id>.screen`) with its start and stop on the signed timeline; the exported WebM
is probed with ffprobe. A screenshot is kept at each step; axe-core finds no serious
violation on the pages changed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from recordings import export_package, load_verify_key, verify_package
from recordings.keys import load_archive_private_key
from server.ids import HearingId
from server.web.appkeys import MEDIA
from signaling import messages as m
from signaling.client import SignalingClient
from tests.browser.axe import serious_violations
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import login_page, participant_id, party_page
from tests.media_probe import probe

PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 1,
}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
# The screen tile's video decodes real frames of real size.
FRAMES = """(sel) => {
  const v = document.querySelector(sel);
  if (!v || v.videoWidth < 320) return false;
  return (v.getVideoPlaybackQuality?.().totalVideoFrames ?? 0) > 10;
}"""


async def step(page: Page, court: Court, name: str) -> Path:
    path = court.data_dir / f"screen-share-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert await serious_violations(page) == [], name
    return path


async def recorded_screen_frames(court: Court, pid: str) -> int:
    dump: dict[str, Any] = await (
        court.server.app[MEDIA].pool.router(HearingId(court.world.own.hearing_id)).dump()
    )
    p = (dump.get("recording") or {}).get("participants", {}).get(f"{pid}.screen")
    return sum(t["frames"] for t in p["tracks"]) if p else 0


@pytest.mark.browser
@pytest.mark.timeout(240)
async def test_a_party_shares_its_screen_with_the_judges_leave_and_it_is_recorded(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    w = court.world.own
    # Every step waits on a message through the server; a loaded CI machine may take seconds.
    expect.set_options(timeout=15_000)
    phone = await browser.new_context(**PHONE)
    other = await browser.new_context(**DESKTOP)
    staff = await browser.new_context(**DESKTOP)
    try:
        judge = await login_page(staff, court, "judge")
        plaintiff = await party_page(phone, court, w.plaintiff_token, "PLAINTIFF")
        defendant = await party_page(other, court, w.defendant_token, "DEFENDANT")
        sharer_id = await participant_id(plaintiff)
        await court.set_state("in_session", "开庭")
        await clerk.request(m.Admit(all=True))
        for page in (plaintiff, defendant):
            await expect(page.locator("#room")).to_have_attribute("data-state", "in_hearing")

        # The party asks, from the phone's control bar (within the 360 px screen, 44 px high).
        share = plaintiff.get_by_test_id("share-screen")
        status = plaintiff.get_by_test_id("share-status")
        await expect(share).to_have_text("共享屏幕")
        found = await share.bounding_box()
        assert found is not None
        assert found["x"] >= 0
        assert found["x"] + found["width"] <= 360
        assert found["height"] >= 44
        assert found["y"] + found["height"] <= 740
        await share.click()
        await expect(status).to_have_text("已申请共享屏幕，请等待法官同意。")
        await expect(share).to_have_text("撤回申请")
        await step(plaintiff, court, "1-phone-requested")

        # The judge sees the request with allow / refuse, and allows it.
        item = judge.locator(f'[data-testid=screen-share-item][data-participant-id="{sharer_id}"]')
        await expect(item).to_contain_text("申请共享屏幕")
        await expect(judge.get_by_test_id("screen-share-none")).to_be_hidden()
        await step(judge, court, "2-console-request")
        # A console opened after the request (here the judge reloads it) still shows it.
        await judge.reload()
        await expect(item).to_contain_text("申请共享屏幕")
        await step(judge, court, "2b-console-reloaded")
        await item.get_by_test_id("screen-share-allow").click()
        await expect(status).to_contain_text("法官已同意")
        await expect(share).to_have_text("选择屏幕并开始共享")
        await step(plaintiff, court, "3-phone-allowed")

        # The party picks the screen: it goes live for everyone in the room.
        await share.click()
        await expect(status).to_have_text(
            "您正在共享屏幕，法庭上的所有人都能看到。", timeout=20_000
        )
        await expect(share).to_have_text("停止共享")
        tile = defendant.get_by_test_id("screen-tile")
        await expect(tile).to_be_visible(timeout=15_000)
        await expect(tile).to_contain_text("的共享屏幕")
        await defendant.wait_for_function(
            FRAMES, arg="[data-testid=screen-tile] video", timeout=15_000
        )
        size = await defendant.evaluate(
            "() => { const v = document.querySelector('[data-testid=screen-tile] video');"
            " return [v.videoWidth, v.videoHeight]; }"
        )
        # A real picture (the encoder adapts its size to the line and the machine).
        assert size[0] >= 320, size
        assert size[1] >= 180, size
        # Large: the screen tile is the widest picture on the defendant's page.
        box = await tile.bounding_box()
        assert box is not None
        assert box["width"] > 600
        # Its own tile, not in place of the sharer's camera.
        camera = defendant.locator(f'[data-testid=tile][data-participant-id="{sharer_id}"]')
        await expect(camera).to_have_count(1)
        await step(defendant, court, "4-other-party-sees-screen")
        judge_tile = judge.get_by_test_id("screen-tile")
        await expect(judge_tile).to_be_visible(timeout=15_000)
        await judge.wait_for_function(FRAMES, arg="[data-testid=screen-tile] video")
        await expect(item).to_contain_text("正在共享屏幕")
        await step(judge, court, "5-console-live")
        await step(plaintiff, court, "6-phone-live")
        async with asyncio.timeout(30):
            while await recorded_screen_frames(court, sharer_id) < 20:
                await asyncio.sleep(0.2)  # polling the worker's recording counters

        # The judge stops it: gone for everyone, the party is told, its capture ends.
        await item.get_by_test_id("screen-share-stop").click()
        await expect(tile).to_have_count(0)
        await expect(judge_tile).to_have_count(0)
        await expect(status).to_have_text("法官已结束您的屏幕共享。")
        await expect(share).to_have_text("共享屏幕")
        assert await plaintiff.evaluate("window.courtScreenShare.track") is None
        await expect(judge.get_by_test_id("screen-share-none")).to_be_visible()
        await step(defendant, court, "7-other-party-after-stop")
        await step(plaintiff, court, "8-phone-after-stop")

        # The judge shows a screen from the console: allowed at once, seen by the parties.
        mine = judge.get_by_test_id("staff-share")
        await expect(mine).to_have_text("共享我的屏幕")
        await mine.click()
        await expect(mine).to_have_text("选择屏幕并开始共享")
        await mine.click()
        await expect(mine).to_have_text("停止共享", timeout=20_000)
        await expect(tile).to_be_visible()
        await expect(tile).to_contain_text("的共享屏幕")
        await step(judge, court, "9-console-staff-sharing")
        await mine.click()
        await expect(tile).to_have_count(0)
        await expect(judge.get_by_test_id("staff-share-status")).to_have_text("您已停止共享屏幕。")
        await court.set_state("closed", "庭审结束")
        await expect(plaintiff.locator("#room")).to_have_attribute("data-state", "closed")
    finally:
        expect.set_options(timeout=5_000)
        for context in (phone, other, staff):
            await context.close()

    # The log has every step with who and why.
    status_code, log = await court.call(
        await court.staff("judge"), "GET", f"/api/hearings/{w.hearing_id}/events"
    )
    assert status_code == 200
    steps = [(e["kind"], e["data"].get("reason")) for e in log["events"]]
    shared = [s for s in steps if s[0].startswith("screen_share.")]
    assert shared == [
        ("screen_share.requested", None),
        ("screen_share.allowed", None),
        ("screen_share.started", None),
        ("screen_share.stopped", "court"),
        ("screen_share.allowed", None),  # the judge's own, allowed at once
        ("screen_share.started", None),
        ("screen_share.stopped", "sharer"),
    ]
    sealed = next(e for e in log["events"] if e["kind"] == "recording.sealed")["data"]

    # The sealed package: the screen is a stream of its own, started and stopped on the signed
    # timeline, and decodes as a VP8 picture of the screen's size.
    package = court.data_dir / "recordings" / sealed["recording_id"]
    public = await asyncio.to_thread(load_verify_key, court.data_dir / "keys" / "signing.pub")
    report = await asyncio.to_thread(verify_package, package, [public])
    assert report.exit_code in (0, 2), report.text()
    screen = f"{sharer_id}.screen"
    joined = [
        e
        for e in report.timeline
        if e["type"] == "participant_joined" and e["participant"] == screen
    ]
    left = [
        e for e in report.timeline if e["type"] == "participant_left" and e["participant"] == screen
    ]
    assert len(joined) == 1, report.timeline
    assert joined[0]["tracks"] == ["video"]
    assert [e["reason"] for e in left] == ["screen_share_ended"]
    judge_screen = [
        e
        for e in report.timeline
        if e["type"] == "participant_joined" and e["participant"].endswith(".screen")
    ]
    assert len(judge_screen) == 2  # the party's share and the judge's, each its own stream
    assert joined[0]["time"] < left[0]["time"]
    camera_streams = [
        e
        for e in report.timeline
        if e["type"] == "participant_joined" and e["participant"] == sharer_id
    ]
    assert camera_streams  # the camera is recorded as before, apart from the screen
    key = await asyncio.to_thread(load_archive_private_key, court.data_dir / "keys" / "archive.key")
    out = court.data_dir / "export"
    result = await asyncio.to_thread(export_package, package, key, out, public_keys=[public])
    assert result.exit_code in (0, 2)
    files = [f for f in result.files if f.name.startswith(screen)]
    assert len(files) == 1, result.files
    probed = await asyncio.to_thread(probe, files[0])
    streams = probed["streams"]
    assert [s["codec_type"] for s in streams] == ["video"]
    assert streams[0]["codec_name"] == "vp8"
    assert int(streams[0]["width"]) >= 320
    assert float(probed["format"]["duration"]) > 1.0
