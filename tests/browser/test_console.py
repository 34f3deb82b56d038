"""The staff console in a real browser (issue 12): a clerk books a hearing and hands out the
links through the pages alone; a closed hearing opens its summary. Screenshots of each step
are kept in the test's tmp dir (console-*.png)."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect
from pytest_aiohttp import AiohttpServer

from server.app import create_app
from server.enums import EventKind, HearingState
from server.storage.db import upgrade_async
from server.storage.eventlog import EventLogRepository
from server.web.appkeys import SESSIONS
from tests.browser.axe import serious_violations
from tests.conftest import FakeClock
from tests.server.conftest import PASSWORD, World, make_config, seed_court


def _zh_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


async def _scan_qr(image: Locator, directory: Path) -> str:
    """Decode the QR code the page shows, as a scanner would: a screenshot read by zbarimg
    (Debian's zbar-tools, installed by `make test`)."""
    if shutil.which("zbarimg") is None:
        pytest.fail("zbarimg is not installed; `make test` installs zbar-tools", pytrace=False)
    path = directory / "qr-scan.png"
    await image.screenshot(path=str(path))
    process = await asyncio.create_subprocess_exec(
        "zbarimg", "--raw", "-q", str(path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, "zbarimg found no QR code"
    return out.decode().strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _serve(tmp_path: Path, aiohttp_server: AiohttpServer) -> tuple[TestServer, World, str]:
    """The app on a port known in advance, so that its invitation links point at it."""
    clock = FakeClock(datetime.now(UTC))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    config = make_config(tmp_path, server={"public_url": base})
    await upgrade_async(config.database_url)
    server = await aiohttp_server(create_app(config, clock=clock), host="127.0.0.1", port=port)
    sessions = server.app[SESSIONS]
    world = World(
        own=await seed_court(sessions, clock, "Court A", "a"),
        other=await seed_court(sessions, clock, "Court B", "b"),
    )
    return server, world, base


class Shots:
    """Numbered screenshots of one journey."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.n = 0

    async def __call__(self, page: Page, name: str) -> Path:
        self.n += 1
        path = self.directory / f"console-{self.n:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path


async def _login(page: Page, base: str, username: str) -> None:
    await page.goto(base + "/")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/dashboard")


async def _staff_context(browser: Browser, base: str) -> BrowserContext:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    return context


def _person(page: Page, name: str) -> Locator:
    return page.locator("[data-testid=person-row]", has_text=name)


def _link_row(page: Page, participant_id: str) -> Locator:
    return page.locator(f"[data-testid=link-row][data-participant-id='{participant_id}']")


async def test_a_clerk_books_a_hearing_and_hands_out_links(
    tmp_path: Path, aiohttp_server: AiohttpServer, browser: Browser
) -> None:
    _server, world, base = await _serve(tmp_path, aiohttp_server)
    shot = Shots(tmp_path)
    context = await _staff_context(browser, base)
    page = await context.new_page()

    # The dashboard: today's hearings, grouped, with readiness; the way to open a case.
    await _login(page, base, world.own.users["clerk"])
    await expect(page.locator("[data-testid=hearing-row]")).to_have_count(2)
    await expect(page.locator("[data-testid=group]").first).to_have_text("今天")
    await expect(page.locator("[data-testid=station-status]").first).to_have_text("站点未连接")
    assert await serious_violations(page) == []
    await shot(page, "dashboard")
    await page.click("[data-testid=new-case]")
    await page.wait_for_url(base + "/cases/new")

    # A bad case number and no cause: the messages sit next to the fields and are summarised.
    await page.fill("[data-testid=case-number]", "2026 #7!")
    await page.fill("[data-testid=case-title]", "张三诉李四民间借贷纠纷")
    await page.click("[data-testid=case-submit]")
    await expect(page.locator("[data-testid=number-error]")).to_contain_text("案号只能包含")
    await expect(page.locator("[data-testid=cause-error]")).to_have_text("请选择案由")
    summary = page.locator("[data-testid=error-summary]")
    await expect(summary).to_contain_text("请修改以下问题")
    await expect(summary.locator("a")).to_have_count(2)
    await expect(page.locator("[data-testid=case-number]")).to_have_attribute(
        "aria-invalid", "true"
    )
    assert await serious_violations(page) == []
    await shot(page, "case-errors")
    # The summary's link takes the eye to the field.
    await summary.locator("a").nth(1).click()
    await expect(page.locator("[data-testid=case-cause]")).to_be_focused()

    # Taken number: the server says so, next to the field.
    await page.fill("[data-testid=case-number]", "a-1")
    await page.select_option("[data-testid=case-cause]", label="民间借贷")
    await page.click("[data-testid=case-submit]")
    await expect(page.locator("[data-testid=number-error]")).to_have_text(
        "该案号已存在，请检查后重新输入"
    )
    await expect(page.locator("[data-testid=cause-error]")).to_be_hidden()
    await page.fill("[data-testid=case-number]", "(2026)示民初7号")
    await page.click("[data-testid=case-submit]")
    await page.wait_for_url(re.compile(r"/cases/[0-9a-f-]{36}$"))

    # The case page: schedule the hearing at the station, with the judge and the clerk.
    await expect(page.locator("[data-testid=case-number]")).to_have_text("(2026)示民初7号")
    await expect(page.locator("[data-testid=case-cause]")).to_have_text("民间借贷")
    await page.fill("[data-testid=bk-title]", "开庭审理")
    await page.fill("[data-testid=bk-length]", "3")
    await page.select_option("[data-testid=bk-station]", label="a station")
    await page.click("[data-testid=schedule-submit]")
    await expect(page.locator("#bk-length-error")).to_have_text("时长应为 5 到 720 分钟")
    await expect(page.locator("#bk-presiding-error")).to_have_text("请选择审判员或调解员")
    assert await serious_violations(page) == []
    await shot(page, "schedule-errors")
    await page.fill("[data-testid=bk-length]", "90")
    await page.select_option("[data-testid=bk-presiding]", label="a judge（法官）")
    await page.select_option("[data-testid=bk-clerk]", label="a clerk")
    day = (datetime.now(UTC) + timedelta(hours=8) + timedelta(days=20)).date()
    await page.fill("[data-testid=bk-date]", day.isoformat())
    await page.fill("[data-testid=bk-time]", "14:30")
    await page.click("[data-testid=schedule-submit]")
    await page.wait_for_url(re.compile(r"/hearings/[0-9a-f-]{36}/booking$"))
    hearing_id = page.url.split("/")[-2]

    # The hearing page: the booking as made, the staff and the station already on it.
    await expect(page.locator("[data-testid=hearing-title]")).to_have_text("开庭审理")
    await expect(page.locator("[data-testid=hearing-time]")).to_contain_text(_zh_date(day))
    await expect(page.locator("[data-testid=hearing-time]")).to_contain_text("14:30")
    await expect(page.locator("[data-testid=hearing-station]")).to_have_text("a station")
    await expect(page.locator("[data-testid=hearing-presiding]")).to_have_text("a judge")
    await expect(page.locator("[data-testid=person-row]")).to_have_count(3)

    # Two parties: the plaintiff, and the defendant with a phone.
    for role, name, digits, phone in (
        ("原告", "张三", "1234", ""),
        ("被告", "李四", "567x", "138 0000 0000"),
    ):
        await page.select_option("[data-testid=person-role]", label=role)
        await page.fill("[data-testid=person-name]", name)
        await page.fill("[data-testid=person-digits]", digits)
        await page.fill("[data-testid=person-phone]", phone)
        await page.click("[data-testid=person-submit]")
        await expect(_person(page, name)).to_contain_text("尚未签发")
    # ID digits the court holds must be digits: said next to the field.
    await page.select_option("[data-testid=person-role]", label="证人")
    await page.fill("[data-testid=person-name]", "王五")
    await page.fill("[data-testid=person-digits]", "12")
    await page.click("[data-testid=person-submit]")
    await expect(page.locator("[data-testid=person-digits-error]")).to_contain_text("4 至 8 位")
    assert await serious_violations(page) == []
    await shot(page, "people")
    await page.fill("[data-testid=person-digits]", "")
    await page.fill("[data-testid=person-name]", "")

    # Issue and copy both links.
    urls: dict[str, str] = {}
    for name in ("张三", "李四"):
        row = _person(page, name)
        pid = await row.get_attribute("data-participant-id")
        assert pid is not None
        await row.locator("[data-testid=issue-link]").click()
        link_row = _link_row(page, pid)
        await expect(link_row.locator("[data-testid=link-url]")).to_have_value(
            re.compile(re.escape(base) + r"/join#[A-Za-z0-9_-]{43}$")
        )
        # Valid until a day after the hearing (14:30 + 90 minutes, plus a day).
        await expect(_person(page, name).locator("[data-testid=link-state]")).to_contain_text(
            "有效，至 " + _zh_date(day + timedelta(days=1))
        )
        await link_row.locator("[data-testid=copy-link]").click()
        await expect(link_row.locator("[data-testid=copy-note]")).to_have_text("已复制到剪贴板")
        copied = await page.evaluate("navigator.clipboard.readText()")
        assert copied == await link_row.locator("[data-testid=link-url]").input_value()
        urls[name] = copied
    assert urls["张三"] != urls["李四"]
    await expect(page.locator("[data-testid=link-once]")).to_contain_text("只显示这一次")
    assert await serious_violations(page) == []
    await shot(page, "links")

    # The plaintiff's link as a QR code, for a phone at the station's counter.
    plaintiff = await _person(page, "张三").get_attribute("data-participant-id")
    assert plaintiff is not None
    await _link_row(page, plaintiff).locator("[data-testid=show-qr]").click()
    dialog = page.locator("[data-testid=qr-dialog]")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("请用手机扫描二维码进入庭审")
    await expect(dialog.locator("[data-testid=qr-url]")).to_have_text(urls["张三"])
    await expect(dialog.locator("[data-testid=qr-image]")).to_have_attribute(
        "alt", "张三 的邀请二维码"
    )
    src = await dialog.locator("[data-testid=qr-image]").get_attribute("src")
    assert src is not None
    assert src.startswith("data:image/svg+xml")
    loaded = await dialog.locator("[data-testid=qr-image]").evaluate("img => img.naturalWidth")
    assert loaded > 100
    # What a phone's camera reads from the code on the screen is the link.
    assert await _scan_qr(dialog.locator("[data-testid=qr-image]"), tmp_path) == urls["张三"]
    assert await serious_violations(page) == []
    qr_shot = await shot(page, "qr")
    await dialog.locator("[data-testid=qr-close]").click()
    await expect(dialog).to_be_hidden()

    # Re-issue the plaintiff's link: a warning first; cancelling it changes nothing.
    await _person(page, "张三").locator("[data-testid=reissue-link]").click()
    confirm = page.locator("[data-testid=confirm-dialog]")
    await expect(confirm).to_contain_text("原来的链接立即失效")
    await shot(page, "reissue-warning")
    await confirm.locator("[data-testid=confirm-no]").click()
    await expect(_link_row(page, plaintiff).locator("[data-testid=link-url]")).to_have_value(
        urls["张三"]
    )
    await _person(page, "张三").locator("[data-testid=reissue-link]").click()
    await confirm.locator("[data-testid=confirm-yes]").click()
    new_url = _link_row(page, plaintiff).locator("[data-testid=link-url]")
    await expect(new_url).not_to_have_value(urls["张三"])
    await expect(_person(page, "张三").locator("[data-testid=link-state]")).to_contain_text(
        "已替换旧链接 1 个"
    )
    old_plaintiff_url, urls["张三"] = urls["张三"], await new_url.input_value()

    # Revoke the defendant's link, after a warning.
    await _person(page, "李四").locator("[data-testid=revoke-link]").click()
    await expect(confirm).to_contain_text("撤销后该链接立即失效")
    await confirm.locator("[data-testid=confirm-yes]").click()
    await expect(_person(page, "李四").locator("[data-testid=link-state]")).to_have_text("已撤销")
    await expect(_person(page, "李四").locator("[data-testid=issue-link]")).to_be_visible()
    await shot(page, "revoked")

    # The party's phone: the new link works, the replaced and the revoked ones do not.
    party = await browser.new_context(viewport={"width": 360, "height": 740})
    try:
        mobile = await party.new_page()
        await mobile.goto(urls["张三"])
        await expect(mobile.locator("#status")).to_have_text(
            "邀请已确认。请等待法官或书记员允许您进入。"
        )
        await expect(mobile.locator("#hearing-title")).to_have_text("开庭审理")
        await shot(mobile, "party-joined")
        for dead in (old_plaintiff_url, urls["李四"]):
            other = await party.new_page()
            await other.goto(dead)
            await expect(other.locator("#status")).to_have_attribute(
                "data-code", "INVALID_INVITATION"
            )
    finally:
        await party.close()

    # Back on the hearing page, the plaintiff's link shows as used.
    await page.reload()
    await expect(_person(page, "张三").locator("[data-testid=link-state]")).to_contain_text(
        "已使用"
    )
    # The dashboard lists the new hearing under "upcoming", with its case number.
    await page.goto(base + "/dashboard")
    row = page.locator(f"[data-hearing-id='{hearing_id}']")
    await expect(row).to_contain_text("(2026)示民初7号")
    await expect(row).to_contain_text("a judge")
    await page.select_option("[data-testid=filter-judge]", label="a judge")
    await expect(page.locator("[data-testid=hearing-row]")).to_have_count(3)
    await page.select_option("[data-testid=filter-station]", label="a station")
    await expect(page.locator("[data-testid=hearing-row]")).to_have_count(2)
    await shot(page, "dashboard-after")
    # The case is listed on the dashboard, to schedule its next hearing from.
    await page.locator("[data-testid=cases] a", has_text="(2026)示民初7号").click()
    await page.wait_for_url(re.compile(r"/cases/[0-9a-f-]{36}$"))
    await expect(page.locator("[data-testid=case-hearings] tr")).to_have_count(1)
    assert await serious_violations(page) == []
    await context.close()
    assert qr_shot.stat().st_size > 10_000


async def test_cancel_a_hearing_with_a_reason(
    tmp_path: Path, aiohttp_server: AiohttpServer, browser: Browser
) -> None:
    _server, world, base = await _serve(tmp_path, aiohttp_server)
    shot = Shots(tmp_path)
    context = await _staff_context(browser, base)
    page = await context.new_page()
    await _login(page, base, world.own.users["judge"])
    await page.goto(f"{base}/hearings/{world.own.other_hearing_id}/booking")
    # Change the booking first: a new title, a longer hearing, at the station.
    await expect(page.locator("[data-testid=ed-title]")).to_have_value("hearing")
    await page.fill("[data-testid=ed-title]", "庭前调解")
    await page.fill("[data-testid=ed-length]", "")
    await page.click("[data-testid=edit-submit]")
    await expect(page.locator("#ed-length-error")).to_have_text("时长应为 5 到 720 分钟")
    await page.fill("[data-testid=ed-length]", "150")
    await page.select_option("[data-testid=ed-station]", label="a station")
    await page.click("[data-testid=edit-submit]")
    await expect(page.locator("[data-testid=edit-saved]")).to_have_text("已保存。")
    await expect(page.locator("[data-testid=hearing-title]")).to_have_text("庭前调解")
    await expect(page.locator("[data-testid=hearing-station]")).to_have_text("a station")
    await expect(page.locator("[data-testid=person-row]", has_text="a station")).to_have_count(1)
    await shot(page, "edited")
    await page.click("[data-testid=cancel-submit]")
    await expect(page.locator("[data-testid=cancel-reason-error]")).to_have_text("请填写取消理由")
    await page.fill("[data-testid=cancel-reason]", "原告撤诉")
    await page.click("[data-testid=cancel-submit]")
    await expect(page.locator("[data-testid=confirm-text]")).to_contain_text("不能恢复")
    await page.click("[data-testid=confirm-yes]")
    await expect(page.locator("[data-testid=hearing-state]")).to_have_text(
        "已取消（取消理由：原告撤诉）"
    )
    await expect(page.locator("[data-testid=summary-link]")).to_be_visible()
    await expect(page.locator("[data-testid=room-link]")).to_be_hidden()
    assert await serious_violations(page) == []
    await shot(page, "cancelled")
    await context.close()


async def test_a_closed_hearing_opens_its_summary(
    tmp_path: Path, aiohttp_server: AiohttpServer, browser: Browser
) -> None:
    server, world, base = await _serve(tmp_path, aiohttp_server)
    w = world.own
    # The closed hearing is set up directly: it is not this test's subject.
    async with server.app[SESSIONS].begin() as db:
        log = EventLogRepository(db)
        now = datetime.now(UTC)
        for kind, data in (
            (EventKind.PARTICIPANT_DEPARTED, {"participant_id": w.defendant_id,
                                              "cause": "NETWORK_LOST", "excused": False,
                                              "detail": "", "was": "in_hearing"}),
            (EventKind.RECORDING_SEALED, {"recording_id": "r1", "root_hash": "ab" * 32,
                                          "status": "complete"}),
            (EventKind.RECORDING_CONFIRMED, {"participant_id": w.plaintiff_id,
                                             "recording_id": "r1", "root_hash": "ab" * 32,
                                             "matches": True, "confirmed": True}),
            (EventKind.RECORDING_DISPUTED, {"participant_id": w.defendant_id,
                                            "recording_id": "r1", "root_hash": "cd" * 32,
                                            "matches": False, "confirmed": True}),
            (EventKind.STATION_BACKUP_STARTED, {"recording_id": "b1", "key_id": "k",
                                                "verify_key": "", "station_id": w.station_id}),
            (EventKind.STATION_BACKUP_RECEIVED, {"recording_id": "b1", "root_hash": "ef" * 32,
                                                 "status": "complete", "bytes": 10}),
        ):  # fmt: skip
            await log.append(w.hearing_id, at=now, actor="server", kind=kind, data=data)
    shot = Shots(tmp_path)
    context = await _staff_context(browser, base)
    page = await context.new_page()
    await _login(page, base, w.users["judge"])
    for state in (HearingState.OPENED, HearingState.CLOSED):
        status = await page.evaluate(
            """async ([id, state]) => {
                 const csrf = document.cookie.match(/sc_csrf=([^;]+)/)[1];
                 const r = await fetch(`/api/hearings/${id}/state`, {method: "POST",
                   headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                   body: JSON.stringify({state, reason: "r"})});
                 return r.status; }""",
            [w.hearing_id, state.value],
        )
        assert status == 200
    await page.reload()
    row = page.locator(f"[data-hearing-id='{w.hearing_id}']")
    await expect(row.locator("[data-testid=hearing-state]")).to_have_text("已结束")
    await expect(row.locator("[data-testid=room-link]")).to_have_count(0)
    await row.locator("[data-testid=summary-link]").click()
    await page.wait_for_url(f"{base}/hearings/{w.hearing_id}/summary")
    await expect(page.locator("[data-testid=hearing-state]")).to_have_text("已结束")
    recording = page.locator("[data-testid=recording]")
    await expect(recording.locator("[data-testid=root-hash]")).to_have_text("ab" * 32)
    await expect(recording.locator("li").nth(0)).to_contain_text("plaintiff（原告） 已确认")
    await expect(recording.locator("li").nth(1)).to_contain_text("defendant（被告） 提出异议")
    await expect(page.locator("[data-testid=departure]")).to_contain_text("网络中断")
    await expect(page.locator("[data-testid=backup]")).to_contain_text("已接收并校验完整")
    timeline = page.locator("[data-testid=event]")
    await expect(timeline.last).to_contain_text("庭审状态变更：闭庭")
    await expect(page.locator("[data-testid=timeline]")).not_to_contain_text("recording.")
    assert await serious_violations(page) == []
    await shot(page, "summary")
    await page.select_option("#lang", "en")
    await expect(page.locator("[data-testid=departure]")).to_contain_text("network lost")
    await expect(timeline.last).to_contain_text("hearing state changed")
    await shot(page, "summary-en")
    await context.close()
