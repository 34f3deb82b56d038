"""Private rooms hold on the wire against a subscriber that asks for what it was never sent.

The attack (issue 9, found by an independent client): after a caucus, the subscriber NACKs the
sequence numbers it did not receive, hoping the SFU answers from the publisher's packet history
(which holds ~20 s of Opus, ~8 s of video). Here a real aiortc subscriber does exactly that, on
purpose and over the whole history window, for every stream it sees; the publisher sends noise
audio (every Opus packet differs) and video, and a tap on the SFU marks every packet that was
not forwarded to the subscriber at the moment it arrived. No such payload may ever reach the
subscriber's wire, as media, as RTX or as a plain retransmission. A canary (a packet that was
sent in the current stretch) is NACKed last: its retransmission proves the NACK was processed,
and that retransmission itself still works.
"""

from __future__ import annotations

import itertools
import random
import re
import struct
import time

import av
import pylibsrtp
import pytest
from aiortc import AudioStreamTrack

from server.ids import ParticipantId
from server.media import alone
from server.sfu import Producer, Router
from server.sfu.rtp import header_length

from .conftest import Client, wait_for


class NoiseAudioTrack(AudioStreamTrack):
    """AudioStreamTrack's paced 20 ms frames filled with seeded noise: no two Opus packets alike."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._rng = random.Random(seed)

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        assert isinstance(frame, av.AudioFrame)
        for plane in frame.planes:
            plane.update(self._rng.randbytes(plane.buffer_size))
        return frame


class _LossySession:
    """A client's SRTP receive session that drops the packets its Wire was told to lose."""

    def __init__(self, session: pylibsrtp.Session, wire: Wire) -> None:
        self._session = session
        self._wire = wire

    def unprotect(self, data: bytes) -> bytes:
        ssrc = struct.unpack_from("!I", data, 8)[0]
        if ssrc in self._wire._to_lose:
            self._wire._to_lose.discard(ssrc)
            self._wire.lost[ssrc] = struct.unpack_from("!H", data, 2)[0]
            raise pylibsrtp.Error("lost on purpose")
        result: bytes = self._session.unprotect(data)
        return result

    def unprotect_rtcp(self, data: bytes) -> bytes:
        result: bytes = self._session.unprotect_rtcp(data)
        return result


class Wire:
    """What reaches a client from the SFU, seen by the attacker itself.

    Every SRTP packet is looked at before decryption (its header is in clear): `lose_next()`
    drops the next packet of a stream there, as a lossy line would, so that the client has
    really missed it (SRTP's replay check refuses a copy of a packet it already has). Every
    decrypted packet is recorded before the client's receivers see it.
    """

    def __init__(self, client: Client) -> None:
        self.packets: list[tuple[int, int, bytes]] = []  # ssrc, seq, payload
        self.lost: dict[int, int] = {}  # ssrc -> seq dropped on purpose
        self._to_lose: set[int] = set()
        self._dtls = client.pc.getTransceivers()[0].receiver.transport
        original = self._dtls._handle_rtp_data

        async def capture(data: bytes, arrival_time_ms: int) -> None:
            ssrc = struct.unpack_from("!I", data, 8)[0]
            seq = struct.unpack_from("!H", data, 2)[0]
            self.packets.append((ssrc, seq, data[header_length(data) :]))
            await original(data, arrival_time_ms)

        self._dtls._handle_rtp_data = capture  # type: ignore[method-assign]

    def lose_next(self, ssrcs: set[int]) -> None:
        """Drop the next packet of each stream before decryption (the SRTP keys exist once
        DTLS is up, so the session is wrapped here, not at construction)."""
        session = self._dtls._rx_srtp
        if not isinstance(session, _LossySession):
            self._dtls._rx_srtp = _LossySession(session, self)  # type: ignore[assignment]
        self._to_lose |= ssrcs

    def payloads(self) -> set[bytes]:
        """Payloads as sent, and as carried in RTX (the original sequence number first)."""
        found: set[bytes] = set()
        for _, _, payload in self.packets:
            found.add(payload)
            found.add(payload[2:])
        return found

    def repaired(self, ssrc: int, seq: int, rtx_ssrc: int | None) -> bool:
        """Whether packet `seq` of stream `ssrc` arrived (again), plainly or as RTX."""
        osn = struct.pack("!H", seq)
        return any(
            (s == ssrc and q == seq) or (s == rtx_ssrc and p[:2] == osn) for s, q, p in self.packets
        )


class Unsent:
    """A tap on a producer: the payloads that were not forwarded to `subscriber` on arrival."""

    def __init__(self, producer: Producer, subscriber: ParticipantId) -> None:
        self.producer = producer
        self.subscriber = subscriber
        self.payloads: set[bytes] = set()
        producer.add_tap(self)

    def on_rtp(self, data: bytes) -> None:
        # Taps run after the packet was forwarded (or not) to the active consumers.
        if not any(
            c.peer_id == self.subscriber and c.active for c in self.producer.consumers.values()
        ):
            self.payloads.add(data[header_length(data) :])

    def on_sender_report(self, rtp_timestamp: int, ntp_timestamp: int) -> None:
        return None


async def noisy_client(make_client, name: str, luma: int, room: str = "main") -> Client:
    client: Client = await make_client(name, luma=luma, audio=False, room=room, connect=False)
    client.audio_track = NoiseAudioTrack(seed=luma)
    client.pc.addTrack(client.audio_track)
    assert client.peer is not None
    await client.connect(client.peer)
    return client


def rtx_of(client: Client) -> dict[int, int]:
    """Media SSRC -> RTX SSRC, from the FID groups of the SFU's last offer."""
    sdp = client.pc.remoteDescription.sdp
    return {int(m): int(r) for m, r in re.findall(r"a=ssrc-group:FID (\d+) (\d+)", sdp)}


async def nack_everything(client: Client, wire: Wire, *, window: int = 3000) -> None:
    """NACK the last `window` sequence numbers of every stream, then a canary, and wait until
    every canary is repaired (all that was NACKed before it has been answered by then).

    The canary is a packet of the stream's current stretch that the line lost: its repair also
    proves that retransmission still works for what the client was allowed to receive.
    """
    rtx = rtx_of(client)
    streams = {ssrc for ssrc, _, _ in wire.packets} - set(rtx.values())
    assert streams, "no stream to attack"
    wire.lose_next(streams)
    await wait_for(lambda: set(wire.lost) >= streams, what="a packet of each stream lost")
    receiver = client.pc.getTransceivers()[0].receiver
    for ssrc in streams:
        newest = wire.lost[ssrc]
        lost = [(newest - back) & 0xFFFF for back in range(window, 0, -1)]
        # aiortc packs a NACK list in ascending runs: one NACK per run that does not wrap.
        runs: list[list[int]] = [[]]
        for seq in lost:
            if runs[-1] and seq < runs[-1][-1]:
                runs.append([])
            runs[-1].append(seq)
        for run in runs:
            await receiver._send_rtcp_nack(ssrc, run)
    for ssrc in streams:
        await receiver._send_rtcp_nack(ssrc, [wire.lost[ssrc]])
    await wait_for(
        lambda: all(wire.repaired(s, wire.lost[s], rtx.get(s)) for s in streams),
        timeout=10,
        what="the canaries repaired",
    )


def producers_of(router: Router, client: Client) -> list[Producer]:
    return list(router.peers[client.id].producers.values())


def change_picture(publisher: Client, luma: int) -> None:
    assert publisher.video_track is not None
    publisher.video_track.set_luma(luma)


async def sees_picture(subscriber: Client, publisher: Client, luma: int, since: float) -> float:
    """Seconds from `since` until the subscriber decodes a frame of `publisher` showing `luma`
    (a picture made after the interruption: frames still in its jitter buffer do not count)."""

    def shown() -> bool:
        return any(
            abs(subscriber.lumas.get(mid, -100) - luma) <= 8
            for mid in subscriber.mids_from(publisher, "video")
        )

    await wait_for(shown, timeout=15, what=f"a new picture (luma {luma}) decoded")
    return time.monotonic() - since


ROOMS = {
    "caucus": lambda p: "caucus:甲方",
    "consultation": lambda p: f"consult:{p}",
    "waiting room": alone,
}


@pytest.mark.parametrize("room", list(ROOMS))
@pytest.mark.parametrize("attacker", ["the one who stayed", "the one who left"])
async def test_nothing_from_a_private_room_reaches_the_other_room_by_nack(
    make_client, router: Router, room: str, attacker: str
) -> None:
    stayer = await noisy_client(make_client, "stayer", 80)
    mover = await noisy_client(make_client, "mover", 160)
    subscriber, publisher = (stayer, mover) if attacker == "the one who stayed" else (mover, stayer)
    wire = Wire(subscriber)
    await wait_for(
        lambda: (
            subscriber.frames_from(publisher, "video") >= 5
            and subscriber.frames_from(publisher, "audio") >= 10
        ),
        what="both in the main room",
    )
    taps = [Unsent(p, subscriber.id) for p in producers_of(router, publisher)]
    audio_tap = next(t for t in taps if t.producer.kind == "audio")
    video_tap = next(t for t in taps if t.producer.kind == "video")

    router.set_room(mover.id, ROOMS[room](mover.id))
    change_picture(publisher, 30)
    # what is said apart: 2 s of audio, a keyframe and more of video
    await wait_for(
        lambda: len(audio_tap.payloads) >= 100 and len(video_tap.payloads) >= 30,
        timeout=15,
        what="time spent apart",
    )
    moved_back = time.monotonic()
    router.set_room(mover.id, "main")
    took = await sees_picture(subscriber, publisher, 30, moved_back)
    # the station client is an aiortc receiver: its picture must come back at once (issue 9.2)
    assert took < 1.0, f"video resumed only after {took:.2f} s"
    await wait_for(
        lambda: subscriber.frames_from(publisher, "audio") > 0, what="audio flowing again"
    )

    await nack_everything(subscriber, wire)
    secret = audio_tap.payloads | video_tap.payloads
    leaked = secret & wire.payloads()
    assert not leaked, f"{len(leaked)} of {len(secret)} packets sent apart reached the wire"


async def test_an_admitted_participant_gets_nothing_from_before_admission(
    make_client, router: Router
) -> None:
    speaker = await noisy_client(make_client, "speaker", 90)
    newcomer = await noisy_client(make_client, "newcomer", 200, room="alone:newcomer")
    wire = Wire(newcomer)
    taps = [Unsent(p, newcomer.id) for p in producers_of(router, speaker)]
    await wait_for(
        lambda: all(len(t.payloads) >= 60 for t in taps), timeout=15, what="the hearing going on"
    )
    admitted = time.monotonic()
    router.set_room(newcomer.id, "main")
    assert await sees_picture(newcomer, speaker, 90, admitted) < 1.0
    await nack_everything(newcomer, wire)
    leaked = set().union(*(t.payloads for t in taps)) & wire.payloads()
    assert not leaked, f"{len(leaked)} packets from before admission reached the newcomer"


async def test_what_a_muted_participant_says_is_never_resent(make_client, router: Router) -> None:
    judge = await noisy_client(make_client, "judge", 60)
    party = await noisy_client(make_client, "party", 120)
    wire = Wire(judge)
    await wait_for(lambda: judge.frames_from(party, "audio") >= 10, what="party heard")
    taps = [Unsent(p, judge.id) for p in producers_of(router, party)]
    router.set_paused(party.id, None, True)
    change_picture(party, 230)
    await wait_for(lambda: all(len(t.payloads) >= 40 for t in taps), timeout=15, what="time muted")
    router.set_paused(party.id, None, False)
    await sees_picture(judge, party, 230, time.monotonic())
    await nack_everything(judge, wire)
    leaked = set().union(*(t.payloads for t in taps)) & wire.payloads()
    assert not leaked, f"{len(leaked)} packets said while muted reached the wire"


async def test_no_sequence_gap_across_a_room_change(make_client, router: Router) -> None:
    """The subscriber sees one continuous sequence per stream: nothing invites a NACK."""
    a = await noisy_client(make_client, "a", 70)
    b = await noisy_client(make_client, "b", 140)
    wire = Wire(b)
    await wait_for(lambda: b.frames_from(a, "video") >= 5, what="talking")
    router.set_room(a.id, "caucus:乙方")
    change_picture(a, 20)
    tap = Unsent(next(p for p in producers_of(router, a) if p.kind == "audio"), b.id)
    await wait_for(lambda: len(tap.payloads) >= 50, what="time apart")
    router.set_room(a.id, "main")
    await sees_picture(b, a, 20, time.monotonic())
    await wait_for(lambda: b.frames_from(a, "audio") > 0, what="audio back")
    audio_ssrc = next(
        c.stream.ssrc
        for c in router.peers[b.id].consumers.values()
        if c.kind == "audio" and c.stream is not None
    )
    sent = len(wire.packets)
    await wait_for(lambda: len(wire.packets) > sent + 50, what="more audio")
    seqs = [seq for ssrc, seq, _ in wire.packets if ssrc == audio_ssrc]
    jumps = [((b_ - a_) & 0xFFFF) for a_, b_ in itertools.pairwise(seqs)]
    assert max(jumps) <= 3, f"a sequence gap of {max(jumps)} invites NACKs for the caucus"


async def test_an_aiortc_receiver_sees_the_picture_again_at_once_after_a_long_caucus(
    make_client, router: Router
) -> None:
    """The station client is an aiortc receiver. After a caucus longer than its jitter buffer
    (128 video packets), its picture must come back within a second of the return."""
    station = await noisy_client(make_client, "station", 100)
    party = await noisy_client(make_client, "party", 180)
    await wait_for(lambda: station.frames_from(party, "video") >= 5, what="talking")
    tap = Unsent(next(p for p in producers_of(router, party) if p.kind == "video"), station.id)
    router.set_room(party.id, "caucus:甲方")
    change_picture(party, 40)
    await wait_for(lambda: len(tap.payloads) >= 200, timeout=20, what="a long caucus")
    back = time.monotonic()
    router.set_room(party.id, "main")
    took = await sees_picture(station, party, 40, back)
    assert took < 1.0, f"the picture came back only after {took:.2f} s"
