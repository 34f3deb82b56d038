"""The RTP packet header (RFC 3550 section 5.1), read in one place.

Everything of ours that looks inside an RTP packet - the forwarding path, the producer's taps,
the recorder's depacketizers, the SFU's SSRC demultiplexer - reads the header through these
functions, and the VP8 payload descriptor's keyframe mark through `is_vp8_keyframe_start` (the
line adaptation's stills and the keyframe pacer both need it). The one exception is
`forwarding.forward()`, the per-packet hot path, which inlines `header_length()` (a function
call per packet and subscriber is measurable there); it carries a comment saying so.

Layout: V(2) P(1) X(1) CC(4) | M(1) PT(7) | sequence(16) | timestamp(32) | SSRC(32) | CSRC*CC |
[extension: profile(16) length-in-words(16) data] | payload | [padding, last byte = its count].
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FIXED = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
_SEQ = struct.Struct("!H")
_U32 = struct.Struct("!I")


def header_length(data: bytes) -> int:
    """Length of the header incl. CSRCs and extension block; raises IndexError if short."""
    b0 = data[0]
    hl = 12 + ((b0 & 0x0F) << 2)
    if b0 & 0x10:
        hl += 4 + (((data[hl + 2] << 8) | data[hl + 3]) << 2)
    return hl


def read_seq(data: bytes) -> int:
    seq: int = _SEQ.unpack_from(data, 2)[0]
    return seq


def read_timestamp(data: bytes) -> int:
    ts: int = _U32.unpack_from(data, 4)[0]
    return ts


def read_ssrc(data: bytes) -> int:
    """The SSRC; raises struct.error if the packet is shorter than a fixed header."""
    ssrc: int = _U32.unpack_from(data, 8)[0]
    return ssrc


def payload_end(data: bytes) -> int:
    """Where the payload ends: before the padding, if the P bit is set."""
    return len(data) - data[-1] if data[0] & 0x20 else len(data)


@dataclass(frozen=True, slots=True)
class RtpFields:
    """The fields of one RTP packet the depacketizers need."""

    sequence: int
    timestamp: int
    marker: bool
    payload: bytes


def parse_rtp(data: bytes) -> RtpFields | None:
    """Parse an RTP packet's header; None if it is malformed or carries no payload."""
    if len(data) < 12:
        return None
    b0, b1, seq, ts, _ssrc = FIXED.unpack_from(data, 0)
    if b0 >> 6 != 2:
        return None
    offset = 12 + ((b0 & 0x0F) << 2)
    if b0 & 0x10:
        if len(data) < offset + 4:
            return None
        offset += 4 + (((data[offset + 2] << 8) | data[offset + 3]) << 2)
    end = payload_end(data)
    if end <= offset:
        return None
    return RtpFields(seq, ts, bool(b1 & 0x80), data[offset:end])


def is_vp8_keyframe_start(data: bytes) -> bool:
    """Whether an RTP packet carries the start of a VP8 keyframe (RFC 7741 section 4)."""
    try:
        i = header_length(data)
        d = data[i]
        if not d & 0x10 or d & 0x07:  # S bit and partition index 0
            return False
        i += 1
        if d & 0x80:  # X: extension byte
            x = data[i]
            i += 1
            if x & 0x80:  # I: picture id, 7 or 15 bits
                i += 2 if data[i] & 0x80 else 1
            if x & 0x40:  # L: TL0PICIDX
                i += 1
            if x & 0x30:  # T or K
                i += 1
        return not data[i] & 0x01  # P bit clear: a keyframe
    except IndexError:
        return False
