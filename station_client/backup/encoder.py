"""The backup's own VP8 and Opus encoders, and the private copy of each camera frame.

Why its own encoders: the live encoder's bitrate follows the line (REMB), so it is poorest
exactly when the line is poor; the backup encodes the captured frames itself at a steady
quality (VP8 at ``fps`` frames per second and ``bitrate``; Opus 48 kHz stereo). This costs a
second encode on the station PC; ``bench/station_backup.py`` measures it.

The frames are shared with the live connection (the tee hands both the same frame), so the
encoder reads nothing of a frame but its pixels, through ``private_copy`` (see
``BackupEncoder.video``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av

VIDEO_TIME_BASE = Fraction(1, 90_000)
OPUS_RATE = 48_000


def private_copy(frame: av.VideoFrame) -> av.VideoFrame:
    """A copy of `frame`'s pixels in a new frame (same format and size), nothing else."""
    copy = av.VideoFrame(frame.width, frame.height, frame.format.name)
    for src, dst in zip(frame.planes, copy.planes, strict=True):
        source, target = memoryview(src), memoryview(dst)
        if src.line_size == dst.line_size:
            target[:] = source[: len(target)]
            continue
        row = min(src.line_size, dst.line_size)
        for y in range(len(target) // dst.line_size):
            target[y * dst.line_size : y * dst.line_size + row] = source[
                y * src.line_size : y * src.line_size + row
            ]
    return copy


class BackupEncoder:
    """VP8 and Opus encoders for the backup. Used on the writer's thread only."""

    def __init__(self, fps: float, bitrate: int) -> None:
        self.fps = fps
        self.bitrate = bitrate
        self._step = round(90_000 / fps)
        self._next_due: int | None = None
        self._vp8: Any = None
        self._size: tuple[int, int] | None = None
        self._opus: Any = None
        self._resampler: Any = None
        self._first_opus_pts: int | None = None
        self._audio_offset = 0  # 48 kHz ticks added for microphone frames that never came
        self._next_in_pts: int | None = None
        self.resampled = 0  # 48 kHz samples fed to Opus

    def restart_video(self) -> None:
        """Start again with a keyframe (after a pause: the record must be decodable there)."""
        self._vp8 = None

    def video(self, frame: av.VideoFrame, pts: int | None) -> list[tuple[bytes, int, bool]]:
        """Encode `frame` (captured at `pts`, 90 kHz) if it is due at the backup's rate;
        returns (VP8 frame, 90 kHz timestamp, keyframe) for each packet out.

        The frame is shared with the live connection, whose encoder rewrites its pts and time
        base in place on another thread: so `pts` is read on the loop when the frame is
        offered, and the pixels are copied before anything here touches the frame."""
        if pts is None:
            return []
        if self._next_due is not None and pts < self._next_due:
            return []
        # Due again one step on, with a quarter step of slack for capture jitter.
        self._next_due = pts + self._step - self._step // 4
        image = private_copy(frame)
        if image.format.name != "yuv420p":
            image = image.reformat(format="yuv420p")
        if self._vp8 is None or self._size != (image.width, image.height):
            self._vp8 = self._open_vp8(image.width, image.height)
            self._size = (image.width, image.height)
        image.pts = pts
        image.time_base = VIDEO_TIME_BASE
        return [
            (bytes(p), p.pts & 0xFFFFFFFF, bool(p.is_keyframe)) for p in self._vp8.encode(image)
        ]

    def _open_vp8(self, width: int, height: int) -> Any:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.framerate = Fraction(self.fps).limit_denominator(1000)
        codec.bit_rate = self.bitrate
        codec.gop_size = max(1, round(2 * self.fps))  # a keyframe every 2 s: seekable, bounded loss
        codec.thread_count = 1
        codec.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "static-thresh": "1",
            "undershoot-pct": "95",
        }
        return codec

    def audio(self, frame: av.AudioFrame, pts: int | None) -> list[tuple[bytes, int]]:
        """Encode `frame` (s16, captured at `pts` in samples, read on the loop); returns
        (Opus packet, 48 kHz timestamp)s."""
        if self._opus is None:
            self._opus = av.CodecContext.create("libopus", "w")
            self._opus.bit_rate = 64_000
            self._opus.format = "s16"
            self._opus.layout = "stereo"
            self._opus.sample_rate = OPUS_RATE
            self._opus.time_base = Fraction(1, OPUS_RATE)
            self._opus.options = {"application": "voip"}
            self._resampler = av.AudioResampler(
                format="s16", layout="stereo", rate=OPUS_RATE, frame_size=960
            )
        rate = frame.sample_rate
        if self._next_in_pts is not None and pts is not None:
            missing = pts - self._next_in_pts
            if missing > rate // 50:  # more than 20 ms never came (dropped): keep time true
                self._audio_offset += missing * OPUS_RATE // rate
        if pts is not None:
            self._next_in_pts = pts + frame.samples
        out: list[tuple[bytes, int]] = []
        for chunk in self._resampler.resample(frame):
            self.resampled += chunk.samples
            for packet in self._opus.encode(chunk):
                if self._first_opus_pts is None:
                    self._first_opus_pts = packet.pts
                ts = packet.pts - self._first_opus_pts + self._audio_offset
                out.append((bytes(packet), ts & 0xFFFFFFFF))
        return out

    @property
    def audio_position(self) -> int:
        """The 48 kHz timestamp of the sample being fed now (for wall-clock anchoring)."""
        return (self.resampled + self._audio_offset) & 0xFFFFFFFF
