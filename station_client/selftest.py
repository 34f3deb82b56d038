"""The station's self-test, scored (issue 14): camera, microphone, speaker and the line to the
court, each good / okay / bad with the named failure, as HMCTS's equipment check does.

Design:
- Each check measures something real through the same code the hearing uses: the camera and
  microphone through their capture tracks (a `MediaTee` output while the app runs), the speaker
  through an `AudioOutput` opened for a one-second 1 kHz tone (written from a worker thread:
  `write()` blocks at the device's pace), the line through the court's own REST endpoints
  (`GET /api/station/ping` for the round trip and loss, `POST /api/station/upload-test` for
  upload throughput).
- The thresholds are chosen for a village line and a USB camera: a hearing needs about
  15 fps, a voice above -50 dBFS, a round trip under 150 ms and 1 Mbit/s up to be "good";
  "okay" still works with a poorer picture or more delay; "bad" names what to fix.
- The result is one JSON-able dict (the `SelfTest` body of `POST /api/station/status`):
  `{"at": ISO time, "items": [{"check", "score", "failure", "detail", "measured"}]}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from .devices import AudioOutput, DeviceError

CAMERA_SECONDS = 2.0
MIC_SECONDS = 2.0
PINGS = 5
UPLOAD_BYTES = 256 * 1024
TONE_HZ = 1000.0
TONE_SECONDS = 1.0

Item = dict[str, Any]


def _item(
    check: str, score: str, failure: str | None = None, detail: str = "", **measured: float
) -> Item:
    return _scored(check, score, failure, detail, measured)


def _scored(
    check: str, score: str, failure: str | None, detail: str, measured: dict[str, float]
) -> Item:
    return {
        "check": check,
        "score": score,
        "failure": failure,
        "detail": detail[:300] or None,
        "measured": {k: round(v, 3) for k, v in measured.items()},
    }


async def check_camera(track: MediaStreamTrack | None, expected_fps: float = 15.0) -> Item:
    """Frames per second and whether the picture has any content (not black, not one colour)."""
    if track is None:
        return _item("camera", "bad", "NO_CAMERA", "no camera is configured")
    frames, spread = 0, 0.0
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        async with asyncio.timeout(CAMERA_SECONDS + 1):
            while loop.time() - start < CAMERA_SECONDS:
                frame = await track.recv()
                frames += 1
                if frames == 1 and isinstance(frame, av.VideoFrame):
                    spread = await asyncio.to_thread(_luma_spread, frame)
    except (TimeoutError, MediaStreamError):
        pass
    fps = frames / CAMERA_SECONDS
    if frames == 0:
        return _item("camera", "bad", "NO_FRAMES", "the camera sends no picture", fps=0)
    if spread < 8:
        return _item("camera", "bad", "BLANK_PICTURE", "the picture is blank", fps=fps)
    if fps >= 0.8 * expected_fps:
        return _item("camera", "good", fps=fps, contrast=spread)
    if fps >= 5:
        return _item("camera", "okay", "LOW_FRAME_RATE", fps=fps, contrast=spread)
    return _item("camera", "bad", "LOW_FRAME_RATE", fps=fps, contrast=spread)


def _luma_spread(frame: av.VideoFrame) -> float:
    """The spread of brightness in a small grey copy of the frame (0: one flat colour)."""
    grey = frame.reformat(width=64, height=48, format="gray")
    plane = grey.planes[0]
    data = bytes(plane)
    values = [data[r * plane.line_size + c] for r in range(48) for c in range(64)]
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


async def check_microphone(track: MediaStreamTrack | None) -> Item:
    """The loudest 20 ms level heard in two seconds (someone should speak, or the tone play)."""
    if track is None:
        return _item("microphone", "bad", "NO_MICROPHONE", "no microphone is configured")
    peak, frames = -120.0, 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        async with asyncio.timeout(MIC_SECONDS + 1):
            while loop.time() - start < MIC_SECONDS:
                frame = await track.recv()
                frames += 1
                if isinstance(frame, av.AudioFrame):
                    peak = max(peak, _level_dbfs(bytes(frame.planes[0])))
    except (TimeoutError, MediaStreamError):
        pass
    if frames == 0:
        return _item("microphone", "bad", "NO_SOUND_INPUT", "the microphone sends nothing")
    if peak > -50:
        return _item("microphone", "good", level_dbfs=peak)
    if peak > -65:
        return _item("microphone", "okay", "QUIET", level_dbfs=peak)
    return _item("microphone", "bad", "SILENT", "nothing heard", level_dbfs=peak)


def _level_dbfs(pcm: bytes) -> float:
    count = len(pcm) // 2
    if count == 0:
        return -120.0
    samples = struct.unpack(f"<{count}h", pcm[: count * 2])
    rms = math.sqrt(sum(s * s for s in samples) / count)
    return 20 * math.log10(rms / 32768) if rms > 0 else -120.0


def tone(seconds: float = TONE_SECONDS, rate: int = 48000) -> bytes:
    """A 1 kHz tone at -12 dBFS, s16le mono."""
    amplitude = 0.25 * 32767
    count = int(seconds * rate)
    return struct.pack(
        f"<{count}h",
        *(int(amplitude * math.sin(2 * math.pi * TONE_HZ * n / rate)) for n in range(count)),
    )


async def check_speaker(output: AudioOutput | None) -> Item:
    """Play the test tone; the device must take it at its pace (about one second)."""
    if output is None:
        return _item("speaker", "bad", "NO_SPEAKER", "no speaker is configured")
    pcm = tone(rate=output.sample_rate)

    def play() -> float:
        output.open()
        try:
            started = time.monotonic()
            step = output.sample_rate // 50 * 2  # 20 ms of s16le mono
            for offset in range(0, len(pcm), step):
                output.write(pcm[offset : offset + step])
            return time.monotonic() - started
        finally:
            output.close()

    try:
        took = await asyncio.to_thread(play)
    except DeviceError as exc:
        return _item("speaker", "bad", "PLAYBACK_FAILED", str(exc))
    return _item("speaker", "good", played_s=took)


async def check_network(
    ping: Callable[[], Awaitable[None]], upload: Callable[[bytes], Awaitable[int]]
) -> Item:
    """Round trip and loss over `PINGS` requests, then upload throughput."""
    rtts: list[float] = []
    for _ in range(PINGS):
        started = time.monotonic()
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with asyncio.timeout(2):
                await ping()
            rtts.append((time.monotonic() - started) * 1000)
    loss = 1 - len(rtts) / PINGS
    if not rtts:
        return _item("network", "bad", "UNREACHABLE", "the court cannot be reached", loss=1)
    rtt = sorted(rtts)[len(rtts) // 2]
    started = time.monotonic()
    try:
        async with asyncio.timeout(20):
            received = await upload(b"\0" * UPLOAD_BYTES)
        kbps = received * 8 / 1000 / max(time.monotonic() - started, 1e-3)
    except (aiohttp.ClientError, OSError, TimeoutError):
        kbps = 0.0
    measured = {"rtt_ms": rtt, "loss": loss, "upload_kbps": kbps}
    if rtt >= 400 or loss > 0.2 or kbps < 300:
        failure = "HIGH_LOSS" if loss > 0.2 else "HIGH_DELAY" if rtt >= 400 else "LOW_UPLOAD"
        return _scored("network", "bad", failure, "", measured)
    if rtt >= 150 or loss > 0 or kbps < 1000:
        failure = "SOME_LOSS" if loss > 0 else "DELAY" if rtt >= 150 else "LOW_UPLOAD"
        return _scored("network", "okay", failure, "", measured)
    return _scored("network", "good", None, "", measured)


async def run_self_test(
    *,
    camera: MediaStreamTrack | None,
    microphone: MediaStreamTrack | None,
    speaker: AudioOutput | None,
    ping: Callable[[], Awaitable[None]],
    upload: Callable[[bytes], Awaitable[int]],
    expected_fps: float = 15.0,
) -> dict[str, Any]:
    """All four checks (the tone plays while the microphone listens); the result as the
    court takes it."""
    cam = asyncio.ensure_future(check_camera(camera, expected_fps))
    mic = asyncio.ensure_future(check_microphone(microphone))
    spk = await check_speaker(speaker)
    items = [await cam, await mic, spk, await check_network(ping, upload)]
    return {"at": datetime.now(UTC).isoformat(), "items": items}
