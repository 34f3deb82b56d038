"""AsyncRecordingWriter's offers: bounded, video dropped before audio, written in order on the
writer's thread (offers no longer go through an asyncio future; see `offer`)."""

from __future__ import annotations

import asyncio
import threading
from typing import cast

from recordings.async_writer import AsyncRecordingWriter
from recordings.ids import ParticipantId
from recordings.writer import RecordingWriter

P = ParticipantId("p1")


class BlockingWriter:
    """Writes wait for `gate`, so that offers pile up."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.written: list[tuple[str, int]] = []

    def write_video(self, participant: ParticipantId, data: bytes, ts: int, key: bool) -> None:
        self.gate.wait(10)
        self.written.append(("video", ts))

    def write_audio(self, participant: ParticipantId, data: bytes, ts: int) -> None:
        self.gate.wait(10)
        if ts == 666:
            raise OSError("a failing write is logged, and still frees its place")
        self.written.append(("audio", ts))

    def abort(self) -> None:
        pass


async def test_offers_are_bounded_video_first_and_written_in_order() -> None:
    fake = BlockingWriter()
    aw = AsyncRecordingWriter(cast(RecordingWriter, fake), max_pending=8)
    try:
        assert [aw.offer_video(P, b"v", i, False) for i in range(8)] == [True] * 6 + [False] * 2
        assert [aw.offer_audio(P, b"a", i) for i in range(3)] == [True, True, False]
        assert aw.dropped_frames == 3
        fake.gate.set()
        async with asyncio.timeout(10):
            while not aw.offer_audio(P, b"a", 666):  # a place frees once the writes ran
                await asyncio.sleep(0.01)
            while not aw.offer_audio(P, b"a", 7):  # ... and the failing write freed its own
                await asyncio.sleep(0.01)
            while len(fake.written) < 9:
                await asyncio.sleep(0.01)
        assert fake.written == [("video", i) for i in range(6)] + [
            ("audio", 0),
            ("audio", 1),
            ("audio", 7),
        ]
        # Every place came back, the failed write's too: eight fit again, a ninth does not.
        fake.gate.clear()
        accepted = 0
        async with asyncio.timeout(10):
            while accepted < 8:
                if aw.offer_audio(P, b"a", 100 + accepted):
                    accepted += 1
                else:
                    await asyncio.sleep(0.01)  # the last write's place not yet given back
        assert not aw.offer_audio(P, b"a", 200)
    finally:
        fake.gate.set()
        await aw.aclose()
