"""A party's page when the court withdraws the invitation link: it says so, in the page's
language, and the room is closed (Chromium)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from signaling.client import SignalingClient
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import party_page


@pytest.mark.browser
async def test_the_party_page_says_its_link_was_withdrawn(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    w = court.world.own
    # A party on a phone (UI.md): what they see when the court withdraws their link.
    context = await browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = await party_page(context, court, w.plaintiff_token, "PLAINTIFF")
        status, _ = await court.call(
            await court.staff("judge"), "POST", f"/api/invitations/{w.invitation_id}/revoke"
        )
        assert status == 200
        await expect(page.locator("#room")).to_have_attribute("data-state", "closed", timeout=5000)
        # its own screen: what happened and what to do next
        await expect(page.locator("#ended-title")).to_have_text("本链接已失效")
        await expect(page.locator("#ended-text")).to_contain_text("请使用法院最新发送的链接")
        await expect(page.locator("#ended-title")).to_be_in_viewport()
        # no stale "候庭中" and no button for what can no longer be done
        await expect(page.locator("#hearing-state")).to_have_text("链接已失效")
        await expect(page.locator("#leave")).to_be_hidden()
        await expect(page.locator("#ended-action")).to_be_hidden()
        await page.screenshot(path=str(court.data_dir / "link-withdrawn.png"))
    finally:
        await context.close()
