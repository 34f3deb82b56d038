"""Synthetic encoded media (VP8 test pattern + Opus sine) for the selftest, tests and benchmark.

Encoding happens here, once, with PyAV; the recording path itself never encodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av

from .remux import AUDIO_CLOCK, VIDEO_CLOCK


@dataclass(frozen=True)
class EncodedFrame:
    kind: str  # "video" or "audio"
    data: bytes
    rtp_timestamp: int  # 32-bit, 90 kHz video / 48 kHz audio
    keyframe: bool
    time: float  # media seconds from the start


def encode_synthetic(
    seconds: float,
    *,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    bitrate: int = 1_000_000,
    keyframe_interval: int = 60,
    rtp_offset: int = 0,
) -> list[EncodedFrame]:
    """Encode `seconds` of test-pattern VP8 video and a 440 Hz Opus tone, in time order.

    RTP timestamps start at `rtp_offset` (use a value near 2**32 to exercise wrap-around).
    Raises av.FFmpegError if the encoders are unavailable.
    """
    frames: list[EncodedFrame] = []
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height = width, height
    enc.pix_fmt = "yuv420p"
    enc.time_base = Fraction(1, fps)
    enc.framerate = Fraction(fps, 1)
    enc.bit_rate = bitrate
    enc.gop_size = keyframe_interval
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    n_video = int(seconds * fps)
    with av.open(f"testsrc=size={width}x{height}:rate={fps}", format="lavfi") as src:
        for i, frame in enumerate(src.decode(video=0)):
            if i >= n_video:
                break
            f = frame.reformat(format="yuv420p")
            f.pts = i
            f.time_base = Fraction(1, fps)
            f.pict_type = av.video.frame.PictureType.NONE
            for p in enc.encode(f):
                t = float(p.pts or 0) / fps
                frames.append(
                    EncodedFrame(
                        "video",
                        bytes(p),
                        (rtp_offset + round(t * VIDEO_CLOCK)) & 0xFFFFFFFF,
                        bool(p.is_keyframe),
                        t,
                    )
                )
    for p in enc.encode(None):
        t = float(p.pts or 0) / fps
        frames.append(
            EncodedFrame(
                "video",
                bytes(p),
                (rtp_offset + round(t * VIDEO_CLOCK)) & 0xFFFFFFFF,
                bool(p.is_keyframe),
                t,
            )
        )
    aenc = av.CodecContext.create("libopus", "w")
    aenc.sample_rate = AUDIO_CLOCK
    aenc.layout = "mono"
    aenc.format = "s16"
    aenc.time_base = Fraction(1, AUDIO_CLOCK)
    aenc.bit_rate = 32_000
    pts = 0
    with av.open(
        f"sine=frequency=440:sample_rate={AUDIO_CLOCK}:duration={seconds}", format="lavfi"
    ) as src:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_CLOCK, frame_size=960)
        for aframe in src.decode(audio=0):
            for r in resampler.resample(aframe):
                r.pts = pts
                pts += r.samples
                for p in aenc.encode(r):
                    t = max(0.0, float(p.pts or 0) / AUDIO_CLOCK)
                    frames.append(
                        EncodedFrame(
                            "audio",
                            bytes(p),
                            (rtp_offset + round(t * AUDIO_CLOCK)) & 0xFFFFFFFF,
                            True,
                            t,
                        )
                    )
    for p in aenc.encode(None):
        t = max(0.0, float(p.pts or 0) / AUDIO_CLOCK)
        frames.append(
            EncodedFrame(
                "audio", bytes(p), (rtp_offset + round(t * AUDIO_CLOCK)) & 0xFFFFFFFF, True, t
            )
        )
    frames.sort(key=lambda f: (f.time, f.kind))
    return frames
