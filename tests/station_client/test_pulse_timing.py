"""Timing on a real-time clock: the private PulseAudio of recipe B paces the microphone and the
speaker like a sound card, so these tests show the tracks keep up with a live device without
dropping (the ALSA file PCM of test_devices.py is unpaced and cannot show this)."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from pathlib import Path

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from station_client.devices import PyAudioInput, PyAudioOutput
from station_client.media import MicrophoneTrack, SpeakerSink
from tests.station_client.conftest import PulseServer, rms, stop_process, tone

FRAME = 960


async def test_microphone_is_paced_and_keeps_up(pulse_audio: PulseServer, tmp_path: Path) -> None:
    source = tmp_path / "tone.raw"
    source.write_bytes(tone(10.0))
    feeder = pulse_audio.feeder(source)
    track = MicrophoneTrack(PyAudioInput("mic"), queue_frames=50)
    try:
        await asyncio.wait_for(track.recv(), 10)  # the device is open and flowing
        started = time.monotonic()
        frames = [await asyncio.wait_for(track.recv(), 5) for _ in range(50)]
        elapsed = time.monotonic() - started
    finally:
        await track.aclose()
        stop_process(feeder)
    # 50 frames of 20 ms: a paced device cannot deliver them much faster than 1 s (the file
    # PCM delivers them in a few milliseconds).
    assert elapsed >= 0.7, f"50 frames in {elapsed:.3f} s: the microphone is not paced"
    assert track.dropped == 0
    assert all(f.samples == FRAME and f.sample_rate == 48_000 for f in frames)
    assert max(rms(bytes(f.planes[0])[: FRAME * 2]) for f in frames) > 2000  # the tone got in


class ToneTrack(MediaStreamTrack):
    """One second of a 440 Hz tone as 50 frames, then the end; not paced (a burst)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pcm = tone(1.0)
        self._n = 0

    async def recv(self) -> av.AudioFrame:
        if self._n == 50:
            self.stop()
            raise MediaStreamError
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(self._pcm[self._n * FRAME * 2 : (self._n + 1) * FRAME * 2])
        frame.sample_rate = 48_000
        frame.pts = self._n * FRAME
        frame.time_base = Fraction(1, 48_000)
        self._n += 1
        return frame


async def test_speaker_writes_at_the_device_pace(pulse_audio: PulseServer) -> None:
    capture = pulse_audio.speaker_capture
    before = capture.stat().st_size
    sink = SpeakerSink(PyAudioOutput("speaker"), queue_frames=60)
    started = time.monotonic()
    await sink.start(ToneTrack())
    await asyncio.wait_for(sink.wait_track_ended(), 10)
    await asyncio.wait_for(sink.stop(), 10)  # drains what is queued at the device's pace
    elapsed = time.monotonic() - started
    assert sink.dropped == 0
    assert sink.written == 50
    assert sink.error is None
    assert elapsed >= 0.6, f"1 s of audio written in {elapsed:.3f} s: not paced"

    def heard() -> float:
        with capture.open("rb") as f:
            f.seek(before)
            return rms(f.read())

    async with asyncio.timeout(10):
        while (level := await asyncio.to_thread(heard)) < 1000:
            await asyncio.sleep(0.05)
    assert level >= 1000  # the tone reached the speaker's monitor
