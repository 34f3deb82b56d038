"""Private rooms on the wire: a party moved to a caucus receives no packets from the main room
and the main room none from the caucus; back in the main room, media flows again."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page

from server.appkeys import MEDIA
from server.ids import HearingId
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
    dump: dict[str, Any] = await court.server.app[MEDIA].pool.dump(
        HearingId(court.world.own.hearing_id)
    )
    return {
        (c["producer_peer_id"], peer["id"])
        for peer in dump["peers"]
        for c in peer["consumers"]
        if not c["closed"]
    }


async def _quiet(page: Page, source: str, ms: int = 1500) -> bool:
    """True if no packet from `source` arrives at `page` during `ms`."""
    before = _packets(await received(page), source)
    await page.wait_for_timeout(ms)
    return _packets(await received(page), source) == before


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

            await judge.request(m.MoveToRoom(participant_id=p_id, room_id="main"))
            before = await received(plaintiff)
            await wait_receiving(plaintiff, {d_id})
            await plaintiff.wait_for_timeout(1000)
            assert _packets(await received(plaintiff), d_id) > _packets(before, d_id)
        finally:
            for context in contexts:
                await context.close()
