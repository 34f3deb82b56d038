"""The line adaptation's estimator and decider, fed synthetic feedback (issue 16.1)."""

from __future__ import annotations

import struct
from typing import Any

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    pack_remb_fci,
)

from server.sfu.adaptation import (
    FLOOR_BPS,
    HOLD_BASE_S,
    PROBE_HOLD_BASE_S,
    REASON_AUDIO_ONLY,
    REASON_BANDWIDTH,
    STILL_SEQ_SKIP,
    Adaptation,
    DownlinkEstimator,
    Mode,
    VideoState,
    decide,
    publisher_target,
    stills_floor,
)
from server.sfu.forwarding import OutputStream, SendPath
from server.sfu.rtp import is_vp8_keyframe_start


def rr(ssrc: int, fraction_lost: float, jitter: int = 0) -> RtcpRrPacket:
    block = RtcpReceiverInfo(
        ssrc=ssrc,
        fraction_lost=int(fraction_lost * 256),
        packets_lost=0,
        highest_sequence=0,
        jitter=jitter,
        lsr=0,
        dlsr=0,
    )
    return RtcpRrPacket(ssrc=1, reports=[block])


def test_unconstrained_line_has_no_estimate() -> None:
    est = DownlinkEstimator()
    for t in range(10):
        est.on_rtcp(rr(5, 0.0), {5: 90000}, t)
        assert est.update(1_000_000, t) is None


def test_heavy_loss_finds_a_hard_cap_in_one_report() -> None:
    est = DownlinkEstimator()
    # 1.1 Mbit/s sent into a 300 kbit/s line: ~73 % lost
    est.on_rtcp(rr(5, 0.73), {5: 90000}, 1.0)
    estimate = est.update(1_100_000, 1.0)
    assert estimate is not None
    assert 250_000 < estimate < 350_000


def test_moderate_loss_holds_and_low_loss_grows() -> None:
    est = DownlinkEstimator()
    est.on_rtcp(rr(5, 0.5), {5: 90000}, 0.0)
    start = est.update(600_000, 0.0)
    assert start == 300_000
    est.on_rtcp(rr(5, 0.05), {5: 90000}, 1.0)
    assert est.update(300_000, 1.0) == start  # between 2 % and 10 %: hold
    est.on_rtcp(rr(5, 0.0), {5: 90000}, 2.0)
    grown = est.update(300_000, 2.0)
    assert grown is not None
    assert 1.07 * start < grown < 1.09 * start


def test_jitter_holds_growth() -> None:
    est = DownlinkEstimator()
    est.on_rtcp(rr(5, 0.5), {5: 90000}, 0.0)
    start = est.update(600_000, 0.0)
    est.on_rtcp(rr(5, 0.0, jitter=90 * 100), {5: 90000}, 1.0)  # 100 ms of jitter
    assert est.update(300_000, 1.0) == start
    assert est.jitter_ms == 100.0


def test_report_about_another_stream_is_ignored() -> None:
    est = DownlinkEstimator()
    est.on_rtcp(rr(6, 0.9), {5: 90000}, 0.0)
    assert est.update(1_000_000, 0.0) is None


def test_remb_caps_the_estimate_while_fresh() -> None:
    est = DownlinkEstimator()
    remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(400_000, [5]))
    est.on_rtcp(remb, {5: 90000}, 0.0)
    assert est.update(100_000, 0.0) == 400_000
    assert est.update(100_000, 10.0) is None  # stale after 5 s


def streams(**needs: float) -> dict[str, VideoState]:
    return {k: VideoState(need_bps=v) for k, v in needs.items()}


def test_audio_first_then_video_that_fits() -> None:
    videos = streams(a=500_000, b=200_000)
    # 300 kbit/s: 255 planned, 100 for audio, 155 left: no stream fits, stills for both
    modes = decide(300_000, 100_000, videos, 0.0)
    assert modes == {"a": Mode.STILLS, "b": Mode.STILLS}
    # 500 kbit/s: 425 - 100 = 325: b fits, a gets stills
    assert decide(500_000, 100_000, streams(a=500_000, b=200_000), 0.0) == {
        "a": Mode.STILLS,
        "b": Mode.FULL,
    }
    # nothing left at all: off
    assert decide(100_000, 90_000, streams(a=500_000), 0.0) == {"a": Mode.OFF}


def test_return_needs_margin_and_hold_off_that_doubles_on_failure() -> None:
    s = VideoState(need_bps=200_000)
    s.set_mode(Mode.STILLS, 0.0)
    assert s.hold_until == HOLD_BASE_S
    videos = {"a": s}
    # room for it, but within the hold-off
    assert decide(1_000_000, 50_000, videos, 5.0) == {"a": Mode.STILLS}
    # after the hold-off, it fits only with 25 % headroom
    assert decide(300_000, 50_000, videos, 20.0) == {"a": Mode.STILLS}  # 205 < 250
    assert decide(400_000, 50_000, videos, 20.0) == {"a": Mode.FULL}  # 290 >= 250
    s.set_mode(Mode.FULL, 20.0)
    s.set_mode(Mode.STILLS, 23.0)  # the return failed within 10 s
    assert s.hold_s == 2 * HOLD_BASE_S
    assert s.hold_until == 23.0 + 2 * HOLD_BASE_S
    # a full stream stays while it fits, without the margin
    s2 = VideoState(need_bps=200_000)
    assert decide(300_000, 50_000, {"a": s2}, 0.0) == {"a": Mode.FULL}  # 205 >= 200


def test_unconstrained_resumes_after_hold() -> None:
    s = VideoState(need_bps=200_000)
    s.set_mode(Mode.OFF, 0.0)
    assert decide(None, 0.0, {"a": s}, 1.0) == {"a": Mode.OFF}
    assert decide(None, 0.0, {"a": s}, HOLD_BASE_S) == {"a": Mode.FULL}


def test_publisher_target_bounded_below() -> None:
    assert publisher_target([]) is None
    assert publisher_target([50_000]) is None  # one very weak subscriber: not followed
    assert publisher_target([50_000, 400_000, 900_000]) == 400_000
    assert publisher_target([FLOOR_BPS]) == FLOOR_BPS


def vp8_packet(descriptor: bytes, first_payload_byte: int) -> bytes:
    header = bytes([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9])
    return header + descriptor + bytes([first_payload_byte])


def test_vp8_keyframe_detection() -> None:
    assert is_vp8_keyframe_start(vp8_packet(b"\x10", 0x00))  # S=1, PID 0, P=0
    assert not is_vp8_keyframe_start(vp8_packet(b"\x10", 0x01))  # interframe
    assert not is_vp8_keyframe_start(vp8_packet(b"\x00", 0x00))  # not a frame start
    # X with I (15-bit picture id), L, T: 1 + 1 + 2 + 1 + 1 descriptor bytes
    assert is_vp8_keyframe_start(vp8_packet(b"\x90\xe0\x80\x01\x00\x00", 0x00))
    assert not is_vp8_keyframe_start(vp8_packet(b"\x90\xe0\x80\x01\x00\x00", 0x01))
    assert not is_vp8_keyframe_start(b"\x80\x60")


def capped_low(est: DownlinkEstimator) -> float:
    """A cut to ~70 kbit/s, as a 300 kbit/s line leaves the estimate once video stops."""
    est.on_rtcp(rr(5, 0.5), {5: 90000}, 0.0)
    start = est.update(140_000, 0.0)
    assert start == 70_000
    return start


def test_clean_report_lifts_a_low_estimate_to_the_stills_floor() -> None:
    est = DownlinkEstimator()
    capped_low(est)
    floor = stills_floor(100_000, [VideoState(mode=Mode.OFF)], audio_only=False)
    assert floor is not None
    # audio (100) plus stills (48) within 85 % of the estimate
    assert decide(floor, 100_000, {"a": VideoState(need_bps=500_000, mode=Mode.OFF)}, 0.0) == {
        "a": Mode.STILLS
    }
    est.on_rtcp(rr(5, 0.0), {5: 90000}, 1.0)
    assert est.update(100_000, 1.0, floor) == floor
    # then it grows as usual from there
    est.on_rtcp(rr(5, 0.0), {5: 90000}, 2.0)
    grown = est.update(150_000, 2.0, floor)
    assert grown is not None
    assert 1.07 * floor < grown < 1.09 * floor


def test_no_floor_while_all_video_is_full_or_audio_only() -> None:
    assert stills_floor(100_000, [VideoState()], audio_only=False) is None
    assert stills_floor(100_000, [VideoState(mode=Mode.STILLS)], audio_only=True) is None
    assert stills_floor(100_000, [], audio_only=False) is None


def test_failed_probe_waits_a_hold_off_that_doubles() -> None:
    est = DownlinkEstimator()
    capped_low(est)
    floor = 180_000.0
    est.on_rtcp(rr(5, 0.0), {5: 90000}, 2.0)
    assert est.update(100_000, 2.0, floor) == floor
    # the stills overran the line: a cut within 10 s of the probe
    est.on_rtcp(rr(5, 0.3), {5: 90000}, 4.0)
    cut = est.update(150_000, 4.0, floor)
    assert cut is not None
    assert cut < floor
    est.on_rtcp(rr(5, 0.0), {5: 90000}, 5.0)
    held = est.update(100_000, 5.0, floor)
    assert held is not None
    assert held < floor
    assert est.dump(5.0)["probe_hold_s"] == PROBE_HOLD_BASE_S - 1.0
    est.on_rtcp(rr(5, 0.0), {5: 90000}, 19.5)
    assert est.update(100_000, 19.5, floor) == floor  # after 15 s: probe again
    est.on_rtcp(rr(5, 0.3), {5: 90000}, 21.0)
    est.update(150_000, 21.0, floor)
    assert est.dump(21.0)["probe_hold_s"] == 2 * PROBE_HOLD_BASE_S


def test_jitter_does_not_hold_an_underused_line() -> None:
    est = DownlinkEstimator()
    est.on_rtcp(rr(5, 0.5), {5: 90000}, 0.0)
    est.update(600_000, 0.0)  # 300 kbit/s
    for t in (0.5, 1.0):
        est.update(50_000, t)  # video stopped: the recent sends fall out of the window
    est.on_rtcp(rr(5, 0.0, jitter=90 * 100), {5: 90000}, 1.5)  # 100 ms: the publishers' own
    grown = est.update(50_000, 1.5)
    assert grown is not None
    assert grown > 300_000


def test_reports_about_held_back_video_are_no_rate_signal() -> None:
    est = DownlinkEstimator()
    capped_low(est)
    est.quiet_ssrcs = frozenset({6})
    # the first report after a still counts the packets dropped before the pause: 80 %
    est.on_rtcp(rr(6, 0.8, jitter=90 * 500), {5: 48000, 6: 90000}, 2.0)
    est.on_rtcp(rr(5, 0.0), {5: 48000, 6: 90000}, 2.0)  # the audio came through
    grown = est.update(150_000, 2.0)
    assert grown is not None
    assert grown > 70_000
    # audio's own loss always counts
    est.on_rtcp(rr(5, 0.5), {5: 48000, 6: 90000}, 4.0)
    cut = est.update(150_000, 4.0)
    assert cut is not None
    assert cut < grown


class _Producer:
    def __init__(self, name: str) -> None:
        self.id = name
        self.gate: Any = None
        self.paused = False


class _Consumer:
    def __init__(self, name: str, producer: _Producer) -> None:
        self.id = name
        self.producer = producer
        self.closed = False
        self.negotiated = self.transport_ready = True
        self.stream = OutputStream(1111, 2222, SendPath())
        self.peer_id = "sub-" + name
        self.producer_peer_id = "pub-" + producer.id
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self.stream.restart()  # as the producer does when the stream re-enters its outputs


class _Routing:
    def __init__(self) -> None:
        self.peers: dict[Any, Any] = {}

    def producers(self) -> list[Any]:
        return []


def vp8(seq: int, ts: int, *, start: bool, key: bool) -> bytes:
    """An RTP packet with a VP8 payload descriptor (RFC 7741): S bit, then the frame header."""
    descriptor = bytes([0x10 if start else 0x00])
    frame = bytes([0x00 if key else 0x01]) + b"\x00" * 40
    return struct.pack("!BBHII", 0x80, 96, seq, ts, 99) + descriptor + frame


async def test_a_still_is_its_keyframe_and_the_next_frame_after_a_sequence_jump() -> None:
    """A still starts at a keyframe, takes the frame after it too (aiortc hands a frame to
    the decoder only when the next one starts), nothing older and nothing later, and begins
    STILL_SEQ_SKIP sequence numbers on so that a receiver still waiting for packets lost
    before the pause starts afresh."""
    adaptation = Adaptation(_Routing())
    producer = _Producer("p")
    consumer = _Consumer("c", producer)
    gate = adaptation._gate(producer)  # type: ignore[arg-type]
    gate.stills["c"] = consumer  # type: ignore[assignment]
    last = consumer.stream.last_seq
    packets = [
        vp8(10, 1000, start=True, key=False),  # a delta frame: no still starts on it
        vp8(11, 2000, start=True, key=True),  # the keyframe, two packets
        vp8(12, 2000, start=False, key=True),
        vp8(9, 500, start=False, key=False),  # reordered from before: not sent
        vp8(13, 3000, start=True, key=False),  # the frame after it
        vp8(14, 3000, start=False, key=False),
        vp8(15, 4000, start=True, key=False),  # a third frame: the still is complete
    ]
    for data in packets:
        adaptation._on_packet(producer, gate, data, 100.0)  # type: ignore[arg-type]
    assert [struct.unpack_from("!H", d, 2)[0] for d in gate.queues["c"]] == [11, 12, 13, 14]
    assert consumer.stream.last_seq == (last + STILL_SEQ_SKIP) & 0xFFFF
    assert gate.still_at["c"] == 100.0  # one still, begun now
    adaptation.stop()


async def test_video_resumed_after_a_bandwidth_pause_jumps_like_a_still() -> None:
    """Back after loss, the stream starts STILL_SEQ_SKIP numbers on (a receiver's jitter buffer
    would otherwise wait seconds for the packets its line lost); back after audio-only, which
    lost nothing, it continues without a gap."""
    for reason, jump in ((REASON_BANDWIDTH, STILL_SEQ_SKIP), (REASON_AUDIO_ONLY, 0)):
        adaptation = Adaptation(_Routing())
        producer = _Producer("p")
        consumer = _Consumer("c", producer)
        sub = adaptation._subscriber(consumer.peer_id)  # type: ignore[arg-type]
        sub.told[consumer.producer_peer_id] = reason
        gate = adaptation._gate(producer)  # type: ignore[arg-type]
        gate.waiting["c"] = consumer  # type: ignore[assignment]
        last = consumer.stream.last_seq
        adaptation._on_packet(producer, gate, vp8(10, 1000, start=True, key=True), 5.0)  # type: ignore[arg-type]
        assert not consumer.paused
        assert consumer.stream.last_seq == (last + jump) & 0xFFFF, reason
        assert consumer.producer_peer_id not in sub.told  # told: video_resumed
        adaptation.stop()
