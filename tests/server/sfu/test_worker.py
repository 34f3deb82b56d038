"""Worker processes: signaling relayed over the pipe, and a SIGKILLed worker ends only its
hearings, with WORKER_DIED for each of its peers."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import pytest

from server.ids import HearingId, ParticipantId, new_id
from server.sfu.events import EventEmitter
from server.worker import WorkerDiedError, WorkerPool
from signaling.reasons import CloseReason

from .conftest import Client, wait_for


class PoolPeer(EventEmitter):
    """What the WebSocket layer does for one client, in a few lines: relay to the pool."""

    def __init__(self, pool: WorkerPool, hearing: HearingId, peer: ParticipantId) -> None:
        super().__init__()
        self.pool, self.hearing, self.peer = pool, hearing, peer
        pool.on("offer", self._on_offer)

    def _on_offer(self, hearing: HearingId, peer: ParticipantId, sdp: str) -> None:
        if (hearing, peer) == (self.hearing, self.peer):
            self._emit("offer", sdp)

    async def handle_offer(self, sdp: str) -> str:
        return await self.pool.router(self.hearing).handle_offer(self.peer, sdp)

    async def handle_answer(self, sdp: str) -> None:
        await self.pool.router(self.hearing).handle_answer(self.peer, sdp)


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    p = WorkerPool(2)
    await p.start()
    yield p
    await p.close()


def video_frames(client: Client) -> int:
    return sum(n for mid, n in client.frames.items() if mid in client.lumas)


async def join(pool: WorkerPool, hearing: HearingId, name: str, luma: int) -> Client:
    client = Client(name, luma=luma)
    await pool.router(hearing).add_peer(client.id)
    await client.connect(PoolPeer(pool, hearing, client.id))  # type: ignore[arg-type]
    return client


async def test_killed_worker_ends_only_its_hearings(pool: WorkerPool) -> None:
    h1, h2 = HearingId(new_id()), HearingId(new_id())
    placed = [await pool.create_router(h1), await pool.create_router(h2)]
    assert {r.worker_index for r in placed} == {0, 1}
    closed: list[tuple[HearingId, ParticipantId, CloseReason]] = []
    pool.on("peerclose", lambda h, p, reason: closed.append((h, p, reason)))
    consumers: list[dict[str, object]] = []
    pool.on("consumer", lambda h, p, info: consumers.append(info))
    clients = [
        await join(pool, h1, "a", 60),
        await join(pool, h1, "b", 180),
        await join(pool, h2, "c", 90),
        await join(pool, h2, "d", 150),
    ]
    try:
        await wait_for(
            lambda: all(video_frames(c) >= 10 for c in clients), timeout=20, what="both hearings"
        )
        assert len(consumers) == 8  # audio + video, both ways, in both hearings
        stats = await pool.stats(pool.worker_of(h1).index)
        assert stats["peers"] == 2
        assert stats["cpu"] > 0

        os.kill(stats["pid"], signal.SIGKILL)
        await wait_for(lambda: len(closed) == 2, what="WORKER_DIED for the hearing's peers")
        assert {(h, p) for h, p, _ in closed} == {(h1, clients[0].id), (h1, clients[1].id)}
        assert {reason for _, _, reason in closed} == {CloseReason.WORKER_DIED}
        with pytest.raises(KeyError):
            pool.router(h1)
        # the other hearing's media keeps flowing on the other worker
        c, d = clients[2], clients[3]
        fc, fd = video_frames(c), video_frames(d)
        await wait_for(lambda: video_frames(c) >= fc + 30 and video_frames(d) >= fd + 30)
        # the hearing can be re-created: the dead worker is replaced by a fresh process
        await pool.create_router(h1)
        again = [await join(pool, h1, "a2", 60), await join(pool, h1, "b2", 180)]
        clients.extend(again)
        await wait_for(lambda: all(video_frames(x) >= 5 for x in again), timeout=20)
    finally:
        for client in clients:
            await client.close()


async def test_errors_cross_the_pipe(pool: WorkerPool) -> None:
    hearing = HearingId(new_id())
    router = await pool.create_router(hearing)
    peer = ParticipantId(new_id())
    await router.add_peer(peer)
    with pytest.raises(Exception, match="NegotiationError"):
        await router.handle_answer(peer, "v=0")
    with pytest.raises(Exception, match="NegotiationError"):
        await router.handle_offer(peer, "not sdp")
    dump = await router.dump()
    assert [p["id"] for p in dump["peers"]] == [peer]
    await pool.close_router(hearing, CloseReason.JUDGE_ENDED)
    with pytest.raises(KeyError):
        pool.router(hearing)
    assert not isinstance(WorkerDiedError(), KeyError)
