"""The station's media as aiortc tracks: camera and microphone out, speaker in.

Design (ARCHITECTURE §4.2, STYLE 6):

* ``CameraTrack`` and ``MicrophoneTrack`` are ``MediaStreamTrack``s an ``RTCPeerConnection``
  can send. Each owns one capture thread that opens its device, reads frames at the device's
  pace and hands them to the loop through a ``FrameQueue`` (bounded, drop-oldest, drops
  counted). ``recv()`` only awaits that queue, so the loop never touches the device and a slow
  consumer costs frames, never loop time or memory.
* Timestamps are set at capture: video gets a 90 kHz clock from the capture instant (so frames
  dropped under load leave a true gap instead of slowing the clip down); audio gets a sample
  counter at the input rate (PCM is continuous by nature).
* ``SpeakerSink`` plays a received audio track: a task ``recv()``s frames on the loop,
  resamples them to the output format, and appends the PCM to a bounded drop-oldest deque; one
  writer thread per output stream writes it at the device's pace. The writer is stopped and
  joined **before** the stream is closed (closing under an in-flight write crashed PortAudio in
  the research), and the loop side takes no lock: the writer polls the deque every 5 ms when
  idle (a quarter of an audio frame).
* Device failures surface: ``start()`` raises ``DeviceError`` when a device cannot be opened;
  a failure later ends the track (``recv()`` raises ``MediaStreamError``) and is kept in
  ``error``.

Counters for diagnostics: ``dropped`` (frames discarded because the consumer was slow),
``captured`` / ``written``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.video.frame import PictureType

from station_client.devices import AudioInput, AudioOutput, CameraSource, DeviceError
from station_client.handoff import FrameQueue, QueueClosed

log = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)


class _CaptureTrack(MediaStreamTrack):
    """The capture-thread machinery shared by the camera and the microphone."""

    _thread_name = "capture"

    def __init__(self, queue_size: int) -> None:
        super().__init__()
        self._queue_size = queue_size
        self._queue: FrameQueue[av.VideoFrame | av.AudioFrame] | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = asyncio.Lock()
        self._running = False
        self.error: BaseException | None = None

    # Subclasses: open/read/close the device, on the capture thread (open: on a worker thread).
    def _open(self) -> None:
        raise NotImplementedError

    def _read(self) -> av.VideoFrame | av.AudioFrame:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    @property
    def dropped(self) -> int:
        return self._queue.dropped if self._queue is not None else 0

    @property
    def captured(self) -> int:
        return self._queue.put_count if self._queue is not None else 0

    @property
    def queued(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    async def start(self) -> None:
        """Open the device and start capturing (idempotent). Raises ``DeviceError``."""
        async with self._start_lock:
            if self._thread is not None:
                return
            if self.readyState != "live":
                raise MediaStreamError
            await asyncio.to_thread(self._open)
            if self.readyState != "live":  # stopped while the device was opening
                await asyncio.to_thread(self._close)
                raise MediaStreamError
            self._queue = FrameQueue(asyncio.get_running_loop(), self._queue_size)
            self._running = True
            self._thread = threading.Thread(
                target=self._capture, args=(self._queue,), name=self._thread_name, daemon=True
            )
            self._thread.start()

    def _capture(self, queue: FrameQueue[av.VideoFrame | av.AudioFrame]) -> None:
        try:
            while self._running:
                queue.put(self._read())
        except EOFError:
            log.info("%s: source ended", self._thread_name)
        except Exception as exc:  # a device failure ends the track; keep the cause
            log.exception("%s: capture failed", self._thread_name)
            self.error = exc
        finally:
            try:
                self._close()
            finally:
                queue.close()

    async def _next(self) -> av.VideoFrame | av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._thread is None:
            await self.start()
        assert self._queue is not None
        try:
            return await self._queue.get()
        except QueueClosed:
            self.stop()
            raise MediaStreamError from self.error

    def stop(self) -> None:
        """End the track; the capture thread stops after its current read and closes the
        device. Await ``aclose()`` to wait for that."""
        self._running = False
        if self._queue is not None:
            self._queue.close()
        super().stop()

    async def aclose(self) -> None:
        """Stop and wait until the device is closed."""
        self.stop()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)


class CameraTrack(_CaptureTrack):
    """The station camera as an aiortc video track."""

    kind = "video"
    _thread_name = "camera-capture"

    def __init__(self, source: CameraSource, *, queue_size: int = 2) -> None:
        super().__init__(queue_size)
        self._source = source
        self._t0: float | None = None

    def _open(self) -> None:
        self._source.open()

    def _read(self) -> av.VideoFrame:
        frame = self._source.read()
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        frame.pts = int((now - self._t0) * VIDEO_CLOCK_RATE)
        frame.time_base = VIDEO_TIME_BASE
        # FFmpeg's raw-video, MJPEG and lavfi sources mark every picture as an I frame, and
        # libvpx makes a keyframe of every frame so marked: the live stream would be all
        # keyframes, at twice the bitrate. Unmarked, the encoder chooses (and aiortc still
        # forces one when the SFU asks, by marking its own frame).
        frame.pict_type = PictureType.NONE
        return frame

    def _close(self) -> None:
        self._source.close()

    async def recv(self) -> av.VideoFrame:
        frame = await self._next()
        assert isinstance(frame, av.VideoFrame)
        return frame


class MicrophoneTrack(_CaptureTrack):
    """The station microphone as an aiortc audio track (s16, 20 ms frames)."""

    kind = "audio"
    _thread_name = "microphone-capture"

    def __init__(self, source: AudioInput, *, queue_frames: int = 10) -> None:
        super().__init__(queue_frames)
        self._source = source
        self._samples = 0
        self._layout = "mono" if source.channels == 1 else "stereo"
        self._time_base = Fraction(1, source.sample_rate)

    def _open(self) -> None:
        if self._source.channels not in (1, 2):
            raise DeviceError("the microphone must be mono or stereo")
        self._source.open()

    def _read(self) -> av.AudioFrame:
        pcm = self._source.read()
        samples = len(pcm) // (2 * self._source.channels)
        frame = av.AudioFrame(format="s16", layout=self._layout, samples=samples)
        frame.planes[0].update(pcm[: samples * 2 * self._source.channels])
        frame.sample_rate = self._source.sample_rate
        frame.pts = self._samples
        frame.time_base = self._time_base
        self._samples += samples
        return frame

    def _close(self) -> None:
        self._source.close()

    async def recv(self) -> av.AudioFrame:
        frame = await self._next()
        assert isinstance(frame, av.AudioFrame)
        return frame


class SpeakerSink:
    """Plays a received audio track on an ``AudioOutput``.

    Drains the track always (an undrained aiortc track grows without bound), even when the
    writer falls behind: then the oldest PCM is dropped and counted in ``dropped``.
    """

    IDLE_POLL_S = 0.005

    def __init__(self, output: AudioOutput, *, queue_frames: int = 25) -> None:
        self._output = output
        self._queue_frames = queue_frames
        self._pcm: deque[bytes] = deque()
        self._resampler = av.AudioResampler(
            format="s16",
            layout="mono" if output.channels == 1 else "stereo",
            rate=output.sample_rate,
        )
        self._consumer: asyncio.Task[None] | None = None
        self._writer: threading.Thread | None = None
        self._running = False
        self.dropped = 0
        self.received = 0
        self.written = 0
        self.error: BaseException | None = None

    async def start(self, track: MediaStreamTrack) -> None:
        """Open the output (raises ``DeviceError``) and start playing ``track``."""
        if self._consumer is not None:
            raise RuntimeError("already playing")
        await asyncio.to_thread(self._output.open)
        self._running = True
        self._writer = threading.Thread(target=self._write_loop, name="speaker", daemon=True)
        self._writer.start()
        self._consumer = asyncio.create_task(self._consume(track), name="speaker-consumer")

    async def _consume(self, track: MediaStreamTrack) -> None:
        bytes_per_sample = 2 * self._output.channels
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            self.received += 1
            try:
                resampled = self._resampler.resample(frame)
            except (ValueError, av.FFmpegError) as exc:  # a malformed frame: skip, keep playing
                log.warning("speaker: cannot resample a frame: %s", exc)
                continue
            for out in resampled:
                self._append(bytes(out.planes[0])[: out.samples * bytes_per_sample])

    def _append(self, pcm: bytes) -> None:
        self._pcm.append(pcm)
        while len(self._pcm) > self._queue_frames:
            try:
                self._pcm.popleft()
            except IndexError:
                break
            self.dropped += 1

    def _write_loop(self) -> None:
        try:
            while True:
                try:
                    pcm = self._pcm.popleft()
                except IndexError:
                    if not self._running:
                        return
                    time.sleep(self.IDLE_POLL_S)
                    continue
                self._output.write(pcm)
                self.written += 1
        except Exception as exc:
            log.exception("speaker: write failed")
            self.error = exc

    async def wait_track_ended(self) -> None:
        """Wait until the played track has ended (everything received is queued)."""
        if self._consumer is not None:
            await asyncio.shield(self._consumer)

    async def stop(self) -> None:
        """Stop receiving, let the writer finish what is queued, then close the output."""
        if self._consumer is not None and not self._consumer.done():
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        self._running = False
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.to_thread(writer.join)
            await asyncio.to_thread(self._output.close)


# --- a poor line (issue 14.6) -------------------------------------------------------------------

# The encoder's target (REMB from the court's SFU, which measures this uplink and asks for less
# when the station's receivers or its line cannot take more) decides the picture size: below
# LOWER_BELOW_BPS the camera's frames are sent at half width and height, from RAISE_ABOVE_BPS up
# at full size again (a gap between the two, so one noisy estimate does not flip the picture).
LOWER_BELOW_BPS = 350_000
RAISE_ABOVE_BPS = 450_000


class LineAdaptiveVideo(MediaStreamTrack):
    """The camera's frames, at half size while the line is poor (see the constants above).

    aiortc's VP8 encoder follows REMB for its bitrate but never changes the picture size; at a
    low bitrate a smaller picture keeps it sharp and costs the encoder less. The encoder
    restarts (with a keyframe) when the size changes, so the size changes rarely.
    """

    kind = "video"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self._source = source
        self.lowered = False
        self.target_bps: int | None = None

    def follow(self, target_bps: int | None) -> bool:
        """Take the encoder's current target (None: not known); returns `lowered`."""
        self.target_bps = target_bps
        if target_bps is not None:
            if target_bps < LOWER_BELOW_BPS:
                self.lowered = True
            elif target_bps >= RAISE_ABOVE_BPS:
                self.lowered = False
        return self.lowered

    async def recv(self) -> av.VideoFrame:
        frame = await self._source.recv()
        if not self.lowered or not isinstance(frame, av.VideoFrame):
            return frame  # type: ignore[return-value]
        small = frame.reformat(width=frame.width // 2 // 2 * 2, height=frame.height // 2 // 2 * 2)
        small.pts, small.time_base = frame.pts, frame.time_base
        return small

    def stop(self) -> None:
        super().stop()
        self._source.stop()


def encoder_target(sender: object) -> int | None:
    """The bitrate aiortc's video encoder of `sender` aims at now (it follows REMB), if any."""
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    target = getattr(encoder, "target_bitrate", None)
    return int(target) if isinstance(target, int) else None
