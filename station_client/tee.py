"""``MediaTee``: one capture track read all the time, its frames handed to several consumers.

Why: the station's camera and microphone feed more than the live connection. The local backup
recording (station_client/backup.py) must go on while the line to the court is down, exactly
when no peer connection pulls frames, and the window's self-view should not freeze during a
reconnection. So one pump task per capture track reads it for as long as the station runs and
hands each frame:

* to each **output track** (``tee.track()``, one per peer connection): a ``MediaStreamTrack``
  over a bounded drop-oldest ``FrameQueue``, so a stalled encoder costs frames, never memory
  (ARCHITECTURE §4.2). Stopping the output (the session's end) detaches it; the tee and the
  capture go on.
* to each **sink** (``tee.add_sink(fn)``): a plain callback on the loop that must not block
  (the backup recorder only queues the frame for its own thread; the preview only posts it).

Frames are shared, not copied, and aiortc's encoder rewrites a frame's pts and time base in
place on its own thread. So a sink must not modify a frame, and one that uses it on another
thread reads the pts on the loop (when it is handed the frame, before aiortc sees it) and
copies the pixels before encoding (``backup.encoder.private_copy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from station_client.handoff import FrameQueue, QueueClosed

log = logging.getLogger(__name__)

Frame = av.VideoFrame | av.AudioFrame
Sink = Callable[[Frame], None]


class TeeTrack(MediaStreamTrack):
    """One consumer's view of a ``MediaTee`` (send it on a peer connection)."""

    def __init__(self, tee: MediaTee, queue: FrameQueue[Frame]) -> None:
        super().__init__()
        self.kind = tee.kind
        self._tee = tee
        self._queue = queue

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            return await self._queue.get()
        except QueueClosed:
            self.stop()
            raise MediaStreamError from None

    def stop(self) -> None:
        """Detach from the tee (the source keeps running for the others)."""
        self._tee._detach(self._queue)
        self._queue.close()
        super().stop()


class MediaTee:
    """Reads `source` from `start()` until `aclose()` (or the source ends) and fans it out."""

    def __init__(self, source: MediaStreamTrack) -> None:
        self.source = source
        self.kind = source.kind
        self._queues: list[FrameQueue[Frame]] = []
        self._sinks: list[Sink] = []
        self._task: asyncio.Task[None] | None = None
        self.frames = 0
        self.ended = asyncio.Event()

    def track(self, queue_size: int = 2) -> TeeTrack:
        """A new output track; frames from now on, the oldest dropped beyond `queue_size`."""
        queue: FrameQueue[Frame] = FrameQueue(asyncio.get_running_loop(), queue_size)
        if self.ended.is_set():
            queue.close()
        else:
            self._queues.append(queue)
        return TeeTrack(self, queue)

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        with contextlib.suppress(ValueError):
            self._sinks.remove(sink)

    def _detach(self, queue: FrameQueue[Frame]) -> None:
        with contextlib.suppress(ValueError):
            self._queues.remove(queue)

    def start(self) -> None:
        """Start the pump (idempotent)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                try:
                    frame = await self.source.recv()
                except MediaStreamError:
                    log.info("%s source ended", self.kind)
                    return
                if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                    continue  # capture tracks give frames; an encoded packet has no place here
                self.frames += 1
                for queue in self._queues:
                    queue.put(frame)
                for sink in list(self._sinks):
                    try:
                        sink(frame)
                    except Exception:
                        # A broken consumer must not stop the capture for the others.
                        log.exception("%s sink failed; removed", self.kind)
                        self.remove_sink(sink)
        finally:
            self.ended.set()
            for queue in self._queues:
                queue.close()
            self._queues.clear()

    async def aclose(self) -> None:
        """Stop the pump (not the source: its owner stops it) and end every output."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.ended.set()
        for queue in self._queues:
            queue.close()
        self._queues.clear()
