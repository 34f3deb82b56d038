"""Routing control: rooms, audience, mute, peers leaving, glare; checked on the wire."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from server.ids import ParticipantId, new_id
from server.sfu import GlareError, NegotiationError, Peer, Router, RouterClosedError
from signaling.reasons import CloseReason

from .conftest import Client, LumaVideoTrack, wait_for


class WireCounter:
    """Counts decrypted RTP packets arriving at a client, per SSRC (before its receivers)."""

    def __init__(self, client: Client) -> None:
        self.per_ssrc: dict[int, int] = {}
        dtls = client.pc.getTransceivers()[0].receiver.transport
        original = dtls._handle_rtp_data

        async def count(data: bytes, arrival_time_ms: int) -> None:
            ssrc = struct.unpack_from("!I", data, 8)[0]
            self.per_ssrc[ssrc] = self.per_ssrc.get(ssrc, 0) + 1
            await original(data, arrival_time_ms)

        dtls._handle_rtp_data = count  # type: ignore[method-assign]

    @property
    def total(self) -> int:
        return sum(self.per_ssrc.values())


def consumers_between(router: Router, publisher: Client, subscriber: Client) -> list[Any]:
    peer = router.peers.get(subscriber.id)
    if peer is None:
        return []
    return [c for c in peer.consumers.values() if c.producer_peer_id == publisher.id]


async def test_rooms_isolate_media_and_room_changes_renegotiate(make_client, router) -> None:
    a = await make_client("a", luma=70)
    b = await make_client("b", luma=140)
    w = await make_client("witness", luma=210, room="witness-room")
    wire_w = WireCounter(w)
    wire_a = WireCounter(a)
    await wait_for(lambda: a.frames_from(b, "video") >= 20, what="a and b talking")
    # the witness's room has nobody else: no consumer, no packet on its wire, none from it
    assert router.peers[w.id].consumers == {}
    assert consumers_between(router, w, a) == []
    assert consumers_between(router, w, b) == []
    assert wire_w.total == 0
    w_ssrcs = {p.media_ssrc for p in router.peers[w.id].producers.values()}
    assert not w_ssrcs & set(wire_a.per_ssrc)

    # admitted to the main room: renegotiation, then w sees a and b, a sees w
    answers = (a.answers, w.answers)
    router.set_room(w.id, "main")
    await wait_for(
        lambda: w.frames_from(a, "video") >= 10 and a.frames_from(w, "video") >= 10,
        timeout=15,
        what="witness admitted",
    )
    assert a.answers > answers[0]
    assert w.answers > answers[1]

    # sent out again: consumers close with ROOM_CHANGED and the packets stop on the wire
    closed: list[CloseReason] = []
    streams = []
    for consumer in router.peers[w.id].consumers.values():
        consumer.on("close", closed.append)
        assert consumer.stream is not None
        streams.append(consumer.stream)

    def sent_to_w() -> int:
        return sum(s.packets + s.retransmitted for s in streams)

    router.set_room(w.id, "caucus-1")
    assert closed
    assert set(closed) == {CloseReason.ROOM_CHANGED}
    assert router.peers[w.id].consumers == {}
    sent = sent_to_w()
    await wait_for(lambda: router.peers[w.id].signaling_state == "stable", what="renegotiated")
    frames_ab = a.frames_from(b, "video")
    await wait_for(lambda: a.frames_from(b, "video") >= frames_ab + 30, what="time passing")
    # nothing was sent after the close; what reached the wire since is only what was in flight
    assert sent_to_w() == sent
    assert wire_w.total <= sent
    # the inactive m-lines are reused, not multiplied, when w comes back
    slots = router.peers[w.id].dump()["slots"]
    router.set_room(w.id, "main")
    await wait_for(lambda: w.frames_from(b, "video") >= 5, timeout=15, what="witness back")
    assert router.peers[w.id].dump()["slots"] == slots


async def test_audience_restricts_within_a_room(make_client, router) -> None:
    judge = await make_client("judge", luma=40)
    party = await make_client("party", luma=120)
    other = await make_client("other", luma=220)
    router.set_audience(party.id, {judge.id})
    assert consumers_between(router, party, other) == []
    await wait_for(lambda: judge.frames_from(party, "video") >= 10, what="judge sees party")
    assert other.frames_from(party, "video") == 0
    assert other.frames_from(judge, "video") > 0 or await wait_for(
        lambda: other.frames_from(judge, "video") > 0
    )
    router.set_audience(party.id, None)
    await wait_for(lambda: other.frames_from(party, "video") >= 5, what="audience lifted")


async def test_mute_pauses_forwarding_without_renegotiation(make_client, router) -> None:
    a = await make_client("a", luma=90)
    b = await make_client("b", luma=160)
    await wait_for(lambda: b.frames_from(a, "video") >= 10)
    offers = router.peers[b.id].offers_sent
    consumer = next(c for c in consumers_between(router, a, b) if c.kind == "video")
    router.set_paused(a.id, "video", True)
    assert not consumer.active
    sent = consumer.stream.packets
    audio = b.frames_from(a, "audio")
    await wait_for(lambda: b.frames_from(a, "audio") >= audio + 25, what="audio continues")
    assert consumer.stream.packets == sent
    producer = consumer.producer
    plis = producer.plis_sent
    router.set_paused(a.id, "video", False)
    frames = b.frames_from(a, "video")
    await wait_for(lambda: b.frames_from(a, "video") >= frames + 10, what="video resumes")
    await wait_for(lambda: producer.plis_sent > plis, what="resume asks for a keyframe")
    assert router.peers[b.id].offers_sent == offers


async def test_peer_leaving_closes_everywhere_and_others_renegotiate(make_client, router) -> None:
    a = await make_client("a", luma=60)
    b = await make_client("b", luma=130)
    c = await make_client("c", luma=200)
    await wait_for(lambda: a.frames_from(c, "video") >= 5 and b.frames_from(c, "video") >= 5)
    reasons: list[CloseReason] = []
    for x in (a, b):
        for consumer in consumers_between(router, c, x):
            consumer.on("close", reasons.append)
    left: list[tuple[ParticipantId, CloseReason]] = []

    def on_peerclose(pid: ParticipantId, reason: CloseReason) -> None:
        left.append((pid, reason))

    router.on("peerclose", on_peerclose)
    answers = (a.answers, b.answers)
    await c.close()
    router.remove_peer(c.id, CloseReason.CLIENT_LEFT)
    assert left == [(c.id, CloseReason.CLIENT_LEFT)]
    assert reasons == [CloseReason.PRODUCER_CLOSED] * 4
    assert consumers_between(router, c, a) == []
    assert consumers_between(router, c, b) == []
    await wait_for(
        lambda: a.answers > answers[0] and b.answers > answers[1],
        what="remaining peers renegotiated",
    )
    for x in (a, b):
        peer = router.peers[x.id]
        await wait_for(lambda peer=peer: bool(peer.signaling_state == "stable"))  # type: ignore[misc]
        inactive = [t for t in peer._pc.getTransceivers() if t.direction == "inactive"]
        assert len(inactive) == 2
    fa, fb = a.frames_from(b, "video"), b.frames_from(a, "video")
    await wait_for(
        lambda: a.frames_from(b, "video") >= fa + 20 and b.frames_from(a, "video") >= fb + 20
    )


async def _silent_client(router: Router, **attrs: Any) -> tuple[RTCPeerConnection, Peer]:
    """A bare aiortc client that offers once and then answers nothing by itself; `attrs` are
    set on its peer before the first offer."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(LumaVideoTrack(100))
    peer = router.add_peer(ParticipantId(new_id()))
    for name, value in attrs.items():
        setattr(peer, name, value)
    await pc.setLocalDescription(await pc.createOffer())
    answer = await peer.handle_offer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc, peer


async def test_glare_server_offer_outstanding_rejects_client_offer(router: Router) -> None:
    pc, peer = await _silent_client(router)
    other: Client | None = None
    offers: list[str] = []
    peer.on("offer", offers.append)
    try:
        other = Client("other", luma=200)
        await other.connect(router.add_peer(other.id))
        await wait_for(lambda: bool(offers), what="server offer to the first peer")
        assert peer.signaling_state == "have-local-offer"
        with pytest.raises(GlareError):
            await peer.handle_offer(pc.localDescription.sdp)
        offers.clear()
        with pytest.raises(NegotiationError):
            await peer.handle_answer("v=0\r\nnot sdp")
        # the refused answer leaves the offer outstanding, and the client is told so again
        await wait_for(lambda: bool(offers), what="the server offer sent again")
        assert peer.signaling_state == "have-local-offer"
        # the client yields: applies the server offer, answers; then its own offer is accepted
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offers[-1], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await peer.handle_answer(pc.localDescription.sdp)
        assert peer.signaling_state == "stable"
        await pc.setLocalDescription(await pc.createOffer())
        answer = await peer.handle_offer(pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        assert pc.signalingState == "stable"
    finally:
        await pc.close()
        if other is not None:
            await other.close()


async def test_router_close_is_idempotent_and_cascades(make_client, router) -> None:
    a = await make_client("a", luma=60)
    b = await make_client("b", luma=130)
    await wait_for(lambda: b.frames_from(a, "video") >= 3)
    peers = list(router.peers.values())
    producers = [p for peer in peers for p in peer.producers.values()]
    consumers = [c for peer in peers for c in peer.consumers.values()]
    router.close(CloseReason.JUDGE_ENDED)
    router.close(CloseReason.SERVER_SHUTDOWN)
    await router.wait_closed()
    assert router.close_reason == CloseReason.JUDGE_ENDED
    assert all(p.closed and p.close_reason == CloseReason.JUDGE_ENDED for p in peers)
    assert all(p.closed for p in producers)
    assert all(c.closed for c in consumers)
    with pytest.raises(RouterClosedError):
        router.add_peer(a.id)


async def test_a_server_offer_left_unanswered_closes_the_peer(router: Router) -> None:
    """A client that stops answering is not left cut off from new media for ever."""
    pc, peer = await _silent_client(router, answer_timeout_s=0.5)
    other: Client | None = None
    closed: list[CloseReason] = []
    peer.on("close", closed.append)
    try:
        other = Client("other", luma=200)
        other_peer = router.add_peer(other.id)
        await other.connect(other_peer)
        await wait_for(lambda: peer.offers_sent > 0, what="server offer to the first peer")
        await wait_for(lambda: bool(closed), what="the unanswering peer closed", timeout=10)
        assert closed == [CloseReason.ICE_FAILED]
        # the client that answers its offers stays
        await wait_for(lambda: other.answers >= 1, what="the other client's answer")
        assert not other_peer.closed
    finally:
        await pc.close()
        if other is not None:
            await other.close()
