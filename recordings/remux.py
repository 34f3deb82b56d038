"""Remuxing encoded VP8/Opus frames into one WebM byte stream per participant (never re-encoding).

Design decisions:
- The SFU hands us encoded frames (depayloaded VP8 frames, Opus packets) with their RTP
  timestamps. We only *mux* them with PyAV into a Matroska/WebM container whose output goes to an
  in-memory sink; every chunk the muxer emits is handed on at once (to the sealed writer), so
  nothing waits in RAM beyond one Matroska cluster (<= 1 s, `cluster_time_limit`). Remuxing costs
  tens of microseconds per frame; aiortc's `MediaRecorder` decodes and re-encodes (~1 core per
  stream, aiortc-sfu-research §2.4).
- The sink is not seekable, so the muxer runs in `live` mode (no cues, no duration in the
  header). `export` remuxes the decrypted stream once more into a seekable file with durations.
- A/V alignment: each track's 32-bit RTP timestamps are unwrapped to 64 bits and mapped to wall
  clock by the latest RTCP sender report (RTP ts <-> NTP) when one has been seen, else by the
  arrival time of the track's first frame. Both tracks of a participant share one origin (the
  earliest frame written), so audio and video line up as the senders' clocks say.
- The container header must list every track before the first frame. If video is declared we
  wait for its first keyframe (its VP8 header gives the frame size) while holding at most
  `MAX_PREROLL_SECONDS` of audio; video frames before the first keyframe (and after a
  `require_keyframe()`, e.g. on resume) are dropped because they cannot be decoded.
- The muxer writes media times from 0 = the stream's *origin* (the wall time of its earliest
  frame). `on_origin(origin)` reports it when the container opens, so the writer can put it on
  the signed timeline: players align the streams of a recording by it.
- Timestamps written are clamped to be strictly increasing per track (the muxer refuses
  non-monotonic DTS; a frame arriving late is better kept than dropped).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
MAX_PREROLL_SECONDS = 2.0
DEFAULT_SIZE = (640, 480)
MS = Fraction(1, 1000)
AVIO_BUFFER = 4096
MUX_OPTIONS = {
    "live": "1",
    "cluster_time_limit": "1000",
    "flush_packets": "1",
    "max_interleave_delta": "500000",
}


class _NullSink:
    """A sink for a container that never writes (the template's, see `_vp8_stream`)."""

    def write(self, data: bytes) -> int:
        return len(data)


def _vp8_stream(container: Any) -> Any:
    """A VP8 stream in `container` for muxing only. `add_stream("libvpx")` would make PyAV open
    a libvpx *encoder* when the header is written (it opens every stream's codec context not
    made from a template): about 8 MB per recorded participant at 640x480 that nothing uses
    (measured by bench/load.py, docs/reliability.md "Load"). A stream made from a template is
    not opened; the header written is the same (track UIDs aside, which are random anyway)."""
    template_owner = av.open(_NullSink(), "w", format="webm")
    try:
        template = template_owner.add_stream("libvpx", rate=30)
        return container.add_stream_from_template(template)
    finally:
        template_owner.close()


def opus_head(channels: int) -> bytes:
    """The OpusHead identification header (RFC 7845 §5.1) WebM needs as CodecPrivate."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 312, AUDIO_CLOCK, 0, 0)


def vp8_keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 §9.1), or None if not a keyframe."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack_from("<HH", frame, 6)
    return width & 0x3FFF, height & 0x3FFF


class RtpUnwrapper:
    """Extends 32-bit RTP timestamps to a monotone-ish 64-bit timeline across wrap-around."""

    def __init__(self) -> None:
        self._last: int | None = None

    def extend(self, ts: int) -> int:
        ts &= 0xFFFFFFFF
        if self._last is None:
            self._last = ts
            return ts
        delta = (ts - (self._last & 0xFFFFFFFF)) & 0xFFFFFFFF
        if delta >= 0x80000000:  # behind: a reordered / late frame
            delta -= 0x1_0000_0000
        self._last += delta
        return self._last


class TrackClock:
    """Maps one track's RTP timestamps to wall-clock seconds."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.unwrap = RtpUnwrapper()
        self._base: tuple[int, float] | None = None  # (extended rtp, wall seconds)
        self.from_sender_report = False

    def sender_report(self, rtp_ts: int, ntp_wall: float) -> None:
        self._base = (self.unwrap.extend(rtp_ts), ntp_wall)
        self.from_sender_report = True

    def wall(self, rtp_ts: int, arrival_wall: float) -> float:
        ext = self.unwrap.extend(rtp_ts)
        if self._base is None:
            self._base = (ext, arrival_wall)
        base_rtp, base_wall = self._base
        return base_wall + (ext - base_rtp) / self.rate


@dataclass
class _Pending:
    kind: str
    data: bytes
    wall: float
    keyframe: bool


class ParticipantRemuxer:
    """One participant's WebM stream (a video and/or an audio track).

    `on_bytes(chunk)` receives the muxer's output as it is produced. Raises nothing on bad media
    (frames that cannot be used are counted in `dropped_frames` and logged); errors of the sink
    propagate.
    """

    def __init__(
        self,
        on_bytes: Callable[[bytes], None],
        *,
        video: bool,
        audio: bool,
        audio_channels: int = 2,
        on_origin: Callable[[float], None] | None = None,
    ) -> None:
        if not (video or audio):
            raise ValueError("a participant stream needs a video or an audio track")
        self._on_bytes = on_bytes
        self._on_origin = on_origin
        self.has_video = video
        self.has_audio = audio
        self._channels = audio_channels
        self.video_clock = TrackClock(VIDEO_CLOCK)
        self.audio_clock = TrackClock(AUDIO_CLOCK)
        self._container: Any = None
        self._vstream: Any = None
        self._astream: Any = None
        self._pending: list[_Pending] = []
        self._origin: float | None = None
        self._last_ms = {"video": -1, "audio": -1}
        self._need_keyframe = True
        self.finished = False
        self.dropped_frames = 0
        self.frames_written = 0
        self.last_media_wall: float | None = None

    # ---- sink --------------------------------------------------------------------------------

    def write(self, data: bytes) -> int:  # file-like protocol used by av.open
        if data:
            self._on_bytes(bytes(data))
        return len(data)

    # ---- input -------------------------------------------------------------------------------

    def require_keyframe(self) -> None:
        """Drop video until the next keyframe (after a pause or a decoder-breaking loss)."""
        self._need_keyframe = True

    def sender_report(self, kind: str, rtp_ts: int, ntp_wall: float) -> None:
        """RTCP SR mapping for `kind` ("video" or "audio"): rtp_ts corresponds to ntp_wall
        (Unix seconds)."""
        (self.video_clock if kind == "video" else self.audio_clock).sender_report(rtp_ts, ntp_wall)

    def video_frame(self, data: bytes, rtp_ts: int, keyframe: bool, arrival_wall: float) -> None:
        if self.finished or not self.has_video:
            self.dropped_frames += 1
            return
        wall = self.video_clock.wall(rtp_ts, arrival_wall)
        if self._need_keyframe:
            if not keyframe:
                self.dropped_frames += 1
                return
            self._need_keyframe = False
        if self._container is None:
            self._pending.append(_Pending("video", data, wall, keyframe))
            size = vp8_keyframe_size(data) if keyframe else None
            self._open(size or DEFAULT_SIZE)
            return
        self._mux("video", data, wall, keyframe)

    def audio_frame(self, data: bytes, rtp_ts: int, arrival_wall: float) -> None:
        if self.finished or not self.has_audio:
            self.dropped_frames += 1
            return
        wall = self.audio_clock.wall(rtp_ts, arrival_wall)
        if self._container is None:
            self._pending.append(_Pending("audio", data, wall, True))
            first = self._pending[0].wall
            if not self.has_video or wall - first > MAX_PREROLL_SECONDS:
                self._open(DEFAULT_SIZE)
            return
        self._mux("audio", data, wall, True)

    # ---- muxing ------------------------------------------------------------------------------

    def _open(self, size: tuple[int, int]) -> None:
        # NB: this object is PyAV's file; it must not have a `closed` attribute (PyAV would
        # then skip writing the trailer, losing the last cluster).
        container = av.open(
            self,
            "w",
            format="webm",
            options=dict(MUX_OPTIONS),
            container_options={"flush_packets": "1"},
            buffer_size=AVIO_BUFFER,
        )
        if self.has_video:
            vs = _vp8_stream(container)
            vs.width, vs.height = size
            vs.pix_fmt = "yuv420p"
            vs.time_base = MS
            self._vstream = vs
        if self.has_audio:
            st = container.add_stream("libopus", rate=AUDIO_CLOCK)
            st.codec_context.layout = "stereo" if self._channels == 2 else "mono"
            st.codec_context.extradata = opus_head(self._channels)
            st.time_base = MS
            self._astream = st
        self._container = container
        pending, self._pending = self._pending, []
        self._origin = min(p.wall for p in pending)
        if self._on_origin is not None:
            self._on_origin(self._origin)
        for p in sorted(pending, key=lambda p: p.wall):
            self._mux(p.kind, p.data, p.wall, p.keyframe)

    def _mux(self, kind: str, data: bytes, wall: float, keyframe: bool) -> None:
        assert self._origin is not None
        ms = round((wall - self._origin) * 1000)
        last = self._last_ms[kind]
        if ms <= last:
            ms = last + 1
        self._last_ms[kind] = ms
        packet = av.Packet(data)
        packet.stream = self._vstream if kind == "video" else self._astream
        packet.pts = ms
        packet.dts = ms
        packet.time_base = MS
        if kind == "video":
            packet.is_keyframe = keyframe
        self._container.mux(packet)
        self.frames_written += 1
        self.last_media_wall = wall

    def close(self) -> None:
        """Flush the muxer (writes the last cluster). Idempotent."""
        if self.finished:
            return
        self.finished = True
        if self._container is None and self._pending:
            self._open(DEFAULT_SIZE)
        if self._container is not None:
            container = self._container
            self._container = self._vstream = self._astream = None
            container.close()
            # PyAV flushes the AVIO buffer (the trailer and the last cluster) into our sink only
            # when the container is deallocated: drop the last references now.
            del container
