"""Connection quality from RTCP the SFU already receives: the round trip is measured against
the SFU's own send time of each sender report (its NTP timestamps carry the publisher's clock),
loss is the receiver's fraction lost; over the worker pipe, each peer's figures arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from server.ids import HearingId, new_id
from server.sfu.quality import LinkQuality, RateMeter
from server.worker import WorkerPool

from .conftest import Client, wait_for
from .test_worker import join, video_frames

NTP = 0x1234_5678_9ABC_DEF0  # any 64-bit NTP timestamp: only its middle 32 bits are echoed
LSR = (NTP >> 16) & 0xFFFFFFFF


def test_round_trip_is_measured_from_our_send_time_less_the_receivers_delay() -> None:
    q = LinkQuality()
    q.sender_report_sent(NTP, now=100.0)
    # echoed 0.25 s later, of which the receiver held it 0.2 s (DLSR in 1/65536 s)
    q.receiver_report(LSR, int(0.2 * 65536), fraction_lost=64, now=100.25)
    assert q.rtt_s == pytest.approx(0.05, abs=1e-4)
    assert q.fraction_lost == 0.25
    # a later report is smoothed with the previous estimate, never below zero
    q.sender_report_sent(NTP + (1 << 16), now=101.0)  # middle 32 bits: LSR + 1
    q.receiver_report(LSR + 1, int(0.2 * 65536), fraction_lost=0, now=101.35)
    assert q.rtt_s == pytest.approx((0.05 + 0.15) / 2, abs=1e-4)
    assert q.fraction_lost == 0.0


def test_reports_of_no_or_unknown_sender_report_give_loss_but_no_round_trip() -> None:
    q = LinkQuality()
    q.receiver_report(0, 0, fraction_lost=3, now=5.0)  # the receiver has seen no SR yet
    q.receiver_report(0xDEAD_BEEF, 100, fraction_lost=3, now=5.0)  # not one of ours
    assert q.rtt_s is None
    assert q.fraction_lost == 3 / 256
    assert q.reports == 2


def test_rate_meter_averages_over_the_interval_and_ignores_a_too_close_sample() -> None:
    meter = RateMeter()
    meter.sample(0, 0, now=10.0)
    meter.sample(125_000, 250_000, now=11.0)  # 1 Mbit in, 2 Mbit out in one second
    assert (meter.in_kbps, meter.out_kbps) == (1000.0, 2000.0)
    meter.sample(999_999, 999_999, now=11.1)  # a second console polling at once
    assert (meter.in_kbps, meter.out_kbps) == (1000.0, 2000.0)
    meter.sample(0, 250_000, now=12.0)  # a closed producer's bytes left the sum: not negative
    assert meter.in_kbps == 0.0


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    p = WorkerPool(1)
    await p.start()
    yield p
    await p.close()


async def test_peer_stats_cross_the_worker_pipe(pool: WorkerPool) -> None:
    hearing = HearingId(new_id())
    router = await pool.create_router(hearing)
    clients: list[Client] = [
        await join(pool, hearing, "a", 60),
        await join(pool, hearing, "b", 180),
    ]
    try:
        await wait_for(lambda: all(video_frames(c) >= 5 for c in clients), timeout=20)
        await router.peer_stats()  # the first sample starts the bit-rate interval
        figures: dict[str, dict[str, object]] = {}

        async def measured() -> bool:
            figures.update({f["peer"]: f for f in await router.peer_stats()})
            return (
                all(
                    isinstance(f["rtt_ms"], float) and float(str(f["bitrate_in_kbps"])) > 0
                    for f in figures.values()
                )
                and len(figures) == 2
            )

        await wait_for_async(measured, timeout=20)
        for client in clients:
            f = figures[client.id]
            assert f["connection_state"] == "connected"
            assert 0 <= float(str(f["rtt_ms"])) < 1000  # loopback
            assert f["loss"] is not None
            assert float(str(f["bitrate_out_kbps"])) > 0
    finally:
        for client in clients:
            await client.close()


async def wait_for_async(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Poll an async condition with a deadline (the figures come with RTCP, about each second)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.25)  # polling the worker's figures with a deadline
