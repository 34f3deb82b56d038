"""``FrameQueue``: the bounded hand-off from a capture thread to the asyncio loop.

Capture threads (camera, microphone) produce frames at the device's pace and must never wait
for the loop; the loop must never wait for them (STYLE 6). So:

* **Bounded, drop-oldest.** ``put()`` appends and, when the queue is over ``maxsize``, discards
  the oldest frames and counts them in ``dropped``: for live media the newest frame is the
  useful one, and a slow consumer (a busy loop, a stalled encoder) costs frames, not memory or
  latency (ARCHITECTURE §4.2).
* **No lock on the loop side.** ``collections.deque`` append/popleft are atomic under the GIL,
  and only the producer thread discards, so ``dropped`` is exact without a lock. The loop
  therefore can never block on a lock the capture thread holds (the blocking detector in the
  tests would fail it).
* **Wake-ups only when someone waits.** The consumer publishes a future before sleeping and
  re-checks the deque afterwards; the producer wakes it with ``call_soon_threadsafe`` only if
  a future is published, so the loop's callback queue does not grow with the frame rate.

One producer thread and one consuming task per queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueClosed(Exception):
    """The producer has finished (or the queue was closed) and every frame was taken."""


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class FrameQueue(Generic[T]):
    """A bounded, drop-oldest queue from one producer thread to one asyncio consumer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._loop = loop
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.put_count = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> None:
        """Add a frame (from the producer thread); never blocks. Ignored once closed."""
        if self._closed:
            return
        self._items.append(item)
        self.put_count += 1
        while len(self._items) > self.maxsize:
            try:
                self._items.popleft()
            except IndexError:  # the consumer took it meanwhile
                break
            self.dropped += 1
        self._wake()

    def close(self) -> None:
        """No more frames (from any thread); the consumer gets the rest, then ``QueueClosed``."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            # RuntimeError: the loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_release, waiter)

    async def get(self) -> T:
        """The oldest frame still queued. Raises ``QueueClosed`` when closed and empty."""
        while True:
            try:
                return self._items.popleft()
            except IndexError:
                pass
            if self._closed:
                raise QueueClosed
            waiter = self._loop.create_future()
            self._waiter = waiter
            try:
                # A put that ran before the waiter was published did not wake us: re-check.
                if not self._items and not self._closed:
                    await waiter
            finally:
                self._waiter = None
