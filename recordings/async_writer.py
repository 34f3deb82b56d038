"""`AsyncRecordingWriter`: the writer for code running on an asyncio event loop.

Design: muxing, AES-GCM, hashing and fsync must not run on the loop (STYLE §6). All calls go to
one dedicated worker thread, which keeps them in order (the chain is sequential) and keeps the
synchronous core simple. The number of calls in flight is bounded; media can be offered with
`offer_video` / `offer_audio`, which drop (and count) a frame instead of waiting when the queue
is full, video before audio as the research notes recommend.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .ids import ParticipantId
from .timeline import PauseReason
from .writer import RecordingWriter

log = logging.getLogger(__name__)
T = TypeVar("T")


class AsyncRecordingWriter:
    """Async facade over a `RecordingWriter`; each method raises what the sync one raises."""

    def __init__(self, writer: RecordingWriter, *, max_pending: int = 256) -> None:
        self.writer = writer
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording")
        self._slots = asyncio.Semaphore(max_pending)
        self._max = max_pending
        self._pending = 0  # calls through run(), changed on the loop only
        self._offered = 0  # frames offered (loop thread)
        self._written = 0  # frames done with (writer thread)
        self.dropped_frames = 0

    @property
    def sealed(self) -> bool:
        """Whether the writer has stopped: sealed at the end, or by itself after a failure."""
        return self.writer.sealed

    async def wait_anchors(self, within_s: float) -> bool:
        """Wait (off the loop) until the RFC 3161 anchors are stored or declared missing; True
        at once without a TSA, False on timeout."""
        anchorer = self.writer.anchorer
        if anchorer is None:
            return True
        # A thread's wait, not a cancellable one: the deadline is the anchorer's own.
        return await asyncio.to_thread(anchorer.wait, within_s)

    @classmethod
    async def create(
        cls, factory: Callable[[], RecordingWriter], *, max_pending: int = 256
    ) -> AsyncRecordingWriter:
        """Build the writer (which creates files) off the loop."""
        writer = await asyncio.to_thread(factory)
        return cls(writer, max_pending=max_pending)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the writer's thread, after every call queued before it,
        and return its result. For work that must happen in order with the writes (encoding
        frames before writing them, as the station's backup recorder does)."""
        async with self._slots:
            self._pending += 1
            try:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(
                    self._executor, functools.partial(fn, *args, **kwargs)
                )
            finally:
                self._pending -= 1

    def offer(self, fn: Callable[..., None], *args: Any, audio: bool) -> bool:
        """Queue `fn(*args)` on the writer's thread without waiting; returns False (and counts
        a dropped frame) when the queue is full. Failures are logged."""
        # Audio may use the whole queue, video only up to 3/4 of it.
        limit = self._max if audio else (self._max * 3) // 4
        if self._pending + self._offered - self._written >= limit:
            self.dropped_frames += 1
            return False
        self._offered += 1
        # Straight onto the writer's thread, with no asyncio future: nothing waits for a frame,
        # and wrapping each one cost a wake-up of the event loop per frame (about 80 a second
        # per recorded participant; bench/load.py, docs/reliability.md "Load").
        self._executor.submit(self._write, fn, args)
        return True

    def _write(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        """On the writer's thread. `_written` is only ever changed here and `_offered` only on
        the loop, so their difference is the frames in flight without a lock."""
        try:
            fn(*args)
        except Exception as exc:
            log.error("recording write failed: %s", exc)
        finally:
            self._written += 1

    def offer_video(self, participant: ParticipantId, data: bytes, ts: int, keyframe: bool) -> bool:
        """Queue a video frame without waiting; False (and counted) if the queue is full."""
        return self.offer(self.writer.write_video, participant, data, ts, keyframe, audio=False)

    def offer_audio(self, participant: ParticipantId, data: bytes, ts: int) -> bool:
        """Queue an audio packet without waiting; False (and counted) if the queue is full."""
        return self.offer(self.writer.write_audio, participant, data, ts, audio=True)

    async def write_video(
        self, participant: ParticipantId, data: bytes, ts: int, keyframe: bool
    ) -> None:
        await self.run(self.writer.write_video, participant, data, ts, keyframe)

    async def write_audio(self, participant: ParticipantId, data: bytes, ts: int) -> None:
        await self.run(self.writer.write_audio, participant, data, ts)

    async def sender_report(
        self, participant: ParticipantId, kind: str, ts: int, ntp: float
    ) -> None:
        await self.run(self.writer.sender_report, participant, kind, ts, ntp)

    async def add_participant(
        self, participant: ParticipantId, *, video: bool, audio: bool, audio_channels: int = 2
    ) -> int:
        return await self.run(
            self.writer.add_participant,
            participant,
            video=video,
            audio=audio,
            audio_channels=audio_channels,
        )

    async def remove_participant(self, participant: ParticipantId, reason: str = "left") -> None:
        await self.run(self.writer.remove_participant, participant, reason)

    async def pause(self, reason: PauseReason | str, note: str = "") -> None:
        await self.run(self.writer.pause, reason, note)

    async def resume(self) -> None:
        await self.run(self.writer.resume)

    async def note(self, text: str) -> None:
        await self.run(self.writer.note, text)

    async def tick(self) -> None:
        await self.run(self.writer.tick)

    async def checkpoint(self) -> dict[str, Any]:
        return await self.run(self.writer.checkpoint)

    async def seal(self) -> dict[str, Any]:
        """Seal and stop the worker thread."""
        try:
            return await self.run(self.writer.seal)
        finally:
            self._executor.shutdown(wait=False)

    async def aclose(self) -> None:
        """Stop without sealing (recovery will seal). Idempotent."""
        await asyncio.to_thread(self._executor.shutdown, True)
        self.writer.abort()
