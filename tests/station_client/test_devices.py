"""The device edge and the tracks on real PyAV and real PyAudio (PortAudio -> ALSA file PCMs).

Camera: a lavfi test pattern through the same ``av.open`` call as a V4L2 camera; a missing
V4L2 device fails at ``start()``. Microphone: PyAudio reads the ``file`` PCM bit-exactly; the
track delivers 20 ms s16 frames whose content and timestamps line up. Speaker: frames given to
the sink arrive byte-for-byte in the ALSA file. Back-pressure: with nobody reading, the capture
thread keeps going and drops (counted), the queue stays at its bound and the loop stays free.
"""

from __future__ import annotations

import asyncio
import struct
import time
import wave
from collections.abc import Awaitable, Callable
from fractions import Fraction

import av
import pytest
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from station_client.devices import (
    AvCamera,
    DeviceError,
    PyAudioInput,
    PyAudioOutput,
    list_audio_devices,
)
from station_client.media import CameraTrack, MicrophoneTrack, SpeakerSink
from tests.station_client.conftest import SAMPLES_PER_BLOCK, AlsaFiles

DEADLINE = 20.0


async def eventually(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Poll ``condition`` until true or fail after ``deadline`` seconds."""
    async with asyncio.timeout(deadline):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


class LoopLag:
    """Measures the longest gap between ticks of a 5 ms ticker: how long the loop was blocked."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            self.worst = max(self.worst, now - last - 0.005)
            last = now

    def __enter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


# -- camera -----------------------------------------------------------------------------------


async def test_camera_track_yields_frames_from_av_open() -> None:
    track = CameraTrack(AvCamera.test_pattern(size="320x240", fps=30, realtime=True))
    try:
        started = time.monotonic()
        frames = [await asyncio.wait_for(track.recv(), 5) for _ in range(10)]
        elapsed = time.monotonic() - started
    finally:
        await track.aclose()
    assert all(isinstance(f, av.VideoFrame) for f in frames)
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    assert all(f.time_base == Fraction(1, 90_000) for f in frames)
    pts = [f.pts for f in frames if f.pts is not None]
    assert len(pts) == len(frames)
    assert pts == sorted(set(pts))
    # The realtime filter paces the pattern like a camera: 10 frames take at least ~9 frame
    # intervals (a lower bound only; a busy machine may be slower, never faster).
    assert elapsed >= 8 / 30
    assert track.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_the_live_encoder_makes_keyframes_only_when_asked() -> None:
    # Capture sources mark every picture as an I frame; passed on as is, aiortc's VP8 encoder
    # would make each one a keyframe (twice the bitrate on a village line).
    track = CameraTrack(AvCamera.test_pattern(size="320x240", fps=30, realtime=False))
    encoder = Vp8Encoder()
    keyframes = []
    try:
        for n in range(20):
            frame = await asyncio.wait_for(track.recv(), 10)
            payloads, _ = await asyncio.to_thread(encoder.encode, frame, n == 12)
            _, vp8 = VpxPayloadDescriptor.parse(payloads[0])
            if vp8[0] & 0x01 == 0:  # the VP8 frame tag's inverse key-frame bit (RFC 6386 9.1)
                keyframes.append(n)
    finally:
        await track.aclose()
    assert keyframes == [0, 12]  # the first, and the one the SFU asked for


async def test_missing_v4l2_camera_fails_at_start() -> None:
    track = CameraTrack(AvCamera.v4l2("/dev/video97"))
    with pytest.raises(DeviceError) as info:
        await track.start()
    assert isinstance(info.value.__cause__, FileNotFoundError)
    track.stop()


async def test_slow_consumer_makes_the_camera_drop_without_blocking_the_loop() -> None:
    # Unpaced lavfi produces hundreds of frames a second and nobody reads them.
    track = CameraTrack(AvCamera.test_pattern(size="160x120", realtime=False), queue_size=2)
    with LoopLag() as lag:
        try:
            await track.start()
            await eventually(lambda: track.dropped >= 50, "the capture thread drops frames")
            assert track.queued <= 2
            assert track.captured >= track.dropped + track.queued
            # Frames still flow once someone reads: the newest ones, in order.
            a = await asyncio.wait_for(track.recv(), 5)
            b = await asyncio.wait_for(track.recv(), 5)
            assert a.pts is not None
            assert b.pts is not None
            assert b.pts > a.pts
        finally:
            await track.aclose()
    assert lag.worst < 1.0, f"the loop was blocked for {lag.worst:.3f} s"


# -- audio devices ----------------------------------------------------------------------------


@pytest.mark.allow_blocking
def test_audio_devices_are_listed(alsa_files: AlsaFiles) -> None:
    names = {d.name: d for d in list_audio_devices()}
    assert {"mic", "speaker"} <= set(names)
    assert names["mic"].max_input_channels > 0
    assert names["speaker"].max_output_channels > 0


@pytest.mark.allow_blocking
def test_microphone_input_is_bit_exact(alsa_files: AlsaFiles) -> None:
    mic = PyAudioInput("mic")
    mic.open()
    try:
        blocks = [mic.read() for _ in range(50)]
    finally:
        mic.close()
    assert blocks == [alsa_files.block(k) for k in range(1, 51)]


@pytest.mark.allow_blocking
def test_missing_audio_device_is_a_device_error(alsa_files: AlsaFiles) -> None:
    with pytest.raises(DeviceError, match="no audio input device named"):
        PyAudioInput("no-such-mic").open()


def block_value(frame: av.AudioFrame) -> int | None:
    """The sample value if every sample of the frame has it, else None."""
    pcm = bytes(frame.planes[0])[: frame.samples * 2]
    values = set(struct.unpack(f"<{frame.samples}h", pcm))
    return values.pop() if len(values) == 1 else None


async def test_microphone_track_delivers_aligned_frames(alsa_files: AlsaFiles) -> None:
    track = MicrophoneTrack(PyAudioInput("mic"), queue_frames=8)
    try:
        frames = [await asyncio.wait_for(track.recv(), 5) for _ in range(30)]
    finally:
        await track.aclose()
    data_frames = 0
    for frame in frames:
        assert frame.format.name == "s16"
        assert frame.layout.name == "mono"
        assert frame.sample_rate == 48_000
        assert frame.samples == SAMPLES_PER_BLOCK
        assert frame.time_base == Fraction(1, 48_000)
        value = block_value(frame)
        assert value is not None, "a frame mixes two capture blocks"
        if value:  # block k carries value k: the timestamp must say the same block
            data_frames += 1
            assert frame.pts == (value - 1) * SAMPLES_PER_BLOCK
    assert data_frames >= 1
    pts = [f.pts for f in frames if f.pts is not None]
    assert len(pts) == len(frames)
    assert pts == sorted(set(pts))


async def test_slow_consumer_makes_the_microphone_drop_without_blocking_the_loop(
    alsa_files: AlsaFiles,
) -> None:
    # The file PCM is unpaced (about 1000x real time): a consumer that reads nothing is the
    # worst case of a slow one.
    track = MicrophoneTrack(PyAudioInput("mic"), queue_frames=5)
    with LoopLag() as lag:
        try:
            await track.start()
            await eventually(lambda: track.dropped >= 500, "the capture thread drops frames")
            assert track.queued <= 5
        finally:
            await track.aclose()
    assert lag.worst < 1.0, f"the loop was blocked for {lag.worst:.3f} s"


# -- speaker ----------------------------------------------------------------------------------


class PatternTrack(MediaStreamTrack):
    """A finite audio track of s16 mono 48 kHz frames: frame k holds the value 100 + k."""

    kind = "audio"

    def __init__(self, frames: int) -> None:
        super().__init__()
        self._left = frames
        self._k = 0
        self.sent: list[bytes] = []

    async def recv(self) -> av.AudioFrame:
        if self._left == 0:
            self.stop()
            raise MediaStreamError
        self._left -= 1
        self._k += 1
        pcm = struct.pack("<h", 100 + self._k) * SAMPLES_PER_BLOCK
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES_PER_BLOCK)
        frame.planes[0].update(pcm)
        frame.sample_rate = 48_000
        frame.pts = (self._k - 1) * SAMPLES_PER_BLOCK
        frame.time_base = Fraction(1, 48_000)
        self.sent.append(pcm)
        return frame


def read_wav(path: str) -> tuple[int, int, bytes]:
    with wave.open(path, "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.readframes(wav.getnframes())


async def run_sink(
    sink: SpeakerSink, track: MediaStreamTrack, step: Callable[[], Awaitable[None]]
) -> None:
    await sink.start(track)
    try:
        await step()
    finally:
        await sink.stop()


async def test_speaker_sink_plays_frames_into_the_alsa_file(alsa_files: AlsaFiles) -> None:
    track = PatternTrack(40)
    sink = SpeakerSink(PyAudioOutput("speaker"), queue_frames=50)
    await run_sink(sink, track, lambda: asyncio.wait_for(sink.wait_track_ended(), DEADLINE))
    assert sink.received == 40
    assert sink.dropped == 0
    assert sink.written == 40
    assert sink.error is None
    rate, channels, data = await asyncio.to_thread(read_wav, str(alsa_files.speaker_output))
    assert (rate, channels) == (48_000, 1)
    assert data == b"".join(track.sent)


async def test_speaker_sink_resamples_stereo_input(alsa_files: AlsaFiles) -> None:
    class StereoTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        async def recv(self) -> av.AudioFrame:
            if self.n == 10:
                self.stop()
                raise MediaStreamError
            frame = av.AudioFrame(format="s16", layout="stereo", samples=SAMPLES_PER_BLOCK)
            frame.planes[0].update(struct.pack("<hh", 1000, 1000) * SAMPLES_PER_BLOCK)
            frame.sample_rate = 48_000
            frame.pts = self.n * SAMPLES_PER_BLOCK
            frame.time_base = Fraction(1, 48_000)
            self.n += 1
            return frame

    sink = SpeakerSink(PyAudioOutput("speaker"))
    await run_sink(sink, StereoTrack(), lambda: asyncio.wait_for(sink.wait_track_ended(), DEADLINE))
    _, channels, data = await asyncio.to_thread(read_wav, str(alsa_files.speaker_output))
    assert channels == 1
    assert len(data) == 10 * SAMPLES_PER_BLOCK * 2
    assert set(struct.unpack(f"<{len(data) // 2}h", data)) == {1000}


async def test_missing_speaker_is_a_device_error(alsa_files: AlsaFiles) -> None:
    sink = SpeakerSink(PyAudioOutput("no-such-speaker"))
    with pytest.raises(DeviceError):
        await sink.start(PatternTrack(1))


def test_station_devices_command_names_them(
    alsa_files: AlsaFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli import main

    assert main(["station", "devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    named = {line.split()[1]: line for line in lines}
    assert "in" in named["mic"]
    assert "48000 Hz" in named["mic"]
    assert "out" in named["speaker"]
