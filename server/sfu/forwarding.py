"""The lean per-packet forwarding path: one publisher packet in, one SRTP packet per subscriber out.

Design (ARCHITECTURE section 4.1, notes/forwarding-ceiling-research.md). Measured on this
machine, aiortc's own send path (`RtpPacket` re-stamp, `serialize`, `clock.current_ntp_time`,
four nested coroutines in `RTCDtlsTransport._send_rtp`) tops out near 20k forwarded packets per
CPU-second; a hand-written path near 85-100k. So, per packet:

* the decrypted RTP bytes from the publisher's DTLS transport are read with `struct` (header
  length, seq, timestamp, SSRC) - no `RtpPacket`, no datetime clock (one `time.monotonic()`
  per *incoming* packet);
* per subscriber stream (`OutputStream`) a bytearray is made from that stream's precomputed
  header template (12 bytes + a one-byte-header extension block carrying the subscriber's own
  `mid`, if negotiated) plus the payload; SSRC, payload type, marker, sequence number and
  timestamp are written with one `Struct.pack_into`; the publisher's other header extensions
  are dropped (their ids are the publisher's, not the subscriber's);
* one `protect` with the subscriber's pylibsrtp Session and one `sendto` on the subscriber's
  nominated ICE UDP transport (`SendPath`, bound methods cached), synchronously, in the same
  callback: nothing is queued, so nothing can grow.

Sequence numbers and timestamps are rewritten with per-stream offsets
(`out = in + offset mod 2^16 / 2^32`). When the source SSRC of a stream changes (the publisher
restarted its encoder, or the stream was switched to another producer) the offsets are
re-based so that the output continues at last_seq + 1 and last_ts + elapsed time: the
subscriber sees one continuous stream with a fixed SSRC.

Segments: an output stream receives its source in *segments*, each a run of packets forwarded
without interruption. A segment starts whenever the stream (re)enters its producer's tuple of
active outputs - a new consumer on the slot, a return from a private room, an unmute, a
reconnected transport - and when the source SSRC changes. `OutputStream.restart()` marks the
next packet as the start; that packet is re-based to last_seq + 1, so the subscriber sees no
sequence gap across an interruption: nothing invites a NACK for what was said while it was
not allowed to hear. A packet older than its segment's first packet (reordered from before the
interruption) is dropped, not forwarded.

Retransmission: rather than one history per subscriber (N copies of the same payload), each
producer keeps a `PacketHistory` of the last `HISTORY_SIZE` incoming (RTX-unwrapped) packets,
one list store per incoming packet. A subscriber's NACK for output seq s is answered only if s
lies in the stream's current segment, from its first packet to the newest one forwarded: the
only packets of the history this subscriber was ever sent (ARCHITECTURE 4.6: a subscriber gets,
by any path, only what was routed to it). s is mapped back with the segment's offset (the
history entry proves the source SSRC) and the packet is rewritten again for that subscriber, as
RTX if negotiated (own RTX SSRC, payload type and sequence, OSN prepended), else as a plain
retransmission. A NACK for anything else - the gap of a private-room interval, a mute, the time
before admission, another publisher that used the slot - is ignored.

Paused streams are simply not in the producer's tuple of active outputs.
"""

from __future__ import annotations

import logging
import random
import struct
from collections.abc import Callable, Iterable
from typing import Any

from .rtp import header_length, payload_end, read_seq, read_ssrc, read_timestamp

log = logging.getLogger(__name__)

HISTORY_SIZE = 1024  # per producer: ~8 s of 1 Mbps video, ~20 s of Opus
_HISTORY_MASK = HISTORY_SIZE - 1
# How far a segment's recorded start trails its newest packet (in sequence numbers): far more
# than the history holds, far less than the 2^15 that modular comparison can tell apart.
_SEGMENT_WINDOW = 0x4000

_HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
_SEQ_TS_SSRC = struct.Struct("!HII")
_SEQ = struct.Struct("!H")
_SSRC = struct.Struct("!I")


def unwrap_rtx(data: bytes, media_ssrc: int, media_payload_type: int) -> bytes | None:
    """Turn an RTX packet (RFC 4588) back into the original media packet.

    Returns None for RTX padding probes (no original sequence number) or malformed packets.
    """
    try:
        hl = header_length(data)
    except IndexError:
        return None
    end = payload_end(data)
    if end - hl < 2:
        return None
    buf = bytearray(data[:hl])
    buf += data[hl + 2 : end]
    osn = (data[hl] << 8) | data[hl + 1]
    buf[0] &= 0xDF  # padding stripped
    buf[1] = (data[1] & 0x80) | media_payload_type
    _SEQ.pack_into(buf, 2, osn)
    _SSRC.pack_into(buf, 8, media_ssrc)
    return bytes(buf)


class SendPath:
    """Where a subscriber's packets go: its SRTP session and nominated UDP transport.

    One per subscriber peer (BUNDLE: one transport carries all its streams). Bound by the peer
    when its DTLS transport connects; `ready` is False before that and after close.
    """

    __slots__ = ("addr", "protect", "ready", "sendto")

    def __init__(self) -> None:
        self.ready = False
        self.protect: Callable[[bytes | bytearray], bytes] = bytes
        self.sendto: Callable[[bytes, Any], None] = _discard
        self.addr: Any = None

    def bind(self, srtp_session: Any, transport: Any, addr: Any) -> None:
        fast = _direct_protect(srtp_session)
        if fast is not None:
            self.protect = fast
        else:
            protect = srtp_session.protect
            self.protect = lambda packet: protect(bytes(packet))
        self.sendto = transport.sendto
        self.addr = addr
        self.ready = True

    def unbind(self) -> None:
        self.ready = False
        self.protect = bytes
        self.sendto = _discard


def _discard(data: bytes, addr: Any) -> None:
    return None


def _direct_protect(session: Any) -> Callable[[bytes | bytearray], bytes] | None:
    """`session.protect` without pylibsrtp's per-call wrapper, taking a bytearray as is.

    Measured (issue 18.2): pylibsrtp's `protect` costs ~6.8 us for a 1.2 kB packet, of which
    `ffi.new` for the length, the type check and the extra copies of `bytes(buf)` are about
    half; this calls `srtp_protect` on the session's own buffer (~3.5 us). It reads three
    private attributes of pylibsrtp's Session (pinned 1.0.0 in pyproject.toml); if they are
    missing the public `protect` is used instead.
    """
    try:
        from pylibsrtp import Error
        from pylibsrtp._binding import ffi, lib

        # `handle` is the ffi.gc object that frees the libsrtp context when collected: the
        # closure holds it (not just the raw pointer), so the context lives as long as this.
        buffer, cdata, handle = session._buffer, session._cdata, session._srtp
        srtp_protect = lib.srtp_protect
    except (ImportError, AttributeError, TypeError):
        return None
    room = len(buffer) - 144  # SRTP_MAX_TRAILER_LEN
    length = ffi.new("int *")

    def protect(packet: bytes | bytearray) -> bytes:
        n = len(packet)
        if n > room:
            raise ValueError("packet is too long")
        buffer[0:n] = packet
        length[0] = n
        rc = srtp_protect(handle[0], cdata, length)
        if rc:
            raise Error(f"srtp_protect failed ({rc})")
        result: bytes = buffer[0 : length[0]]
        return result

    return protect


class OutputStream:
    """Rewrite state of one outgoing RTP stream (one subscriber m-line).

    It outlives the consumers that feed it: a send slot reused for another producer keeps its
    SSRC and continues its sequence and timestamp space.
    """

    __slots__ = (
        "b0",
        "clock_rate",
        "first_seq",
        "header",
        "last_seq",
        "last_time",
        "last_ts",
        "octets",
        "packets",
        "path",
        "payload_type",
        "retransmitted",
        "rtx_payload_type",
        "rtx_seq",
        "rtx_ssrc",
        "seq_offset",
        "src_ssrc",
        "ssrc",
        "ts_offset",
    )

    def __init__(self, ssrc: int, rtx_ssrc: int, path: SendPath) -> None:
        self.ssrc = ssrc
        self.rtx_ssrc = rtx_ssrc
        self.path = path
        self.payload_type = 0
        self.rtx_payload_type: int | None = None
        self.clock_rate = 90000
        self.header = bytearray(12)
        self.b0 = 0x80
        self.src_ssrc = -1
        self.seq_offset = 0
        self.ts_offset = 0
        self.last_seq = random.getrandbits(16) % 32768  # lower half, like aiortc: no early wrap
        self.first_seq = (self.last_seq + 1) & 0xFFFF  # output seq of the segment's first packet
        self.last_ts = random.getrandbits(32)
        self.last_time = -1.0
        self.rtx_seq = random.getrandbits(16) % 32768
        self.packets = 0
        self.octets = 0
        self.retransmitted = 0

    def configure(
        self,
        payload_type: int,
        rtx_payload_type: int | None,
        clock_rate: int,
        mid_ext_id: int = 0,
        mid: str | None = None,
    ) -> None:
        """Set the negotiated payload types and build the header template."""
        self.payload_type = payload_type
        self.rtx_payload_type = rtx_payload_type
        self.clock_rate = clock_rate
        header = bytearray(12)
        if mid_ext_id and mid:
            value = mid.encode()
            if not 1 <= len(value) <= 16 or not 1 <= mid_ext_id <= 14:
                raise ValueError(f"mid {mid!r} / id {mid_ext_id} does not fit a one-byte header")
            element = bytes([(mid_ext_id << 4) | (len(value) - 1)]) + value
            element += b"\x00" * (-len(element) % 4)
            header += b"\xbe\xde" + _SEQ.pack(len(element) // 4) + element
            header[0] = 0x90
        else:
            header[0] = 0x80
        self.header = header
        self.b0 = header[0]

    def restart(self, skip: int = 0) -> None:
        """Start a new segment with the next packet forwarded (module docstring). `skip`: leave
        that many sequence numbers out before it, for a receiver whose jitter buffer may still
        wait for packets its line lost (adaptation.py, STILL_SEQ_SKIP); a NACK for them is not
        answered (they lie before the segment)."""
        self.src_ssrc = -1
        self.last_seq = (self.last_seq + skip) & 0xFFFF

    def rebase(self, seq: int, ts: int, src_ssrc: int, now: float) -> None:
        """Start a segment at source packet `seq`: out seq = last + 1, ts advanced by time."""
        self.first_seq = (self.last_seq + 1) & 0xFFFF
        self.seq_offset = (self.first_seq - seq) & 0xFFFF
        advance = 0 if self.last_time < 0 else max(1, int((now - self.last_time) * self.clock_rate))
        self.ts_offset = (self.last_ts + advance - ts) & 0xFFFFFFFF
        self.src_ssrc = src_ssrc
        self.last_time = now

    def out_timestamp(self, ts: int) -> int:
        return (ts + self.ts_offset) & 0xFFFFFFFF


def forward(data: bytes, outputs: tuple[OutputStream, ...], now: float) -> None:
    """Send one decrypted publisher RTP packet to every output stream (the hot path).

    Never raises: a send failure on one subscriber is logged once, disables that subscriber's
    send path and does not affect the others.
    """
    b0 = data[0]
    hl = 12 + ((b0 & 0x0F) << 2)  # rtp.header_length(), inlined: once per packet matters here
    if b0 & 0x10:
        hl += 4 + (((data[hl + 2] << 8) | data[hl + 3]) << 2)
    payload = data[hl:]
    plen = len(payload)
    marker = data[1] & 0x80
    pad = b0 & 0x20
    seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
    pack_into = _HEADER.pack_into
    for out in outputs:
        if out.src_ssrc != ssrc:
            out.rebase(seq, ts, ssrc, now)
        oseq = (seq + out.seq_offset) & 0xFFFF
        into_segment = (oseq - out.first_seq) & 0xFFFF
        if into_segment >= 0x8000:
            continue  # from before this segment began: never routed to this subscriber
        ots = (ts + out.ts_offset) & 0xFFFFFFFF
        buf = bytearray(out.header)
        buf += payload
        pack_into(buf, 0, out.b0 | pad, marker | out.payload_type, oseq, ots, out.ssrc)
        path = out.path
        try:
            path.sendto(path.protect(buf), path.addr)  # protect takes the bytearray (bind)
        except Exception:
            # A dead transport would fail for every packet: log once and stop using it
            # (the peer closes on its connection state; the path is re-bound on reconnect).
            log.exception("forwarding to SSRC %d failed; send path disabled", out.ssrc)
            path.unbind()
        if ((oseq - out.last_seq) & 0xFFFF) < 0x8000:
            out.last_seq = oseq
            out.last_ts = ots
            out.last_time = now
            if into_segment > _SEGMENT_WINDOW:
                # a long segment: keep its start within reach of 16-bit arithmetic
                out.first_seq = (oseq - _SEGMENT_WINDOW) & 0xFFFF
        out.packets += 1
        out.octets += plen


# One incoming packet, parsed once for the paced path (pacing.py): payload, marker bit, padding
# bit, sequence number, timestamp, SSRC, arrival time.
Parsed = tuple[bytes, int, int, int, int, int, float]


def parse(data: bytes, now: float) -> Parsed:
    """Read what `send_run` needs of one decrypted publisher RTP packet (as `forward` does)."""
    b0 = data[0]
    hl = 12 + ((b0 & 0x0F) << 2)
    if b0 & 0x10:
        hl += 4 + (((data[hl + 2] << 8) | data[hl + 3]) << 2)
    seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
    return (data[hl:], data[1] & 0x80, b0 & 0x20, seq, ts, ssrc, now)


def send_run(out: OutputStream, packets: list[Parsed], start: int, end: int) -> None:
    """Send `packets[start:end]` to one output stream, in order (the paced path's unit of work).

    The same rewrite as `forward`, subscriber-major: one stream gets a run of packets, so a
    keyframe is complete at this subscriber as soon as its run is out (pacing.py).
    """
    pack_into = _HEADER.pack_into
    path = out.path
    protect, sendto, addr = path.protect, path.sendto, path.addr
    for i in range(start, end):
        payload, marker, pad, seq, ts, ssrc, now = packets[i]
        if out.src_ssrc != ssrc:
            out.rebase(seq, ts, ssrc, now)
        oseq = (seq + out.seq_offset) & 0xFFFF
        into_segment = (oseq - out.first_seq) & 0xFFFF
        if into_segment >= 0x8000:
            continue  # from before this segment began: never routed to this subscriber
        ots = (ts + out.ts_offset) & 0xFFFFFFFF
        buf = bytearray(out.header)
        buf += payload
        pack_into(buf, 0, out.b0 | pad, marker | out.payload_type, oseq, ots, out.ssrc)
        try:
            sendto(protect(buf), addr)
        except Exception:
            log.exception("forwarding to SSRC %d failed; send path disabled", out.ssrc)
            path.unbind()
            protect, sendto = path.protect, path.sendto
        if ((oseq - out.last_seq) & 0xFFFF) < 0x8000:
            out.last_seq = oseq
            out.last_ts = ots
            out.last_time = now
            if into_segment > _SEGMENT_WINDOW:
                out.first_seq = (oseq - _SEGMENT_WINDOW) & 0xFFFF
        out.packets += 1
        out.octets += len(payload)


class PacketHistory:
    """The last HISTORY_SIZE incoming (RTX-unwrapped) packets of one producer, by sequence."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: list[bytes | None] = [None] * HISTORY_SIZE

    def put(self, data: bytes, seq: int) -> None:
        self._slots[seq & _HISTORY_MASK] = data

    def get(self, seq: int, ssrc: int) -> bytes | None:
        data = self._slots[seq & _HISTORY_MASK]
        if data is None or read_seq(data) != seq or read_ssrc(data) != ssrc:
            return None
        return data

    def clear(self) -> None:
        self._slots = [None] * HISTORY_SIZE


def retransmit(out: OutputStream, history: PacketHistory, lost: Iterable[int]) -> int:
    """Answer a subscriber NACK for output sequence numbers `lost`; returns packets resent.

    Only packets of the stream's current segment are resent (module docstring); sends RTX when
    the subscriber negotiated it, else the packet again with its own sequence.
    """
    path = out.path
    if not path.ready or out.src_ssrc < 0:
        return 0
    first = out.first_seq
    span = (out.last_seq - first) & 0xFFFF
    sent = 0
    for out_seq in lost:
        if ((out_seq - first) & 0xFFFF) > span:
            continue  # never sent to this subscriber in this segment
        data = history.get((out_seq - out.seq_offset) & 0xFFFF, out.src_ssrc)
        if data is None:
            continue
        hl = header_length(data)
        b0 = data[0]
        end = payload_end(data)
        marker = data[1] & 0x80
        ots = (read_timestamp(data) + out.ts_offset) & 0xFFFFFFFF
        buf = bytearray(out.header)
        if out.rtx_payload_type is not None:
            buf += _SEQ.pack(out_seq)
            buf += data[hl:end]
            _HEADER.pack_into(
                buf, 0, out.b0, marker | out.rtx_payload_type, out.rtx_seq, ots, out.rtx_ssrc
            )
            out.rtx_seq = (out.rtx_seq + 1) & 0xFFFF
        else:
            buf += data[hl:]
            _HEADER.pack_into(
                buf, 0, out.b0 | (b0 & 0x20), marker | out.payload_type, out_seq, ots, out.ssrc
            )
        try:
            path.sendto(path.protect(bytes(buf)), path.addr)
        except Exception:
            log.exception("retransmission to SSRC %d failed", out.ssrc)
            continue
        sent += 1
    out.retransmitted += sent
    return sent
