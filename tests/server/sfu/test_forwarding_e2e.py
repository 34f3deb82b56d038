"""Real aiortc peers through the SFU: decoded video and audio, per publisher; no decoding."""

from __future__ import annotations

from typing import Any

import aiortc

from server.sfu import Router, aiortc_hooks

from .conftest import Client, wait_for


async def test_two_peers_see_and_hear_each_other(make_client) -> None:
    a: Client = await make_client("a", luma=60)
    b: Client = await make_client("b", luma=180)
    await wait_for(
        lambda: a.frames_from(b, "video") >= 15 and b.frames_from(a, "video") >= 15,
        timeout=15,
        what="decoded video both ways",
    )
    await wait_for(
        lambda: a.frames_from(b, "audio") >= 20 and b.frames_from(a, "audio") >= 20,
        what="decoded audio both ways",
    )
    # the picture is the other publisher's (flat luma survives VP8 within a few steps)
    assert abs(a.lumas[a.mids_from(b, "video")[0]] - 180) <= 6
    assert abs(b.lumas[b.mids_from(a, "video")[0]] - 60) <= 6


async def test_three_peers_each_see_the_two_others(make_client) -> None:
    clients = [
        await make_client("a", luma=50),
        await make_client("b", luma=120),
        await make_client("c", luma=200),
    ]

    def all_flowing() -> bool:
        return all(
            x.frames_from(y, "video") >= 10 and x.frames_from(y, "audio") >= 10
            for x in clients
            for y in clients
            if x is not y
        )

    await wait_for(all_flowing, timeout=20, what="six video and six audio streams decoded")
    for x in clients:
        for y in clients:
            if x is not y:
                assert y.luma is not None
                assert abs(x.lumas[x.mids_from(y, "video")[0]] - y.luma) <= 6


async def test_sfu_never_decodes(make_client, router: Router) -> None:
    a = await make_client("a", luma=80)
    b = await make_client("b", luma=160)
    await wait_for(lambda: b.frames_from(a, "video") >= 10 and a.frames_from(b, "video") >= 10)
    producers = [p for peer in router.peers.values() for p in peer.producers.values()]
    assert len(producers) == 4
    for producer in producers:
        assert producer.packets_received > 0
        # the decoder thread was stopped at start, the jitter buffer never saw a packet...
        assert not aiortc_hooks.decoder_running(producer.receiver)
        assert not aiortc_hooks.jitter_buffer_used(producer.receiver)
        # ...and no frame is ever queued on the remote track (at most its end-of-track marker)
        track: Any = producer.receiver.track
        assert all(item is None for item in list(track._queue._queue))
        # but aiortc's receiver statistics (for RTCP RR to the publisher) are fed
        counts = aiortc_hooks.receiver_packet_counts(producer.receiver)
        assert sum(counts.values()) >= producer.packets_received - 5


def test_pinned_aiortc_hooks_still_match() -> None:
    """Fails loudly when aiortc/aioice change under server/sfu/aiortc_hooks.py."""
    assert aiortc.__version__ == "1.16.0"
    assert aiortc_hooks.verify_hooks() == []


async def test_private_attributes_present_on_live_connections(make_client, router) -> None:
    a = await make_client("a", luma=80)
    await make_client("b", luma=160)
    peer = router.peers[a.id]
    await wait_for(lambda: peer.send_path.ready and len(peer.consumers) == 2)
    assert aiortc_hooks.verify_live_objects(peer._pc) == []
