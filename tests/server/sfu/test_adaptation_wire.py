"""Line adaptation on the wire (issue 16.1): real aiortc peers, one with a narrow downlink.

The narrow downlink is a token bucket in the subscriber's receive path (after SRTP, before
aiortc's receiver): packets beyond 300 kbit/s are lost, as a full queue on a capped line loses
them. The subscriber's own aiortc receiver reports the loss in its RTCP receiver reports; that
is all the SFU learns from. (tests/fault/ does the same with a real `tc tbf` in a network
namespace.)
"""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest

from server.sfu import Router, adaptation
from server.sfu.adaptation import Mode
from tests.synthetic_media import NoiseVideoTrack

from .conftest import Client, wait_for


class Bucket:
    """A token bucket: `rate_bps`, `burst` bytes; counts what passes and what is lost, by SSRC."""

    def __init__(self, rate_bps: float, burst: int) -> None:
        self.rate = rate_bps / 8
        self.burst = burst
        self.tokens = float(burst)
        self.at = time.monotonic()
        self.enabled = True
        self.passed: dict[int, int] = {}
        self.lost: dict[int, int] = {}
        self.bytes: dict[int, int] = {}

    def admit(self, data: bytes) -> bool:
        ssrc = struct.unpack_from("!I", data, 8)[0]
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        size = len(data) + 44
        ok = not self.enabled or self.tokens >= size
        if ok:
            if self.enabled:
                self.tokens -= size
            self.passed[ssrc] = self.passed.get(ssrc, 0) + 1
            self.bytes[ssrc] = self.bytes.get(ssrc, 0) + len(data)
        else:
            self.lost[ssrc] = self.lost.get(ssrc, 0) + 1
        return ok


def narrow(client: Client, bucket: Bucket) -> None:
    dtls = client.pc.getTransceivers()[0].receiver.transport
    original = dtls._handle_rtp_data

    async def capped(data: bytes, arrival_time_ms: int) -> None:
        if bucket.admit(data):
            await original(data, arrival_time_ms)

    dtls._handle_rtp_data = capped  # type: ignore[method-assign]


async def noisy_publisher(make_client: Any, router: Router, name: str) -> Client:
    client: Client = await make_client(name, luma=80, connect=False)
    sender = next(s for s in client.pc.getSenders() if s.track and s.track.kind == "video")
    sender.replaceTrack(NoiseVideoTrack())
    assert client.peer is not None
    await client.connect(client.peer)
    return client


def consumer_of(router: Router, subscriber: Client, publisher: Client, kind: str) -> Any:
    return next(
        c
        for c in router.peers[subscriber.id].consumers.values()
        if c.producer_peer_id == publisher.id and c.kind == kind
    )


@pytest.fixture
def quick_return(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paused video may try to come back after 6 s (not 15 s), and the estimate grows 25 % a
    second (not 8 %), so that these tests see a return within seconds."""
    monkeypatch.setattr(adaptation, "HOLD_BASE_S", 6.0)
    monkeypatch.setattr(adaptation, "GROWTH_PER_S", 1.25)


async def test_narrow_downlink_pauses_video_not_audio(
    make_client: Any, router: Router, quick_return: None
) -> None:
    events: list[tuple[str, str, bool, str | None]] = []
    router.adaptation.on("video", lambda *event: events.append(event))
    a = await noisy_publisher(make_client, router, "a")
    b = await make_client("b", luma=None)
    c = await make_client("c", luma=None)
    a_video_to_b = consumer_of(router, b, a, "video")
    a_video_to_c = consumer_of(router, c, a, "video")
    a_audio_to_c = consumer_of(router, c, a, "audio")
    await wait_for(lambda: a_video_to_c.active and a_audio_to_c.active, what="c receives a")
    await wait_for(lambda: c.frames_from(a, "video") > 10, timeout=15, what="c decodes video")

    bucket = Bucket(300_000, 20_000)
    narrow(c, bucket)
    await wait_for(
        lambda: (c.id, a.id, True, "bandwidth") in events, timeout=15, what="c's video paused"
    )
    sub = router.adaptation._subscribers[c.id]
    assert sub.videos[a_video_to_c.id].mode in (Mode.STILLS, Mode.OFF)
    estimate = router.peers[c.id].downlink.current(time.monotonic())
    print("estimate for c:", estimate, router.adaptation.dump())
    assert estimate is not None
    assert estimate < 600_000
    assert a_audio_to_c.active  # audio keeps flowing
    assert not a_video_to_b.paused
    assert a_video_to_b.active
    assert router.adaptation.dump()["paused_video_streams"] >= 1

    # steady state under the cap: audio arrives, b keeps decoding a's video
    audio_ssrc = a_audio_to_c.stream.ssrc
    before_passed = bucket.passed.get(audio_ssrc, 0)
    before_lost = bucket.lost.get(audio_ssrc, 0)
    b_frames = b.frames_from(a, "video")
    start = time.monotonic()
    await wait_for(lambda: time.monotonic() - start > 2.5, timeout=5, what="2.5 s under the cap")
    passed = bucket.passed.get(audio_ssrc, 0) - before_passed
    lost = bucket.lost.get(audio_ssrc, 0) - before_lost
    assert passed > 80
    assert lost / (passed + lost) < 0.05, (passed, lost)
    assert b.frames_from(a, "video") > b_frames + 30
    # Some video: a still picture (a keyframe now and then, paced) is decoded under the cap.
    frames_paused = c.frames_from(a, "video")
    await wait_for(
        lambda: c.frames_from(a, "video") > frames_paused, timeout=15, what="a still decoded"
    )
    print("c's downlink:", router.adaptation.dump()["downlinks"][c.id])

    # the line comes back: after the hold-off, video resumes at a keyframe
    bucket.enabled = False
    await wait_for(
        lambda: (c.id, a.id, False, None) in events, timeout=25, what="c's video resumed"
    )
    frames = c.frames_from(a, "video")
    await wait_for(
        lambda: c.frames_from(a, "video") > frames + 20, timeout=10, what="c decodes again"
    )


async def test_audio_only_stops_video_and_resumes_at_a_keyframe(
    make_client: Any, router: Router
) -> None:
    events: list[tuple[str, str, bool, str | None]] = []
    router.adaptation.on("video", lambda *event: events.append(event))
    a = await noisy_publisher(make_client, router, "a")
    c = await make_client("c", luma=None)
    video = consumer_of(router, c, a, "video")
    audio = consumer_of(router, c, a, "audio")
    await wait_for(lambda: c.frames_from(a, "video") > 10, timeout=15, what="c decodes video")

    router.adaptation.set_audio_only(c.id, True)
    assert (c.id, a.id, True, "audio_only") in events
    assert video.paused
    sent = video.stream.packets
    audio_sent = audio.stream.packets
    start = time.monotonic()
    await wait_for(lambda: time.monotonic() - start > 2.0, timeout=5, what="2 s audio-only")
    assert video.stream.packets == sent  # not one video packet
    assert audio.stream.packets > audio_sent + 50  # audio flows (50 packets/s)

    producer = video.producer
    plis = producer.plis_sent
    router.adaptation.set_audio_only(c.id, False)
    await wait_for(lambda: not video.paused, timeout=5, what="resumed at the next keyframe")
    assert producer.plis_sent > plis  # asked for it
    assert (c.id, a.id, False, None) in events
    frames = c.frames_from(a, "video")
    await wait_for(lambda: c.frames_from(a, "video") > frames + 20, timeout=10, what="video again")
