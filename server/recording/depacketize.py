"""RTP depacketizers for the recorder: VP8 frames and Opus packets out of forwarded RTP.

The SFU forwards packets and never decodes (ARCHITECTURE 4.1); the recorder needs encoded
*frames* to remux (4.4). This module turns the packets a producer tap sees into frames, with
no decoding and no copying beyond joining a frame's payloads.

VP8 (RFC 7741): each packet starts with a payload descriptor (X|R|N|S|R|PID, optional
I/L/T/K extension bytes, a 7- or 15-bit PictureID); a frame starts at a packet with S=1 and
PID=0, whose first payload byte has the P bit clear for a keyframe (RFC 6386 9.1); all packets
of a frame share one RTP timestamp and the last one has the marker bit. A frame is emitted
only when every sequence number from its first packet to its marker packet is present.

Loss and reordering: packets are held by (extended) sequence number, so a retransmission
(RTX, unwrapped by the SFU) that arrives late still completes its frame. Frames are emitted in
sequence order; a hole at the head of the line is waited for at most `max_delay` seconds or
`max_packets` packets, then the frame is declared lost: it and every following delta frame are
dropped until the next keyframe (a VP8 delta frame after a lost frame cannot be decoded, and
writing it would corrupt the picture until then). `keyframe_wanted` is raised so the recorder
can ask the publisher for one (PLI) instead of waiting for its keyframe interval.

Opus (RFC 7587): one packet is one frame. Duplicates and packets older than the newest one
are dropped: the remuxer would place a late packet after the newest (timestamps must
increase), which is worse than the 20 ms hole its loss leaves.

Sequence numbers are extended past the 16-bit wrap; RTP timestamps are passed through as
received (32-bit) and unwrapped by the writer.
"""

from __future__ import annotations

from dataclasses import dataclass

# The header is read by the SFU's one RTP module; re-exported for the recorder's imports.
from server.sfu.rtp import RtpFields as RtpFields
from server.sfu.rtp import parse_rtp as parse_rtp


class SequenceUnwrapper:
    """Extends 16-bit RTP sequence numbers to a monotone integer line (wrap, reordering)."""

    def __init__(self) -> None:
        self._last: int | None = None

    def extend(self, seq: int) -> int:
        if self._last is None:
            self._last = seq
            return seq
        delta = (seq - self._last) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        ext = self._last + delta
        if ext > self._last:
            self._last = ext
        return ext

    def reset(self) -> None:
        self._last = None


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One complete encoded VP8 frame."""

    data: bytes
    timestamp: int  # 90 kHz RTP timestamp, as received
    keyframe: bool


def vp8_descriptor(payload: bytes) -> tuple[int, bool] | None:
    """(descriptor length, starts a frame) of a VP8 RTP payload; None if malformed."""
    if not payload:
        return None
    b0 = payload[0]
    n = 1
    if b0 & 0x80:  # X: extension byte follows
        if len(payload) < 2:
            return None
        x = payload[1]
        n = 2
        if x & 0x80:  # I: PictureID
            if len(payload) <= n:
                return None
            n += 2 if payload[n] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            n += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            n += 1
    if n >= len(payload):
        return None
    start = bool(b0 & 0x10) and (b0 & 0x07) == 0
    return n, start


@dataclass(slots=True)
class _Packet:
    timestamp: int
    marker: bool
    start: bool
    body: bytes


class Vp8Depacketizer:
    """Assembles VP8 frames from RTP packets; see the module docstring for loss handling.

    `push()` never raises for bad input: malformed packets are counted in `malformed`.
    """

    def __init__(self, *, max_delay: float = 0.5, max_packets: int = 512) -> None:
        self.max_delay = max_delay
        self.max_packets = max_packets
        self._seq = SequenceUnwrapper()
        self._packets: dict[int, _Packet] = {}
        self._next: int | None = None  # extended seq of the next frame's first packet
        self._blocked_since: float | None = None
        self.need_keyframe = True
        self.keyframe_wanted = False  # set on loss; the owner clears it after asking (PLI)
        self.frames = 0
        self.lost_frames = 0
        self.dropped_frames = 0  # complete frames dropped while waiting for a keyframe
        self.malformed = 0
        self.late_packets = 0

    def reset(self) -> None:
        """Forget everything (after a pause): the next frame written will be a keyframe."""
        self._seq.reset()
        self._packets.clear()
        self._next = None
        self._blocked_since = None
        self.need_keyframe = True

    def push(
        self, sequence: int, timestamp: int, marker: bool, payload: bytes, now: float
    ) -> list[VideoFrame]:
        """Add one packet (`now`: a monotonic clock in seconds); returns completed frames."""
        desc = vp8_descriptor(payload)
        if desc is None:
            self.malformed += 1
            return []
        n, start = desc
        ext = self._seq.extend(sequence)
        if (self._next is not None and ext < self._next) or ext in self._packets:
            self.late_packets += 1
            return []
        self._packets[ext] = _Packet(timestamp, marker, start, payload[n:])
        out: list[VideoFrame] = []
        while True:
            self._drain(out)
            if not self._packets:
                self._blocked_since = None
                break
            if self._blocked_since is None:
                self._blocked_since = now
            if now - self._blocked_since < self.max_delay and len(self._packets) < self.max_packets:
                break
            if not self._skip_lost():
                break
        return out

    def _drain(self, out: list[VideoFrame]) -> None:
        packets = self._packets
        while packets:
            if self._next is None:
                starts = [s for s, p in packets.items() if p.start]
                if not starts:
                    return
                first = min(starts)
                for s in [s for s in packets if s < first]:
                    del packets[s]
                self._next = first
            head = packets.get(self._next)
            if head is None:
                return
            if not head.start:
                # The packet after a frame's end does not begin a frame: its start was lost.
                self._skip_lost()
                continue
            seq = self._next
            parts = [head.body]
            end: int | None = None
            while True:
                p = packets[seq]
                if p.marker:
                    end = seq
                    break
                nxt = packets.get(seq + 1)
                if nxt is None:
                    return  # incomplete: wait for the rest (or a retransmission)
                if nxt.timestamp != head.timestamp:
                    if not nxt.start:
                        return  # the next frame's beginning is missing; decided on timeout
                    end = seq  # marker bit lost or not set: the timestamp change ends it
                    break
                seq += 1
                parts.append(nxt.body)
            for s in range(self._next, end + 1):
                del packets[s]
            self._next = end + 1
            self._blocked_since = None
            data = b"".join(parts)
            keyframe = not (data[0] & 0x01)
            if keyframe:
                self.need_keyframe = False
            if self.need_keyframe:
                self.dropped_frames += 1
                continue
            self.frames += 1
            out.append(VideoFrame(data, head.timestamp, keyframe))

    def _skip_lost(self) -> bool:
        """Give up the frame at the head of the line; resume at the next frame start."""
        head = self._next
        later = [s for s, p in self._packets.items() if p.start and (head is None or s > head)]
        self.lost_frames += 1
        self.need_keyframe = True
        self.keyframe_wanted = True
        self._blocked_since = None
        if not later:
            self._packets.clear()
            self._next = None
            return False
        first = min(later)
        for s in [s for s in self._packets if s < first]:
            del self._packets[s]
        self._next = first
        return True


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One Opus packet."""

    data: bytes
    timestamp: int  # 48 kHz RTP timestamp, as received


class OpusDepacketizer:
    """One RTP packet is one Opus frame; duplicates and late packets are dropped."""

    def __init__(self) -> None:
        self._seq = SequenceUnwrapper()
        self._highest: int | None = None
        self.frames = 0
        self.late_packets = 0

    def reset(self) -> None:
        self._seq.reset()
        self._highest = None

    def push(self, sequence: int, timestamp: int, payload: bytes) -> AudioFrame | None:
        ext = self._seq.extend(sequence)
        if self._highest is not None and ext <= self._highest:
            self.late_packets += 1
            return None
        self._highest = ext
        self.frames += 1
        return AudioFrame(payload, timestamp)
