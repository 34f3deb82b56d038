"""NACK/RTX towards subscribers, PLI forwarding to publishers, late joiners."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

from server.sfu import Router
from server.sfu.rtp import header_length

from .conftest import Client, wait_for


def count_keyframe_requests(client: Client) -> list[float]:
    """Times at which the publisher's aiortc video sender was asked for a keyframe."""
    times: list[float] = []
    sender = next(s for s in client.pc.getSenders() if s.kind == "video")
    original = sender._send_keyframe

    def send_keyframe() -> None:
        times.append(time.monotonic())
        original()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
    return times


def client_transport(client: Client) -> Any:
    return client.pc.getTransceivers()[0].receiver.transport


async def test_subscriber_nack_answered_with_rtx(make_client, router: Router) -> None:
    a = await make_client("a", luma=90)
    b = await make_client("b", luma=None)  # receive-only: offers one recvonly m-line
    consumer = next(c for c in router.peers[b.id].consumers.values() if c.kind == "video")
    await wait_for(lambda: consumer.active, what="consumer active")
    assert consumer.stream is not None
    media_ssrc, rtx_ssrc = consumer.stream.ssrc, consumer.stream.rtx_ssrc

    dtls = client_transport(b)
    original = dtls._handle_rtp_data
    dropped: set[int] = set()
    repaired: set[int] = set()
    seen = 0

    async def lossy(data: bytes, arrival_time_ms: int) -> None:
        nonlocal seen
        ssrc = struct.unpack_from("!I", data, 8)[0]
        seq = struct.unpack_from("!H", data, 2)[0]
        if ssrc == media_ssrc:
            seen += 1
            if seen % 15 == 0 and seq not in dropped:
                dropped.add(seq)
                return  # lost on the SFU -> subscriber leg
        elif ssrc == rtx_ssrc:
            hl = header_length(data)
            repaired.add(struct.unpack_from("!H", data, hl)[0])
        await original(data, arrival_time_ms)

    dtls._handle_rtp_data = lossy
    await wait_for(lambda: len(dropped & repaired) >= 3, timeout=15, what="RTX for dropped seqs")
    assert consumer.nacks_received > 0
    assert consumer.stream.retransmitted >= 3
    frames = b.frames_from(a, "video")
    await wait_for(lambda: b.frames_from(a, "video") >= frames + 30, what="video keeps decoding")


async def test_pli_on_subscriber_connect_and_throttled(make_client, router: Router) -> None:
    a = await make_client("a", luma=90)
    requests = count_keyframe_requests(a)
    b = await make_client("b", luma=None)
    await wait_for(lambda: len(requests) >= 1, what="PLI forwarded when the subscriber connected")
    producer = next(p for p in router.peers[a.id].producers.values() if p.kind == "video")
    consumer = next(c for c in router.peers[b.id].consumers.values() if c.kind == "video")
    assert consumer.stream is not None
    receiver = next(t.receiver for t in b.pc.getTransceivers() if t.mid == consumer.mid)

    # a burst of 20 PLIs over ~0.4 s from the subscriber ...
    await wait_for(lambda: time.monotonic() - requests[-1] > 0.6, what="throttle window over")
    before_sent, before_req = producer.plis_sent, len(requests)
    burst_start = time.monotonic()
    for _ in range(20):
        await receiver._send_rtcp_pli(consumer.stream.ssrc)
        await asyncio.sleep(0.02)  # pacing the burst, not waiting for a result
    burst = time.monotonic() - burst_start
    await wait_for(lambda: consumer.keyframe_requests >= 20, what="PLIs reach the SFU")
    # ... reaches the publisher as one immediate PLI plus coalesced ones, one per 0.5 s
    await wait_for(lambda: producer._pli_timer is None, what="deferred PLI flushed")
    sent = producer.plis_sent - before_sent
    assert 1 <= sent <= int(burst / producer.pli_interval) + 2
    await wait_for(lambda: len(requests) - before_req >= sent, what="publisher got the PLIs")
    gaps = [b - a for a, b in zip(requests[before_req:], requests[before_req + 1 :], strict=False)]
    assert all(gap >= producer.pli_interval * 0.8 for gap in gaps)


async def test_late_joiner_decodes_within_one_second(make_client, router: Router) -> None:
    a = await make_client("a", luma=90)
    b = await make_client("b", luma=150)
    await wait_for(lambda: b.frames_from(a, "video") >= 45, timeout=15, what="steady stream")
    requests = count_keyframe_requests(a)
    c = await make_client("c", luma=None, connect=False)
    connected_at: list[float] = []

    def on_state() -> None:
        if c.pc.connectionState == "connected":
            connected_at.append(time.monotonic())

    c.pc.on("connectionstatechange", on_state)

    assert c.peer is not None
    await c.connect(c.peer)
    await wait_for(lambda: c.frames_from(a, "video") >= 1, timeout=10, what="first frame")
    mid = c.mids_from(a, "video")[0]
    assert connected_at
    assert c.first_frame_at[mid] - connected_at[0] < 1.0
    assert requests, "no PLI reached the publisher for the late joiner"
