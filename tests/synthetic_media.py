"""Synthetic media tracks that cost a line what real ones do (line adaptation and fault tests).

`NoiseVideoTrack`: 320x240 at 30 fps with a 64x48 block of noise, ~450 kbit/s of VP8 at
aiortc's default 500 kbit/s target (flat frames would cost a few kbit/s and hide every
bandwidth problem). `ToneAudioTrack`: a 440 Hz tone, 20 ms frames at 48 kHz (Opus spends real
bits on it, unlike aiortc's silence).
"""

from __future__ import annotations

import math
import os
from fractions import Fraction

import av
from aiortc import AudioStreamTrack, VideoStreamTrack


class NoiseVideoTrack(VideoStreamTrack):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._frames = [self._frame() for _ in range(6)]
        self._n = 0

    @staticmethod
    def _frame() -> av.VideoFrame:
        frame = av.VideoFrame(320, 240, "yuv420p")
        luma = bytearray([100]) * frame.planes[0].buffer_size
        stride = frame.planes[0].line_size
        for row in range(48):
            luma[row * stride : row * stride + 64] = os.urandom(64)
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(bytes([128]) * frame.planes[1].buffer_size)
        frame.planes[2].update(bytes([128]) * frame.planes[2].buffer_size)
        return frame

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self._n += 1
        frame = self._frames[self._n % len(self._frames)].reformat()
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneAudioTrack(AudioStreamTrack):
    """See the module docstring."""

    RATE = 48000
    SAMPLES = 960

    def __init__(self) -> None:
        super().__init__()
        pcm = bytearray()
        for i in range(self.SAMPLES):
            value = int(8000 * math.sin(2 * math.pi * 440 * i / self.RATE))
            pcm += value.to_bytes(2, "little", signed=True)
        self._pcm = bytes(pcm)  # 20 ms is a whole number of 440 Hz periods: seamless
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()  # paces at 20 ms, sets pts and time base
        tone = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        tone.planes[0].update(self._pcm)
        tone.sample_rate = self.RATE
        tone.pts = frame.pts
        tone.time_base = Fraction(1, self.RATE)
        return tone
