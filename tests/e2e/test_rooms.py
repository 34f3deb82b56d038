"""Private rooms on the wire: a party moved to a caucus receives no packets from the main room
and the main room none from the caucus; back in the main room, media flows again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from server.ids import HearingId
from server.web.appkeys import MEDIA
from signaling import messages as m
from signaling.client import SignalingClient
from tests.e2e.conftest import Court
from tests.e2e.test_browsers import participant_id, party_page, received, wait_receiving


def _packets(stats: dict[tuple[str, str], dict[str, int]], source: str) -> int:
    return sum(
        stats.get((source, kind), {}).get("packetsReceived", 0) for kind in ("audio", "video")
    )


async def _consumers(court: Court) -> set[tuple[str, str]]:
    """(publisher, subscriber) pairs the SFU forwards, from the worker's own state."""
    dump: dict[str, Any] = await (
        court.server.app[MEDIA].pool.router(HearingId(court.world.own.hearing_id)).dump()
    )
    return {
        (c["producer_peer_id"], peer["id"])
        for peer in dump["peers"]
        for c in peer["consumers"]
        if not c["closed"]
    }


async def _quiet(page: Page, source: str, ms: int = 1500, within_s: float = 8.0) -> bool:
    """True once no packet from `source` arrives at `page` for `ms` in a row, within
    `within_s`: packets already in flight (or queued on a loaded machine) when the route was
    cut may still land, but the flow must stop, and stay stopped for the whole window."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        before = _packets(await received(page), source)
        await page.wait_for_timeout(ms)
        if _packets(await received(page), source) == before:
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False


async def _next_frame(
    page: Page, source: str, before: dict[tuple[str, str], dict[str, int]]
) -> float:
    """Loop time at which `page` has decoded a video frame of `source` beyond `before`."""
    decoded = before.get((source, "video"), {}).get("framesDecoded", 0)
    async with asyncio.timeout(15):
        while True:
            now = await received(page)
            if now.get((source, "video"), {}).get("framesDecoded", 0) > decoded:
                return asyncio.get_running_loop().time()
            await page.wait_for_timeout(20)  # polling the browser's stats with a deadline


@pytest.mark.browser
async def test_caucus_is_isolated_on_the_wire(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    await court.set_state("in_session", "开庭")
    contexts = [await browser.new_context() for _ in range(2)]
    async with court.client(await court.staff("judge")) as judge:
        await judge.join(court.world.own.hearing_id)
        try:
            plaintiff = await party_page(
                contexts[0], court, court.world.own.plaintiff_token, "PLAINTIFF"
            )
            defendant = await party_page(
                contexts[1], court, court.world.own.defendant_token, "DEFENDANT"
            )
            await clerk.request(m.Admit(all=True))
            p_id, d_id = await participant_id(plaintiff), await participant_id(defendant)
            await wait_receiving(plaintiff, {d_id})
            await wait_receiving(defendant, {p_id})

            await judge.request(m.MoveToRoom(participant_id=p_id, room_id="甲方"))
            pairs = await _consumers(court)
            assert (d_id, p_id) not in pairs
            assert (p_id, d_id) not in pairs
            assert await _quiet(plaintiff, d_id)
            assert await _quiet(defendant, p_id)

            before = await received(plaintiff)
            back = asyncio.get_running_loop().time()
            await judge.request(m.MoveToRoom(participant_id=p_id, room_id="main"))
            # a picture within a second of the return (issue 9.2), in both directions
            took = await _next_frame(plaintiff, d_id, before)
            assert took - back < 1.0, f"picture back {took - back:.2f} s after the return"
            await wait_receiving(plaintiff, {d_id})
            await plaintiff.wait_for_timeout(1000)
            assert _packets(await received(plaintiff), d_id) > _packets(before, d_id)
        finally:
            for context in contexts:
                await context.close()


@pytest.mark.browser
async def test_witness_is_kept_apart_until_called_then_dismissed(
    court: Court, browser: Browser, clerk: SignalingClient
) -> None:
    w = court.world.own
    judge_cookies = await court.staff("judge")
    status, witness = await court.call(
        judge_cookies,
        "POST",
        f"/api/hearings/{w.hearing_id}/participants",
        {
            "display_name": "证人 Witness",
            "role": "witness",
            "legal_name": "WITNESS",
            "id_number_tail": "1234",
        },
    )
    assert status == 201
    status, issued = await court.call(
        judge_cookies,
        "POST",
        f"/api/hearings/{w.hearing_id}/participants/{witness['id']}/invitations",
        {},
    )
    assert status == 201
    token = issued["url"].split("#", 1)[1]
    await court.set_state("in_session", "开庭")
    contexts = [await browser.new_context() for _ in range(2)]
    async with court.client(judge_cookies) as judge:
        await judge.join(w.hearing_id)
        try:
            plaintiff = await party_page(contexts[0], court, w.plaintiff_token, "PLAINTIFF")
            witness_page = await party_page(contexts[1], court, token, "WITNESS")
            result = await clerk.request(m.Admit(all=True))
            assert isinstance(result, m.Result)
            assert result.data == {"admitted": 1}  # the plaintiff; never the witness
            p_id, x_id = await participant_id(plaintiff), await participant_id(witness_page)
            assert x_id == witness["id"]
            pairs = await _consumers(court)
            assert (p_id, x_id) not in pairs
            assert (x_id, p_id) not in pairs
            assert await _quiet(witness_page, p_id)

            await judge.request(m.CallWitness(participant_id=x_id))
            await wait_receiving(witness_page, {p_id})
            await wait_receiving(plaintiff, {x_id})

            await judge.request(m.DismissWitness(participant_id=x_id))
            # the witness's own screen: dismissed, nothing stale left on it
            await expect(witness_page.locator("#ended-title")).to_have_text("您已退庭")
            await expect(witness_page.locator("#hearing-state")).to_have_text("已退庭")
            await expect(witness_page.locator("#stage")).to_be_hidden()
            assert (x_id, p_id) not in await _consumers(court)
        finally:
            for context in contexts:
                await context.close()
