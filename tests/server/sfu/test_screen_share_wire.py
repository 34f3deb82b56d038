"""Screen sharing on the wire (issue 13.4): the SFU forwards a third track only when permitted.

A real aiortc publisher first sends its camera and microphone, then adds a third track (a
second video, a picture of another luma) and re-offers *without asking*. The subscriber must
receive nothing of it: no consumer, no packet of its SSRC, no decoded frame of its luma, and
no "producer" event (so the recorder never sees it). Once the rules permit that m-line as the
publisher's screen, it is forwarded on its own m-line and msid stream `<id>.screen`; when the
permission is withdrawn, it stops again.
"""

from __future__ import annotations

import asyncio
import struct

from aiortc import RTCSessionDescription

from server.sfu import Producer, Router

from .conftest import Client, LumaVideoTrack, wait_for

SCREEN_LUMA = 220


async def add_track_without_asking(client: Client, luma: int) -> tuple[LumaVideoTrack, str]:
    """The publisher adds a video track and re-offers on its own; returns the track and mid."""
    assert client.peer is not None
    track = LumaVideoTrack(luma)
    async with client._signaling:
        transceiver = client.pc.addTransceiver(track, direction="sendonly")
        await client.pc.setLocalDescription(await client.pc.createOffer())
        answer = await client.peer.handle_offer(client.pc.localDescription.sdp)
        await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    assert transceiver.mid is not None
    return track, str(transceiver.mid)


def ssrcs_arriving(client: Client) -> dict[int, int]:
    """Count decrypted RTP packets per SSRC at `client`, before its receivers."""
    seen: dict[int, int] = {}
    dtls = client.pc.getTransceivers()[0].receiver.transport
    original = dtls._handle_rtp_data

    async def count(data: bytes, arrival_time_ms: int) -> None:
        ssrc = struct.unpack_from("!I", data, 8)[0]
        seen[ssrc] = seen.get(ssrc, 0) + 1
        await original(data, arrival_time_ms)

    dtls._handle_rtp_data = count  # type: ignore[method-assign]
    return seen


async def test_unpermitted_third_track_is_held_then_forwarded_when_permitted(
    make_client, router: Router
) -> None:
    admitted: list[Producer] = []
    closed: list[Producer] = []
    router.on("producer", admitted.append)
    router.on("producerclose", lambda producer, reason: closed.append(producer))
    sharer = await make_client("sharer", luma=60)
    viewer = await make_client("viewer", luma=140)
    await wait_for(lambda: viewer.frames_from(sharer, "video") > 5, what="the sharer's camera")
    arriving = ssrcs_arriving(viewer)

    _track, mid = await add_track_without_asking(sharer, SCREEN_LUMA)
    peer = router.peers[sharer.id]
    await wait_for(lambda: len(peer.producers) == 3, what="the third producer")
    held = next(p for p in peer.producers.values() if p.mid == mid)
    await wait_for(lambda: held.packets_received > 30, what="the held track's packets")
    # Held: drained, but never forwarded, never reported to observers (the recorder).
    assert held.source is None
    assert held.consumers == {}
    assert held not in admitted
    assert held not in router.producers()
    assert viewer.peer is not None
    assert len(viewer.peer.consumers) == 2
    assert held.media_ssrc is not None
    assert all(lum != SCREEN_LUMA for lum in viewer.lumas.values())
    forwarded_ssrcs = {c.stream.src_ssrc for c in held.consumers.values() if c.stream}
    assert forwarded_ssrcs == set()
    # What reaches the viewer comes only from consumers of the camera and microphone.
    allowed = {c.stream.ssrc for c in viewer.peer.consumers.values() if c.stream} | {0}
    assert set(arriving) <= allowed | {
        c.stream.rtx_ssrc for c in viewer.peer.consumers.values() if c.stream
    }

    # Permitted: forwarded as the sharer's screen on a new m-line of its own.
    router.set_screen(sharer.id, mid)
    assert held.source == "screen"
    assert held in admitted
    await wait_for(
        lambda: any(lum == SCREEN_LUMA for lum in viewer.lumas.values()),
        what="the viewer decoding the shared screen",
    )
    screen_consumer = next(c for c in viewer.peer.consumers.values() if c.producer is held)
    receiver_mid = str(screen_consumer.mid)
    remote_sdp = viewer.pc.remoteDescription.sdp
    section = remote_sdp.split(f"a=mid:{receiver_mid}\r\n")[1].split("m=")[0]
    assert f"a=msid:{sharer.id}.screen " in section
    assert viewer.lumas.get(receiver_mid) == SCREEN_LUMA
    camera_mids = viewer.mids_from(sharer, "video")
    assert len(camera_mids) == 2  # camera and screen, on separate m-lines

    # Withdrawn: the screen's consumer closes and no more of its frames arrive.
    router.set_screen(sharer.id, None)
    assert held.source is None
    assert held in closed
    assert held.consumers == {}
    await wait_for(lambda: viewer.peer is not None and screen_consumer.closed, what="close")
    frames = viewer.frames.get(receiver_mid, 0)
    await asyncio.sleep(0.5)  # a stretch in which nothing may arrive (not waiting on an outcome)
    assert viewer.frames.get(receiver_mid, 0) <= frames + 1
    assert viewer.frames_from(sharer, "video") > 0  # the camera still flows


async def test_screen_permission_for_a_mid_before_the_offer(make_client, router: Router) -> None:
    """The rules may permit the mid before the offer that adds it arrives (either order)."""
    sharer = await make_client("sharer", luma=60)
    viewer = await make_client("viewer", luma=140)
    await wait_for(lambda: viewer.frames_from(sharer, "video") > 0, what="the camera")
    # aiortc numbers m-lines 0, 1, ... in order: the next one is the count so far.
    await wait_for(lambda: len(sharer.pc.getTransceivers()) == 4, what="the viewer's m-lines")
    router.set_screen(sharer.id, "4")
    _track, mid = await add_track_without_asking(sharer, SCREEN_LUMA)
    assert mid == "4"
    await wait_for(
        lambda: any(lum == SCREEN_LUMA for lum in viewer.lumas.values()),
        what="the viewer decoding the shared screen",
    )
