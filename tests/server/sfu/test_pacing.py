"""Keyframe pacing (issue 18.3) on its own: order, audio first, bounds, replacement, route cuts.

No network, no clock: the pacer's scheduler is a list the test drains by calling `run()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from server.ids import ParticipantId
from server.sfu.forwarding import OutputStream, SendPath, forward, parse, send_run
from server.sfu.pacing import SYNC_FANOUT, Pacer
from server.sfu.producer import Producer
from signaling.reasons import CloseReason
from tests.server.sfu.test_forwarding_unit import FakeSrtp, make_output, rtp
from tests.server.sfu.test_forwarding_unit import parse as parse_out

SSRC = 0x1234


class Wire:
    """One transport shared by all outputs: the global order of sends, as (output, seq)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int]] = []

    def output(self, index: int) -> OutputStream:
        wire = self

        class Transport:
            def sendto(self, data: bytes, addr: Any) -> None:
                wire.sent.append((index, parse_out(data)["seq"]))

        path = SendPath()
        path.bind(FakeSrtp(), Transport(), ("127.0.0.1", 9))
        out = OutputStream(ssrc=0x5000 + index, rtx_ssrc=0x6000 + index, path=path)
        out.configure(100, None, 90000)
        out.last_seq = 1000 * index  # output i's sequence space starts at 1000 * i + 1
        out.first_seq = out.last_seq + 1
        return out

    def to(self, index: int) -> list[int]:
        return [seq for i, seq in self.sent if i == index]


def keyframe(seq: int, first: bool, last: bool = False) -> bytes:
    # VP8 payload descriptor: S bit, partition 0; VP8 header P bit clear (a keyframe)
    payload = (b"\x10\x00" if first else b"\x00\x00") + b"k" * 40
    return rtp(seq, 3000, SSRC, payload, marker=last, mid=None)


def delta(seq: int) -> bytes:
    return rtp(seq, 6000, SSRC, b"\x10\x01" + b"d" * 40, marker=True, mid=None)


def drain(calls: list[Callable[[], None]]) -> int:
    slices = 0
    while calls:
        calls.pop(0)()
        slices += 1
    return slices


def test_send_run_writes_what_forward_writes() -> None:
    a, wire_a = make_output()
    b, wire_b = make_output()
    b.last_seq, b.first_seq, b.last_ts = a.last_seq, a.first_seq, a.last_ts
    packets = [rtp(s, 9000 + s, SSRC, bytes([s]) * 30, marker=s == 12) for s in range(10, 13)]
    for p in packets:
        forward(p, (a,), 5.0)
    send_run(b, [parse(p, 5.0) for p in packets], 0, 3)
    assert wire_a.sent == wire_b.sent
    assert (a.packets, a.octets, a.last_seq) == (b.packets, b.octets, b.last_seq)


def test_subscriber_major_with_rotating_start_and_slices() -> None:
    wire = Wire()
    outs = tuple(wire.output(i) for i in range(4))
    calls: list[Callable[[], None]] = []
    pacer = Pacer(calls.append, slice_sends=6)
    held = Pacer(calls.append)
    held.submit("video", keyframe(0, True), outs, 1.0)
    held.submit("video", keyframe(1, False), outs, 1.0)
    assert calls == []  # a frame waits for its last packet: subscribers get whole frames
    for seq in range(3):
        pacer.submit("video", keyframe(seq, seq == 0, seq == 2), outs, 1.0)
    assert wire.sent == []
    assert len(calls) == 1
    calls.pop()()
    # one slice: two subscribers get the whole frame, one after the other
    assert [i for i, _ in wire.sent] == [0, 0, 0, 1, 1, 1]
    assert len(calls) == 1  # the rest in the next slice, after the loop polled I/O
    calls.pop()()
    assert [i for i, _ in wire.sent[6:]] == [2, 2, 2, 3, 3, 3]
    assert calls == []
    assert not pacer.pending("video")
    assert all(wire.to(i) == [1000 * i + 1, 1000 * i + 2, 1000 * i + 3] for i in range(4))
    # the next burst starts at the next subscriber: nobody is always first
    pacer.submit("video", delta(3), outs, 1.1)
    drain(calls)
    assert [i for i, _ in wire.sent[12:]] == [1, 2, 3, 0]


def test_other_streams_interleave_with_a_keyframe() -> None:
    wire = Wire()
    big = tuple(wire.output(i) for i in range(10))
    small = (wire.output(10), wire.output(11))
    calls: list[Callable[[], None]] = []
    pacer = Pacer(calls.append, slice_sends=8)
    for seq in range(4):
        pacer.submit("camera", keyframe(seq, seq == 0, seq == 3), big, 1.0)
    calls.pop()()
    pacer.submit("screen", delta(50), small, 1.0)  # another stream's packet arrives
    calls.pop()()
    # the other stream is served in the next slice, long before the keyframe's 40 sends end
    assert (10, 10001) in wire.sent[:20]
    assert (11, 11001) in wire.sent[:24]
    drain(calls)
    assert len(wire.sent) == 42


def test_backlog_is_bounded_and_skipping_leaves_no_sequence_gap() -> None:
    wire = Wire()
    outs = tuple(wire.output(i) for i in range(3))
    calls: list[Callable[[], None]] = []
    overflows: list[int] = []
    pacer = Pacer(calls.append, slice_sends=1000, max_backlog=5)
    for seq in range(12):
        pacer.submit("v", delta(seq), outs, 1.0, on_overflow=lambda: overflows.append(1))
        assert pacer.backlog("v") <= 5
    assert pacer.overflows == 2
    assert len(overflows) == 2
    drain(calls)
    for i in range(3):  # the newest packets, numbered on from the last one sent
        assert wire.to(i) == [1000 * i + 1, 1000 * i + 2]


def test_a_newer_keyframe_replaces_the_unsent_rest_of_an_older_one() -> None:
    wire = Wire()
    outs = tuple(wire.output(i) for i in range(4))
    calls: list[Callable[[], None]] = []
    pacer = Pacer(calls.append, slice_sends=3)
    for seq in range(3):
        pacer.submit("v", keyframe(seq, seq == 0, seq == 2), outs, 1.0)
    calls.pop()()  # subscriber 0 has keyframe A; 1-3 have nothing yet
    assert wire.to(0) == [1, 2, 3]
    pacer.submit("v", keyframe(3, True), outs, 1.6, keyframe=True)  # keyframe B
    pacer.submit("v", keyframe(4, False, True), outs, 1.6)
    assert pacer.replaced == 1
    drain(calls)
    assert wire.to(0) == [1, 2, 3, 4, 5]  # A then B, as it came
    for i in (1, 2, 3):  # A skipped, B without a gap
        assert wire.to(i) == [1000 * i + 1, 1000 * i + 2]
    # a keyframe while everyone is served replaces nothing
    pacer.submit("v", keyframe(20, True, True), outs, 2.0, keyframe=True)
    assert pacer.replaced == 1


def test_an_output_cut_mid_burst_gets_nothing_more_and_a_new_one_only_later_packets() -> None:
    wire = Wire()
    outs = tuple(wire.output(i) for i in range(4))
    calls: list[Callable[[], None]] = []
    pacer = Pacer(calls.append, slice_sends=3)
    for seq in range(3):
        pacer.submit("v", keyframe(seq, seq == 0, seq == 2), outs, 1.0)
    calls.pop()()  # subscriber 0 served
    joiner = wire.output(9)
    pacer.retarget("v", (outs[0], outs[2], outs[3], joiner))  # 1 left; 9 joined
    pacer.submit("v", delta(3), (outs[0], outs[2], outs[3], joiner), 1.03)
    drain(calls)
    assert wire.to(1) == []
    assert wire.to(9) == [9001]  # the packet after it joined, nothing from before
    assert wire.to(2) == [2001, 2002, 2003, 2004]
    pacer.retarget("v", ())
    assert not pacer.pending("v")


# --- through the Producer: audio first, pause, private room ----------------------------------


class FakeConsumer:
    def __init__(self, index: int, stream: OutputStream) -> None:
        self.id = f"c{index}"
        self.peer_id = ParticipantId(f"p{index}")
        self.active = True
        self.stream: OutputStream | None = stream

    def close(self, reason: CloseReason) -> None:
        self.active = False


def producer_with(kind: str, consumers: list[FakeConsumer], pacer: Pacer) -> Producer:
    producer = Producer(ParticipantId("pub"), kind, cast(Any, None), mid="0")
    producer.pacer = pacer
    for consumer in consumers:
        producer.attach(consumer)
    producer.update_outputs()
    return producer


def test_audio_is_never_queued_behind_a_keyframe() -> None:
    wire = Wire()
    calls: list[Callable[[], None]] = []
    pacer = Pacer(calls.append, slice_sends=4)
    n = SYNC_FANOUT + 2
    video = producer_with("video", [FakeConsumer(i, wire.output(i)) for i in range(n)], pacer)
    audio = producer_with("audio", [FakeConsumer(i, wire.output(100 + i)) for i in range(n)], pacer)
    for seq in range(20):
        video.on_rtp(keyframe(seq, seq == 0, seq == 19), SSRC, 1.0)
    assert wire.sent == []  # the keyframe waits for the loop to run its slices
    calls.pop()()
    audio.on_rtp(rtp(7, 960, 0x99, b"opus" * 10, pt=111, mid=None), 0x99, 1.0)
    # the audio packet went to all its subscribers at once, before the keyframe's rest
    assert len(wire.sent) == 20 + n
    assert {i for i, _ in wire.sent[20:]} == set(range(100, 100 + n))
    drain(calls)
    assert len(wire.sent) == 20 * n + n


def test_small_fan_out_is_not_paced() -> None:
    wire = Wire()
    calls: list[Callable[[], None]] = []
    pacer = Pacer(calls.append)
    video = producer_with("video", [FakeConsumer(i, wire.output(i)) for i in range(3)], pacer)
    video.on_rtp(keyframe(0, True, True), SSRC, 1.0)
    assert len(wire.sent) == 3
    assert calls == []


def test_pause_or_a_consumer_leaving_mid_burst_sends_nothing_more() -> None:
    wire = Wire()
    calls: list[Callable[[], None]] = []
    pacer = Pacer(calls.append, slice_sends=5)
    n = SYNC_FANOUT + 4
    consumers = [FakeConsumer(i, wire.output(i)) for i in range(n)]
    video = producer_with("video", consumers, pacer)
    for seq in range(5):
        video.on_rtp(keyframe(seq, seq == 0, seq == 4), SSRC, 1.0)
    calls.pop()()  # one subscriber served
    served = {i for i, _ in wire.sent}
    assert len(served) == 1
    # a subscriber moves to a private room (its consumer goes inactive) ...
    gone = next(c for i, c in enumerate(consumers) if i not in served)
    gone.active = False
    video.update_outputs()
    calls.pop()()
    assert int(gone.peer_id[1:]) not in {i for i, _ in wire.sent}
    # ... then the publisher mutes: nobody gets anything more
    before = len(wire.sent)
    video.pause()
    drain(calls)
    assert len(wire.sent) == before
    assert not pacer.pending(video)
    video.close(CloseReason.PRODUCER_CLOSED)


def test_a_frame_without_its_last_packet_is_held_only_so_long() -> None:
    from server.sfu.pacing import HOLD_PACKETS

    wire = Wire()
    outs = tuple(wire.output(i) for i in range(2))
    calls: list[Callable[[], None]] = []
    pacer = Pacer(calls.append)
    for seq in range(HOLD_PACKETS + 1):
        pacer.submit("v", keyframe(seq, seq == 0), outs, 1.0)
    assert len(calls) == 1  # released without a marker: never held without bound
    drain(calls)
    assert len(wire.to(0)) == HOLD_PACKETS + 1
