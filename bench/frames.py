"""Cheap synthetic media for the load benchmarks (bench/load.py, bench/hearing_mix.py).

Publishers replay media encoded once (no encoder runs while measuring): the VP8 clip of
bench/sfu_forwarding.py and an Opus clip encoded here, 20 ms per packet. Both tracks count
what they hand to aiortc, so a starved generator shows as a publisher sending under its rate.

Subscribers count *frames*, not socket packets. SRTP (RFC 3711) encrypts the RTP payload only:
the 12-byte header (payload type, marker, sequence number, timestamp, SSRC) travels in clear,
so a frame can be counted from the datagram as it arrives, without decryption, decoding or
aiortc's receive path (which would also decode and queue frames on an undrained track). What
is counted: per SSRC, the distinct sequence numbers of Opus packets (one packet = one 20 ms
frame) and the distinct timestamps of VP8 packets carrying the marker bit (the last packet of
a frame); RTX packets (their own payload type and SSRC) and repeats of a sequence number are
not counted, so retransmissions cannot lift delivery over what was sent. Not checked without
decryption: the authentication tag (on loopback nothing alters packets) and whether every
packet of a video frame arrived (the marker packet stands for the frame).
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import random
import re
import socket
import time
from typing import Any

import av
import sfu_forwarding as sfu
from aiortc import MediaStreamTrack

OPUS_CLOCK = 48000
OPUS_FRAME_S = 0.02
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([A-Za-z0-9-]+)/", re.MULTILINE)


def encode_opus(seconds: float, hz: float = 440.0) -> list[bytes]:
    """A tone with a little noise, encoded once as 20 ms Opus packets (~32 kbit/s)."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = OPUS_CLOCK
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 32000
    codec.time_base = fractions.Fraction(1, OPUS_CLOCK)
    samples = int(OPUS_CLOCK * OPUS_FRAME_S)
    rng = random.Random(7)
    packets: list[bytes] = []
    for i in range(int(seconds / OPUS_FRAME_S)):
        pcm = array.array("h")
        for n in range(i * samples, (i + 1) * samples):
            value = int(8000 * math.sin(2 * math.pi * hz * n / OPUS_CLOCK) + rng.gauss(0, 300))
            pcm.extend((value, value))
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = OPUS_CLOCK
        frame.pts = i * samples
        packets.extend(bytes(p) for p in codec.encode(frame))
    packets.extend(bytes(p) for p in codec.encode(None))
    return packets


class OpusTrack(MediaStreamTrack):
    """Replays pre-encoded Opus packets in real time (aiortc only packetizes them); `sent`
    counts the packets handed over."""

    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self._packets = packets
        self.sent = 0
        self._start: float | None = None

    async def recv(self) -> Any:
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self.sent * OPUS_FRAME_S - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing a live source
        packet = av.Packet(self._packets[self.sent % len(self._packets)])
        packet.pts = self.sent * int(OPUS_CLOCK * OPUS_FRAME_S)
        packet.time_base = fractions.Fraction(1, OPUS_CLOCK)
        self.sent += 1
        return packet


class VideoTrack(sfu.ClipTrack):
    """The pre-encoded VP8 clip (sfu_forwarding.ClipTrack) with a count of frames handed over."""

    @property
    def sent(self) -> int:
        return int(self._index)


class FrameCounter:
    """Frames received by one subscriber, per SSRC (see the module docstring)."""

    def __init__(self) -> None:
        self.kinds: dict[int, str] = {}  # payload type -> "audio" | "video" | "other"
        self.audio: dict[int, set[int]] = {}  # ssrc -> sequence numbers seen
        self.video: dict[int, set[int]] = {}  # ssrc -> timestamps of marker packets seen
        self.packets = 0  # RTP datagrams, repeats and RTX included (for comparison)
        self.pc: Any = None  # whose negotiated SDP names the payload types
        self._learned = 0.0

    def learn(self, *sdps: str | None) -> None:
        """Payload types from the negotiated SDP (both directions use the SFU's numbers)."""
        for sdp in sdps:
            for pt, name in _RTPMAP.findall(sdp or ""):
                lower = name.lower()
                self.kinds[int(pt)] = (
                    "audio" if lower == "opus" else "video" if lower == "vp8" else "other"
                )

    def reset(self) -> None:
        """Start a measurement window: forget what was seen (sets stay bounded by it)."""
        self.audio = {}
        self.video = {}
        self.packets = 0

    def feed(self, data: bytes) -> None:
        """One RTP packet (SRTP or decrypted: the header is the same)."""
        if len(data) < 12:
            return
        self.packets += 1
        pt = data[1] & 0x7F
        kind = self.kinds.get(pt)
        if kind is None and self.pc is not None and time.monotonic() - self._learned > 0.2:
            self._learned = time.monotonic()  # renegotiated since? (at most 5 times a second)
            self.learn(self.pc.remoteDescription.sdp, self.pc.localDescription.sdp)
            kind = self.kinds.get(pt)
        ssrc = int.from_bytes(data[8:12], "big")
        if kind == "audio":
            self.audio.setdefault(ssrc, set()).add(int.from_bytes(data[2:4], "big"))
        elif kind == "video" and data[1] & 0x80:
            self.video.setdefault(ssrc, set()).add(int.from_bytes(data[4:8], "big"))

    def frames(self) -> dict[str, list[int]]:
        """Frames per SSRC in this window, largest first."""
        return {
            "audio": sorted((len(s) for s in self.audio.values()), reverse=True),
            "video": sorted((len(s) for s in self.video.values()), reverse=True),
        }


def is_rtp(data: bytes) -> bool:
    """RTP rather than RTCP or STUN/DTLS on a muxed socket (RFC 5761, RFC 7983)."""
    return len(data) > 1 and 128 <= data[0] < 192 and not 192 <= data[1] <= 223


# A generator process shares the machine with the server and other generators, and is not
# scheduled as promptly as a client on its own machine: with the default 208 KB a socket
# overflows within a few hundred milliseconds of not being read, and the loss (the kernel's,
# in the generator) would be charged to the server. The server's own sockets keep the default.
RECEIVE_BUFFER = 4 << 20


def count_frames(pc: Any, counter: FrameCounter) -> None:
    """Replace the peer connection's UDP receive path for RTP by `counter` (RTCP, STUN and DTLS
    still go to aiortc, so a publisher on the same connection keeps its feedback)."""
    counter.pc = pc
    counter.learn(pc.remoteDescription.sdp, pc.localDescription.sdp)
    connection = pc.getTransceivers()[0].receiver.transport.transport._connection
    for pair in connection._nominated.values():
        protocol = pair.protocol
        sock = protocol.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        original = protocol.datagram_received

        def datagram_received(data: bytes, addr: Any, original: Any = original) -> None:
            if is_rtp(data):
                counter.feed(data)
            else:
                original(data, addr)

        protocol.datagram_received = datagram_received
