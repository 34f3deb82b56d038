"""FrameQueue: bounded, drop-oldest, exact drop count, wakes a waiting consumer."""

from __future__ import annotations

import asyncio
import threading

import pytest

from station_client.handoff import FrameQueue, QueueClosed


async def test_drops_oldest_and_counts() -> None:
    queue: FrameQueue[int] = FrameQueue(asyncio.get_running_loop(), 3)
    for i in range(10):
        queue.put(i)
    assert len(queue) == 3
    assert queue.dropped == 7
    assert queue.put_count == 10
    assert [await queue.get() for _ in range(3)] == [7, 8, 9]
    queue.close()
    with pytest.raises(QueueClosed):
        await queue.get()


async def test_producer_thread_wakes_consumer_and_close_ends_it() -> None:
    queue: FrameQueue[int] = FrameQueue(asyncio.get_running_loop(), 1000)
    n = 20_000

    def produce() -> None:
        for i in range(n):
            queue.put(i)
        queue.close()

    thread = threading.Thread(target=produce)
    got: list[int] = []
    async with asyncio.timeout(10):
        thread.start()
        while True:
            try:
                got.append(await queue.get())
            except QueueClosed:
                break
    await asyncio.to_thread(thread.join)
    # Whatever was not dropped arrives once, in order, and the counts add up exactly.
    assert got == sorted(set(got))
    assert len(got) + queue.dropped == n
    assert got[-1] == n - 1


async def test_close_wakes_a_waiting_consumer_from_another_thread() -> None:
    queue: FrameQueue[int] = FrameQueue(asyncio.get_running_loop(), 2)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # let it publish its waiter
    thread = threading.Thread(target=queue.close)
    thread.start()
    with pytest.raises(QueueClosed):
        await asyncio.wait_for(getter, 5)
    await asyncio.to_thread(thread.join)
