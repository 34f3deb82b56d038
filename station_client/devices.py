"""The station's devices at the edge: camera via PyAV, microphone and speaker via PyAudio.

Design:

* ``CameraSource``, ``AudioInput`` and ``AudioOutput`` are ``Protocol``s (STYLE 12): the media
  tracks (``station_client.media``) depend on these, not on av or pyaudio, so a different
  device layer — or a test double where hardware is missing — plugs in unchanged.
* Every method here **blocks** (device open, a frame read, a buffer write) and is meant to run
  on a capture or playback thread, never on the event loop. ``open()`` raises ``DeviceError``
  with the cause chained (``FileNotFoundError`` for a missing /dev/video device, ``OSError``
  for a non-camera, PortAudio's errors for audio).
* **The same code path in production and in tests.** ``AvCamera`` is one ``av.open(url,
  format=..., options=...)`` call: ``v4l2`` on the station PC, ``lavfi`` (a test pattern) on a
  machine without a camera. ``PyAudioInput``/``PyAudioOutput`` open ALSA PCMs by name through
  PortAudio; tests point ALSA at their own configuration (``ALSA_CONFIG_PATH``) with ``file``
  or ``pulse`` PCMs (notes/station-hardware-research.md), so nothing global is touched.
* Audio is 16-bit signed little-endian PCM, 48 kHz (what Opus uses), mono by default, in
  20 ms frames (960 samples): one Opus packet per frame, no re-chunking on the way.
* One ``pyaudio.PyAudio()`` per stream, created and terminated by the thread that owns the
  stream: PortAudio reads the ALSA configuration at initialisation, and a stream must not be
  closed while another thread writes to it (a crash seen in the research).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import av
import pyaudio

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
SAMPLES_PER_FRAME = 960  # 20 ms at 48 kHz: one Opus frame
SAMPLE_BYTES = 2  # s16le


class DeviceError(Exception):
    """A device could not be opened or failed while in use; the cause is chained."""


class CameraSource(Protocol):
    """Something that yields decoded video frames, one blocking ``read()`` at a time."""

    def open(self) -> None: ...

    def read(self) -> av.VideoFrame:
        """The next frame; raises ``EOFError`` when the source has ended."""
        ...

    def close(self) -> None: ...


class AudioInput(Protocol):
    """A microphone: s16le PCM, ``samples_per_frame`` samples per ``read()`` (blocking)."""

    sample_rate: int
    channels: int

    @property
    def samples_per_frame(self) -> int: ...

    def open(self) -> None: ...

    def read(self) -> bytes: ...

    def close(self) -> None: ...


class AudioOutput(Protocol):
    """A speaker: takes s16le PCM at ``sample_rate``/``channels``; ``write()`` blocks at the
    device's pace."""

    sample_rate: int
    channels: int

    def open(self) -> None: ...

    def write(self, pcm: bytes) -> None: ...

    def close(self) -> None: ...


# ----------------------------------------------------------------------------------------------
# Camera


class AvCamera:
    """A camera opened with ``av.open``: a V4L2 device on the station, a lavfi graph in tests.

    Frames are decoded in ``read()`` (raw formats such as yuyv422 cost a copy; MJPEG a decode).
    """

    def __init__(
        self, url: str, *, format: str | None = None, options: Mapping[str, str] | None = None
    ) -> None:
        self.url = url
        self.format = format
        self.options = dict(options or {})
        self._container: Any = None
        self._frames: Iterator[av.VideoFrame] | None = None

    @classmethod
    def v4l2(
        cls,
        device: str = "/dev/video0",
        *,
        size: str = "640x480",
        fps: int = 30,
        input_format: str | None = None,
    ) -> AvCamera:
        """A UVC camera on Linux. ``input_format`` e.g. ``mjpeg`` for high resolutions."""
        options = {"video_size": size, "framerate": str(fps)}
        if input_format:
            options["input_format"] = input_format
        return cls(device, format="v4l2", options=options)

    @classmethod
    def test_pattern(
        cls, *, size: str = "640x480", fps: int = 30, realtime: bool = True
    ) -> AvCamera:
        """A moving test pattern through the same ``av.open`` path (lavfi ignores v4l2
        options, so size and rate are in the graph). ``realtime`` paces it like a camera;
        without it lavfi runs as fast as it can (useful to test back-pressure)."""
        graph = f"testsrc2=size={size}:rate={fps},format=yuv420p"
        if realtime:
            graph += ",realtime"
        return cls(graph, format="lavfi")

    def open(self) -> None:
        try:
            self._container = av.open(self.url, format=self.format, options=self.options)
            self._frames = iter(self._container.decode(video=0))
        except (OSError, av.FFmpegError, ValueError) as exc:
            self.close()
            raise DeviceError(f"cannot open camera {self.url!r} ({self.format}): {exc}") from exc

    def read(self) -> av.VideoFrame:
        if self._frames is None:
            raise DeviceError("camera is not open")
        try:
            return next(self._frames)
        except StopIteration:
            raise EOFError("camera stream ended") from None
        except (OSError, av.FFmpegError) as exc:
            raise DeviceError(f"camera read failed: {exc}") from exc

    def close(self) -> None:
        container, self._container, self._frames = self._container, None, None
        if container is not None:
            container.close()


# ----------------------------------------------------------------------------------------------
# Audio


@dataclass(frozen=True, slots=True)
class AudioDevice:
    index: int
    name: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float


def list_audio_devices() -> list[AudioDevice]:
    """The PortAudio devices visible now (blocking: initialises PortAudio)."""
    pa = pyaudio.PyAudio()
    try:
        devices = []
        for index in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(index)
            devices.append(
                AudioDevice(
                    index=index,
                    name=str(info["name"]),
                    max_input_channels=int(info["maxInputChannels"]),
                    max_output_channels=int(info["maxOutputChannels"]),
                    default_sample_rate=float(info["defaultSampleRate"]),
                )
            )
        return devices
    finally:
        pa.terminate()


def _device_index(pa: pyaudio.PyAudio, name: str | None, *, output: bool) -> int | None:
    """The index of the device called ``name`` (None: the default device)."""
    if name is None:
        return None
    key = "maxOutputChannels" if output else "maxInputChannels"
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        if info["name"] == name and int(info[key]) > 0:
            return index
    kind = "output" if output else "input"
    raise DeviceError(f"no audio {kind} device named {name!r}")


class _PyAudioStream:
    """A PortAudio stream in blocking mode, used by one device thread (input or output)."""

    _what = "audio device"
    _output = False

    def __init__(
        self,
        device: str | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
        channels: int = 1,
        frames_per_buffer: int = SAMPLES_PER_FRAME,
    ) -> None:
        self.device = device
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames_per_buffer = frames_per_buffer
        self._pa: pyaudio.PyAudio | None = None
        self._stream: Any = None

    def open(self) -> None:
        self._pa = pyaudio.PyAudio()
        try:
            index = _device_index(self._pa, self.device, output=self._output)
            direction: dict[str, Any] = (
                {"output": True, "output_device_index": index}
                if self._output
                else {"input": True, "input_device_index": index}
            )
            self._stream = self._pa.open(
                format=pyaudio.paInt16,
                channels=self.channels,
                rate=self.sample_rate,
                frames_per_buffer=self.frames_per_buffer,
                **direction,
            )
        except (OSError, ValueError, DeviceError) as exc:
            self.close()
            raise DeviceError(f"cannot open {self._what} {self.device!r}: {exc}") from exc

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop_stream()
            finally:
                stream.close()
        pa, self._pa = self._pa, None
        if pa is not None:
            pa.terminate()


class PyAudioInput(_PyAudioStream):
    """A microphone through PortAudio, read in blocking mode by the capture thread."""

    _what = "microphone"

    @property
    def samples_per_frame(self) -> int:
        return self.frames_per_buffer

    def read(self) -> bytes:
        if self._stream is None:
            raise DeviceError("microphone is not open")
        try:
            data = self._stream.read(self.frames_per_buffer, exception_on_overflow=False)
        except OSError as exc:
            raise DeviceError(f"microphone read failed: {exc}") from exc
        return bytes(data)


class PyAudioOutput(_PyAudioStream):
    """A speaker through PortAudio, written in blocking mode by the playback thread."""

    _what = "speaker"
    _output = True

    @property
    def samples_per_buffer(self) -> int:
        return self.frames_per_buffer

    def write(self, pcm: bytes) -> None:
        if self._stream is None:
            raise DeviceError("speaker is not open")
        try:
            self._stream.write(pcm, exception_on_underflow=False)
        except OSError as exc:
            raise DeviceError(f"speaker write failed: {exc}") from exc
