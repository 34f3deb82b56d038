"""The staff login, dashboard and invitation pages in a real browser."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect
from pytest_aiohttp import AiohttpServer

from server.app import create_app
from server.auth import tokens
from server.storage.db import upgrade_async
from server.web.appkeys import SESSIONS
from tests.browser.axe import serious_violations
from tests.conftest import FakeClock
from tests.server.conftest import PASSWORD, World, make_config, seed_court


async def _serve(tmp_path: Path, aiohttp_server: AiohttpServer) -> tuple[TestServer, World]:
    from datetime import UTC, datetime

    clock = FakeClock(datetime.now(UTC))
    config = make_config(tmp_path)
    await upgrade_async(config.database_url)
    server = await aiohttp_server(create_app(config, clock=clock), host="127.0.0.1")
    sessions = server.app[SESSIONS]
    world = World(
        own=await seed_court(sessions, clock, "Court A", "a"),
        other=await seed_court(sessions, clock, "Court B", "b"),
    )
    return server, world


async def test_staff_login_shows_the_court_hearings(
    tmp_path: Path, aiohttp_server: AiohttpServer, browser: Browser
) -> None:
    server, world = await _serve(tmp_path, aiohttp_server)
    page = await browser.new_page()
    base = str(server.make_url("/")).rstrip("/")
    await page.goto(base + "/")
    await expect(page.locator("h2")).to_have_text("工作人员登录")
    await page.select_option("#lang", "en")
    await expect(page.locator("h2")).to_have_text("Staff login")
    await page.fill("#username", world.own.users["judge"])
    await page.fill("#password", "wrong password")
    await page.click("button[type=submit]")
    await expect(page.locator("#error")).to_have_text("Wrong user name or password.")
    assert await serious_violations(page) == []
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/dashboard")
    rows = page.locator("#hearings tr[data-hearing-id]")
    await expect(rows).to_have_count(2)
    ids = {await rows.nth(i).get_attribute("data-hearing-id") for i in range(2)}
    assert ids == {world.own.hearing_id, world.own.other_hearing_id}
    assert await serious_violations(page) == []
    # The check does see a problem: a field without a label is a critical violation.
    await page.evaluate("document.body.append(document.createElement('input'))")
    assert "label" in {v["id"] for v in await serious_violations(page)}
    # The session cookie is invisible to scripts.
    assert "sc_session" not in await page.evaluate("document.cookie")
    await page.click("#logout")
    await page.wait_for_url(base + "/")


async def test_invitation_link_joins_and_leaves_no_token_behind(
    tmp_path: Path, aiohttp_server: AiohttpServer, browser: Browser
) -> None:
    server, world = await _serve(tmp_path, aiohttp_server)
    page = await browser.new_page()
    base = str(server.make_url("/")).rstrip("/")
    await page.goto(f"{base}/join#{world.own.plaintiff_token}")
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-participant-id", world.own.plaintiff_id)
    await expect(page.locator("#hearing-title")).to_have_text("hearing")
    assert world.own.plaintiff_token not in page.url
    # a party goes on to their own page, not the staff room
    await expect(page.locator("#enter")).to_have_attribute(
        "href", f"/hearings/{world.own.hearing_id}/attend"
    )
    assert await serious_violations(page) == []

    other = await browser.new_page()
    await other.goto(f"{base}/join#{tokens.new_token()}")
    await expect(other.locator("#status")).to_have_attribute("data-code", "INVALID_INVITATION")
    await expect(other.locator("#status")).to_have_class("error")
