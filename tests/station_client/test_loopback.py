"""The station tracks in real RTCPeerConnections: camera and microphone are encoded (VP8, Opus),
sent over a loopback connection, decoded, and the received audio is played by the SpeakerSink.

This is the whole station media path without hardware: lavfi camera -> CameraTrack -> VP8;
PulseAudio mic -> MicrophoneTrack -> Opus; received Opus -> SpeakerSink -> PulseAudio speaker
(recorded from its monitor). Proves the tracks' timestamps and formats suit aiortc's encoders.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from station_client.devices import AvCamera, PyAudioInput, PyAudioOutput
from station_client.media import CameraTrack, MicrophoneTrack, SpeakerSink
from tests.station_client.conftest import PulseServer, rms, stop_process, tone


async def test_station_media_through_a_peer_connection(
    pulse_audio: PulseServer, tmp_path: Path
) -> None:
    source = tmp_path / "tone.raw"
    source.write_bytes(tone(20.0))
    feeder = pulse_audio.feeder(source)
    camera = CameraTrack(AvCamera.test_pattern(size="320x240", fps=15))
    microphone = MicrophoneTrack(PyAudioInput("mic"))
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sink = SpeakerSink(PyAudioOutput("speaker"))
    remote: dict[str, MediaStreamTrack] = {}
    got_tracks = asyncio.Event()

    @receiver.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        remote[track.kind] = track
        if len(remote) == 2:
            got_tracks.set()

    before = pulse_audio.speaker_capture.stat().st_size
    try:
        await camera.start()
        await microphone.start()
        sender.addTrack(camera)
        sender.addTrack(microphone)
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        async with asyncio.timeout(20):
            await got_tracks.wait()
            frames = [await remote["video"].recv() for _ in range(5)]
        video = [f for f in frames if isinstance(f, av.VideoFrame)]
        assert len(video) == len(frames)
        assert {(f.width, f.height) for f in video} == {(320, 240)}

        await sink.start(remote["audio"])

        def heard() -> float:
            with pulse_audio.speaker_capture.open("rb") as f:
                f.seek(before)
                return rms(f.read())

        async with asyncio.timeout(20):
            while await asyncio.to_thread(heard) < 1000:
                await asyncio.sleep(0.1)
        assert sink.received > 0
        assert sink.written > 0
        assert sink.error is None
        assert camera.error is None
        assert microphone.error is None
    finally:
        await sink.stop()
        await sender.close()
        await receiver.close()
        await camera.aclose()
        await microphone.aclose()
        stop_process(feeder)
