"""The hearing record (issue 15) as people use it: the clerk writes the transcript in the
console, the plaintiff follows it live on a phone (360x740) and signs it there (name, the
one-time code shown only to them, a signature drawn on the canvas), a late edit makes the
signature visibly stale on both pages, the plaintiff signs again, the clerk finalises, and the
sealed document verifies with the court's public key. A screenshot at each step; axe-core
finds no serious violation on either page."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from recordings.document import FORMAT, canonical_json, text_sha256
from recordings.keys import load_verify_key
from signaling import messages as m
from signaling.enums import HearingState
from tests.browser.axe import serious_violations
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import login_page, party_page

PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 1,
}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}


async def step(page: Page, court: Court, name: str) -> Path:
    """A screenshot of this step, and no serious accessibility violation on it."""
    path = court.data_dir / f"record-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert await serious_violations(page) == [], name
    return path


async def draw_signature(page: Page) -> None:
    """A signature drawn with the mouse on the canvas: two strokes."""
    canvas = page.locator("[data-testid=sign-canvas]")
    await canvas.scroll_into_view_if_needed()
    found = await canvas.bounding_box()
    assert found is not None
    x, y, w, h = found["x"], found["y"], found["width"], found["height"]
    for row in (0.35, 0.65):
        await page.mouse.move(x + w * 0.1, y + h * row)
        await page.mouse.down()
        for i in range(1, 12):
            wobble = 0.1 if i % 2 else -0.1
            await page.mouse.move(x + w * (0.1 + 0.07 * i), y + h * (row + wobble))
        await page.mouse.up()
    await expect(canvas).to_have_attribute("data-drawn", "true")


async def sign(page: Page, name: str) -> None:
    """Review, name, get the code shown to oneself, type it, draw, sign."""
    await page.check("[data-testid=sign-read]")
    await page.fill("[data-testid=sign-name]", name)
    await page.click("[data-testid=sign-get-code]")
    code_shown = page.locator("[data-testid=sign-code-value]")
    await expect(code_shown).to_have_text(re.compile(r"^[0-9]{6}$"))
    await page.fill("[data-testid=sign-code]", await code_shown.inner_text())
    await draw_signature(page)
    await page.click("[data-testid=sign-submit]")


@pytest.mark.browser
async def test_clerk_writes_party_signs_on_a_phone_late_edit_stales_then_sealed(
    court: Court, browser: Browser
) -> None:
    w = court.world.own
    desk = await browser.new_context(**DESKTOP)
    phone = await browser.new_context(**PHONE)
    async with court.client(await court.staff("judge")) as judge:
        await judge.join(w.hearing_id)
        await judge.request(m.SetHearingState(state=HearingState.OPENED, reason="候庭"))
        await judge.request(m.SetHearingState(state=HearingState.IN_SESSION, reason="开庭"))
        try:
            clerk = await login_page(desk, court, "clerk")
            panel = clerk.locator("[data-testid=record-panel]")
            await expect(panel).to_be_visible()
            party = await party_page(phone, court, w.plaintiff_token, "PLAINTIFF")
            await judge.request(m.Admit(all=True))
            await expect(party.locator("#room")).to_have_attribute("data-state", "in_hearing")

            # The clerk writes two statements, speakers marked by role and name, and saves.
            await clerk.click("[data-testid=rec-add-entry]")
            speaker = clerk.locator("[data-testid=rec-entry-speaker]").last
            await speaker.select_option(label="法官 judge")
            texts = clerk.locator("[data-testid=rec-entry-text]")
            await texts.last.fill("现在开庭。请原告陈述诉讼请求。")
            await clerk.click("[data-testid=rec-add-entry]")
            await clerk.locator("[data-testid=rec-entry-speaker]").last.select_option(
                label="原告 plaintiff"
            )
            await texts.last.fill("请求被告归还借款五千元。")
            await clerk.click("[data-testid=rec-save]")
            await expect(clerk.locator("[data-testid=rec-status]")).to_contain_text("第 1 版")
            await expect(clerk.locator("[data-testid=rec-text]")).to_contain_text(
                "原告 plaintiff：请求被告归还借款五千元。"
            )
            await step(clerk, court, "1-clerk-writes")

            # The plaintiff, in the main room, sees it live on the phone.
            sign_box = party.locator("[data-testid=record-sign]")
            await expect(sign_box).to_be_visible()
            await expect(party.locator("[data-testid=sign-text]")).to_contain_text(
                "审判员 judge：现在开庭。"
            )
            await expect(party.locator("[data-testid=sign-title]")).to_have_text(
                "庭审笔录（正在记录）"
            )
            await expect(party.locator("[data-testid=sign-form]")).to_be_hidden()
            await step(party, court, "2-phone-follows-live")

            # The clerk asks for signatures; the phone offers the form.
            await clerk.click("[data-testid=rec-request]")
            await expect(panel).to_have_attribute("data-state", "signing")
            await expect(party.locator("[data-testid=sign-title]")).to_have_text("请核对并签署笔录")
            await expect(party.locator("[data-testid=sign-form]")).to_be_visible()
            # Signing without drawing first: a sentence next to the form, nothing sent.
            await party.check("[data-testid=sign-read]")
            await party.fill("[data-testid=sign-name]", "原告本人")
            await party.fill("[data-testid=sign-code]", "123456")
            await party.click("[data-testid=sign-submit]")
            await expect(party.locator("[data-testid=sign-error]")).to_have_text(
                "请在框内手写签名。"
            )
            await step(party, court, "3-phone-asked-to-sign")
            await sign(party, "原告本人")
            await expect(party.locator("[data-testid=sign-status]")).to_contain_text("您已签名")
            await expect(party.locator("[data-testid=sign-form]")).to_be_hidden()
            await step(party, court, "4-phone-signed")
            signer = clerk.locator(f"[data-testid=rec-signer-{w.plaintiff_id}]")
            await expect(signer).to_have_attribute("data-status", "signed")
            await expect(signer).to_contain_text("plaintiff（原告）：已签名")

            # A late edit: the signature is stale on both pages, and asked for again.
            await clerk.locator("[data-testid=rec-entry-text]").last.fill(
                "请求被告归还借款五千元及利息。"
            )
            await clerk.click("[data-testid=rec-save]")
            await expect(clerk.locator("[data-testid=rec-status]")).to_contain_text("第 2 版")
            await expect(signer).to_have_attribute("data-status", "stale")
            await expect(signer).to_contain_text("签名已失效，需重新签名")
            await step(clerk, court, "5-clerk-sees-stale")
            status = party.locator("[data-testid=sign-status]")
            await expect(status).to_contain_text("您的签名已失效")
            await expect(party.locator("[data-testid=sign-text]")).to_contain_text("及利息")
            await expect(party.locator("[data-testid=sign-form]")).to_be_visible()
            await step(party, court, "6-phone-stale")
            await sign(party, "原告本人")
            await expect(status).to_contain_text("您已签名")
            await expect(signer).to_have_attribute("data-status", "signed")

            # The clerk finalises (asked once); the court seals it.
            await clerk.click("[data-testid=rec-finalise]")
            await expect(clerk.locator("[data-testid=rec-finalise-row]")).to_be_visible()
            await clerk.click("[data-testid=rec-finalise-yes]")
            await expect(panel).to_have_attribute("data-state", "finalised")
            await expect(clerk.locator("[data-testid=rec-download]")).to_be_visible()
            await expect(clerk.locator("[data-testid=rec-save]")).to_be_disabled()
            await step(clerk, court, "7-clerk-finalised")
            await expect(status).to_contain_text("笔录已定稿并由法院盖章")
            await expect(party.locator("[data-testid=sign-download]")).to_be_visible()
            await step(party, court, "8-phone-final")
        finally:
            await desk.close()
            await phone.close()

    # The sealed document verifies with the court's public key (read over REST).
    status_code, sealed = await court.call(
        await court.staff("clerk"), "GET", f"/api/hearings/{w.hearing_id}/record/transcript/sealed"
    )
    assert status_code == 200
    verify = await asyncio.to_thread(load_verify_key, court.data_dir / "keys" / "signing.pub")
    signature = base64.b64decode(sealed["court_signature"]["signature"])
    body = {"format": FORMAT, "document": sealed["document"]}
    assert verify.verify(signature, canonical_json(body))
    document = sealed["document"]
    assert "请求被告归还借款五千元及利息。" in document["text"]
    assert document["version"] == 2
    [signed] = document["signatures"]
    assert signed["participant_id"] == w.plaintiff_id
    assert signed["name"] == "原告本人"
    assert signed["where"] == "phone"
    assert signed["text_sha256"] == text_sha256(document["text"])
    assert base64.b64decode(signed["image_png_b64"]).startswith(b"\x89PNG")
    assert document["extra"]["not_signed"] == [w.defendant_id]
    # Tampering breaks the seal.
    document["text"] += "。"
    assert not verify.verify(signature, canonical_json(body))


@pytest.mark.browser
async def test_agreement_drafted_in_the_console_refused_on_a_desk_ends_the_mediation(
    court: Court, browser: Browser
) -> None:
    w = court.world.own
    desk = await browser.new_context(**DESKTOP)
    phone = await browser.new_context(**PHONE)
    other_desk = await browser.new_context(**DESKTOP)
    async with court.client(await court.staff("clerk")) as clerk:
        await clerk.join(w.hearing_id)
        await court.set_state("opened", "候庭")  # the judge, over REST (its console is a page)
        await court.set_state("in_session", "开庭")
        try:
            judge = await login_page(desk, court, "judge")
            panel = judge.locator("[data-testid=record-panel]")
            await expect(panel).to_be_visible()
            plaintiff = await party_page(phone, court, w.plaintiff_token, "PLAINTIFF")
            defendant = await party_page(other_desk, court, w.defendant_token, "DEFENDANT")
            await clerk.request(m.Admit(all=True))

            # The judge drafts the agreement: a term, a payment, a deadline.
            await judge.click("[data-testid=rec-tab-agreement]")
            await judge.click("[data-testid=rec-add-term]")
            await judge.fill("[data-testid=rec-term]", "双方自愿达成如下协议。")
            await judge.click("[data-testid=rec-add-amount]")
            await judge.fill("[data-testid=rec-payer]", "被告")
            await judge.fill("[data-testid=rec-payee]", "原告")
            await judge.fill("[data-testid=rec-amount]", "5000")
            await judge.fill("[data-testid=rec-due]", "2026-12-31")
            await judge.click("[data-testid=rec-add-deadline]")
            await judge.fill("[data-testid=rec-what]", "被告归还借用的农机")
            await judge.fill("[data-testid=rec-by]", "2026-12-20")
            await judge.click("[data-testid=rec-save]")
            await expect(judge.locator("[data-testid=rec-text]")).to_contain_text(
                "被告 向 原告 支付人民币 5000.00 元，于 2026年12月31日 前付清。"
            )
            await judge.click("[data-testid=rec-request]")
            await expect(panel).to_have_attribute("data-state", "signing")
            await step(judge, court, "a1-judge-drafts-agreement")

            # The plaintiff signs on the phone; the defendant refuses at a desk, with a reason.
            await expect(plaintiff.locator("[data-testid=sign-title]")).to_have_text(
                "请核对并签署调解协议"
            )
            await sign(plaintiff, "原告本人")
            await expect(plaintiff.locator("[data-testid=sign-status]")).to_contain_text("您已签名")
            await expect(defendant.locator("[data-testid=sign-form]")).to_be_visible()
            await defendant.click("[data-testid=sign-get-code]")
            code = defendant.locator("[data-testid=sign-code-value]")
            await expect(code).to_have_text(re.compile(r"^[0-9]{6}$"))
            await defendant.fill("[data-testid=sign-code]", await code.inner_text())
            await defendant.click("[data-testid=sign-refuse]")
            await defendant.fill("[data-testid=sign-refuse-reason]", "金额太高")
            await step(defendant, court, "a2-desk-refuses")
            await defendant.click("[data-testid=sign-refuse-submit]")
            await expect(defendant.locator("[data-testid=sign-status]")).to_contain_text("调解不成")
            await expect(panel).to_have_attribute("data-state", "failed")
            refused = judge.locator(f"[data-testid=rec-signer-{w.defendant_id}]")
            await expect(refused).to_contain_text("拒绝签名，理由：金额太高")
            await expect(judge.locator("[data-testid=rec-download]")).to_be_visible()
            await step(judge, court, "a3-mediation-failed")
            await expect(plaintiff.locator("[data-testid=sign-status]")).to_contain_text("调解不成")
            await step(plaintiff, court, "a4-phone-told")

            # The judge sends the failed mediation on to a hearing of the case.
            send_on = judge.locator("[data-testid=rec-send-on]")
            await expect(send_on).to_be_visible()
            await judge.fill("[data-testid=rec-send-on-start]", "2026-12-21T09:30")
            await expect(judge.locator("[data-testid=rec-send-on-judge] option")).to_have_count(1)
            await judge.click("[data-testid=rec-send-on-submit]")
            link = judge.locator("[data-testid=rec-sent-on-link]")
            await expect(link).to_contain_text("2026年12月21日")
            await step(judge, court, "a5-sent-on")
            new_hearing = str(await link.get_attribute("href")).split("/")[2]
        finally:
            for context in (desk, phone, other_desk):
                await context.close()
    status, events = await court.call(
        await court.staff("judge"), "GET", f"/api/hearings/{w.hearing_id}/events"
    )
    assert status == 200
    failed = [e for e in events["events"] if e["kind"] == "mediation.failed"]
    assert [e["data"]["reason"] for e in failed] == ["金额太高"]
    judge_cookies = await court.staff("judge")
    status, agreement = await court.call(
        judge_cookies, "GET", f"/api/hearings/{w.hearing_id}/record/agreement"
    )
    status, transcript = await court.call(
        judge_cookies, "GET", f"/api/hearings/{new_hearing}/record/transcript"
    )
    assert status == 200
    assert transcript["source_document_ids"] == [agreement["id"]]  # linked to its record
