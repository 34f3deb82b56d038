"""The station director's console (issue 14), in Chromium: a director logs in, opens a hearing
from the list and gets the page made for them (not "FORBIDDEN"); it shows the station PC's
status with the self-test the real station code ran and sent; the director checks a
villager's identity in person (a misread number refused next to the field), and the court's
log keeps who checked and how."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from station_client.court_api import CourtApi
from station_client.devices import AvCamera
from station_client.media import CameraTrack
from station_client.selftest import run_self_test
from tests.browser.axe import serious_violations
from tests.e2e.conftest import Court
from tests.server.conftest import PASSWORD


async def _station_self_test(court: Court) -> dict[str, object]:
    """The station's own code: a test-pattern camera, no microphone or speaker, the network
    check against this server; the result sent to the court as the station app does."""
    w = court.world.own
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    await camera.start()
    try:
        async with CourtApi.open(court.base) as api:
            await api.login(w.station_id, w.station_key)
            result = await run_self_test(
                camera=camera, microphone=None, speaker=None, ping=api.ping, upload=api.upload_test
            )
            await api.report_status(2, result)
    finally:
        camera.stop()
    return result


@pytest.mark.browser
async def test_the_director_sees_the_station_and_checks_identity_in_person(
    court: Court, browser: Browser
) -> None:
    w = court.world.own
    shots: Path = court.data_dir / "director"
    await asyncio.to_thread(shots.mkdir, exist_ok=True)
    result = await _station_self_test(court)
    scores = {i["check"]: i["score"] for i in result["items"]}  # type: ignore[attr-defined]
    assert scores["microphone"] == "bad"

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = await context.new_page()
        await page.goto(court.base + "/")
        await page.fill("#username", w.users["station_director"])
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/dashboard")
        # The readiness column carries the station's self-test (its microphone failed).
        row = page.locator(f"tr[data-hearing-id='{w.hearing_id}']")
        await expect(row.get_by_test_id("station-self-test")).to_have_text("站点自检: 较差")
        # The hearing list, as before; opening the hearing leads to the director's page.
        await page.click(f"tr[data-hearing-id='{w.hearing_id}'] a")
        await page.wait_for_url(f"**/station?hearing={w.hearing_id}")
        await expect(page.locator("body")).not_to_contain_text("FORBIDDEN")

        station = page.get_by_test_id(f"station-{w.station_id}")
        await expect(station).to_contain_text("a station")
        await expect(station).to_contain_text("在线")
        await expect(station.get_by_test_id("self-test-camera")).to_contain_text("摄像头")
        await expect(station.get_by_test_id("self-test-microphone")).to_contain_text("未接麦克风")
        await expect(station.get_by_test_id("self-test-microphone")).to_have_attribute(
            "data-score", "bad"
        )
        await expect(station.get_by_test_id("backups-waiting")).to_contain_text(
            "待发送的备份录像：2"
        )
        await expect(station.get_by_test_id("backups-not-received")).to_contain_text(
            "法院尚未收到的备份录像：0"
        )
        hearing = page.get_by_test_id(f"hearing-{w.hearing_id}")
        await expect(hearing).to_contain_text("Court A")
        await expect(hearing).to_contain_text("a-1")
        person = hearing.get_by_test_id(f"person-{w.defendant_id}")
        await expect(person).to_contain_text("未核验身份")
        await page.screenshot(path=str(shots / "1-console.png"), full_page=True)
        assert await serious_violations(page) == []

        # In person: the ID document is read; a misread number is refused, next to the form.
        await person.get_by_role("button", name="当面核验身份 defendant").click()
        form = person.get_by_test_id(f"check-form-{w.defendant_id}")
        await form.get_by_label("证件上的姓名").fill("DEFENDANT")
        await form.get_by_label("证件号码末几位").fill("9999")
        await form.get_by_role("button", name="确认已当面核验").click()
        await expect(form.get_by_test_id("check-error")).to_contain_text("与法院记录不符")
        await page.screenshot(path=str(shots / "2-mismatch.png"), full_page=True)
        assert await serious_violations(page) == []
        await form.get_by_label("证件号码末几位").fill("1234")
        await form.get_by_role("button", name="确认已当面核验").click()
        await expect(person.get_by_test_id("identity")).to_have_text("已当面核验身份")
        await page.screenshot(path=str(shots / "3-checked.png"), full_page=True)

        # English on request.
        await page.select_option("#lang", "en")
        await expect(person.get_by_test_id("identity")).to_have_text("identity checked in person")
    finally:
        await context.close()

    status, log = await court.call(
        await court.staff("judge"), "GET", f"/api/hearings/{w.hearing_id}/events"
    )
    assert status == 200
    checks = [e for e in log["events"] if e["kind"].startswith("identity.")]
    assert [e["kind"] for e in checks] == ["identity.failed", "identity.confirmed"]
    director = f"user:{w.user_ids['station_director']}"
    assert all(e["actor"] == director for e in checks)
    assert checks[1]["data"]["method"] == "station_attested"
    assert checks[1]["data"]["check"] == "in_person"
