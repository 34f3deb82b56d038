"""VP8/Opus depacketizers: keyframes, multi-packet frames, loss, reordering, wrap-around."""

from __future__ import annotations

import struct

from server.recording.depacketize import (
    OpusDepacketizer,
    VideoFrame,
    Vp8Depacketizer,
    parse_rtp,
    vp8_descriptor,
)

KEY = b"\x10\x02\x00\x9d\x01\x2a\x40\x01\xf0\x00"  # VP8 keyframe header: P bit clear, 320x240
DELTA = b"\x11\x02\x00"  # P bit set: an interframe


def rtp(seq: int, ts: int, payload: bytes, *, marker: bool = False, padding: int = 0) -> bytes:
    b0 = 0x80 | (0x20 if padding else 0)
    header = struct.pack("!BBHII", b0, (0x80 if marker else 0) | 96, seq & 0xFFFF, ts, 1234)
    pad = b"\x00" * (padding - 1) + bytes([padding]) if padding else b""
    return header + payload + pad


def descriptor(start: bool, picture_id: int | None = None) -> bytes:
    b0 = 0x10 if start else 0x00
    if picture_id is None:
        return bytes([b0])
    # X=1, I=1, 15-bit PictureID (M=1)
    return bytes([b0 | 0x80, 0x80, 0x80 | (picture_id >> 8), picture_id & 0xFF])


def packetize(frame: bytes, seq: int, ts: int, size: int = 4, pid: int | None = 7):
    """(seq, ts, marker, payload) tuples of one frame split into `size`-byte pieces."""
    pieces = [frame[i : i + size] for i in range(0, len(frame), size)]
    return [
        (seq + i, ts, i == len(pieces) - 1, descriptor(i == 0, pid) + piece)
        for i, piece in enumerate(pieces)
    ]


def feed(dep: Vp8Depacketizer, packets, now: float = 0.0) -> list[VideoFrame]:
    out: list[VideoFrame] = []
    for seq, ts, marker, payload in packets:
        out.extend(dep.push(seq & 0xFFFF, ts & 0xFFFFFFFF, marker, payload, now))
    return out


def stream(n: int, *, seq: int = 0, ts: int = 0, key_every: int = 10, pid: int | None = 7):
    """Packets of `n` frames (keyframe every `key_every`), 3 packets each, 3000 ticks apart."""
    packets = []
    frames = []
    for i in range(n):
        body = (KEY if i % key_every == 0 else DELTA) + bytes([i % 256]) * 5
        frames.append(body)
        packets.extend(
            packetize(body, seq + 3 * i, ts + 3000 * i, size=len(body) // 3 + 1, pid=pid)
        )
    return packets, frames


def test_parse_rtp_header_extension_and_padding() -> None:
    # one-byte header extension block (profile 0xBEDE, 1 word) and 4 bytes of padding
    header = struct.pack("!BBHII", 0x90 | 0x20, 0x80 | 96, 7, 90000, 1)
    ext = b"\xbe\xde\x00\x01" + b"\x10\xaa\x00\x00"
    fields = parse_rtp(header + ext + b"payload" + b"\x00\x00\x00\x04")
    assert fields is not None
    assert (fields.sequence, fields.timestamp, fields.marker) == (7, 90000, True)
    assert fields.payload == b"payload"
    assert parse_rtp(rtp(1, 0, b"", padding=4)) is None  # padding only
    assert parse_rtp(b"\x80\x60\x00") is None  # short


def test_vp8_descriptor_forms() -> None:
    assert vp8_descriptor(b"\x10abc") == (1, True)
    assert vp8_descriptor(b"\x00abc") == (1, False)
    assert vp8_descriptor(b"\x11abc") == (1, False)  # S=1 but partition 1: not a frame start
    assert vp8_descriptor(b"\x90\x80\x05abc") == (3, True)  # 7-bit PictureID
    assert vp8_descriptor(b"\x90\xf0\x85\x05\x01\x02abc") == (6, True)  # I(M)+L+T/K
    assert vp8_descriptor(b"\x90") is None


def test_single_and_multi_packet_frames_with_keyframe_flags() -> None:
    dep = Vp8Depacketizer()
    packets, frames = stream(12)
    out = feed(dep, packets)
    assert [f.data for f in out] == frames
    assert [f.keyframe for f in out] == [i % 10 == 0 for i in range(12)]
    assert [f.timestamp for f in out] == [3000 * i for i in range(12)]
    # a one-packet frame
    more = feed(dep, [(36, 40000, True, descriptor(True) + DELTA)])
    assert more == [VideoFrame(DELTA, 40000, False)]


def test_frames_before_the_first_keyframe_are_dropped() -> None:
    dep = Vp8Depacketizer()
    packets, frames = stream(15, key_every=10)
    out = feed(dep, packets[3:])  # joins at frame 1 (a delta frame)
    assert out[0].keyframe
    assert out[0].data == frames[10]
    assert dep.dropped_frames == 9


def test_reordered_packets_and_late_retransmission_complete_the_frame() -> None:
    dep = Vp8Depacketizer()
    packets, frames = stream(4)
    order = [packets[0], packets[2], packets[1], *packets[3:7], *packets[8:], packets[7]]
    out = feed(dep, order)
    assert [f.data for f in out] == frames
    assert dep.lost_frames == 0


def test_lost_packet_drops_the_frame_until_the_next_keyframe() -> None:
    dep = Vp8Depacketizer(max_delay=0.5)
    packets, frames = stream(25, key_every=10)
    lost = 3 * 4 + 1  # middle packet of frame 4
    out = feed(dep, packets[:lost], now=0.0)
    assert [f.data for f in out] == frames[:4]
    # the hole is waited for while within max_delay ...
    assert feed(dep, packets[lost + 1 : lost + 10], now=0.2) == []
    # ... then declared lost: frames 4..9 are dropped, recording resumes at keyframe 10
    out = feed(dep, packets[lost + 10 :], now=0.8)
    assert [f.data for f in out] == frames[10:]
    assert out[0].keyframe
    assert dep.lost_frames == 1
    assert dep.keyframe_wanted
    assert dep.dropped_frames == 5  # frames 5..9, complete but undecodable


def test_whole_frame_lost_is_detected_by_sequence_gap() -> None:
    dep = Vp8Depacketizer(max_packets=6)
    packets, frames = stream(15, key_every=10)
    out = feed(dep, packets[:6] + packets[9:])  # frame 2 missing entirely
    assert [f.data for f in out] == frames[:2] + frames[10:]
    assert dep.lost_frames == 1


def test_sequence_and_timestamp_wrap_around() -> None:
    dep = Vp8Depacketizer()
    packets, frames = stream(12, seq=0xFFFF - 10, ts=0xFFFFFFFF - 9000)
    out = feed(dep, packets)
    assert [f.data for f in out] == frames
    assert out[-1].timestamp == (0xFFFFFFFF - 9000 + 3000 * 11) & 0xFFFFFFFF
    assert dep.lost_frames == 0


def test_duplicates_and_reset() -> None:
    dep = Vp8Depacketizer()
    packets, frames = stream(2)
    out = feed(dep, packets + packets)
    assert [f.data for f in out] == frames
    assert dep.late_packets == len(packets)
    dep.reset()
    packets, frames = stream(3, seq=30000, ts=5, key_every=2)
    out = feed(dep, packets[3:])  # a delta frame first after a reset: dropped
    assert [f.data for f in out] == frames[2:]


def test_opus_one_packet_one_frame_drops_duplicates_and_late() -> None:
    dep = OpusDepacketizer()
    assert dep.push(0xFFFF, 100, b"a") is not None
    frame = dep.push(0, 1060, b"b")  # wraps
    assert frame is not None
    assert (frame.data, frame.timestamp) == (b"b", 1060)
    assert dep.push(0, 1060, b"b") is None  # duplicate
    assert dep.push(0xFFFE, 40, b"z") is None  # late
    assert dep.push(2, 2980, b"c") is not None  # a lost packet is just a hole
    assert (dep.frames, dep.late_packets) == (3, 2)
